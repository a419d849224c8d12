//! End to end: the audit log rotated under load (`vaultctl audit rotate` against vaultd),
//! verified across its segments, a deleted segment named; a start that reads only the
//! current segment of a 1 GiB history; a backup made while a client writes, restored into a
//! new directory where every write acknowledged before the backup began reads back, and
//! restores refused over a live or non-empty directory and from a damaged backup.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Sandbox, vaultctl, vaultctl_with};
use proto::v1 as pb;
use vault::audit::{SEGMENT_OP, segment_path};

fn put(i: u64) -> pb::PutRequest {
    pb::PutRequest {
        scope: "global".into(),
        key: format!("k-{i}"),
        value: format!("v-{i}").into_bytes(),
        expected_version: None,
    }
}

/// `vaultctl --vault DIR ARGS`.
fn local(dir: &Path, args: &[&str]) -> Output {
    Command::new(vaultctl())
        .env_remove("VAULTCTL_ADDR")
        .arg("--vault")
        .arg(dir)
        .args(args)
        .output()
        .expect("run vaultctl")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A client writing k-1, k-2... one after another until `stop`; `acked` is the newest
/// acknowledged (so every one up to it was).
fn start_writer(
    client: common::Client,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut client = client;
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            client.put(put(i)).await.expect("put under load");
            acked.store(i, Ordering::SeqCst);
        }
    })
}

