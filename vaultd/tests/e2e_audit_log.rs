//! End to end: the audit log as an operator meets it. Caller text that could mislead a
//! terminal is stored and shown escaped; a log that cannot be written makes requests fail
//! UNAVAILABLE and shows in `status`; a denied Get never reaches the cache; a deleted log is
//! refused at start unless `--new-audit-log`, which is recorded; signed checkpoints go to a
//! file that `vaultctl audit verify --checkpoints` checks the log against.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{Sandbox, vaultctl, vaultctl_with};
use proto::v1 as pb;
use tonic::Code;
use vault::audit::{Decision, Stage};

fn put(key: &str) -> pb::PutRequest {
    pb::PutRequest {
        scope: "global".into(),
        key: key.into(),
        value: b"hunter2".to_vec(),
        expected_version: None,
    }
}

fn get(key: &str) -> pb::GetRequest {
    pb::GetRequest {
        scope: "global".into(),
        key: key.into(),
        version: None,
    }
}

/// `vaultctl --vault <the dev vault> ARGS`.
fn local(sandbox: &Sandbox, args: &[&str]) -> Output {
    Command::new(vaultctl())
        .arg("--vault")
        .arg(sandbox.vault_dir())
        .args(args)
        .output()
        .expect("run vaultctl")
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misleading_characters_in_a_key_are_escaped_in_the_log_and_in_tail() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start();
    let mut admin = daemon.client("admin").await;
    // Refused by the name check (after the ACL), so recorded with the key as sent.
    let key = "invoice\u{202e}fdp.exe\u{200d}";
    let refused = admin.put(put(key)).await.expect_err("an invalid key name");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(daemon.terminate().success());

    let text = std::fs::read_to_string(sandbox.audit_log()).expect("read the log");
    for raw in ['\u{202e}', '\u{200d}'] {
        assert!(!text.contains(raw), "{raw:?} stored raw: {text}");
    }
    assert!(
        text.contains(r#""key":"invoice\\u{202e}fdp.exe\\u{200d}""#),
        "{text}"
    );
    let record = sandbox
        .audit_records()
        .into_iter()
        .find(|r| r.op == "put")
        .expect("the refused put's record");
    assert_eq!(record.decision, Decision::Deny);

    for args in [
        &["audit", "tail"][..],
        &["audit", "tail", "--format", "json"],
    ] {
        let shown = stdout(&local(&sandbox, args));
        assert!(
            !shown.contains('\u{202e}') && !shown.contains('\u{200d}'),
            "{args:?}: {shown}"
        );
        assert!(
            shown.contains("202e") && shown.contains("200d"),
            "{args:?}: {shown}"
        );
    }
    let shown = stdout(&local(&sandbox, &["audit", "tail"]));
    assert!(shown.contains(r"invoice\u{202e}fdp.exe\u{200d}"), "{shown}");

    let verified = stdout(&local(&sandbox, &["audit", "verify", "--format", "json"]));
    let verified: serde_json::Value =
        serde_json::from_str(&verified).expect("audit verify --format json");
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(
        verified["records"].as_u64(),
        Some(sandbox.audit_records().len() as u64),
        "{verified}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_cannot_be_written_fails_requests_and_shows_in_status() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start();
    let mut admin = daemon.client("admin").await;
    admin.put(put("before")).await.expect("put");
    // The head checkpoint is replaced by renaming a temporary file over it: a directory in
    // its place makes that fail, for root too.
    let head = sandbox.dev_dir().join("data").join("audit.jsonl.head");
    std::fs::remove_file(&head).expect("remove the head");
    std::fs::create_dir(&head).expect("a directory in its place");
    let deadline = Instant::now() + Duration::from_secs(10);
    let failure = loop {
        match admin.put(put("during")).await {
            Err(status) if status.code() == Code::Unavailable => break status,
            other => {
                assert!(Instant::now() < deadline, "the log never failed: {other:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert!(
        failure.message().contains("audit log cannot be written"),
        "{failure:?}"
    );
    let refused = admin
        .get(get("before"))
        .await
        .expect_err("a read fails too");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");

    let status = admin
        .status(pb::StatusRequest {})
        .await
        .expect("status answers although it cannot be audited")
        .into_inner();
    let audit = status.audit.expect("the audit part of status");
    assert_eq!(audit.state, "failed");
    assert!(audit.reason.contains("audit.jsonl.head"), "{audit:?}");
    // The first put's two records at least; the head of its batch is written up to
    // HEAD_INTERVAL later, which may be the write that fails.
    assert!(audit.records >= 2, "{audit:?}");
    let shown = vaultctl_with(&daemon.exports(), &["status"], b"");
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("audit:   FAILED") && shown.contains("audit.jsonl.head"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_get_never_reaches_the_cache() {
    let sandbox = Sandbox::new();
    let daemon = sandbox
        .daemon()
        .config(
            r#"
[[acl]]
principal = "admin"
scopes = ["*"]
operations = ["read", "write", "delete", "list", "seal", "open", "admin"]

[[acl]]
principal = "lister"
scopes = ["global"]
operations = ["list"]
"#,
        )
        .start();
    let mut admin = daemon.client("admin").await;
    admin.put(put("db-password")).await.expect("put");
    admin
        .get(get("db-password"))
        .await
        .expect("get (fills the cache)");
    admin
        .get(get("db-password"))
        .await
        .expect("get (from the cache)");
    let lookups = |s: &pb::StatusResponse| (s.cache_lookups, s.cache_hits);
    let before = admin
        .status(pb::StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert!(lookups(&before).1 >= 1, "{before:?}");

    let mut lister = daemon.client("lister").await;
    let denied = lister
        .get(get("db-password"))
        .await
        .expect_err("no read right");
    assert_eq!(denied.code(), Code::PermissionDenied);
    let after = admin
        .status(pb::StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(
        lookups(&after),
        lookups(&before),
        "the denied get looked in the cache"
    );

    // And an allowed one does (the counter counts).
    admin.get(get("db-password")).await.expect("get");
    let last = admin
        .status(pb::StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert_eq!(last.cache_lookups, before.cache_lookups + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_log_is_refused_at_start_unless_a_new_one_is_asked_for() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start();
    let mut admin = daemon.client("admin").await;
    admin.put(put("k")).await.expect("put");
    assert!(daemon.terminate().success());
    assert_eq!(
        sandbox.verify_audit().expect("verifies").anchor_seq,
        Some(2)
    );

    let log = sandbox.audit_log();
    std::fs::remove_file(&log).expect("rm log");
    std::fs::remove_file(log.with_extension("jsonl.head")).expect("rm head");
    let refused = sandbox
        .daemon()
        .try_start()
        .err()
        .expect("a deleted log is refused");
    assert!(
        refused.contains("missing") && refused.contains("--new-audit-log"),
        "{refused}"
    );

    let daemon = sandbox.daemon().arg("--new-audit-log").start();
    assert!(daemon.terminate().success());
    let records = sandbox.audit_records();
    let first = &records[0];
    assert_eq!(
        (first.seq, first.op.as_str(), first.principal.as_str()),
        (1, "new-audit-log", "vaultd")
    );
    assert!(
        first
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("held 2 records")),
        "{first:?}"
    );
    sandbox.verify_audit().expect("the new log verifies");
    stdout(&local(&sandbox, &["audit", "verify"]));

    // The flag only starts a log where none is.
    let again = sandbox.daemon().arg("--new-audit-log").try_start().err();
    assert!(again.is_some_and(|e| e.contains("exists")));
    let daemon = sandbox.start();
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_checkpoints_in_a_file_catch_records_cut_off_the_log() {
    let sandbox = Sandbox::new();
    let checkpoints = sandbox.root().join("checkpoints.jsonl");
    let daemon = sandbox
        .daemon()
        .config(&format!(
            "[audit]\ncheckpoint_file = \"{}\"\ncheckpoint_interval_secs = 1\n",
            checkpoints.display()
        ))
        .start();
    let mut admin = daemon.client("admin").await;
    for n in 0..5 {
        admin.put(put(&format!("k{n}"))).await.expect("put");
    }
    let status = admin
        .status(pb::StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    let public_key = status.audit.expect("audit").checkpoint_public_key;
    assert!(daemon.terminate().success());
    let printed = stdout(&local(&sandbox, &["audit", "public-key"]));
    assert_eq!(printed.trim(), public_key);

    let file = checkpoints.to_str().expect("utf-8 path");
    let keyless = |sandbox: &Sandbox| {
        local(
            sandbox,
            &[
                "audit",
                "verify",
                "--checkpoints",
                file,
                "--public-key",
                &public_key,
            ],
        )
    };
    let ok = stdout(&keyless(&sandbox));
    assert!(ok.contains("matches its signed checkpoints"), "{ok}");
    let ok = stdout(&local(
        &sandbox,
        &["audit", "verify", "--checkpoints", file],
    ));
    assert!(ok.contains("signed checkpoints ok"), "{ok}");

    // Someone who can write the log cuts its last records (and an auditor without the key
    // cannot check the head): the last checkpoint names records that are gone.
    let log = sandbox.audit_log();
    let text = std::fs::read_to_string(&log).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    let kept = lines[..lines.len() - 2].join("\n") + "\n";
    std::fs::write(&log, kept).expect("cut the log");
    let cut = keyless(&sandbox);
    assert_eq!(cut.status.code(), Some(1), "{cut:?}");
    let stderr = String::from_utf8_lossy(&cut.stderr);
    assert!(
        stderr.contains("signed checkpoint") && stderr.contains("cut"),
        "{stderr}"
    );

    let stages: Vec<Stage> = sandbox.audit_records().iter().map(|r| r.stage).collect();
    assert!(stages.contains(&Stage::Started));
}
