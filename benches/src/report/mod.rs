//! The results of one `scripts/bench.sh` run: each benchmark beside its limit, the ratio and
//! its target ([`Row`]), read from criterion's estimates ([`criterion`]), from
//! `vault-load --json` ([`LoadRow`]) and from `scripts/peers.sh` ([`PeerRow`]), written as
//! `results.md`, `results.json` ([`table`]) and a chart (`results.svg`, [`chart`]).

pub mod chart;
pub mod criterion;
mod load;
pub mod pairs;
mod peers;
pub mod store;
pub mod table;

use serde::{Deserialize, Serialize};

pub use load::{LoadRow, WriteCheck};
pub use peers::{PEERS_GROUP, PeerRow, not_measured as peers_not_measured};

/// The criterion groups `scripts/bench.sh` runs, in its order, and the load generator's.
pub const CRITERION_GROUPS: [&str; 7] = [
    "envelope", "keyring", "software", "pkcs11", "yubikey", "keystore", "tpm",
];
/// The group name of `vault-load`'s rows.
pub const LOAD_GROUP: &str = "vault-load";

/// One measurement and what it is compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The criterion group, or `vault-load`.
    pub group: String,
    /// The benchmark (criterion's name, or the operation and size of a load phase).
    pub benchmark: String,
    /// Operations per second (criterion: 1 / median time; load: calls in the window).
    pub ops_per_sec: Option<f64>,
    /// Criterion's median time of one operation, or a load phase's median latency, in µs.
    pub median_us: Option<f64>,
    /// The 99th percentile latency in ms: load phases only (criterion records per-sample
    /// means, not per-operation times).
    pub p99_ms: Option<f64>,
    /// The baseline measured in the same run, if any.
    pub limit: Option<String>,
    /// The baseline's operations per second.
    pub limit_ops_per_sec: Option<f64>,
    /// `ops_per_sec / limit_ops_per_sec` (= limit time / measured time).
    pub ratio: Option<f64>,
    /// The lowest ratio accepted, where an issue set one.
    pub target: Option<f64>,
    /// The verdict.
    pub result: Verdict,
}

impl Row {
    /// The row of a run that wrote nothing (it failed or was cut short): not measured.
    pub fn not_measured(group: &str, benchmark: &str) -> Row {
        Row {
            group: group.into(),
            benchmark: benchmark.into(),
            ops_per_sec: None,
            median_us: None,
            p99_ms: None,
            limit: None,
            limit_ops_per_sec: None,
            ratio: None,
            target: None,
            result: Verdict::NotMeasured,
        }
    }
}

/// What a row says about its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The ratio reaches its target.
    Pass,
    /// The ratio is below its target.
    Fail,
    /// Measured, with no target.
    Reported,
    /// Not measured by this run (its group skipped for want of its emulator, or a filter).
    NotMeasured,
}

impl Verdict {
    /// For the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::Reported => "reported",
            Verdict::NotMeasured => "not measured",
        }
    }

    /// The verdict of `ratio` against `target`.
    pub fn of(ratio: Option<f64>, target: Option<f64>) -> Verdict {
        match (ratio, target) {
            (Some(r), Some(t)) if r >= t => Verdict::Pass,
            (Some(_), Some(_)) => Verdict::Fail,
            (Some(_), None) => Verdict::Reported,
            (None, _) => Verdict::NotMeasured,
        }
    }
}

/// A whole run, as `results.json` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// `quick` or `full`.
    pub mode: String,
    /// Where criterion's HTML reports are.
    pub criterion_report: String,
    /// Every row, in run order.
    pub rows: Vec<Row>,
}

impl Results {
    /// The rows `--check` fails on: below target, or not measured.
    pub fn failures(&self) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|r| matches!(r.result, Verdict::Fail | Verdict::NotMeasured))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_target() {
        assert_eq!(Verdict::of(Some(0.85), Some(0.85)), Verdict::Pass);
        assert_eq!(Verdict::of(Some(0.849), Some(0.85)), Verdict::Fail);
        assert_eq!(Verdict::of(Some(0.1), None), Verdict::Reported);
        assert_eq!(Verdict::of(None, Some(0.8)), Verdict::NotMeasured);
    }
}
