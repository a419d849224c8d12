//! The results as a Markdown table (`results.md`, also printed) and as JSON (`results.json`).

use std::fmt::Write as _;

use super::{Results, Row, Verdict};

/// The Markdown page: the table, then what did not pass.
pub fn markdown(results: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Benchmark results ({} run)\n\n\
         Ratio = ops/s of the benchmark / ops/s of its limit, measured in the same run \
         (criterion medians; vault-load calls per second over its window). Targets where the \
         issues set them. p99: vault-load latencies (criterion keeps per-sample means, not \
         per-operation times). Criterion's HTML reports: `{}`.\n",
        results.mode, results.criterion_report
    );
    out.push_str(
        "| group | benchmark | ops/s | median | p99 | limit | limit ops/s | ratio | target | result |\n\
         | --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |\n",
    );
    for row in &results.rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.group,
            row.benchmark,
            opt(row.ops_per_sec, ops),
            opt(row.median_us, duration_us),
            opt(row.p99_ms, |ms| duration_us(ms * 1e3)),
            row.limit.as_deref().unwrap_or("-"),
            opt(row.limit_ops_per_sec, ops),
            opt(row.ratio, |r| format!("{r:.3}")),
            opt(row.target, |t| format!(">= {t}")),
            row.result.as_str(),
        );
    }
    let failures = results.failures();
    if !failures.is_empty() {
        let _ = writeln!(out, "\nNot passing:\n");
        for row in failures {
            let _ = writeln!(out, "- {}", failure(row));
        }
    }
    out
}

/// One line saying why `row` fails `--check`.
pub fn failure(row: &Row) -> String {
    match (row.result, row.ratio, row.target) {
        (Verdict::Fail, Some(ratio), Some(target)) => format!(
            "{}/{}: ratio {ratio:.3} to {} is below its target {target}",
            row.group,
            row.benchmark,
            row.limit.as_deref().unwrap_or("its limit")
        ),
        _ => format!(
            "{}/{}: not measured by this run (its group skipped or failed)",
            row.group, row.benchmark
        ),
    }
}

fn opt(value: Option<f64>, show: impl Fn(f64) -> String) -> String {
    value.map_or_else(|| "n/a".into(), show)
}

/// `1.23 M`, `45.6 k`, `16.2`.
pub fn ops(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.1}")
    }
}

/// `512 ns`, `16.4 µs`, `162.0 ms`.
fn duration_us(us: f64) -> String {
    if us >= 1e3 {
        format!("{:.1} ms", us / 1e3)
    } else if us >= 1.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.0} ns", us * 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_each_row_and_names_what_fails() {
        let row = Row {
            group: "pkcs11".into(),
            benchmark: "direct_seal_64B".into(),
            ops_per_sec: Some(40_000.0),
            median_us: Some(25.0),
            p99_ms: None,
            limit: Some("limit_encrypt_32B".into()),
            limit_ops_per_sec: Some(50_000.0),
            ratio: Some(0.8),
            target: Some(0.85),
            result: Verdict::Fail,
        };
        let results = Results {
            mode: "quick".into(),
            criterion_report: "target/criterion/report/index.html".into(),
            rows: vec![row],
        };
        let md = markdown(&results);
        assert!(md.contains(
            "| pkcs11 | direct_seal_64B | 40.0 k | 25.0 µs | n/a | limit_encrypt_32B | 50.0 k | 0.800 | >= 0.85 | FAIL |"
        ));
        assert!(md.contains(
            "- pkcs11/direct_seal_64B: ratio 0.800 to limit_encrypt_32B is below its target 0.85"
        ));
    }
}
