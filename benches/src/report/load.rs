//! What `vault-load --json` writes: one row per operation of each phase, vaultd beside the
//! tonic mTLS echo limit measured in the same run.

use serde::{Deserialize, Serialize};

use super::{LOAD_GROUP, Row, Verdict};

/// One operation of one load phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadRow {
    /// The phase (`get only`, `seal only`, `mix seal=1,open=1`).
    pub phase: String,
    /// `get`, `put`, `seal` or `open`.
    pub op: String,
    /// Value and plaintext size in bytes.
    pub value_bytes: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// vaultd's successful calls per second.
    pub vaultd_ops_per_sec: f64,
    /// The echo's.
    pub limit_ops_per_sec: f64,
    /// vaultd's latency quantiles, ms.
    pub vaultd_p50_ms: f64,
    /// 99th percentile.
    pub vaultd_p99_ms: f64,
    /// The echo's 99th percentile, ms.
    pub limit_p99_ms: f64,
    /// The lowest vaultd/limit ratio accepted, where the daemon issue set one.
    pub target: Option<f64>,
    /// What the measured daemon is, when it is not the only one (`tpm tiered`).
    #[serde(default)]
    pub label: Option<String>,
    /// What the limit is when it is another daemon (`software tiered`); else the echo.
    #[serde(default)]
    pub limit_label: Option<String>,
}

impl LoadRow {
    /// The row of the results table.
    pub fn to_row(&self) -> Row {
        let ratio = (self.limit_ops_per_sec > 0.0)
            .then(|| self.vaultd_ops_per_sec / self.limit_ops_per_sec);
        let size = size_label(self.value_bytes);
        Row {
            group: LOAD_GROUP.into(),
            benchmark: format!(
                "{}{}_{size} ({}, {} clients)",
                self.label
                    .as_ref()
                    .map_or(String::new(), |l| format!("{l} ")),
                self.op,
                self.phase,
                self.clients
            ),
            ops_per_sec: Some(self.vaultd_ops_per_sec),
            median_us: Some(self.vaultd_p50_ms * 1e3),
            p99_ms: Some(self.vaultd_p99_ms),
            limit: Some(format!(
                "{}_{}_{size}",
                self.limit_label
                    .as_deref()
                    .unwrap_or("echo")
                    .replace(' ', "_"),
                self.op
            )),
            limit_ops_per_sec: Some(self.limit_ops_per_sec),
            ratio,
            target: self.target,
            result: Verdict::of(ratio, self.target),
        }
    }
}

/// `64B`, `1KiB`, `1MiB`, or bytes when not a whole unit.
pub fn size_label(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{}KiB", b >> 10),
        b => format!("{b}B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_row_compares_vaultd_with_the_echo() {
        let row = LoadRow {
            phase: "seal only".into(),
            op: "seal".into(),
            value_bytes: 1 << 20,
            clients: 4,
            vaultd_ops_per_sec: 300.0,
            limit_ops_per_sec: 600.0,
            vaultd_p50_ms: 10.0,
            vaultd_p99_ms: 20.0,
            limit_p99_ms: 5.0,
            target: Some(0.5),
            label: None,
            limit_label: None,
        }
        .to_row();
        assert_eq!(row.benchmark, "seal_1MiB (seal only, 4 clients)");
        assert_eq!(row.ratio, Some(0.5));
        assert_eq!(row.result, Verdict::Pass);
        assert_eq!(row.median_us, Some(10_000.0));
        assert_eq!(size_label(64), "64B");
        assert_eq!(size_label(1024), "1KiB");
        assert_eq!(size_label(1000), "1000B");
    }

    #[test]
    fn a_row_against_another_daemon_names_both() {
        let row = LoadRow {
            phase: "mix seal=1,open=1".into(),
            op: "open".into(),
            value_bytes: 64,
            clients: 8,
            vaultd_ops_per_sec: 950.0,
            limit_ops_per_sec: 1000.0,
            vaultd_p50_ms: 1.0,
            vaultd_p99_ms: 2.0,
            limit_p99_ms: 2.0,
            target: Some(0.9),
            label: Some("tpm tiered".into()),
            limit_label: Some("software tiered".into()),
        }
        .to_row();
        assert_eq!(
            row.benchmark,
            "tpm tiered open_64B (mix seal=1,open=1, 8 clients)"
        );
        assert_eq!(row.limit.as_deref(), Some("software_tiered_open_64B"));
        assert_eq!(row.result, Verdict::Pass);
    }
}
