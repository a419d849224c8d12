//! The `audit_line` fuzz target's check, shared by the target (fuzz/fuzz_targets/audit_line.rs)
//! and the corpus replay (tests/fuzz_corpus.rs).
//!
//! The input is an audit log (`audit.jsonl`) keyed with [`FUZZ_KEY`]. Each line goes through
//! the pure line reader (`AuditRecord::parse_line` and `check_line`), and the whole file
//! through the reader `vaultctl audit verify` and `audit tail` use (`vault::audit::verify` and
//! `tail`), with a head checkpoint naming the last line's record; the two must agree.

use std::path::Path;

use vault::Error;
use vault::audit::{AuditKey, AuditRecord, NoAnchor, tail, verify};

/// The audit key of the corpus's logs.
pub const FUZZ_KEY: [u8; 32] = [0x5a; 32];

/// `prev` of the first record.
const ZERO_MAC: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn key() -> AuditKey {
    AuditKey::from_slice(&FUZZ_KEY).expect("audit key")
}

/// The head file of a record, as the module docs describe it.
fn head_of(record: &AuditRecord) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &FUZZ_KEY);
    let message = format!("vault audit head v2\n{}\n{}", record.seq, record.mac);
    let tag: String = ring::hmac::sign(&key, message.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{{\"seq\":{},\"mac\":\"{}\",\"tag\":\"{tag}\"}}",
        record.seq, record.mac
    )
}

/// The pure reader on one line: its record if the line is a canonical record with a
/// correct MAC, after checking that such a record re-serializes to the same line.
fn check_one_line(line: &[u8]) -> Option<AuditRecord> {
    let record = AuditRecord::parse_line(line).ok()?;
    record.check_line(line, &key()).ok()?;
    assert!(
        record.mac.len() == 64 && record.mac.bytes().all(|b| b.is_ascii_hexdigit()),
        "mac {:?}",
        record.mac
    );
    let again = AuditRecord::parse_line(line).expect("the same line parses again");
    assert_eq!(again, record);
    Some(record)
}

/// Whether the lines (each with its newline) form a chain from seq 1, by the pure reader.
fn chain_by_lines(data: &[u8]) -> Option<Vec<AuditRecord>> {
    let body = data.strip_suffix(b"\n")?;
    let mut prev = ZERO_MAC.to_owned();
    let mut records = Vec::new();
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let record = check_one_line(line)?;
        if record.seq != u64::try_from(i + 1).ok()? || record.prev != prev {
            return None;
        }
        prev.clone_from(&record.mac);
        records.push(record);
    }
    Some(records)
}

/// Writes `data` as the log in `dir` (and a head checkpoint naming its last line's record,
/// if that line is one) and checks that `verify` accepts it exactly when the pure reader
/// finds a chain, refusing otherwise with a damaged-log error, and that `tail` returns the
/// chain's records. Returns the number of records verified.
pub fn check_audit_log(dir: &Path, data: &[u8]) -> Option<u64> {
    for line in data.split(|&b| b == b'\n') {
        check_one_line(line);
    }
    let log = dir.join("audit.jsonl");
    let head = dir.join("audit.jsonl.head");
    std::fs::write(&log, data).expect("write the log");
    let last = data
        .strip_suffix(b"\n")
        .and_then(|body| body.rsplit(|&b| b == b'\n').next())
        .and_then(|line| AuditRecord::parse_line(line).ok());
    match &last {
        Some(record) => std::fs::write(&head, head_of(record)).expect("write the head"),
        None => {
            let _ = std::fs::remove_file(&head);
        }
    }
    let expected = if data.is_empty() {
        Some(Vec::new())
    } else {
        chain_by_lines(data)
    };
    let verified = match (verify(&log, &key(), &NoAnchor), expected) {
        (Ok(report), Some(records)) => {
            let n = u64::try_from(records.len()).expect("count");
            assert_eq!((report.records, report.head_seq), (n, n));
            let shown = tail(&log, records.len()).expect("tail of a verified log");
            assert_eq!(shown, records, "tail differs from the verified records");
            Some(n)
        }
        (Err(e), None) => {
            assert!(matches!(e, Error::AuditDamaged { .. }), "{e:?}");
            None
        }
        (verified, expected) => {
            panic!("verify said {verified:?} but the lines read {expected:?}")
        }
    };
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&head);
    verified
}
