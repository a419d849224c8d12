//! The audit log against someone who can write its files but does not hold the audit key:
//! what is caught (cut records with a rewritten head, edited records with a recomputed plain
//! SHA-256, a deleted log, records cut below the anchor, forged checkpoints) and what is not
//! (records cut past the last anchor, with an older head put back: the documented limit).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use vault::Error;
use vault::audit::{
    self, Anchor, AuditAnchor, AuditDefect, AuditEvent, AuditKey, AuditLog, AuditOptions,
    AuditRecord, Decision, FileSink,
};

/// The vault's metadata, in memory: where the anchor is kept.
#[derive(Debug, Default)]
struct MemoryAnchor(Mutex<Option<Anchor>>);

impl AuditAnchor for MemoryAnchor {
    fn read(&self) -> Result<Option<Anchor>, Error> {
        Ok(self.0.lock().expect("anchor").clone())
    }

    fn write(&self, anchor: &Anchor) -> Result<(), Error> {
        *self.0.lock().expect("anchor") = Some(anchor.clone());
        Ok(())
    }
}

fn key() -> AuditKey {
    AuditKey::from_slice(&[9; 32]).expect("key")
}

fn event(n: u64) -> AuditEvent {
    AuditEvent {
        principal: "svc".into(),
        op: "put".into(),
        scope: Some("global".into()),
        key: Some(format!("key-{n}")),
        ..AuditEvent::new(Decision::Allow, "OK")
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    anchor: Arc<MemoryAnchor>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        Fixture {
            _dir: dir,
            path,
            anchor: Arc::default(),
        }
    }

    fn options(&self) -> AuditOptions {
        AuditOptions::new(self.anchor.clone(), "test-vault")
    }

    fn open(&self) -> Result<AuditLog, Error> {
        AuditLog::open(&self.path, key(), self.options())
    }

    /// Appends records `from..=to`, then closes the log (which anchors the last).
    fn write(&self, from: u64, to: u64) {
        let log = self.open().expect("open");
        for n in from..=to {
            log.append(&event(n)).expect("append");
        }
    }

    fn verify(&self) -> Result<audit::VerifyReport, Error> {
        audit::verify(&self.path, &key(), self.anchor.as_ref())
    }

    fn head(&self) -> PathBuf {
        PathBuf::from(format!("{}.head", self.path.display()))
    }

    fn lines(&self) -> Vec<String> {
        fs::read_to_string(&self.path)
            .expect("read")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn write_lines(&self, lines: &[String]) {
        fs::write(&self.path, lines.join("\n") + "\n").expect("write");
    }

    /// Verify and open both refuse with `want`.
    fn assert_refused(&self, want: &AuditDefect) -> String {
        let err = self.verify().expect_err("verify must fail");
        assert!(
            matches!(&err, Error::AuditDamaged { defect, .. } if defect == want),
            "{err}"
        );
        let refused = self.open().expect_err("open must refuse");
        assert!(
            matches!(&refused, Error::AuditRefused { defect, .. } if defect == want),
            "{refused}"
        );
        err.to_string()
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn a_cut_tail_with_a_head_rewritten_without_the_key_is_caught() {
    let f = Fixture::new();
    f.write(1, 10);
    let mut lines = f.lines();
    lines.truncate(7);
    f.write_lines(&lines);
    let last = AuditRecord::parse_line(lines[6].as_bytes()).expect("record 7");

    // The head of format 1, recomputed the old, unkeyed way.
    let v1 = format!(
        r#"{{"seq":7,"hash":"{}"}}"#,
        sha256_hex(lines[6].as_bytes())
    );
    fs::write(f.head(), v1).expect("write head");
    f.assert_refused(&AuditDefect::Legacy);

    // A head of format 2 with a tag made without the key (a plain SHA-256 of what it covers).
    let tag = sha256_hex(format!("vault audit head v2\n7\n{}", last.mac).as_bytes());
    let forged = format!(r#"{{"seq":7,"mac":"{}","tag":"{tag}"}}"#, last.mac);
    fs::write(f.head(), forged).expect("write head");
    let message = f.assert_refused(&AuditDefect::HeadForged { seq: 7 });
    assert!(message.contains("without the key"), "{message}");
}

#[test]
fn an_edited_record_with_a_recomputed_sha256_is_caught() {
    let f = Fixture::new();
    f.write(1, 5);
    let mut lines = f.lines();
    let mut record = AuditRecord::parse_line(lines[2].as_bytes()).expect("record 3");
    record.principal = "mallory".into();
    let body = String::from_utf8(record.to_line()).expect("utf-8");
    let body = &body[..body.rfind(r#","mac""#).expect("mac field")];
    record.mac = sha256_hex(format!("vault audit v2\n{body}}}").as_bytes());
    lines[2] = String::from_utf8(record.to_line()).expect("utf-8");
    f.write_lines(&lines);
    f.assert_refused(&AuditDefect::MacMismatch { seq: 3 });
}

#[test]
fn a_deleted_log_and_head_are_refused_unless_a_new_log_is_asked_for() {
    let f = Fixture::new();
    f.write(1, 4);
    assert_eq!(f.verify().expect("verify").anchor_seq, Some(4));
    fs::remove_file(&f.path).expect("rm log");
    fs::remove_file(f.head()).expect("rm head");

    let err = f.open().expect_err("a deleted log is refused");
    assert!(
        matches!(err, Error::AuditMissing { anchor_seq: 4, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("--new-audit-log"), "{err}");
    assert!(!f.path.exists(), "no log is created in its place");
    let err = f.verify().expect_err("verify names it too");
    assert!(
        matches!(
            &err,
            Error::AuditDamaged {
                defect: AuditDefect::LogMissing { anchor_seq: 4 },
                ..
            }
        ),
        "{err}"
    );

    let mut options = f.options();
    options.new_log = true;
    let log = AuditLog::open(&f.path, key(), options).expect("a new log");
    log.append(&event(1)).expect("append");
    drop(log);
    let records = audit::tail(&f.path, 10).expect("tail");
    assert_eq!(records[0].op, "new-audit-log");
    assert!(
        records[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("held 4 records")),
        "{:?}",
        records[0]
    );
    // The new log is anchored at once, and verifies.
    assert_eq!(f.verify().expect("verify").anchor_seq, Some(2));

    let mut options = f.options();
    options.new_log = true;
    let err = AuditLog::open(&f.path, key(), options).expect_err("only where no log is");
    assert!(err.to_string().contains("exists"), "{err}");
}

#[test]
fn records_cut_below_the_anchor_are_caught_and_past_it_are_not() {
    let f = Fixture::new();
    let log = f.open().expect("open");
    for n in 1..=5 {
        log.append(&event(n)).expect("append");
    }
    log.checkpoint().expect("anchor at 5");
    let anchor_at_5 = f.anchor.read().expect("anchor");
    // An attacker keeps the head as it is now...
    let head_at_5 = fs::read(f.head()).expect("head");
    for n in 6..=8 {
        log.append(&event(n)).expect("append");
    }
    drop(log);
    // ...and the daemon stopped before its next anchor (a crash within the checkpoint
    // interval): the anchor still names 5.
    *f.anchor.0.lock().expect("anchor") = anchor_at_5;

    // Cutting 6..8 and putting the saved head back: nothing names 6..8 any more. This is the
    // documented limit (records past the last anchor that reached no sink).
    let mut lines = f.lines();
    let all = lines.clone();
    lines.truncate(5);
    f.write_lines(&lines);
    fs::write(f.head(), &head_at_5).expect("old head back");
    let report = f.verify().expect("undetectable past the anchor");
    assert_eq!((report.records, report.anchor_seq), (5, Some(5)));

    // Cutting below the anchor is caught, whatever head is put back.
    f.write_lines(&all[..3]);
    let message = f.assert_refused(&AuditDefect::AnchorTruncated {
        log_seq: 3,
        anchor_seq: 5,
    });
    assert!(message.contains("vault.json"), "{message}");
}

#[test]
fn a_log_replaced_by_another_keyed_log_is_caught_by_the_anchor() {
    let f = Fixture::new();
    f.write(1, 4);
    let saved = f.anchor.read().expect("anchor");
    // Another log of the same length (written with the key, e.g. an older copy).
    let other = Fixture::new();
    other.write(0, 5);
    fs::copy(&other.path, &f.path).expect("copy log");
    fs::copy(other.head(), f.head()).expect("copy head");
    *f.anchor.0.lock().expect("anchor") = saved;
    f.assert_refused(&AuditDefect::AnchorMismatch { seq: 4 });
}

#[test]
fn an_old_unkeyed_log_is_refused_as_legacy() {
    let f = Fixture::new();
    let v1 = r#"{"seq":1,"ts_ms":5,"principal":"admin","op":"unlock","scope":"admin","key":"*","decision":"allow","status":"OK","reason":null,"prev":"0000000000000000000000000000000000000000000000000000000000000000","hash":"b310e5d497ec34d730091c5b18a0336dc004de11d035067f1873d505429677c6"}"#;
    f.write_lines(&[v1.to_owned()]);
    fs::write(
        f.head(),
        r#"{"seq":1,"hash":"b310e5d497ec34d730091c5b18a0336dc004de11d035067f1873d505429677c6"}"#,
    )
    .expect("head");
    let message = f.assert_refused(&AuditDefect::Legacy);
    assert!(message.contains("format 1"), "{message}");
}

/// Writes checkpoints to a file sink while records arrive; returns the sink's file.
fn checkpointed(f: &Fixture, dir: &Path) -> PathBuf {
    let file = dir.join("checkpoints.jsonl");
    let mut options = f.options();
    options.sinks = vec![Arc::new(FileSink::open(&file).expect("sink"))];
    let log = AuditLog::open(&f.path, key(), options).expect("open");
    for n in 1..=6 {
        log.append(&event(n)).expect("append");
        if n % 3 == 0 {
            log.checkpoint().expect("checkpoint");
        }
    }
    drop(log);
    file
}

#[test]
fn signed_checkpoints_check_the_log_without_the_key() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = checkpointed(&f, dir.path());
    let public = key().checkpoint_public_key().expect("public key");
    let report = audit::verify_checkpoints(&f.path, &file, &public, None).expect("verifies");
    assert_eq!(
        (report.records, report.checked, report.newest_seq),
        (6, 3, 6)
    );
    audit::verify_checkpoints(&f.path, &file, &public, Some(&key())).expect("with the key");

    // Another public key: every checkpoint is refused.
    let other = AuditKey::from_slice(&[1; 32])
        .expect("key")
        .checkpoint_public_key()
        .expect("public key");
    let err = audit::verify_checkpoints(&f.path, &file, &other, None).expect_err("forged");
    assert!(
        matches!(
            &err,
            Error::AuditDamaged {
                defect: AuditDefect::CheckpointForged,
                ..
            }
        ),
        "{err}"
    );

    // A record before a checkpoint edited (its MAC kept: without the key nobody can check
    // it): the signed digest of the log up to the checkpoint differs.
    let lines = f.lines();
    let mut edited = lines.clone();
    edited[1] = edited[1].replace("key-2", "key-X");
    f.write_lines(&edited);
    let err = audit::verify_checkpoints(&f.path, &file, &public, None).expect_err("edited");
    assert!(
        matches!(
            &err,
            Error::AuditDamaged {
                defect: AuditDefect::CheckpointMismatch { seq: 3 },
                ..
            }
        ),
        "{err}"
    );

    // Records cut after the last checkpoint but one.
    f.write_lines(&lines[..4]);
    let err = audit::verify_checkpoints(&f.path, &file, &public, None).expect_err("cut");
    assert!(
        matches!(
            &err,
            Error::AuditDamaged {
                defect: AuditDefect::CheckpointTruncated {
                    log_seq: 4,
                    checkpoint_seq: 6
                },
                ..
            }
        ),
        "{err}"
    );
}
