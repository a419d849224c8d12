//! vault-load: loads a running vaultd over gRPC + mutual TLS and compares it with the raw
//! limit measured in the same run: an in-process echo of the same `VaultService` over the
//! same tonic + rustls stack, with the same clients, payload sizes and duration.
//! `--json FILE` writes the rows `scripts/bench.sh` puts in its results table.
//!
//! ```text
//! vault-load --addr https://127.0.0.1:PORT --ca ca.pem --cert admin.pem --key admin.key \
//!     --clients 64 --seconds 10 --mix get=70,put=10,seal=10,open=10 --value-bytes 64
//! ```
//!
//! `--mode split` runs get-only and seal-only phases (limit-get, vault-get, limit-seal,
//! vault-seal): the targets are per operation (KV get >= 0.7 of the echo limit, transit
//! seal >= 0.7, set for 64-byte values: other sizes are reported). `--mode mix` runs `--mix`
//! against both; `--mode all` (default) does both.
//! Exit code 1 on any failed call, or with `--check` on a ratio below its target.
//!
//! `--keys N` (and `--limit-keys N`) makes the gets read random keys of a vault filled with N
//! secrets (`examples/store-fill.rs`); `--store-json FILE` then writes the get p50 and p99 of
//! the two daemons as `store` rows (`scripts/load-store.sh`).
//!
//! `--limit-addr` (with `--limit-ca`, `--limit-cert`, `--limit-key`) compares with another
//! vaultd instead of the echo, e.g. a hardware-KEK daemon with the same daemon on a software
//! KEK; `--target` then sets one ratio every operation must reach. `--target` against the
//! echo does the same (every operation of every phase, at any size), in place of the
//! per-operation targets.
//!
//! `--addr` (and `--limit-addr`) may name several daemons, comma-separated: replicas of one
//! vault, with client `i` connecting to the `i mod n`th. `--mode kv` runs get-only and
//! put-only phases. After the load, every key the clients put to is read back from every
//! address of each daemon (not the echo): it must hold the last acknowledged put, with one
//! version per acknowledged put, or the run fails as on failed calls (`scripts/load-postgres.sh`).
#![forbid(unsafe_code)]

#[path = "vault-load/echo.rs"]
mod echo;
#[path = "vault-load/load.rs"]
mod load;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use benches::TARGET_SIZE;
use benches::report::store::{SCALE_TARGET, StoreRow};
use benches::report::{LoadRow, WriteCheck};
use clap::{Parser, ValueEnum};

use crate::echo::Echo;
use crate::load::{CheckResult, Mix, Op, PhaseResult, Plan, Target, Written};

/// Targets: (operation, label, the lowest vaultd/limit ratio accepted), at [`TARGET_SIZE`]-byte
/// values (the daemon issue set them for 64-byte values with 64 clients).
const TARGETS: [(Op, &str, f64); 2] = [(Op::Get, "KV get", 0.7), (Op::Seal, "transit seal", 0.7)];

/// How long the check after the load waits for a key to read back its last acknowledged put
/// from an address: twice the PostgreSQL store's default bound on a replica's cache staleness.
const READ_BACK_PATIENCE: Duration = Duration::from_secs(10);