async fn wait_for(acked: &AtomicU64, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::SeqCst) < at_least {
        assert!(Instant::now() < deadline, "the writer is stuck");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_chains_segments_and_verify_names_a_deleted_one() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start();
    let (stop, acked) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let writer = start_writer(daemon.client("admin").await, stop.clone(), acked.clone());
    for n in 1..=3u64 {
        wait_for(&acked, n * 20).await;
        let exports = daemon.exports();
        let rotated =
            tokio::task::spawn_blocking(move || vaultctl_with(&exports, &["audit", "rotate"], b""))
                .await
                .expect("vaultctl");
        assert!(rotated.status.success(), "{}", text(&rotated));
        assert!(
            text(&rotated).contains(&format!("closed segment {n} as audit.jsonl.00000{n}")),
            "{}",
            text(&rotated)
        );
    }
    wait_for(&acked, 80).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("writer");
    let remote = vaultctl_with(&daemon.exports(), &["audit", "verify"], b"");
    assert!(
        text(&remote).contains("in 4 segment(s)"),
        "{}",
        text(&remote)
    );
    assert!(daemon.terminate().success());

    let log = sandbox.audit_log();
    let first = vault::audit::tail(&log, 10_000).expect("tail");
    let opening: Vec<_> = first.iter().filter(|r| r.op == SEGMENT_OP).collect();
    assert_eq!(opening.len(), 3, "one opening record per new segment");
    let rotate_calls = first.iter().filter(|r| r.op == "audit_rotate").count();
    assert_eq!(
        rotate_calls, 6,
        "each rotation is a started and an outcome record"
    );
    let verified = local(&sandbox.vault_dir(), &["audit", "verify"]);
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(
        text(&verified).contains("in 4 segment(s)"),
        "{}",
        text(&verified)
    );

    std::fs::remove_file(segment_path(&log, 2)).expect("delete the middle segment");
    let refused = local(&sandbox.vault_dir(), &["audit", "verify"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("segment 2 (audit.jsonl.000002) is missing"),
        "{}",
        text(&refused)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_reads_only_the_current_segment_of_a_1_gib_history() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start();
    let mut admin = daemon.client("admin").await;
    for n in 1..=3u64 {
        for i in 0..20 {
            admin.put(put(n * 100 + i)).await.expect("put");
        }
        let rotated = admin
            .audit_rotate(pb::AuditRotateRequest {})
            .await
            .expect("rotate")
            .into_inner();
        assert_eq!((rotated.closed, rotated.segment), (n, n + 1));
    }
    assert!(daemon.terminate().success());
    let started = Instant::now();
    drop(sandbox.start());
    let small = started.elapsed();

    // 1 GiB of history, cheaply: the closed segments grow (sparse) to 350 MiB each. A start
    // that read them would find no record in the zeros and refuse.
    let log = sandbox.audit_log();
    for n in 1..=3 {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(segment_path(&log, n))
            .expect("open a closed segment");
        file.set_len(350 << 20).expect("grow it");
    }
    let history: u64 = (1..=3)
        .map(|n| {
            std::fs::metadata(segment_path(&log, n))
                .expect("stat")
                .len()
        })
        .sum();
    assert!(history >= 1 << 30, "{history} bytes");
    let started = Instant::now();
    let daemon = sandbox.start();
    let elapsed = started.elapsed();
    println!(
        "vaultd start to listening with {} MiB of audit history in 3 closed segments: {} ms (with the bare segments: {} ms)",
        history >> 20,
        elapsed.as_millis(),
        small.as_millis()
    );
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    drop(daemon);
    assert!(
        sandbox.verify_audit().is_err(),
        "verify reads the closed segments, and finds the zeros"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_write_load_restores_every_acknowledged_write() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start();
    let (stop, acked) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let writer = start_writer(daemon.client("admin").await, stop.clone(), acked.clone());
    wait_for(&acked, 50).await;
    let before = acked.load(Ordering::SeqCst);
    let out = sandbox.root().join("backup");
    let data = sandbox.vault_dir();
    let (out2, data2) = (out.clone(), data.clone());
    let made = tokio::task::spawn_blocking(move || {
        local(&data2, &["backup", out2.to_str().expect("utf-8 path")])
    })
    .await
    .expect("vaultctl backup");
    assert!(made.status.success(), "{}", text(&made));
    wait_for(&acked, acked.load(Ordering::SeqCst) + 30).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("writer");
    let after = acked.load(Ordering::SeqCst);

    // Never over a live vault, nor into a directory that is not empty.
    let live = local(&data, &["restore", out.to_str().expect("utf-8")]);
    assert_eq!(live.status.code(), Some(1), "{}", text(&live));
    assert!(text(&live).contains("live vault"), "{}", text(&live));
    let busy = sandbox.root().join("busy");
    std::fs::create_dir(&busy).expect("mkdir");
    std::fs::write(busy.join("x"), b"x").expect("write");
    let refused = local(&busy, &["restore", out.to_str().expect("utf-8")]);
    assert!(text(&refused).contains("not empty"), "{}", text(&refused));

    let target = sandbox.root().join("restored");
    let restored = local(&target, &["restore", out.to_str().expect("utf-8")]);
    assert!(restored.status.success(), "{}", text(&restored));
    let keks = vault::Kek::build_all(&target, &[]).expect("the KEK");
    let vault = vault::Vault::open(&target, None, keks).expect("open the restored vault");
    for i in 1..=before {
        let value = vault
            .get("global", &format!("k-{i}"), None)
            .unwrap_or_else(|e| panic!("k-{i} (acknowledged before the backup): {e}"));
        assert_eq!(value.expose_secret(), format!("v-{i}").as_bytes());
    }
    let held = vault.list(Some("global")).expect("list").len() as u64;
    println!(
        "backup under load: {before} writes acknowledged before it began, {held} in the backup, {after} in all"
    );
    assert!(held >= before && held <= after, "{held}");
    let got = local(&target, &["get", "global", "k-1"]);
    assert_eq!(got.stdout, b"v-1", "{}", text(&got));
    let verified = local(&target, &["audit", "verify"]);
    assert!(verified.status.success(), "{}", text(&verified));
    let first = vault::audit::tail(&target.join("audit.jsonl"), 10).expect("tail");
    assert!(
        first[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("restored from a backup")),
        "{:?}",
        first[0]
    );

    // A damaged backup restores nothing.
    let db = out.join("secrets.db");
    let mut bytes = std::fs::read(&db).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&db, bytes).expect("write");
    let damaged = local(
        &sandbox.root().join("restored-2"),
        &["restore", out.to_str().expect("utf-8")],
    );
    assert_eq!(damaged.status.code(), Some(1), "{}", text(&damaged));
    assert!(text(&damaged).contains("secrets.db"), "{}", text(&damaged));
    assert!(!sandbox.root().join("restored-2").exists());
    drop(daemon);
}
