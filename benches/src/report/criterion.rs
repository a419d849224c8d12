//! Criterion's estimates (`target/criterion/<group>/<benchmark>/new/estimates.json`) turned
//! into rows. An estimate older than the run's start was not measured by it (its group
//! skipped for want of an emulator) and is not reported as if it were.

use std::path::Path;
use std::time::SystemTime;

use super::pairs::pairs;
use super::{Row, Verdict};

/// The median time of one iteration of `group/benchmark`, in ns, if measured since `since`.
pub fn median_ns(
    dir: &Path,
    group: &str,
    benchmark: &str,
    since: SystemTime,
) -> Result<Option<f64>, String> {
    let path = dir
        .join(group)
        .join(benchmark)
        .join("new")
        .join("estimates.json");
    let modified = match std::fs::metadata(&path).and_then(|m| m.modified()) {
        Ok(modified) => modified,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if modified < since {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let estimates: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    estimates["median"]["point_estimate"]
        .as_f64()
        .filter(|ns| *ns > 0.0)
        .map(Some)
        .ok_or_else(|| format!("{}: no positive median estimate", path.display()))
}

/// The rows of criterion group `group`.
pub fn rows(dir: &Path, group: &str, since: SystemTime) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for pair in pairs(group) {
        let measured = median_ns(dir, group, &pair.measured, since)?;
        let limit = match &pair.limit {
            Some(name) => median_ns(dir, group, name, since)?,
            None => None,
        };
        let ratio = match (measured, limit) {
            (Some(m), Some(l)) => Some(l / m),
            _ => None,
        };
        let result = match (measured, &pair.limit, limit) {
            (None, ..) | (Some(_), Some(_), None) => Verdict::NotMeasured,
            // A time with no limit (unlock, start-up): reported.
            (Some(_), None, _) => Verdict::Reported,
            (Some(_), Some(_), Some(_)) => Verdict::of(ratio, pair.target),
        };
        rows.push(Row {
            group: group.into(),
            benchmark: pair.measured,
            ops_per_sec: measured.map(|ns| 1e9 / ns),
            median_us: measured.map(|ns| ns / 1e3),
            p99_ms: None,
            limit: pair.limit,
            limit_ops_per_sec: limit.map(|ns| 1e9 / ns),
            ratio,
            target: pair.target,
            result,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate(dir: &Path, group: &str, name: &str, median: f64) {
        let at = dir.join(group).join(name).join("new");
        std::fs::create_dir_all(&at).unwrap();
        let json = format!(r#"{{"median":{{"point_estimate":{median}}}}}"#);
        std::fs::write(at.join("estimates.json"), json).unwrap();
    }

    #[test]
    fn rows_divide_the_limit_by_the_measurement_and_skip_stale_estimates() {
        let dir = tempfile::tempdir().unwrap();
        estimate(dir.path(), "yubikey", "tiered_seal_64B", 1000.0);
        estimate(dir.path(), "yubikey", "software_seal_64B", 700.0);
        estimate(dir.path(), "yubikey", "tiered_open_64B", 500.0);
        estimate(dir.path(), "yubikey", "software_open_64B", 450.0);
        let rows = rows(dir.path(), "yubikey", SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(rows[0].ratio, Some(0.7));
        assert_eq!(rows[0].result, Verdict::Fail);
        assert_eq!(rows[0].ops_per_sec, Some(1e6));
        assert_eq!(rows[1].result, Verdict::Pass);
        // unlock_open_vault was not measured.
        assert_eq!(rows[2].result, Verdict::NotMeasured);
        estimate(dir.path(), "yubikey", "unlock_open_vault", 5e6);
        let rows = super::rows(dir.path(), "yubikey", SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(rows[2].result, Verdict::Reported);
        assert_eq!(rows[2].ops_per_sec, Some(200.0));

        let later = SystemTime::now() + std::time::Duration::from_secs(60);
        let stale = super::rows(dir.path(), "yubikey", later).unwrap();
        assert!(stale.iter().all(|r| r.result == Verdict::NotMeasured));
    }
}
