//! What `vault-load --json` writes: one row per operation of each phase, vaultd beside the
//! tonic mTLS echo limit (or another daemon) measured in the same run; with `--p99-rows` a
//! second row comparing the p99 latencies, and on the put row the check, after the load,
//! that every acknowledged put reads back ([`WriteCheck`]).

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
    /// The results table's group (`postgres`), else `vault-load`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Also a row of the p99 latencies, limit's over vaultd's (against another daemon, where
    /// the latency is as much the point as the rate).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub p99_row: bool,
    /// The check of the acknowledged puts, on the row of the first phase with puts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes: Option<WriteCheck>,
}

/// What the check after the load found: every key the clients put to was read back from
/// every address of the daemon, and had to hold the last acknowledged put's version and
/// value, with as many versions since the load began as puts were acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteCheck {
    /// Keys written.
    pub keys: u64,
    /// Keys that held their last acknowledged put on every address.
    pub keys_read_back: u64,
    /// Puts acknowledged (warm-up included).
    pub acknowledged: u64,
    /// Addresses (replicas) each key was read from.
    pub addresses: usize,
}

impl LoadRow {
    /// The rows of the results table: [`to_row`](Self::to_row), then the p99 row and the
    /// write check's, where asked for.
    pub fn to_rows(&self) -> Vec<Row> {
        let mut rows = vec![self.to_row()];
        if self.p99_row {
            rows.push(self.p99_to_row());
        }
        if let Some(check) = &self.writes {
            rows.push(self.check_to_row(check));
        }
        rows
    }

    fn group(&self) -> String {
        self.group.clone().unwrap_or_else(|| LOAD_GROUP.into())
    }

    fn label(&self) -> String {
        self.label
            .as_ref()
            .map_or(String::new(), |l| format!("{l} "))
    }

    fn limit_name(&self) -> String {
        format!(
            "{}_{}_{}",
            self.limit_label
                .as_deref()
                .unwrap_or("echo")
                .replace(' ', "_"),
            self.op,
            size_label(self.value_bytes)
        )
    }

    /// The p99 latencies as operations per second (one over the latency, as the store rows
    /// give theirs), so that the ratio is the limit's p99 over vaultd's.
    fn p99_to_row(&self) -> Row {
        let per_sec = |ms: f64| (ms > 0.0).then(|| 1e3 / ms);
        let (ops, limit_ops) = (per_sec(self.vaultd_p99_ms), per_sec(self.limit_p99_ms));
        let ratio = ops.zip(limit_ops).map(|(o, l)| o / l);
        Row {
            group: self.group(),
            benchmark: format!(
                "{}{}_{} p99 ({}, {} clients)",
                self.label(),
                self.op,
                size_label(self.value_bytes),
                self.phase,
                self.clients
            ),
            ops_per_sec: ops,
            median_us: None,
            p99_ms: Some(self.vaultd_p99_ms),
            limit: Some(format!("{} p99", self.limit_name())),
            limit_ops_per_sec: limit_ops,
            ratio,
            target: None,
            result: Verdict::of(ratio, None),
        }
    }

    /// The write check: the share of the keys written that read back their last
    /// acknowledged put from every address, which must be all of them.
    fn check_to_row(&self, check: &WriteCheck) -> Row {
        let ratio = (check.keys > 0).then(|| check.keys_read_back as f64 / check.keys as f64);
        Row {
            group: self.group(),
            benchmark: format!(
                "{}acknowledged puts read back ({} puts on {} keys, from each of {} address(es))",
                self.label(),
                check.acknowledged,
                check.keys,
                check.addresses
            ),
            ops_per_sec: None,
            median_us: None,
            p99_ms: None,
            limit: Some("every acknowledged put".into()),
            limit_ops_per_sec: None,
            ratio,
            target: Some(1.0),
            result: Verdict::of(ratio, Some(1.0)),
        }
    }

    /// The row of the results table.
    pub fn to_row(&self) -> Row {
        let ratio = (self.limit_ops_per_sec > 0.0)
            .then(|| self.vaultd_ops_per_sec / self.limit_ops_per_sec);
        let size = size_label(self.value_bytes);
        Row {
            group: self.group(),
            benchmark: format!(
                "{}{}_{size} ({}, {} clients)",
                self.label(),
                self.op,
                self.phase,
                self.clients
            ),
            ops_per_sec: Some(self.vaultd_ops_per_sec),
            median_us: Some(self.vaultd_p50_ms * 1e3),
            p99_ms: Some(self.vaultd_p99_ms),
            limit: Some(self.limit_name()),
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
            group: None,
            p99_row: false,
            writes: None,
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
            group: None,
            p99_row: false,
            writes: None,
        }
        .to_row();
        assert_eq!(
            row.benchmark,
            "tpm tiered open_64B (mix seal=1,open=1, 8 clients)"
        );
        assert_eq!(row.limit.as_deref(), Some("software_tiered_open_64B"));
        assert_eq!(row.result, Verdict::Pass);
    }

    #[test]
    fn a_daemon_against_another_gets_p99_and_write_check_rows() {
        let load = LoadRow {
            phase: "put only".into(),
            op: "put".into(),
            value_bytes: 64,
            clients: 64,
            vaultd_ops_per_sec: 500.0,
            limit_ops_per_sec: 1000.0,
            vaultd_p50_ms: 50.0,
            vaultd_p99_ms: 200.0,
            limit_p99_ms: 100.0,
            target: None,
            label: Some("postgres 3 replicas".into()),
            limit_label: Some("sqlite direct".into()),
            group: Some("postgres".into()),
            p99_row: true,
            writes: Some(WriteCheck {
                keys: 64,
                keys_read_back: 63,
                acknowledged: 5000,
                addresses: 3,
            }),
        };
        let rows = load.to_rows();
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| r.group == "postgres"));
        assert_eq!(rows[0].ratio, Some(0.5));
        assert_eq!(rows[0].result, Verdict::Reported);
        assert_eq!(
            rows[1].benchmark,
            "postgres 3 replicas put_64B p99 (put only, 64 clients)"
        );
        assert_eq!(rows[1].limit.as_deref(), Some("sqlite_direct_put_64B p99"));
        // Twice the limit's p99: half its "rate".
        assert_eq!(rows[1].ratio, Some(0.5));
        assert_eq!(rows[1].p99_ms, Some(200.0));
        // One key of 64 did not read back: the check fails.
        assert_eq!(rows[2].result, Verdict::Fail);
        assert_eq!(
            rows[2].benchmark,
            "postgres 3 replicas acknowledged puts read back (5000 puts on 64 keys, from each of 3 address(es))"
        );
        // Written before these fields: still read, as one row of the vault-load group.
        let old: LoadRow = serde_json::from_str(
            r#"{"phase":"get only","op":"get","value_bytes":64,"clients":64,
                "vaultd_ops_per_sec":1.0,"limit_ops_per_sec":2.0,"vaultd_p50_ms":1.0,
                "vaultd_p99_ms":2.0,"limit_p99_ms":2.0,"target":0.7}"#,
        )
        .expect("an old row");
        let rows = old.to_rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].group, LOAD_GROUP);
    }
}
