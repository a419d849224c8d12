//! bench-report: the results of a `scripts/bench.sh` run. Reads criterion's estimates of the
//! groups the run measured, the rows `vault-load --json` and the `store` benchmark wrote
//! (`scripts/load-postgres.sh`'s too) and those of `scripts/peers.sh`, then writes `results.md`, `results.json` and
//! `results.svg` (the chart) to `--out` and prints the table. With `--check` it exits 1 when
//! a ratio is below its target or a row was not measured, naming each.
//!
//! ```text
//! bench-report --since 1764230000.5 --groups envelope,pkcs11 --load target/bench-results/load-64B.json --check
//! ```
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use benches::report::{
    LOAD_GROUP, LoadRow, PeerRow, Results, Row, chart, criterion, peers_not_measured, store, table,
};
use clap::Parser;

/// Writes the results table and chart of a benchmark run.
#[derive(Debug, Parser)]
#[command(name = "bench-report", about, max_term_width = 100)]
#[deny(missing_docs)]
struct Cli {
    /// Where criterion keeps its estimates.
    #[arg(long, default_value = "target/criterion", value_name = "DIR")]
    criterion_dir: PathBuf,
    /// Where to write results.md, results.json and results.svg.
    #[arg(long, default_value = "target/bench-results", value_name = "DIR")]
    out: PathBuf,
    /// When the run started (seconds since the epoch): older estimates were not measured by it.
    #[arg(long, value_name = "SECONDS")]
    since: f64,
    /// The criterion groups the run measured, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "GROUP,...")]
    groups: Vec<String>,
    /// A file `vault-load --json` wrote (repeatable).
    #[arg(long, value_name = "FILE")]
    load: Vec<PathBuf>,
    /// A file the `store` benchmark wrote (repeatable).
    #[arg(long, value_name = "FILE")]
    store: Vec<PathBuf>,
    /// The file `scripts/peers.sh` wrote (vaultctl beside pkcs11-tool and systemd-creds).
    #[arg(long, value_name = "FILE")]
    peers: Option<PathBuf>,
    /// `quick` or `full`, for the headings.
    #[arg(long, default_value = "full")]
    mode: String,
    /// Exit 1 when a ratio is below its target or a row was not measured.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bench-report: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> Result<ExitCode, String> {
    let since = Duration::try_from_secs_f64(cli.since)
        .map(|d| SystemTime::UNIX_EPOCH + d)
        .map_err(|e| format!("--since {}: {e}", cli.since))?;
    let mut rows = Vec::new();
    for group in &cli.groups {
        if !benches::report::CRITERION_GROUPS.contains(&group.as_str()) {
            return Err(format!(
                "unknown group {group:?}; the groups are {}",
                benches::report::CRITERION_GROUPS.join(", ")
            ));
        }
        rows.extend(criterion::rows(&cli.criterion_dir, group, since)?);
    }
    for path in &cli.load {
        rows.extend(load_rows(path)?);
    }
    for path in &cli.store {
        rows.extend(store_rows(path)?);
    }
    if let Some(path) = &cli.peers {
        rows.extend(peer_rows(path)?);
    }
    let report = cli.criterion_dir.join("report").join("index.html");
    let results = Results {
        mode: cli.mode.clone(),
        criterion_report: report.display().to_string(),
        rows,
    };

    std::fs::create_dir_all(&cli.out).map_err(|e| format!("{}: {e}", cli.out.display()))?;
    let write = |name: &str, text: &str| {
        let path = cli.out.join(name);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    let md = table::markdown(&results);
    write("results.md", &md)?;
    let json = serde_json::to_string_pretty(&results).map_err(|e| format!("results.json: {e}"))?;
    write("results.json", &(json + "\n"))?;
    let svg = cli.out.join("results.svg");
    if let Err(e) = chart::draw(&results, &svg) {
        eprintln!("bench-report: no chart: {e}");
    }

    println!("{md}");
    println!(
        "written: {0}/results.md, {0}/results.json, {0}/results.svg; criterion's HTML reports: {1}",
        cli.out.display(),
        report.display()
    );
    let failures = results.failures();
    if cli.check && !failures.is_empty() {
        println!("\nFAILED (--check): {} row(s) not passing:", failures.len());
        for row in failures {
            println!("  {}", table::failure(row));
        }
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The rows of one `vault-load --json` file; a missing file (vault-load did not finish)
/// is one row that was not measured.
fn load_rows(path: &PathBuf) -> Result<Vec<Row>, String> {
    json_rows(path, LoadRow::to_rows, |name| {
        Row::not_measured(LOAD_GROUP, name)
    })
}

/// The rows of one file the `store` benchmark wrote; a missing file (the run did not finish)
/// is one row that was not measured.
fn store_rows(path: &PathBuf) -> Result<Vec<Row>, String> {
    json_rows(
        path,
        |row: &store::StoreRow| vec![row.to_row()],
        store::not_measured,
    )
}

/// The rows of `scripts/peers.sh`'s file; a missing file is one row that was not measured.
fn peer_rows(path: &PathBuf) -> Result<Vec<Row>, String> {
    json_rows(
        path,
        |row: &PeerRow| vec![row.to_row()],
        |_| peers_not_measured(),
    )
}

/// The rows of a JSON file of `T`s, each made one or more [`Row`]s by `to_rows`; a missing
/// file is the one row `missing` makes of the file's name.
fn json_rows<T: serde::de::DeserializeOwned>(
    path: &PathBuf,
    to_rows: fn(&T) -> Vec<Row>,
    missing: impl FnOnce(&str) -> Row,
) -> Result<Vec<Row>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
            return Ok(vec![missing(&name.unwrap_or_default())]);
        }
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let rows: Vec<T> =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(rows.iter().flat_map(to_rows).collect())
}
