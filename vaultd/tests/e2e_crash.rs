//! End to end: SIGKILL under write load. Every write the daemon acknowledged is there after
//! a restart, with its value and version; the audit log verifies and holds a record of each;
//! an edited audit record is caught by `vaultctl audit verify`.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{Client, Sandbox, vaultctl};
use proto::v1 as pb;
use tokio::sync::Notify;
use tonic::Code;
use vault::audit::{AuditDefect, Decision, Stage};

const WRITERS: usize = 8;
/// Acknowledged writes before the SIGKILL.
const ACKED_BEFORE_KILL: usize = 200;

/// One acknowledged put.
#[derive(Debug, Clone)]
struct Acked {
    key: String,
    version: u64,
    value: Vec<u8>,
}

async fn writer(
    i: usize,
    mut api: Client,
    acked: Arc<Mutex<Vec<Acked>>>,
    count: Arc<AtomicUsize>,
    enough: Arc<Notify>,
) -> tonic::Status {
    for n in 0.. {
        let key = format!("w{i}-k{}", n % 3);
        let value = format!("writer {i} write {n}").into_bytes();
        let result = api
            .put(pb::PutRequest {
                scope: "global".into(),
                key: key.clone(),
                value: value.clone(),
                expected_version: None,
            })
            .await;
        match result {
            Ok(reply) => {
                let version = reply.into_inner().version;
                acked.lock().expect("acked").push(Acked {
                    key,
                    version,
                    value,
                });
                if count.fetch_add(1, Ordering::SeqCst) + 1 == ACKED_BEFORE_KILL {
                    enough.notify_one();
                }
            }
            // The daemon is gone: the write may or may not have happened; it was not
            // acknowledged, so nothing is claimed about it.
            Err(status) => return status,
        }
    }
    unreachable!()
}

/// Whether `error` is exactly a torn last line: what a crash in the middle of an append
/// leaves, never acknowledged; `verify` reports it and the next daemon start trims it.
fn is_torn_last_line(error: &vault::Error) -> bool {
    matches!(
        error,
        vault::Error::AuditDamaged {
            defect: AuditDefect::TornTail { .. },
            ..
        }
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_and_the_audit_log_verifies() {
    let sandbox = Sandbox::new();
    let daemon = sandbox
        .daemon()
        .env("VAULTD_RATE_PER_SECOND", 1_000_000)
        .env("VAULTD_BURST", 1_000_000)
        .start();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(Notify::new());
    let mut writers = Vec::new();
    for i in 0..WRITERS {
        let api = daemon.client("admin").await;
        writers.push(tokio::spawn(writer(
            i,
            api,
            Arc::clone(&acked),
            Arc::clone(&count),
            Arc::clone(&enough),
        )));
    }
    enough.notified().await;
    let exit = tokio::task::spawn_blocking(move || daemon.kill())
        .await
        .expect("kill");
    assert_eq!(exit.signal(), Some(9), "vaultd died of SIGKILL: {exit}");
    for w in writers {
        let status = w.await.expect("a writer panicked");
        // What a client sees of a vanished server: a transport failure, never an answer.
        assert!(
            matches!(
                status.code(),
                Code::Unavailable | Code::Cancelled | Code::Unknown
            ),
            "{status:?}"
        );
    }
    let acked = acked.lock().expect("acked").clone();
    assert!(acked.len() >= ACKED_BEFORE_KILL);

    // The log as the crash left it: it verifies, except perhaps for a torn last line (a
    // batch cut short by the kill, never acknowledged), which the next start trims.
    let log = sandbox.audit_log();
    let torn = match sandbox.verify_audit() {
        Ok(_) => None,
        Err(e) if is_torn_last_line(&e) => {
            eprintln!("the crash tore the audit log's last line: {e}");
            Some(e)
        }
        Err(e) => panic!("the audit log does not verify after SIGKILL: {e}"),
    };
    let records = sandbox.audit_records();
    // Audited before the reply: every acknowledged put has its record.
    for key in acked.iter().map(|a| &a.key) {
        let writes = acked.iter().filter(|a| &a.key == key).count();
        let audited = records
            .iter()
            .filter(|r| {
                r.op == "put"
                    && r.stage == Stage::Outcome
                    && r.key.as_ref() == Some(key)
                    && r.decision == Decision::Allow
                    && r.status == "OK"
            })
            .count();
        assert!(
            audited >= writes,
            "{key}: {writes} acknowledged puts, {audited} audited"
        );
    }

    let daemon = sandbox.daemon().try_start().unwrap_or_else(|failure| {
        panic!("vaultd does not start again after SIGKILL (torn line: {torn:?}): {failure}")
    });
    let mut admin = daemon.client("admin").await;
    for a in &acked {
        let reply = admin
            .get(pb::GetRequest {
                scope: "global".into(),
                key: a.key.clone(),
                version: Some(a.version),
            })
            .await
            .unwrap_or_else(|s| panic!("{} version {} lost: {s:?}", a.key, a.version))
            .into_inner();
        assert_eq!(
            (reply.value.as_slice(), reply.version),
            (a.value.as_slice(), a.version),
            "{} version {}",
            a.key,
            a.version
        );
    }
    // The newest version of each key is at least the newest acknowledged one.
    let listed = admin
        .list(pb::ListRequest {
            scope: None,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .secrets;
    for a in &acked {
        let info = listed
            .iter()
            .find(|s| s.key == a.key)
            .unwrap_or_else(|| panic!("{} is not listed", a.key));
        assert!(info.version >= a.version, "{info:?} < {a:?}");
    }
    assert!(daemon.terminate().success());

    // The restarted daemon trimmed a torn line and appended to the same chain.
    let report = sandbox
        .verify_audit()
        .expect("the audit log verifies after the restart");
    assert!(report.records > records.len() as u64);
    assert_eq!(report.head_seq, report.records);
    let run = |log: &Path| {
        Command::new(vaultctl())
            .arg("--vault")
            .arg(sandbox.vault_dir())
            .args(["audit", "verify", "--log"])
            .arg(log)
            .output()
            .expect("run vaultctl audit verify")
    };
    let ok = run(&log);
    assert!(
        ok.status.success(),
        "vaultctl audit verify on the intact log: {ok:?}"
    );

    // One byte of one record changed, the line still valid JSON: caught, exit code 1.
    let mut bytes = std::fs::read(&log).expect("read the audit log");
    let needle = br#""principal":"admin""#;
    let at = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(at, _)| at)
        .nth(records.len() / 2)
        .expect("a record in the middle of the log");
    bytes[at + needle.len() - 2] = b'N'; // "admin" -> "admiN"
    std::fs::write(&log, &bytes).expect("write the edited log");
    let edited = run(&log);
    assert_eq!(
        edited.status.code(),
        Some(1),
        "vaultctl audit verify on an edited log: {edited:?}"
    );
    let stderr = String::from_utf8_lossy(&edited.stderr);
    assert!(stderr.contains("edited"), "{stderr}");
}
