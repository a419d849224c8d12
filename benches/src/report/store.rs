//! What the `store` benchmark (`benches/benches/store.rs`) writes: the SQLite store at
//! scale, each measurement on a large vault beside the same measurement on a small vault
//! made in the same run, and the targets: KV get p50 and p99 with 1,000,000 secrets within
//! 1.5x of the same with 1,000 (ratio >= 1/1.5), a full rewrap of 1,000,000 secrets within
//! 1.5x of the rate at 10,000 and at 100,000 secrets/s or more. `vault-load --store-json`
//! (`scripts/load-store.sh`) writes the same get rows for vaultd on a vault of 1,000,000
//! secrets against vaultd on one of 1,000 (`vaultd get_p50_64B (1000000 secrets)`), and, in
//! the `postgres` group ([`StoreRow::group`]), the same for vaultd on PostgreSQL
//! (`scripts/load-postgres.sh`).

use serde::{Deserialize, Serialize};

use super::{Row, Verdict};

/// The group name of the store rows.
pub const STORE_GROUP: &str = "store";
/// Large over small, for the get latencies and the rewrap rate: at most 1.5x slower
/// (1/1.5, rounded up to three places for the table).
pub const SCALE_TARGET: f64 = 0.667;
/// The rewrap rate every vault size must reach, secrets per second.
pub const REWRAP_FLOOR: f64 = 100_000.0;

/// One measurement and its limit. Latencies are given as operations per second (1 / the
/// latency), so that the ratio is, as everywhere, measured ops/s over limit ops/s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreRow {
    /// `get_p99_64B (1000000 secrets)`, `rewrap (1000000 secrets)`.
    pub benchmark: String,
    /// The limit's name.
    pub limit: String,
    /// Operations (or secrets rewrapped) per second.
    pub ops_per_sec: f64,
    /// The limit's.
    pub limit_ops_per_sec: f64,
    /// The median latency, µs (get rows).
    pub median_us: Option<f64>,
    /// The 99th percentile latency, ms (get rows).
    pub p99_ms: Option<f64>,
    /// The lowest ratio accepted.
    pub target: Option<f64>,
    /// The results table's group, else [`STORE_GROUP`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl StoreRow {
    /// The row of the results table.
    pub fn to_row(&self) -> Row {
        let ratio =
            (self.limit_ops_per_sec > 0.0).then(|| self.ops_per_sec / self.limit_ops_per_sec);
        Row {
            group: self.group.clone().unwrap_or_else(|| STORE_GROUP.into()),
            benchmark: self.benchmark.clone(),
            ops_per_sec: Some(self.ops_per_sec),
            median_us: self.median_us,
            p99_ms: self.p99_ms,
            limit: Some(self.limit.clone()),
            limit_ops_per_sec: Some(self.limit_ops_per_sec),
            ratio,
            target: self.target,
            result: Verdict::of(ratio, self.target),
        }
    }
}

/// The row of a store run that did not finish (no file): not measured.
pub fn not_measured(benchmark: &str) -> Row {
    Row::not_measured(STORE_GROUP, benchmark)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latency_row_divides_the_small_vaults_time_by_the_large_ones() {
        // 10 µs at 1k, 14 µs at 1M: 1.4x slower passes; 16 µs (1.6x) fails.
        let row = |large_us: f64| StoreRow {
            benchmark: "get_p50_64B (1000000 secrets)".into(),
            limit: "get_p50_64B (1000 secrets)".into(),
            ops_per_sec: 1e6 / large_us,
            limit_ops_per_sec: 1e6 / 10.0,
            median_us: Some(large_us),
            p99_ms: None,
            target: Some(SCALE_TARGET),
            group: None,
        };
        let pass = row(14.0).to_row();
        assert_eq!(pass.result, Verdict::Pass);
        assert!((pass.ratio.unwrap() - 10.0 / 14.0).abs() < 1e-9);
        assert_eq!(row(16.0).to_row().result, Verdict::Fail);
        assert_eq!(not_measured("store").result, Verdict::NotMeasured);
    }
}
