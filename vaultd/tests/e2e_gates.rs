//! End to end: the gates other than identity. A locked vault, the rate limit, size limits
//! and name validation, each with its status code.

mod common;

use std::time::Instant;

use common::{Sandbox, code};
use proto::v1 as pb;
use tonic::Code;
use vault::audit::Decision;

fn get(scope: &str, key: &str) -> pb::GetRequest {
    pb::GetRequest {
        scope: scope.into(),
        key: key.into(),
        version: None,
    }
}

fn put(scope: &str, key: &str, value: &[u8]) -> pb::PutRequest {
    pb::PutRequest {
        scope: scope.into(),
        key: key.into(),
        value: value.to_vec(),
        expected_version: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_vault_refuses_until_unlocked() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start();
    let mut admin = daemon.client("admin").await;
    admin
        .put(put("global", "db", b"s3cret"))
        .await
        .expect("put");
    // Read once so that the value is in the daemon's cache: locking must drop it too.
    admin.get(get("global", "db")).await.expect("get");

    admin.lock(pb::LockRequest {}).await.expect("lock");
    let status = admin
        .status(pb::StatusRequest {})
        .await
        .expect("status works while locked")
        .into_inner();
    assert!(status.locked);
    let result = admin.get(get("global", "db")).await;
    assert_eq!(code(&result), Code::FailedPrecondition, "{result:?}");
    let result = admin.put(put("global", "db", b"other")).await;
    assert_eq!(code(&result), Code::FailedPrecondition, "{result:?}");
    let result = admin
        .seal(pb::SealRequest {
            context: "ctx".into(),
            plaintext: b"data".to_vec(),
        })
        .await;
    assert_eq!(code(&result), Code::FailedPrecondition, "{result:?}");

    admin
        .unlock(pb::UnlockRequest::default())
        .await
        .expect("unlock");
    let reply = admin
        .get(get("global", "db"))
        .await
        .expect("get after unlock")
        .into_inner();
    assert_eq!(reply.value, b"s3cret");
    assert_eq!(reply.version, 1);
    assert!(
        !admin
            .status(pb::StatusRequest {})
            .await
            .expect("status")
            .into_inner()
            .locked
    );
    let denied = sandbox
        .audit_records()
        .into_iter()
        .filter(|r| r.decision == Decision::Deny && r.status == "FAILED_PRECONDITION")
        .count();
    assert_eq!(denied, 3, "each refused call is audited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_answers_resource_exhausted() {
    // In memory: every call, refused or not, waits for its audit record's fsync; on a slow
    // disk 20 calls would take long enough to refill the bucket.
    let sandbox = Sandbox::in_memory();
    let daemon = sandbox
        .daemon()
        .env("VAULTD_RATE_PER_SECOND", 5)
        .env("VAULTD_BURST", 5)
        .start();
    let mut admin = daemon.client("admin").await;
    let started = Instant::now();
    let mut codes = Vec::new();
    for _ in 0..20 {
        codes.push(code(&admin.get(get("global", "absent")).await));
    }
    let took = started.elapsed().as_secs_f64();
    let exhausted = codes
        .iter()
        .filter(|c| **c == Code::ResourceExhausted)
        .count();
    let passed = codes.iter().filter(|c| **c == Code::NotFound).count();
    assert_eq!(exhausted + passed, 20, "{codes:?}");
    assert!(exhausted > 0, "{codes:?} in {took:.2} s");
    // The burst passes, then 5 per second at most.
    assert!(passed >= 5, "{codes:?}");
    let allowed = 5.0 + 5.0 * took + 1.0;
    assert!(
        passed as f64 <= allowed,
        "{passed} passed in {took:.2} s: {codes:?}"
    );
    let records = sandbox.audit_records();
    assert!(
        records
            .iter()
            .any(|r| r.status == "RESOURCE_EXHAUSTED" && r.decision == Decision::Deny),
        "the refusals are audited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_and_names_are_checked() {
    const MAX_SECRET: usize = 1024;
    const MAX_MESSAGE: usize = 4096;
    let sandbox = Sandbox::new();
    let daemon = sandbox
        .daemon()
        .env("VAULTD_MAX_SECRET_BYTES", MAX_SECRET)
        .env("VAULTD_MAX_MESSAGE_BYTES", MAX_MESSAGE)
        .start();
    let mut admin = daemon.client("admin").await;

    let at_limit = vec![7u8; MAX_SECRET];
    admin
        .put(put("global", "big", &at_limit))
        .await
        .expect("a value at the limit is stored");
    let result = admin
        .put(put("global", "big", &vec![7u8; MAX_SECRET + 1]))
        .await;
    assert_eq!(code(&result), Code::InvalidArgument, "{result:?}");

    // A message over max_message_bytes is refused before it is decoded: it never reaches
    // the gates, so the audit log does not grow.
    let records = sandbox.audit_records().len();
    let result = admin
        .put(put("global", "big", &vec![7u8; MAX_MESSAGE + 1]))
        .await;
    assert_ne!(code(&result), Code::Ok, "{result:?}");
    let result = admin
        .seal(pb::SealRequest {
            context: "ctx".into(),
            plaintext: vec![1u8; 4 * MAX_MESSAGE],
        })
        .await;
    assert_ne!(code(&result), Code::Ok, "{result:?}");
    assert_eq!(sandbox.audit_records().len(), records);

    for (scope, key) in [
        ("nosuch:x", "k"),
        ("global", "../x"),
        ("", "k"),
        ("global", ""),
        ("principal:a/b", "k"),
        ("global", "a b"),
    ] {
        let result = admin.put(put(scope, key, b"v")).await;
        assert_eq!(
            code(&result),
            Code::InvalidArgument,
            "put {scope:?} {key:?}: {result:?}"
        );
        let result = admin.get(get(scope, key)).await;
        assert_eq!(
            code(&result),
            Code::InvalidArgument,
            "get {scope:?} {key:?}: {result:?}"
        );
    }

    // Nothing of the refused writes was stored, and the daemon still serves.
    let reply = admin
        .get(get("global", "big"))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(reply.value, at_limit);
    assert_eq!(reply.version, 1);
    let listed = admin
        .list(pb::ListRequest {
            scope: None,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .secrets;
    assert_eq!(listed.len(), 1, "{listed:?}");
}
