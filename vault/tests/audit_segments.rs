//! Segments of the audit log: rotation (asked for and by size) chains the next segment to
//! the last, verify reads them all in order and names a missing or misplaced one, opening
//! reads only the current one, and a rotation cut short is undone at the next open.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vault::Error;
use vault::audit::{
    self, AuditDefect, AuditEvent, AuditKey, AuditLog, AuditOptions, Decision, FileSink, NoAnchor,
    SEGMENT_OP, segment_path,
};

fn key() -> AuditKey {
    AuditKey::from_slice(&[7; 32]).expect("audit key")
}

fn event(i: u64) -> AuditEvent {
    AuditEvent {
        principal: "svc".into(),
        op: "get".into(),
        key: Some(format!("k{i}")),
        ..AuditEvent::new(Decision::Allow, "OK")
    }
}

fn open(path: &Path, options: impl FnOnce(&mut AuditOptions)) -> Result<AuditLog, Error> {
    let mut o = AuditOptions::new(Arc::new(NoAnchor), "test-vault");
    options(&mut o);
    AuditLog::open(path, key(), o)
}

fn verify(path: &Path) -> Result<audit::VerifyReport, Error> {
    audit::verify(path, &key(), &NoAnchor)
}

fn defect(result: Result<audit::VerifyReport, Error>) -> (PathBuf, AuditDefect) {
    match result {
        Err(Error::AuditDamaged { path, defect, .. }) => (path, defect),
        other => panic!("expected damage, got {other:?}"),
    }
}

/// A log of records written by 4 threads while it is rotated 3 times: 4 segments.
fn rotated_log() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let sink = dir.path().join("checkpoints.jsonl");
    let sink = Arc::new(FileSink::open(&sink).expect("sink"));
    let log = Arc::new(open(&path, |o| o.sinks = vec![sink]).expect("open"));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..150 {
                    log.append(&event(i)).expect("append");
                }
            })
        })
        .collect();
    for n in 0..3 {
        std::thread::sleep(std::time::Duration::from_millis(5));
        let rotated = log.rotate("test").expect("rotate");
        assert_eq!(rotated.closed, n + 1);
        assert_eq!(rotated.segment, n + 2);
        assert_eq!(rotated.archive, segment_path(&path, n + 1));
    }
    for w in writers {
        w.join().expect("writer");
    }
    drop(log);
    (dir, path)
}

#[test]
fn rotation_chains_segments_and_verify_names_a_missing_or_misplaced_one() {
    let (dir, path) = rotated_log();
    let report = verify(&path).expect("verify");
    assert_eq!((report.records, report.segments), (603, 4));
    let records = audit::tail(&path, usize::MAX).expect("tail");
    assert_eq!(
        records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=603).collect::<Vec<_>>()
    );
    let opening: Vec<_> = records.iter().filter(|r| r.op == SEGMENT_OP).collect();
    assert_eq!(opening.len(), 3);
    for (n, r) in opening.iter().enumerate() {
        assert_eq!(r.version, Some(n as u64 + 2));
        // The closed segment's file name is in the record opening the next.
        assert!(
            r.reason
                .as_deref()
                .is_some_and(|t| t.contains(&format!("audit.jsonl.00000{}", n + 1))),
            "{r:?}"
        );
    }
    // Signed checkpoints cover each segment.
    let public_key = key().checkpoint_public_key().expect("public key");
    let checked = audit::verify_checkpoints(
        &path,
        &dir.path().join("checkpoints.jsonl"),
        &public_key,
        None,
    )
    .expect("checkpoints");
    assert!(checked.checked >= 6, "{checked:?}");

    // The middle segment deleted: named, with the records it held.
    let middle = segment_path(&path, 2);
    let kept = dir.path().join("kept");
    fs::rename(&middle, &kept).expect("move");
    let (file, found) = defect(verify(&path));
    assert_eq!(file, middle);
    match &found {
        AuditDefect::SegmentMissing {
            file,
            segment: 2,
            records: Some((first, last)),
        } => {
            assert_eq!(file, "audit.jsonl.000002");
            assert!(first <= last, "{found}");
        }
        other => panic!("{other:?}"),
    }
    assert!(found.to_string().contains("audit.jsonl.000002"), "{found}");
    // Opening (a daemon's start) reads only the current segment.
    drop(open(&path, |_| {}).expect("open without the middle segment"));
    fs::rename(&kept, &middle).expect("put back");
    verify(&path).expect("verify again");

    // Two segments swapped.
    let third = segment_path(&path, 3);
    fs::rename(&middle, &kept).expect("move");
    fs::rename(&third, &middle).expect("move");
    fs::rename(&kept, &third).expect("move");
    let (_, found) = defect(verify(&path));
    assert_eq!(
        found,
        AuditDefect::SegmentMisplaced {
            file: "audit.jsonl.000002".into(),
            expected: 2,
            found: 3
        }
    );
}

#[test]
fn opening_reads_no_closed_segment_and_size_rotates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let log = open(&path, |o| o.max_segment_bytes = 4096).expect("open");
    for i in 0..100 {
        log.append(&event(i)).expect("append");
    }
    let segments = log.status().segment;
    drop(log);
    assert!(segments > 3, "{segments} segments");
    let report = verify(&path).expect("verify");
    assert_eq!(report.segments, segments);
    // Garbage in every closed segment: opening does not read them, verify does.
    for n in 1..segments {
        fs::write(segment_path(&path, n), b"not a record\n").expect("overwrite");
    }
    let log = open(&path, |_| {}).expect("open reads only the current segment");
    log.append(&event(1000)).expect("append");
    drop(log);
    let (file, _) = defect(verify(&path));
    assert_eq!(file, segment_path(&path, 1));
}

#[test]
fn a_rotation_cut_short_is_undone_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let log = open(&path, |_| {}).expect("open");
    for i in 0..5 {
        log.append(&event(i)).expect("append");
    }
    drop(log);
    // Cut after the current segment got its closed name, before the next one took over.
    fs::hard_link(&path, segment_path(&path, 1)).expect("link");
    fs::write(dir.path().join("audit.jsonl.next"), b"{\"seq\":6").expect("next");
    let log = open(&path, |_| {}).expect("open");
    assert!(!segment_path(&path, 1).exists());
    assert!(!dir.path().join("audit.jsonl.next").exists());
    log.append(&event(6)).expect("append");
    log.rotate("after the repair").expect("rotate");
    drop(log);
    let report = verify(&path).expect("verify");
    assert_eq!((report.records, report.segments), (7, 2));
    // A file in the way of the next closed name: the rotation fails, the log goes on.
    let log = open(&path, |_| {}).expect("open");
    fs::write(segment_path(&path, 2), b"someone else's").expect("squat");
    let err = log.rotate("blocked").expect_err("blocked rotation");
    assert!(matches!(err, Error::AuditRotation { .. }), "{err}");
    log.append(&event(8))
        .expect("append after a failed rotation");
    drop(log);
    fs::remove_file(segment_path(&path, 2)).expect("remove");
    let report = verify(&path).expect("verify");
    assert_eq!((report.records, report.segments), (9, 2));
    let last = audit::tail(&path, 2).expect("tail");
    assert_eq!(last[0].op, SEGMENT_OP);
    assert_eq!(last[0].status, "INTERNAL");
}
