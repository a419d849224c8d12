//! End to end: compare-and-set writes (`PutRequest.expected_version`, `vaultctl set --cas`).
//! Of callers racing with the same expected version exactly one writes; the others get
//! FAILED_PRECONDITION naming the current version, nothing changes for them, and the audit
//! log records each refusal.

mod common;

use common::{Sandbox, code, vaultctl_with};
use proto::v1 as pb;
use tonic::Code;
use vault::audit::Stage;

fn put(value: &[u8], expected_version: Option<u64>) -> pb::PutRequest {
    pb::PutRequest {
        scope: "global".into(),
        key: "config".into(),
        value: value.to_vec(),
        expected_version,
    }
}

fn get() -> pb::GetRequest {
    pb::GetRequest {
        scope: "global".into(),
        key: "config".into(),
        version: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_writers_with_the_same_expected_version_let_exactly_one_win() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start();
    let mut admin = daemon.client("admin").await;

    let result = admin.put(put(b"v0", Some(3))).await;
    assert_eq!(code(&result), Code::FailedPrecondition, "{result:?}");
    let created = admin.put(put(b"v1", Some(0))).await.expect("create-only");
    assert_eq!(created.into_inner().version, 1);

    // Sixteen writers on connections of their own, each expecting version 1.
    let mut writers = Vec::new();
    for n in 0..16u8 {
        let mut client = daemon.client("admin").await;
        writers.push(tokio::spawn(async move {
            client.put(put(&[b'w', n], Some(1))).await
        }));
    }
    let mut won = Vec::new();
    for writer in writers {
        match writer.await.expect("writer task") {
            Ok(reply) => won.push(reply.into_inner().version),
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                assert!(
                    status.message().contains("at version 2, not 1"),
                    "names the current version: {status:?}"
                );
            }
        }
    }
    assert_eq!(won, [2], "exactly one writer wins");
    let value = admin.get(get()).await.expect("get").into_inner();
    assert_eq!(value.version, 2);
    assert_eq!(value.value[0], b'w', "the winner's value");

    // Each refused write is on the audit record with its status.
    let refused = sandbox
        .audit_records()
        .into_iter()
        .filter(|r| r.op == "put" && r.stage == Stage::Outcome && r.status == "FAILED_PRECONDITION")
        .count();
    assert_eq!(refused, 16, "the first refusal and the fifteen lost races");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vaultctl_set_cas_against_the_daemon() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start();
    let exports = daemon.exports();
    let set = |cas: &str, value: &[u8]| {
        vaultctl_with(&exports, &["set", "global", "config", "--cas", cas], value)
    };

    let created = set("0", b"first");
    assert!(created.status.success(), "{created:?}");
    let stale = set("0", b"second");
    assert!(!stale.status.success(), "{stale:?}");
    let stderr = String::from_utf8_lossy(&stale.stderr);
    assert!(stderr.contains("at version 1, not 0"), "{stderr}");
    assert!(
        !stderr.contains("second"),
        "no value in the error: {stderr}"
    );
    let updated = set("1", b"second");
    assert!(updated.status.success(), "{updated:?}");
    assert!(
        String::from_utf8_lossy(&updated.stdout).contains("version 2"),
        "{updated:?}"
    );
    let mut admin = daemon.client("admin").await;
    let value = admin.get(get()).await.expect("get").into_inner();
    assert_eq!((value.version, value.value.as_slice()), (2, &b"second"[..]));
}
