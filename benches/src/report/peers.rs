//! What `scripts/peers.sh` writes: vaultctl beside the tool a pipeline would otherwise call
//! (whole processes, medians of alternating runs), vaultctl's start-up time, and the sizes of
//! the installed binaries.

use serde::{Deserialize, Serialize};

use super::{Row, Verdict};

/// The group name of the peers rows.
pub const PEERS_GROUP: &str = "peers";

/// One row of `peers.json`: a timed command (against a peer command, or alone) or a file size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerRow {
    /// What was measured (`pkcs11 direct get`, `vaultctl --version start-up`, `vaultd dist
    /// binary`).
    pub benchmark: String,
    /// The median wall time of one process, ms.
    #[serde(default)]
    pub median_ms: Option<f64>,
    /// The peer command it ran beside (`pkcs11-tool --decrypt`).
    #[serde(default)]
    pub limit: Option<String>,
    /// The peer's median wall time, ms.
    #[serde(default)]
    pub limit_median_ms: Option<f64>,
    /// The lowest accepted peer time / measured time.
    #[serde(default)]
    pub target: Option<f64>,
    /// A file size, bytes.
    #[serde(default)]
    pub bytes: Option<u64>,
}

impl PeerRow {
    /// The row of the results table: ops/s is one over the median time, so the ratio is the
    /// peer's time over vaultctl's (>= 1.0: vaultctl is at least as fast).
    pub fn to_row(&self) -> Row {
        let per_sec = |ms: f64| (ms > 0.0).then(|| 1e3 / ms);
        let ops = self.median_ms.and_then(per_sec);
        let limit_ops = self.limit_median_ms.and_then(per_sec);
        let ratio = ops.zip(limit_ops).map(|(o, l)| o / l);
        let benchmark = match self.bytes {
            Some(bytes) => format!("{}: {bytes} bytes", self.benchmark),
            None => self.benchmark.clone(),
        };
        let result = if self.bytes.is_some() {
            Verdict::Reported
        } else {
            Verdict::of(ratio.or(ops), self.target)
        };
        Row {
            group: PEERS_GROUP.into(),
            benchmark,
            ops_per_sec: ops,
            median_us: self.median_ms.map(|ms| ms * 1e3),
            p99_ms: None,
            limit: self.limit.clone(),
            limit_ops_per_sec: limit_ops,
            ratio,
            target: self.target,
            result,
        }
    }
}

/// A missing `peers.json` (peers.sh did not finish): one row that was not measured.
pub fn not_measured() -> Row {
    Row::not_measured(PEERS_GROUP, "peers")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed(ms: f64, limit_ms: f64) -> PeerRow {
        PeerRow {
            benchmark: "pkcs11 direct get".into(),
            median_ms: Some(ms),
            limit: Some("pkcs11-tool --decrypt".into()),
            limit_median_ms: Some(limit_ms),
            target: Some(1.0),
            bytes: None,
        }
    }

    #[test]
    fn a_faster_vaultctl_passes_and_a_slower_one_fails() {
        let row = timed(8.0, 10.0).to_row();
        assert_eq!(row.ratio, Some(1.25));
        assert_eq!(row.result, Verdict::Pass);
        assert_eq!(row.median_us, Some(8000.0));
        assert_eq!(row.limit.as_deref(), Some("pkcs11-tool --decrypt"));
        let row = timed(11.5, 10.0).to_row();
        assert!(row.ratio.is_some_and(|r| (r - 10.0 / 11.5).abs() < 1e-9));
        assert_eq!(row.result, Verdict::Fail);
    }

    #[test]
    fn start_up_and_sizes_are_reported() {
        let startup: PeerRow = serde_json::from_str(
            r#"{"benchmark": "vaultctl --version start-up", "median_ms": 2.0, "runs": 51}"#,
        )
        .expect("a start-up row");
        let row = startup.to_row();
        assert_eq!(row.result, Verdict::Reported);
        assert_eq!(row.ops_per_sec, Some(500.0));
        assert_eq!(row.ratio, None);
        let size: PeerRow =
            serde_json::from_str(r#"{"benchmark": "vaultd dist binary", "bytes": 123456}"#)
                .expect("a size row");
        let row = size.to_row();
        assert_eq!(row.result, Verdict::Reported);
        assert_eq!(row.benchmark, "vaultd dist binary: 123456 bytes");
        assert_eq!(row.ops_per_sec, None);
    }

    #[test]
    fn a_missing_file_is_not_measured() {
        assert_eq!(not_measured().result, Verdict::NotMeasured);
    }
}