/// Loads vaultd and its raw tonic mTLS limit with the same clients, payloads and duration.
#[derive(Debug, Parser)]
#[command(
    name = "vault-load",
    about,
    max_term_width = 100,
    args_override_self = true
)]
#[deny(missing_docs)]
struct Cli {
    /// vaultd's address, or the addresses of replicas of one vault, comma-separated (client
    /// `i` connects to the `i mod n`th).
    #[arg(long, value_name = "URL,...", value_delimiter = ',', required = true)]
    addr: Vec<String>,
    /// The CA certificate that signed vaultd's server certificate (PEM).
    #[arg(long, value_name = "FILE")]
    ca: PathBuf,
    /// The client certificate (PEM).
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    /// The client key (PEM).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Concurrent clients, each on its own connection.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Measured seconds per phase.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Warm-up seconds before each phase's measurement (before each slice with --rounds).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Alternate limit and vaultd this many times per phase, each slice lasting
    /// seconds/rounds: other load on the machine then weighs on both sides alike.
    #[arg(long, default_value_t = 1)]
    rounds: u32,
    /// The operation mix of `--mode mix`: op=weight with op one of get, put, seal, open.
    #[arg(long, default_value = "get=70,put=10,seal=10,open=10")]
    mix: String,
    /// Value and plaintext size in bytes.
    #[arg(long, default_value_t = 64)]
    value_bytes: usize,
    /// Which phases to run.
    #[arg(long, value_enum, default_value_t = Mode::All)]
    mode: Mode,
    /// Exit 1 when a ratio is below its target.
    #[arg(long)]
    check: bool,
    /// Also write the results as JSON rows (one per operation of each phase) to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// TCP_NODELAY on the echo's accepted connections (tonic's `serve` sets it; false
    /// mirrors a server started with `serve_with_incoming` on a plain listener).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    echo_nodelay: bool,
    /// Compare with the vaultd at this address (or these replicas, comma-separated) instead
    /// of the echo (it gets the same setup: the keys read, an envelope of its own to open).
    #[arg(long, value_name = "URL,...", value_delimiter = ',', requires_all = ["limit_ca", "limit_cert", "limit_key"])]
    limit_addr: Vec<String>,
    /// The CA of --limit-addr's server certificate (PEM).
    #[arg(long, value_name = "FILE")]
    limit_ca: Option<PathBuf>,
    /// The client certificate for --limit-addr (PEM).
    #[arg(long, value_name = "FILE")]
    limit_cert: Option<PathBuf>,
    /// The client key for --limit-addr (PEM).
    #[arg(long, value_name = "FILE")]
    limit_key: Option<PathBuf>,
    /// The ratio every operation of every phase must reach against its limit (--limit-addr
    /// or the echo), at any value size, in place of the echo's per-operation targets.
    #[arg(long, value_name = "RATIO")]
    target: Option<f64>,
    /// What the measured daemon is, for the report (`tpm tiered`).
    #[arg(long, value_name = "TEXT")]
    label: Option<String>,
    /// What the --limit-addr daemon is, for the report (`software tiered`).
    #[arg(long, value_name = "TEXT", requires = "limit_addr")]
    limit_label: Option<String>,
    /// Gets read uniformly random keys among the first N secrets of a vault filled by
    /// `examples/store-fill.rs` instead of the clients' own keys.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    keys: Option<u64>,
    /// Like --keys, for the --limit-addr daemon.
    #[arg(long, value_name = "N", requires = "limit_addr", value_parser = clap::value_parser!(u64).range(1..))]
    limit_keys: Option<u64>,
    /// Also write the get latencies (p50 and p99) against the limit's as rows of the
    /// `store` group (`bench-report --store`), with the store's scale target: vaultd on a
    /// large vault (--keys) against vaultd on a small one (--limit-keys).
    #[arg(long, value_name = "FILE", requires_all = ["keys", "limit_keys"])]
    store_json: Option<PathBuf>,
    /// The results table's group of the --json and --store-json rows (`postgres`), instead
    /// of `vault-load` and `store`.
    #[arg(long, value_name = "NAME")]
    group: Option<String>,
    /// Also write, for each --json row, a row comparing the p99 latencies (against another
    /// daemon, where the latency is as much the point as the rate).
    #[arg(long)]
    p99_rows: bool,
}

impl Cli {
    /// The ratio `op` must reach, if any: `--target`, or against another daemon none, else
    /// the echo's per-operation targets at [`TARGET_SIZE`]-byte values.
    fn target(&self, op: Op) -> Option<f64> {
        if self.target.is_some() || !self.limit_addr.is_empty() {
            return self.target;
        }
        if self.value_bytes != TARGET_SIZE {
            return None;
        }
        TARGETS.into_iter().find(|(o, ..)| *o == op).map(|t| t.2)
    }
}

/// Which phases run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Get-only, then seal-only: limit-get, vault-get, limit-seal, vault-seal.
    Split,
    /// The `--mix` against the limit, then against vaultd.
    Mix,
    /// Split, then mix.
    All,
    /// Get-only, then put-only (each client puts its own key).
    Kv,
}

