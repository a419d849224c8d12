//! The audit log: group-committed appends, the MAC chain and head checkpoint, and every kind
//! of damage verify must name (and open must refuse). Attacks on purpose (by someone without
//! the audit key) are in tests/audit_attacks.rs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use vault::Error;
use vault::audit::{
    self, AuditDefect, AuditEvent, AuditKey, AuditLog, AuditOptions, AuditRecord, Decision,
    NoAnchor, VerifyReport,
};

fn event(principal: &str, key: &str) -> AuditEvent {
    AuditEvent {
        principal: principal.into(),
        op: "get".into(),
        scope: Some("global".into()),
        key: Some(key.into()),
        ..AuditEvent::new(Decision::Allow, "OK")
    }
}

const KEY: [u8; 32] = [7; 32];

fn key() -> AuditKey {
    AuditKey::from_slice(&KEY).expect("audit key")
}

/// Opens the log at `path` with the test key and no anchor.
fn open_log(path: &Path) -> Result<AuditLog, Error> {
    AuditLog::open(
        path,
        key(),
        AuditOptions::new(Arc::new(NoAnchor), "test-vault"),
    )
}

/// Verifies the log at `path` with the test key and no anchor.
fn verify(path: &Path) -> Result<VerifyReport, Error> {
    audit::verify(path, &key(), &NoAnchor)
}

/// HMAC-SHA256 under the test key, in hex.
fn hmac_hex(message: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &KEY);
    ring::hmac::sign(&key, message)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn head_of(log: &Path) -> PathBuf {
    PathBuf::from(format!("{}.head", log.display()))
}

fn lines(log: &Path) -> Vec<String> {
    fs::read_to_string(log)
        .expect("read log")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(log: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(log, text).expect("write log");
}

/// A closed log of `n` records keyed `key-1`..`key-n`.
fn sample_log(n: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let log = open_log(&path).expect("open");
    for i in 1..=n {
        log.append(&event("svc", &format!("key-{i}")))
            .expect("append");
    }
    (dir, path)
}

/// The MAC of `record` as documented in the module docs, recomputed independently.
fn documented_mac(record: &AuditRecord) -> String {
    let value = serde_json::to_value(record).expect("to value");
    let map = value.as_object().expect("object");
    // serde_json's map keeps insertion order only with `preserve_order`; rebuild in order.
    let fields = [
        "seq",
        "ts_ms",
        "stage",
        "call",
        "principal",
        "cert",
        "peer",
        "op",
        "scope",
        "key",
        "version",
        "decision",
        "status",
        "reason",
        "prev",
    ];
    let body: Vec<String> = fields
        .iter()
        .map(|f| format!("{}:{}", serde_json::Value::from(*f), map[*f]))
        .collect();
    let body = format!("{{{}}}", body.join(","));
    hmac_hex(format!("vault audit v2\n{body}").as_bytes())
}

/// A head file for `seq` and `mac` made as the module docs say.
fn documented_head(seq: u64, mac: &str) -> String {
    let tag = hmac_hex(format!("vault audit head v2\n{seq}\n{mac}").as_bytes());
    serde_json::json!({"seq": seq, "mac": mac, "tag": tag}).to_string()
}

/// Verify fails with this defect on this line, and open refuses with the same, saying what
/// to do. Returns verify's message.
fn assert_damaged(path: &Path, want_line: Option<u64>, want: &AuditDefect) -> String {
    let err = verify(path).expect_err("verify must fail");
    match &err {
        Error::AuditDamaged { line, defect, .. } => {
            assert_eq!((line, defect), (&want_line, want), "{err}");
        }
        other => panic!("unexpected error {other}"),
    }
    let refused = open_log(path).expect_err("open must refuse");
    match &refused {
        Error::AuditRefused { line, defect, .. } => {
            assert_eq!((line, defect), (&want_line, want), "{refused}");
        }
        other => panic!("unexpected error {other}"),
    }
    let text = refused.to_string();
    assert!(
        text.contains("vaultctl audit verify") && text.contains("aside"),
        "{text}"
    );
    err.to_string()
}

#[test]
fn concurrent_appends_make_one_contiguous_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let log = Arc::new(open_log(&path).expect("open"));
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..200 {
                    log.append(&event(&format!("svc-{t}"), &format!("k{i}")))
                        .expect("append");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    // While open, the head may trail by up to HEAD_INTERVAL of records; closing brings it
    // up to date.
    let open_report = verify(&path).expect("verify while open");
    assert_eq!(open_report.records, 3200);
    drop(log);
    let report = verify(&path).expect("verify");
    assert_eq!((report.records, report.head_seq), (3200, 3200));
    let records = audit::tail(&path, usize::MAX).expect("tail");
    let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=3200).collect::<Vec<_>>());
    for r in &records {
        assert_eq!(r.mac, documented_mac(r), "seq {}", r.seq);
    }
    // Each thread's records are all there, in its order.
    for t in 0..16 {
        let principal = format!("svc-{t}");
        let keys: Vec<_> = records
            .iter()
            .filter(|r| r.principal == principal)
            .map(|r| r.key.clone().expect("key"))
            .collect();
        assert_eq!(keys, (0..200).map(|i| format!("k{i}")).collect::<Vec<_>>());
    }
    let mode = fs::metadata(&path).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// Wakes the thread that polls a future in [`block_on`].
