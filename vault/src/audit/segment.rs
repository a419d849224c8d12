//! Segments of the audit log: the current one at the log's path (`audit.jsonl`), the closed
//! ones beside it as `audit.jsonl.000001`, `audit.jsonl.000002`... numbered in the order they
//! were written (the number is the segment's own and never changes), and the record that
//! opens every segment after the first.

use std::ffi::OsString;
use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::record::{AuditRecord, ZERO_MAC};
use super::{AuditEvent, Decision};
use crate::Error;
use crate::config::parent_dir;

/// The `op` of the record that opens a segment; its `version` is the segment's number.
pub const SEGMENT_OP: &str = "audit-segment";

/// Digits of a closed segment's number in its file name (more once it passes 999999).
const NUMBER_DIGITS: usize = 6;

/// `<log>.<number>`, zero-padded to six digits: where closed segment `number` is kept.
pub fn segment_path(log: &Path, number: u64) -> PathBuf {
    let mut name = OsString::from(log.as_os_str());
    name.push(format!(".{number:0NUMBER_DIGITS$}"));
    PathBuf::from(name)
}

/// `<log>.next`: the next segment while a rotation prepares it.
pub(crate) fn next_path(log: &Path) -> PathBuf {
    let mut name = OsString::from(log.as_os_str());
    name.push(".next");
    PathBuf::from(name)
}

/// The file name of `path`, for messages.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The closed segments of `log` found beside it, by number, oldest first.
pub(crate) fn closed_segments(log: &Path) -> Result<Vec<(u64, PathBuf)>, Error> {
    let dir = parent_dir(log);
    let Some(base) = log.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{base}.");
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("listing {}", dir.display()))(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(Error::io(format!("listing {}", dir.display())))?;
        let name = entry.file_name();
        let Some(digits) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        if digits.len() < NUMBER_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(number) = digits.parse::<u64>() {
            found.push((number, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// The number of the segment whose first record is `first`: 1 for the log's first record,
/// the `version` of a segment's opening record otherwise; `None` if it is neither (records
/// before it were cut off).
pub(crate) fn number_of(first: &AuditRecord) -> Option<u64> {
    if first.seq == 1 && first.prev == ZERO_MAC {
        return Some(1);
    }
    (first.op == SEGMENT_OP)
        .then_some(first.version)
        .flatten()
        .filter(|n| *n >= 2)
}

/// The record that opens segment `number`, after closed segment `number - 1` (now at
/// `closed`) ended at `last_seq` with `last_mac`.
pub(crate) fn opening_event(
    number: u64,
    closed: &Path,
    last_seq: u64,
    last_mac: &str,
    why: &str,
) -> AuditEvent {
    AuditEvent {
        op: SEGMENT_OP.into(),
        version: Some(number),
        reason: Some(format!(
            "segment {number} begins; segment {} ({}) ended at seq {last_seq} with mac {last_mac}; {why}",
            number - 1,
            file_name(closed)
        )),
        ..AuditEvent::new(Decision::Allow, "OK")
    }
}

/// The record written in place of a segment's opening one when a rotation failed before
/// the new segment took over: the log goes on in the same segment.
pub(crate) fn failed_rotation_event(error: &Error) -> AuditEvent {
    AuditEvent {
        op: SEGMENT_OP.into(),
        reason: Some(format!(
            "rotating the audit log failed ({error}); the log goes on in the same segment"
        )),
        ..AuditEvent::new(Decision::Deny, "INTERNAL")
    }
}

/// Device and inode of an open file.
pub(crate) fn identity(file: &File, path: &Path) -> Result<(u64, u64), Error> {
    let meta = file
        .metadata()
        .map_err(Error::io(format!("reading {}", path.display())))?;
    Ok((meta.dev(), meta.ino()))
}

/// Device and inode of the file at `path`, if it exists.
pub(crate) fn identity_at(path: &Path) -> Result<Option<(u64, u64)>, Error> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(Some((meta.dev(), meta.ino()))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("reading {}", path.display()))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_segments_are_found_by_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("audit.jsonl");
        for name in [
            "audit.jsonl",
            "audit.jsonl.head",
            "audit.jsonl.next",
            "audit.jsonl.000002",
            "audit.jsonl.000010",
            "audit.jsonl.1000000",
            "audit.jsonl.12",
            "audit.jsonl.00001x",
            "other.jsonl.000001",
        ] {
            std::fs::write(dir.path().join(name), b"").expect("write");
        }
        let numbers: Vec<u64> = closed_segments(&log)
            .expect("list")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(numbers, vec![2, 10, 1_000_000]);
        assert_eq!(segment_path(&log, 3), dir.path().join("audit.jsonl.000003"));
    }
}