/// One comparison: the same plan against the limit and against vaultd.
#[derive(Debug)]
struct Comparison {
    title: String,
    limit: PhaseResult,
    vault: PhaseResult,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vault-load: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> Result<ExitCode, String> {
    let mix = Mix::parse(&cli.mix)?;
    if cli.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    let seconds =
        |s: f64, flag: &str| Duration::try_from_secs_f64(s).map_err(|e| format!("{flag} {s}: {e}"));
    let window = seconds(cli.seconds, "--seconds")?;
    if window.is_zero() || cli.rounds == 0 {
        return Err("--seconds and --rounds must be above 0".into());
    }
    let slice = window / cli.rounds;
    let warmup = seconds(cli.warmup, "--warmup")?;
    let vault = Target {
        addrs: cli.addr.clone(),
        ca: cli.ca.clone(),
        cert: cli.cert.clone(),
        key: cli.key.clone(),
    };
    let split = matches!(cli.mode, Mode::Split | Mode::All);
    let mixed = matches!(cli.mode, Mode::Mix | Mode::All);
    let mut plans: Vec<(String, Mix)> = Vec::new();
    if split {
        plans.push(("get only".into(), Mix::only(Op::Get)));
        plans.push(("seal only".into(), Mix::only(Op::Seal)));
    }
    if mixed {
        plans.push((format!("mix {}", mix.describe()), mix.clone()));
    }
    if cli.mode == Mode::Kv {
        plans.push(("get only".into(), Mix::only(Op::Get)));
        plans.push(("put only".into(), Mix::only(Op::Put)));
    }
    let needs_envelope = plans
        .iter()
        .any(|(_, m)| m.has(Op::Seal) || m.has(Op::Open));

    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("runtime: {e}"))?;
    let setup = |target: &Target| {
        runtime.block_on(load::setup(
            target,
            cli.clients,
            cli.value_bytes,
            needs_envelope,
        ))
    };
    let vault_setup = setup(&vault)?;
    let envelope = vault_setup.envelope.clone();
    // The limit: another vaultd with the same setup, or the echo.
    let (limit, limit_setup, echo) = if cli.limit_addr.is_empty() {
        let echo = Echo::start(
            cli.value_bytes,
            envelope.len().max(cli.value_bytes),
            cli.echo_nodelay,
        )?;
        let limit = Target {
            addrs: vec![echo.addr.clone()],
            ca: echo.ca.clone(),
            cert: echo.cert.clone(),
            key: echo.key.clone(),
        };
        (limit, None, Some(echo))
    } else {
        let limit = Target {
            addrs: cli.limit_addr.clone(),
            ca: cli.limit_ca.clone().unwrap_or_default(),
            cert: cli.limit_cert.clone().unwrap_or_default(),
            key: cli.limit_key.clone().unwrap_or_default(),
        };
        let setup = setup(&limit)?;
        (limit, Some(setup), None)
    };
    let limit_envelope = limit_setup
        .as_ref()
        .map_or_else(|| envelope.clone(), |s| s.envelope.clone());
    let limit_name = if echo.is_some() { "echo" } else { "vaultd" };
    eprintln!(
        "vault-load: {} clients, {}-byte values (envelope {} bytes), {:.1} s warm-up + {:.1} s per phase; vaultd on {}; limit: {limit_name} on {}",
        cli.clients,
        cli.value_bytes,
        envelope.len(),
        warmup.as_secs_f64(),
        window.as_secs_f64(),
        vault.addrs.join(","),
        limit.addrs.join(",")
    );
    let comparisons = runtime.block_on(async {
        let mut comparisons = Vec::new();
        for (title, mix) in plans {
            let plan = Plan {
                clients: cli.clients,
                warmup,
                window: slice,
                mix,
                value_bytes: cli.value_bytes,
                envelope: envelope.clone(),
                keys: cli.keys.map(|n| n as usize),
            };
            let limit_plan = Plan {
                envelope: limit_envelope.clone(),
                keys: cli.limit_keys.map(|n| n as usize),
                ..plan.clone()
            };
            let mut both: Option<(PhaseResult, PhaseResult)> = None;
            for round in 1..=cli.rounds {
                eprintln!(
                    "vault-load: {title}: round {round}/{}: limit ({limit_name})...",
                    cli.rounds
                );
                let l = load::run(&limit, &limit_plan).await?;
                eprintln!(
                    "vault-load: {title}: round {round}/{}: vaultd...",
                    cli.rounds
                );
                let v = load::run(&vault, &plan).await?;
                eprintln!(
                    "vault-load: {title}: round {round}: {}",
                    round_summary(&l, &v)
                );
                match &mut both {
                    None => both = Some((l, v)),
                    Some((all_l, all_v)) => {
                        all_l.merge(l);
                        all_v.merge(v);
                    }
                }
            }
            let Some((limit, vault)) = both else {
                continue;
            };
            comparisons.push(Comparison {
                title,
                limit,
                vault,
            });
        }
        Ok::<_, String>(comparisons)
    })?;
    // Every put acknowledged is still there, on each daemon (the echo keeps nothing).
    let written = |side: fn(&Comparison) -> &PhaseResult| {
        let mut all = BTreeMap::new();
        for c in &comparisons {
            load::merge_writes(&mut all, &side(c).writes);
        }
        all
    };
    let check = |target: &Target, setup: &load::Setup, writes: &BTreeMap<usize, Written>| {
        runtime.block_on(load::check_writes(
            target,
            &setup.baseline,
            writes,
            cli.value_bytes,
            READ_BACK_PATIENCE,
        ))
    };
    let vault_writes = written(|c| &c.vault);
    let vault_check = (!vault_writes.is_empty())
        .then(|| check(&vault, &vault_setup, &vault_writes))
        .transpose()?;
    let limit_check = match &limit_setup {
        Some(setup) => {
            let writes = written(|c| &c.limit);
            (!writes.is_empty())
                .then(|| check(&limit, setup, &writes))
                .transpose()?
        }
        None => None,
    };
    runtime.shutdown_timeout(Duration::from_secs(2));
    drop(echo);