struct ThreadWaker(std::thread::Thread);

impl std::task::Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to completion on this thread.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let waker = Arc::new(ThreadWaker(std::thread::current())).into();
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

#[test]
fn a_written_append_is_in_the_file_when_it_resolves_and_durable_when_the_log_closes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let log = Arc::new(open_log(&path).expect("open"));
    // Readers' records (written) and changes' (fsynced) in the same batches.
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (log, path) = (Arc::clone(&log), path.clone());
            std::thread::spawn(move || {
                let principal = format!("svc-{t}");
                for i in 0..40 {
                    let key = format!("k{i}");
                    if t % 2 == 0 {
                        block_on(log.append_written(event(&principal, &key))).expect("written");
                    } else {
                        block_on(log.append_async(event(&principal, &key))).expect("durable");
                    }
                    // Resolved: another process reading the file now finds the record.
                    let found = audit::tail(&path, usize::MAX)
                        .expect("tail")
                        .iter()
                        .any(|r| r.principal == principal && r.key.as_deref() == Some(&key));
                    assert!(found, "{principal} {key} not in the file when it resolved");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    // Nobody waits for the last written records' fsync: the sync thread makes them durable
    // all the same, within a few milliseconds.
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while log.status().records < 320 {
        assert!(Instant::now() < deadline, "{:?}", log.status());
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    drop(log);
    let report = verify(&path).expect("verify");
    assert_eq!((report.records, report.head_seq), (320, 320));
}

/// Waits (up to 10 s) until `done` holds for the log's status.
fn wait_for_status(log: &AuditLog, done: impl Fn(&audit::AuditStatus) -> bool) {
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while !done(&log.status()) {
        assert!(Instant::now() < deadline, "{:?}", log.status());
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

#[test]
fn records_callers_wrote_themselves_get_their_head_and_anchor_while_the_log_stays_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let mut options = AuditOptions::new(Arc::new(NoAnchor), "test-vault");
    options.checkpoint_interval = std::time::Duration::from_millis(200);
    let log = AuditLog::open(&path, key(), options).expect("open");
    // One caller at a time, each finding the writer thread idle: each writes its record
    // itself; the writer thread checkpoints them all the same, within its intervals.
    for round in 1..=3u64 {
        for i in 0..5 {
            block_on(log.append_written(event("svc", &format!("k{round}-{i}")))).expect("written");
        }
        wait_for_status(&log, |s| {
            s.head_seq == round * 5 && s.anchored_seq == round * 5
        });
        assert_eq!(
            verify(&path).expect("verify while open").head_seq,
            round * 5,
            "the head file names the newest record"
        );
        // Idle again, long enough for the writer thread to wait without a deadline.
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    drop(log);
    let report = verify(&path).expect("verify");
    assert_eq!((report.records, report.head_seq), (15, 15));
}

#[test]
fn appends_per_second_with_64_threads() {
    const THREADS: usize = 64;
    const EACH: usize = 100;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let log = Arc::new(open_log(&path).expect("open"));
    let start = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..EACH {
                    log.append(&event(&format!("svc-{t}"), &format!("k{i}")))
                        .expect("append");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let elapsed = start.elapsed();
    let total = THREADS * EACH;
    println!(
        "audit: {total} appends from {THREADS} threads in {elapsed:?}: {:.0} appends/s (each fsynced, group commit) in {}",
        total as f64 / elapsed.as_secs_f64(),
        dir.path().display()
    );
    assert_eq!(verify(&path).expect("verify").records, total as u64);

    // For comparison: one thread, so one write and fsync (and head checkpoint) per append.
    let start = Instant::now();
    for i in 0..200 {
        log.append(&event("svc", &format!("k{i}"))).expect("append");
    }
    println!(
        "audit: 1 thread: {:.0} appends/s",
        200.0 / start.elapsed().as_secs_f64()
    );
}

#[test]
fn reopening_continues_the_chain() {
    let (_dir, path) = sample_log(3);
    let log = open_log(&path).expect("reopen");
    log.append(&event("svc", "key-4")).expect("append");
    drop(log);
    let report = verify(&path).expect("verify");
    assert_eq!((report.records, report.head_seq), (4, 4));
    let records = audit::tail(&path, 2).expect("tail");
    assert_eq!(records[1].seq, 4);
    assert_eq!(records[1].prev, records[0].mac);
}

#[test]
fn a_fresh_log_verifies_empty_and_a_second_writer_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let log = open_log(&path).expect("open");
    assert_eq!(verify(&path).expect("verify").records, 0);
    let err = open_log(&path).expect_err("second writer");
    assert!(matches!(err, Error::AuditInUse { .. }), "{err}");
    log.append(&event("svc", "k")).expect("append");
    // Verifying while the writer holds the log works.
    assert_eq!(verify(&path).expect("verify live").records, 1);
    assert!(format!("{log:?}").contains("durable_seq: 1"));
}

#[test]
fn a_missing_directory_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = open_log(&dir.path().join("no/audit.jsonl")).expect_err("no dir");
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn every_kind_of_damage_is_named_distinctly() {
    let mut messages = Vec::new();

    // An edited byte of a key.
    let (_d1, path) = sample_log(10);
    let mut l = lines(&path);
    l[4] = l[4].replace(r#""key":"key-5""#, r#""key":"kez-5""#);
    write_lines(&path, &l);
    messages.push(assert_damaged(
        &path,
        Some(5),
        &AuditDefect::MacMismatch { seq: 5 },
    ));

    // A deleted middle line.
    let (_d2, path) = sample_log(10);
    let mut l = lines(&path);
    l.remove(4);
    write_lines(&path, &l);
    messages.push(assert_damaged(
        &path,
        Some(5),
        &AuditDefect::Missing {
            expected: 5,
            found: 6,
        },
    ));

    // Two lines swapped.
    let (_d3, path) = sample_log(10);
    let mut l = lines(&path);
    l.swap(3, 4);
    write_lines(&path, &l);
    messages.push(assert_damaged(
        &path,
        Some(4),
        &AuditDefect::OutOfOrder {
            expected: 4,
            found: 5,
            expected_at_line: Some(5),
        },
    ));

    // The last line dropped.
    let (_d4, path) = sample_log(10);
    let mut l = lines(&path);
    l.pop();
    write_lines(&path, &l);
    messages.push(assert_damaged(
        &path,
        None,
        &AuditDefect::Truncated {
            log_seq: 9,
            head_seq: 10,
        },
    ));

    // The head file deleted.
    let (_d5, path) = sample_log(10);
    fs::remove_file(head_of(&path)).expect("rm head");
    messages.push(assert_damaged(
        &path,
        None,
        &AuditDefect::HeadMissing { records: 10 },
    ));

    // Garbage appended.
    let (_d6, path) = sample_log(10);
    let mut l = lines(&path);
    l.push("garbage".into());
    write_lines(&path, &l);
    let msg = assert_damaged(
        &path,
        Some(11),
        &AuditDefect::Malformed {
            reason: "expected value at line 1 column 1".into(),
        },
    );
    messages.push(msg);

    // Bytes appended without a newline (what a torn write looks like): verify names it, and
    // open repairs it (see `a_torn_last_line_is_trimmed_by_open_and_the_chain_goes_on`).
    let (_d7, path) = sample_log(10);
    let mut text = fs::read(&path).expect("read");
    text.extend_from_slice(br#"{"seq":11,"ts_"#);
    fs::write(&path, text).expect("write");
    let err = verify(&path).expect_err("verify must fail");
    assert!(
        matches!(
            &err,
            Error::AuditDamaged {
                line: Some(11),
                defect: AuditDefect::TornTail { bytes: 14 },
                ..
            }
        ),
        "{err}"
    );
    messages.push(err.to_string());

    // One record edited and its MAC recomputed with the key: the next record no longer
    // chains to it.
    let (_d8, path) = sample_log(10);
    let mut l = lines(&path);
    let mut record: AuditRecord = serde_json::from_str(&l[4]).expect("parse");
    record.key = Some("other".into());
    record.mac = documented_mac(&record);
    l[4] = serde_json::to_string(&record).expect("json");
    write_lines(&path, &l);
    messages.push(assert_damaged(
        &path,
        Some(6),
        &AuditDefect::ChainBroken { seq: 6 },
    ));

    // The whole file emptied.
    let (_d9, path) = sample_log(10);
    fs::write(&path, b"").expect("empty");
    messages.push(assert_damaged(
        &path,
        None,
        &AuditDefect::Truncated {
            log_seq: 0,
            head_seq: 10,
        },
    ));

    // A line re-encoded without changing its meaning.
    let (_d10, path) = sample_log(10);
    let mut l = lines(&path);
    l[2] = l[2].replacen(r#"{"seq":3,"#, r#"{"seq": 3,"#, 1);
    write_lines(&path, &l);
    messages.push(assert_damaged(&path, Some(3), &AuditDefect::NotCanonical));

    // Every message differs from the others and says where.
    let mut unique = messages.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), messages.len(), "{messages:#?}");
    for m in &messages {
        assert!(m.starts_with("audit log "), "{m}");
    }
}

#[test]
fn a_deleted_log_with_its_head_left_is_refused() {
    let (_dir, path) = sample_log(3);
    fs::remove_file(&path).expect("rm log");
    let err = open_log(&path).expect_err("refused");
    assert!(
        matches!(
            err,
            Error::AuditRefused {
                defect: AuditDefect::Truncated {
                    log_seq: 0,
                    head_seq: 3
                },
                ..
            }
        ),
        "{err}"
    );
    assert!(
        !path.exists(),
        "open must not create a new log in its place"
    );
    // Moving the head aside too starts a new log, as the message says.
    fs::rename(head_of(&path), path.with_extension("old-head")).expect("mv");
    open_log(&path).expect("new log");
}

#[test]
fn a_log_ahead_of_its_head_verifies_and_open_checkpoints_it() {
    let (_dir, path) = sample_log(4);
    let saved_head = fs::read(head_of(&path)).expect("read head");
    let log = open_log(&path).expect("open");
    log.append(&event("svc", "key-5")).expect("append");
    drop(log);
    // A crash after the log's fsync and before the head's replacement.
    fs::write(head_of(&path), &saved_head).expect("restore head");
    let report = verify(&path).expect("verify");
    assert_eq!((report.records, report.head_seq), (5, 4));
    drop(open_log(&path).expect("open"));
    let head: serde_json::Value =
        serde_json::from_slice(&fs::read(head_of(&path)).expect("head")).expect("json");
    let last = audit::tail(&path, 1).expect("tail").remove(0);
    assert_eq!(
        head,
        serde_json::from_str::<serde_json::Value>(&documented_head(5, &last.mac)).expect("json")
    );
    assert_eq!(verify(&path).expect("verify").head_seq, 5);
}

#[test]
fn a_head_that_names_another_record_is_refused() {
    let (_dir, path) = sample_log(4);
    let other = audit::tail(&path, 2).expect("tail").remove(0);
    fs::write(head_of(&path), documented_head(4, &other.mac)).expect("write head");
    assert_damaged(&path, Some(4), &AuditDefect::HeadMismatch { seq: 4 });
}

#[test]
fn records_hold_the_documented_fields_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let log = open_log(&path).expect("open");
    log.append(&event("svc", "db-password")).expect("append");
    log.append(&AuditEvent {
        principal: "ops".into(),
        op: "unlock".into(),
        reason: Some("acl".into()),
        ..AuditEvent::new(Decision::Deny, "PERMISSION_DENIED")
    })
    .expect("append");
    drop(log);
    let documented = [
        "seq",
        "ts_ms",
        "stage",
        "call",
        "principal",
        "cert",
        "peer",
        "op",
        "scope",
        "key",
        "version",
        "decision",
        "status",
        "reason",
        "prev",
        "mac",
    ];
    for line in lines(&path) {
        let value: serde_json::Value = serde_json::from_str(&line).expect("json");
        let mut keys: Vec<&str> = value
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut want = documented.to_vec();
        want.sort_unstable();
        assert_eq!(keys, want, "{line}");
    }
    let records = audit::tail(&path, 10).expect("tail");
    assert_eq!(records[0].prev, "0".repeat(64));
    assert_eq!(records[1].decision, Decision::Deny);
    assert_eq!(records[1].status, "PERMISSION_DENIED");
    assert_eq!(records[1].scope, None);
}

#[test]
fn the_log_is_shareable_across_threads() {
    fn shareable<T: Send + Sync + std::fmt::Debug>() {}
    shareable::<AuditLog>();
}

#[test]
fn after_a_failed_checkpoint_the_log_takes_no_more_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("audit.jsonl");
    let log = open_log(&path).expect("open");
    // The open file still takes writes; the head's temporary file cannot be created.
    fs::remove_dir_all(dir.path()).expect("rm dir");
    // This record is durable in the (unlinked) file: its caller is told so.
    log.append(&event("svc", "k1")).expect("first append");
    // The checkpoint after it runs on the writer thread (when idle, or after HEAD_INTERVAL):
    // appends fail from then on.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let err = loop {
        match log.append(&event("svc", "k2")) {
            Err(e) => break e,
            Ok(()) => {
                assert!(std::time::Instant::now() < deadline, "the log never closed");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    };
    assert!(matches!(err, Error::AuditFailed { .. }), "{err}");
    assert!(err.to_string().contains("restart"), "{err}");
}

/// Warnings logged by the vault crate, for the tests that check one.
static WARNINGS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.level() == log::Level::Warn {
            let mut warnings = WARNINGS.lock().unwrap_or_else(|e| e.into_inner());
            warnings.push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

/// Starts capturing the vault crate's warnings (once per test binary); call it first.
fn capture_warnings() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        log::set_logger(&Capture).expect("no other logger");
        log::set_max_level(log::LevelFilter::Warn);
    });
}

/// The warnings captured so far that name `path`.
fn warnings_about(path: &Path) -> Vec<String> {
    let name = path.display().to_string();
    let warnings = WARNINGS.lock().unwrap_or_else(|e| e.into_inner());
    warnings
        .iter()
        .filter(|w| w.contains(&name))
        .cloned()
        .collect()
}

/// Appends `bytes` to the file at `path` as they are.
fn append_raw(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open for append");
    file.write_all(bytes).expect("append");
}

/// The next line (with its newline) an append would add to the log at `path`, made on a copy
/// of it.
fn next_line_of(path: &Path) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("audit.jsonl");
    fs::copy(path, &copy).expect("copy log");
    fs::copy(head_of(path), head_of(&copy)).expect("copy head");
    let before = fs::metadata(&copy).expect("stat").len();
    let log = open_log(&copy).expect("open copy");
    log.append(&event("svc", "key-next")).expect("append");
    drop(log);
    let text = fs::read(&copy).expect("read copy");
    text[usize::try_from(before).expect("size")..].to_vec()
}

#[test]
fn a_torn_last_line_is_trimmed_by_open_and_the_chain_goes_on() {
    capture_warnings();
    let (_dir, path) = sample_log(10);
    let intact = fs::read(&path).expect("read");
    // A crash halfway through writing record 11: half its bytes, no newline.
    let line = next_line_of(&path);
    let half = &line[..line.len() / 2];
    append_raw(&path, half);
    let torn_bytes = u64::try_from(half.len()).expect("len");

    // verify is strict and read-only: its own defect, not chain damage, and the file stays.
    let err = verify(&path).expect_err("verify must report the torn line");
    match &err {
        Error::AuditDamaged { line, defect, .. } => assert_eq!(
            (line, defect),
            (&Some(11), &AuditDefect::TornTail { bytes: torn_bytes })
        ),
        other => panic!("unexpected error {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&format!("{torn_bytes} byte(s)"))
            && text.contains("next daemon start trims it"),
        "{text}"
    );
    assert_eq!(
        fs::read(&path).expect("read").len(),
        intact.len() + half.len()
    );

    // open trims back to the last complete line, warns how much it dropped, and goes on.
    let log = open_log(&path).expect("open trims the torn line");
    assert_eq!(fs::read(&path).expect("read"), intact);
    let warnings = warnings_about(&path);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains(&format!("dropped {torn_bytes} byte(s)")),
        "{warnings:?}"
    );
    log.append(&event("svc", "key-11")).expect("append");
    log.append(&event("svc", "key-12")).expect("append");
    drop(log);

    let report = verify(&path).expect("verify after the repair");
    assert_eq!((report.records, report.head_seq), (12, 12));
    let records = audit::tail(&path, 3).expect("tail");
    assert_eq!(
        records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [10, 11, 12]
    );
    assert_eq!(records[1].prev, records[0].mac);
    assert_eq!(records[1].key.as_deref(), Some("key-11"));
    // Nothing left to repair: a second open changes nothing and warns no more.
    drop(open_log(&path).expect("reopen"));
    assert_eq!(warnings_about(&path).len(), 1);
}

#[test]
fn a_torn_line_after_records_past_the_head_is_trimmed_and_they_are_kept() {
    // A crash in a batch: records 5 and 6 complete (never acknowledged, the head still at 4),
    // record 7 torn.
    let (_dir, path) = sample_log(4);
    let saved_head = fs::read(head_of(&path)).expect("read head");
    let log = open_log(&path).expect("open");
    log.append(&event("svc", "key-5")).expect("append");
    log.append(&event("svc", "key-6")).expect("append");
    drop(log);
    fs::write(head_of(&path), &saved_head).expect("restore head");
    let line = next_line_of(&path);
    append_raw(&path, &line[..line.len() - 1]);
    let torn_bytes = u64::try_from(line.len() - 1).expect("len");

    let err = verify(&path).expect_err("torn");
    assert!(
        matches!(
            &err,
            Error::AuditDamaged {
                line: Some(7),
                defect: AuditDefect::TornTail { bytes },
                ..
            } if *bytes == torn_bytes
        ),
        "{err}"
    );
    drop(open_log(&path).expect("open"));
    let report = verify(&path).expect("verify");
    assert_eq!((report.records, report.head_seq), (6, 6));
}

/// Verify and open both fail with `Malformed` on `line`, and the file is left as it was.
fn assert_refused_malformed(path: &Path, want_line: u64) {
    let before = fs::read(path).expect("read");
    let err = verify(path).expect_err("verify must fail");
    assert!(
        matches!(
            &err,
            Error::AuditDamaged { line: Some(l), defect: AuditDefect::Malformed { .. }, .. }
                if *l == want_line
        ),
        "{err}"
    );
    let refused = open_log(path).expect_err("open must refuse");
    assert!(
        matches!(
            &refused,
            Error::AuditRefused { line: Some(l), defect: AuditDefect::Malformed { .. }, .. }
                if *l == want_line
        ),
        "{refused}"
    );
    assert_eq!(
        fs::read(path).expect("read"),
        before,
        "a refused log is not changed"
    );
    assert!(warnings_about(path).is_empty());
}

#[test]
fn a_torn_line_that_is_not_the_last_is_refused() {
    capture_warnings();
    // Half a record, then a valid line glued to it (written after it without a repair).
    let (_d1, path) = sample_log(10);
    let line = next_line_of(&path);
    let mut bytes = line[..line.len() / 2].to_vec();
    bytes.extend_from_slice(&line);
    append_raw(&path, &bytes);
    assert_refused_malformed(&path, 11);

    // Half a record ended by a newline, then a valid record 11.
    let (_d2, path) = sample_log(10);
    let line = next_line_of(&path);
    let mut bytes = line[..line.len() / 2].to_vec();
    bytes.push(b'\n');
    bytes.extend_from_slice(&line);
    append_raw(&path, &bytes);
    assert_refused_malformed(&path, 11);

    // A garbage line in the middle.
    let (_d3, path) = sample_log(10);
    let mut l = lines(&path);
    l.insert(5, "garbage".into());
    write_lines(&path, &l);
    assert_refused_malformed(&path, 6);
}

#[test]
fn a_complete_last_line_that_does_not_verify_is_refused_not_trimmed() {
    capture_warnings();
    let (_dir, path) = sample_log(10);
    let line = next_line_of(&path);
    let mut edited = String::from_utf8(line).expect("utf-8");
    edited = edited.replace("key-next", "key-nexu");
    append_raw(&path, edited.as_bytes());
    assert_damaged(&path, Some(11), &AuditDefect::MacMismatch { seq: 11 });
    assert!(warnings_about(&path).is_empty());
}

#[test]
fn a_torn_line_on_a_log_shorter_than_its_head_is_refused_untouched() {
    capture_warnings();
    let (_dir, path) = sample_log(10);
    let mut l = lines(&path);
    let last = l.pop().expect("line 10");
    write_lines(&path, &l);
    // Half of record 10 where the head says record 10 was durable: not a torn write.
    append_raw(&path, &last.as_bytes()[..last.len() / 2]);
    let before = fs::read(&path).expect("read");
    assert_damaged(
        &path,
        None,
        &AuditDefect::Truncated {
            log_seq: 9,
            head_seq: 10,
        },
    );
    assert_eq!(fs::read(&path).expect("read"), before);
    assert!(warnings_about(&path).is_empty());
}
