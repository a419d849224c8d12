//! End to end: reading the audit log (`audit`) is a right of its own, apart from key
//! management (`admin`); both see the status; neither may be granted to every principal.

mod common;

use common::{Client, Sandbox, code};
use proto::v1 as pb;
use tonic::Code;

const ACL: &str = r#"
[[acl]]
principal = "keeper"
operations = ["admin"]

[[acl]]
principal = "auditor"
operations = ["audit"]

[[acl]]
principal = "reader"
scopes = ["global"]
operations = ["read"]
"#;

async fn tail(client: &mut Client) -> Code {
    code(&client.audit_tail(pb::AuditTailRequest { count: 10 }).await)
}

async fn verify(client: &mut Client) -> Code {
    code(&client.audit_verify(pb::AuditVerifyRequest {}).await)
}

async fn status(client: &mut Client) -> Code {
    code(&client.status(pb::StatusRequest {}).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_reads_the_log_and_admin_manages_the_keys() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.daemon().config(ACL).start();
    let mut keeper = daemon.client("keeper").await;
    let mut auditor = daemon.client("auditor").await;
    let mut reader = daemon.client("reader").await;

    // The auditor reads and verifies the log and sees the status (KEKs and their health)...
    assert_eq!(tail(&mut auditor).await, Code::Ok);
    assert_eq!(verify(&mut auditor).await, Code::Ok);
    assert_eq!(status(&mut auditor).await, Code::Ok);
    // ...but manages no key.
    let denied = auditor.lock(pb::LockRequest {}).await;
    assert_eq!(code(&denied), Code::PermissionDenied, "{denied:?}");
    let message = denied.expect_err("denied").message().to_owned();
    assert!(message.contains("may not admin"), "{message}");
    assert_eq!(
        code(&auditor.rotate(pb::RotateRequest {}).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(&auditor.kek_check(pb::KekCheckRequest {}).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(&auditor.unlock(pb::UnlockRequest::default()).await),
        Code::PermissionDenied
    );

    // The key keeper manages the keys and sees the status, but reads no audit log.
    assert_eq!(status(&mut keeper).await, Code::Ok);
    assert_eq!(
        code(&keeper.kek_check(pb::KekCheckRequest {}).await),
        Code::Ok
    );
    let denied = keeper.audit_tail(pb::AuditTailRequest { count: 10 }).await;
    assert_eq!(code(&denied), Code::PermissionDenied, "{denied:?}");
    let message = denied.expect_err("denied").message().to_owned();
    assert!(message.contains("may not audit"), "{message}");
    assert_eq!(verify(&mut keeper).await, Code::PermissionDenied);
    keeper.lock(pb::LockRequest {}).await.expect("keeper locks");
    assert_eq!(status(&mut keeper).await, Code::Ok, "status works locked");
    assert_eq!(status(&mut auditor).await, Code::Ok, "for the auditor too");
    keeper
        .unlock(pb::UnlockRequest::default())
        .await
        .expect("keeper unlocks");

    // A data reader has neither.
    assert_eq!(status(&mut reader).await, Code::PermissionDenied);
    assert_eq!(tail(&mut reader).await, Code::PermissionDenied);
    assert_eq!(verify(&mut reader).await, Code::PermissionDenied);

    // The denials are in the log, which the auditor reads.
    let records = auditor
        .audit_tail(pb::AuditTailRequest { count: 100 })
        .await
        .expect("tail")
        .into_inner()
        .records;
    assert!(
        records
            .iter()
            .any(|line| line.contains(r#""principal":"keeper""#)
                && line.contains(r#""op":"audit_tail""#)
                && line.contains(r#""decision":"deny""#)),
        "{records:#?}"
    );
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_admin_may_manage_keys_and_read_the_log() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start();
    let mut admin = daemon.client("admin").await;
    assert_eq!(tail(&mut admin).await, Code::Ok);
    assert_eq!(verify(&mut admin).await, Code::Ok);
    assert_eq!(status(&mut admin).await, Code::Ok);
    assert_eq!(
        code(&admin.kek_check(pb::KekCheckRequest {}).await),
        Code::Ok
    );
    assert!(daemon.terminate().success());
}

#[test]
fn admin_or_audit_for_every_principal_is_refused_at_start() {
    for op in ["admin", "audit"] {
        let sandbox = Sandbox::new();
        let config = format!("[[acl]]\nprincipal = \"*\"\noperations = [\"{op}\"]\n");
        let failure = match sandbox.daemon().config(&config).try_start() {
            Ok(daemon) => {
                daemon.terminate();
                panic!("vaultd started with {op} granted to every principal");
            }
            Err(failure) => failure,
        };
        assert!(
            failure.contains("acl[0].operations")
                && failure.contains(&format!("{op} cannot be granted to every principal")),
            "{failure}"
        );
        // Mixed in with data operations too.
        let config = format!(
            "[[acl]]\nprincipal = \"*\"\nscopes = [\"{{self}}\"]\noperations = [\"read\", \"{op}\"]\n"
        );
        let failure = match sandbox.daemon().config(&config).try_start() {
            Ok(daemon) => {
                daemon.terminate();
                panic!("vaultd started with read and {op} granted to every principal");
            }
            Err(failure) => failure,
        };
        assert!(
            failure.contains("cannot be granted to every principal"),
            "{failure}"
        );
    }
}