    let errors = report(cli, &comparisons);
    let lost = report_checks(&[
        ("vaultd", &vault, vault_check.as_ref()),
        ("limit", &limit, limit_check.as_ref()),
    ]);
    let below = targets(cli, &comparisons);
    if let Some(path) = &cli.json {
        let check = vault_check.as_ref().map(|c| WriteCheck {
            keys: c.keys,
            keys_read_back: c.keys_read_back,
            acknowledged: c.acknowledged,
            addresses: vault.addrs.len(),
        });
        let rows = json_rows(cli, &comparisons, check);
        let text = serde_json::to_string_pretty(&rows).map_err(|e| format!("JSON: {e}"))?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &cli.store_json {
        let rows = store_rows(cli, &comparisons);
        let text = serde_json::to_string_pretty(&rows).map_err(|e| format!("JSON: {e}"))?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if errors > 0 {
        println!("FAILED: {errors} calls returned an error");
        return Ok(ExitCode::FAILURE);
    }
    if lost {
        println!("FAILED: an acknowledged put did not read back");
        return Ok(ExitCode::FAILURE);
    }
    if cli.check && below {
        println!("FAILED: a ratio is below its target (--check)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints every comparison; returns the number of failed calls.
fn report(cli: &Cli, comparisons: &[Comparison]) -> u64 {
    let mut errors = 0;
    println!();
    println!(
        "vault-load: {} clients, {}-byte values, {} s per phase in {} round(s); latencies in ms (p50 / p99 / p99.9)",
        cli.clients, cli.value_bytes, cli.seconds, cli.rounds
    );
    for c in comparisons {
        println!();
        println!("== {}", c.title);
        println!(
            "{:<6} {:>12} {:>12} {:>6}   {:<24} {:<24}",
            "op", "vaultd ops/s", "limit ops/s", "ratio", "vaultd latency", "limit latency"
        );
        for (op, vault) in &c.vault.ops {
            let empty = Default::default();
            let limit = c.limit.ops.get(op).unwrap_or(&empty);
            let (v, l) = (c.vault.ops_per_sec(*op), c.limit.ops_per_sec(*op));
            println!(
                "{:<6} {:>12.0} {:>12.0} {:>6.3}   {:<24} {:<24}",
                op.name(),
                v,
                l,
                ratio(v, l),
                quantiles(vault),
                quantiles(limit)
            );
        }
        for (side, result) in [("vaultd", &c.vault), ("limit", &c.limit)] {
            for (op, s) in &result.ops {
                for (code, n) in &s.errors {
                    let sample = s.samples.get(code).map_or("", String::as_str);
                    println!("  ERRORS {side} {}: {n} x {code} ({sample})", op.name());
                }
            }
            errors += result.error_count();
        }
    }
    errors
}

/// Prints what the checks after the load found; whether a key did not read back.
fn report_checks(checks: &[(&str, &Target, Option<&CheckResult>)]) -> bool {
    let mut lost = false;
    for (side, target, check) in checks {
        let Some(c) = check else { continue };
        println!();
        println!(
            "writes ({side}): {} puts acknowledged on {} keys; {} keys read back their last acknowledged put from each of {} address(es){}",
            c.acknowledged,
            c.keys,
            c.keys_read_back,
            target.addrs.len(),
            if c.keys_read_back == c.keys {
                ""
            } else {
                ": LOST WRITES"
            }
        );
        for problem in &c.problems {
            println!("  {problem}");
        }
        lost |= c.keys_read_back != c.keys;
    }
    lost
}

/// Prints the target ratios (from the single-operation phases when run, else from the mix);
/// whether one is below its target.
fn targets(cli: &Cli, comparisons: &[Comparison]) -> bool {
    let mut below = false;
    if cli.target.is_some() || !cli.limit_addr.is_empty() {
        return against_target(cli, comparisons);
    }
    if cli.value_bytes != TARGET_SIZE {
        println!();
        println!(
            "targets: none at {}-byte values (set for {TARGET_SIZE}-byte values); reported only",
            cli.value_bytes
        );
        return false;
    }
    println!();
    println!(
        "{:<14} {:>12} {:>12} {:>7} {:>8}  result",
        "target", "vaultd ops/s", "limit ops/s", "ratio", "needed"
    );
    for (op, label, target) in TARGETS {
        // Prefer the phase that runs this operation alone.
        let found = comparisons
            .iter()
            .filter(|c| c.vault.ops.contains_key(&op))
            .min_by_key(|c| c.vault.ops.len());
        let Some(c) = found else {
            println!(
                "{label:<14} {:>12} {:>12} {:>7} {:>8}  not run",
                "-", "-", "-", "-"
            );
            continue;
        };
        let (v, l) = (c.vault.ops_per_sec(op), c.limit.ops_per_sec(op));
        let r = ratio(v, l);
        let ok = r >= target;
        below |= !ok;
        println!(
            "{label:<14} {v:>12.0} {l:>12.0} {r:>7.3} {:>8}  {} ({})",
            format!(">= {target}"),
            if ok { "ok" } else { "BELOW TARGET" },
            c.title
        );
    }
    below
}

/// Every operation of every phase against `--target` (if given); whether one is below it.
fn against_target(cli: &Cli, comparisons: &[Comparison]) -> bool {
    let Some(target) = cli.target else {
        return false;
    };
    let mut below = false;
    println!();
    for c in comparisons {
        for op in c.vault.ops.keys() {
            let (v, l) = (c.vault.ops_per_sec(*op), c.limit.ops_per_sec(*op));
            let r = ratio(v, l);
            below |= r < target;
            println!(
                "target {:<6} {v:>12.0} {l:>12.0} {r:>7.3} >= {target}  {} ({})",
                op.name(),
                if r >= target { "ok" } else { "BELOW TARGET" },
                c.title
            );
        }
    }
    below
}

/// The target of `op`, on the phase `targets` takes it from (against the echo: the one
/// that runs it alone; against another daemon: every phase).
fn target_of(cli: &Cli, comparisons: &[Comparison], c: &Comparison, op: Op) -> Option<f64> {
    let target = cli.target(op)?;
    if cli.target.is_some() {
        return Some(target);
    }
    let chosen = comparisons
        .iter()
        .filter(|c| c.vault.ops.contains_key(&op))
        .min_by_key(|c| c.vault.ops.len())?;
    std::ptr::eq(chosen, c).then_some(target)
}

/// One row per operation of each phase, for `--json`; the write check goes on the first
/// put row.
fn json_rows(cli: &Cli, comparisons: &[Comparison], mut check: Option<WriteCheck>) -> Vec<LoadRow> {
    let mut rows = Vec::new();
    for c in comparisons {
        for (op, vault) in &c.vault.ops {
            let empty = Default::default();
            let limit = c.limit.ops.get(op).unwrap_or(&empty);
            rows.push(LoadRow {
                phase: c.title.clone(),
                op: op.name().into(),
                value_bytes: cli.value_bytes,
                clients: cli.clients,
                vaultd_ops_per_sec: c.vault.ops_per_sec(*op),
                limit_ops_per_sec: c.limit.ops_per_sec(*op),
                vaultd_p50_ms: vault.quantile_us(0.5) / 1000.0,
                vaultd_p99_ms: vault.quantile_us(0.99) / 1000.0,
                limit_p99_ms: limit.quantile_us(0.99) / 1000.0,
                target: target_of(cli, comparisons, c, *op),
                label: cli.label.clone(),
                limit_label: cli.limit_label.clone(),
                group: cli.group.clone(),
                p99_row: cli.p99_rows,
                writes: if *op == Op::Put { check.take() } else { None },
            });
        }
    }
    rows
}

/// The get latencies of the first phase with gets, p50 and p99, as `store` rows: vaultd on
/// the vault of --keys secrets against vaultd on the one of --limit-keys.
fn store_rows(cli: &Cli, comparisons: &[Comparison]) -> Vec<StoreRow> {
    let Some(c) = comparisons
        .iter()
        .find(|c| c.vault.ops.contains_key(&Op::Get))
    else {
        return Vec::new();
    };
    let empty = Default::default();
    let (vault, limit) = (
        &c.vault.ops[&Op::Get],
        c.limit.ops.get(&Op::Get).unwrap_or(&empty),
    );
    let name = |what: &str, keys: Option<u64>| {
        format!(
            "vaultd get_{what}_{}B ({} secrets)",
            cli.value_bytes,
            keys.unwrap_or(0)
        )
    };
    [("p50", 0.5), ("p99", 0.99)]
        .into_iter()
        .map(|(what, q)| {
            let (large_us, small_us) = (vault.quantile_us(q), limit.quantile_us(q));
            StoreRow {
                benchmark: name(what, cli.keys),
                limit: name(what, cli.limit_keys),
                ops_per_sec: if large_us > 0.0 { 1e6 / large_us } else { 0.0 },
                limit_ops_per_sec: if small_us > 0.0 { 1e6 / small_us } else { 0.0 },
                median_us: (what == "p50").then_some(large_us),
                p99_ms: (what == "p99").then_some(large_us / 1e3),
                target: Some(SCALE_TARGET),
                group: cli.group.clone(),
            }
        })
        .collect()
}

/// `get 12000/20000 = 0.600`, for the progress lines.
fn round_summary(limit: &PhaseResult, vault: &PhaseResult) -> String {
    let parts: Vec<String> = vault
        .ops
        .keys()
        .map(|op| {
            let (v, l) = (vault.ops_per_sec(*op), limit.ops_per_sec(*op));
            format!("{} {v:.0}/{l:.0} = {:.3}", op.name(), ratio(v, l))
        })
        .collect();
    parts.join(", ")
}

fn ratio(vault: f64, limit: f64) -> f64 {
    if limit > 0.0 { vault / limit } else { 0.0 }
}

fn quantiles(s: &load::OpStats) -> String {
    format!(
        "{:.2} / {:.2} / {:.2}",
        s.quantile_us(0.5) / 1000.0,
        s.quantile_us(0.99) / 1000.0,
        s.quantile_us(0.999) / 1000.0
    )
}
