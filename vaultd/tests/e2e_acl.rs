//! End to end: who may call. ACL rules and `{self}` scopes, audited denials, revocation
//! while the daemon runs, and clients the TLS handshake refuses.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Daemon, Sandbox, assert_handshake_refused, client_on, code};
use proto::v1 as pb;
use tonic::Code;
use vault::audit::Decision;

const ACL: &str = r#"
[[acl]]
principal = "admin"
scopes = ["*"]
operations = ["read", "write", "delete", "list", "seal", "open", "admin", "audit"]

[[acl]]
principal = "alice"
scopes = ["{self}"]
operations = ["read", "write"]

[[acl]]
principal = "alice"
scopes = ["global"]
operations = ["read"]

[[acl]]
principal = "bob"
scopes = ["skill:*"]
operations = ["read", "write"]

[[acl]]
principal = "carol"
scopes = ["global"]
operations = ["read"]
"#;

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

async fn value_of(client: &mut Client, scope: &str, key: &str) -> Vec<u8> {
    client
        .get(get(scope, key))
        .await
        .unwrap_or_else(|s| panic!("get {scope} {key}: {s:?}"))
        .into_inner()
        .value
}

fn started(sandbox: &Sandbox) -> Daemon {
    sandbox.daemon().config(ACL).start()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn principals_get_what_their_rules_allow() {
    let sandbox = Sandbox::new();
    let daemon = started(&sandbox);
    let mut admin = daemon.client("admin").await;
    let mut alice = daemon.client("alice").await;
    let mut bob = daemon.client("bob").await;

    admin
        .put(put("global", "motd", b"hello"))
        .await
        .expect("admin writes global");
    alice
        .put(put("principal:alice", "token", b"alice's"))
        .await
        .expect("alice writes her own scope");
    bob.put(put("skill:weather", "api-key", b"bob's"))
        .await
        .expect("bob writes a skill scope");

    assert_eq!(value_of(&mut alice, "global", "motd").await, b"hello");
    assert_eq!(
        value_of(&mut alice, "principal:alice", "token").await,
        b"alice's"
    );
    assert_eq!(
        value_of(&mut bob, "skill:weather", "api-key").await,
        b"bob's"
    );

    // Alice may only read global, and only her own principal scope.
    assert_eq!(
        code(&alice.put(put("global", "motd", b"defaced")).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(&alice.get(get("skill:weather", "api-key")).await),
        Code::PermissionDenied
    );
    // Bob may not read alice's scope, nor global; admin's value is untouched.
    let denied = bob.get(get("principal:alice", "token")).await;
    assert_eq!(code(&denied), Code::PermissionDenied, "{denied:?}");
    assert_eq!(
        code(&bob.get(get("global", "motd")).await),
        Code::PermissionDenied
    );
    assert_eq!(value_of(&mut admin, "global", "motd").await, b"hello");

    // The denial is in the audit log, under bob's name, both in the file and over the API.
    let records = sandbox.audit_records();
    let bob_denied = records.iter().find(|r| {
        r.principal == "bob"
            && r.op == "get"
            && r.scope.as_deref() == Some("principal:alice")
            && r.key.as_deref() == Some("token")
    });
    let bob_denied = bob_denied.unwrap_or_else(|| panic!("no record of bob's get: {records:#?}"));
    assert_eq!(bob_denied.decision, Decision::Deny);
    assert_eq!(bob_denied.status, "PERMISSION_DENIED");
    let tail = admin
        .audit_tail(pb::AuditTailRequest { count: 100 })
        .await
        .expect("admin reads the audit tail")
        .into_inner()
        .records;
    assert!(
        tail.iter().any(|line| line.contains(r#""principal":"bob""#)
            && line.contains(r#""scope":"principal:alice""#)
            && line.contains(r#""decision":"deny""#)),
        "AuditTail: {tail:#?}"
    );
    // Only the admin, who has `audit`, may read the log.
    assert_eq!(
        code(&alice.audit_tail(pb::AuditTailRequest { count: 1 }).await),
        Code::PermissionDenied
    );

    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_certificate_is_refused_while_the_daemon_runs() {
    let sandbox = Sandbox::new();
    let daemon = started(&sandbox);
    let mut admin = daemon.client("admin").await;
    admin
        .put(put("global", "motd", b"hello"))
        .await
        .expect("admin writes global");

    let issued = sandbox.pki().issue_client("carol").expect("issue carol");
    let mut carol = client_on(
        daemon
            .connect(daemon.tls_with(&issued.cert, &issued.key))
            .await
            .expect("carol connects"),
    );
    assert_eq!(value_of(&mut carol, "global", "motd").await, b"hello");

    sandbox
        .pki()
        .revoke(&issued.fingerprint)
        .expect("revoke carol");
    // The daemon polls the list every 500 ms: the connection opened before the revocation is
    // refused by the gates soon after.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let result = carol.get(get("global", "motd")).await;
        match code(&result) {
            Code::Ok => {}
            Code::Unauthenticated => break,
            other => panic!("a revoked certificate got {other:?}: {result:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "carol's certificate still accepted 10 s after its revocation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last = sandbox.audit_records();
    // A new connection with it is refused in the handshake; others are not affected.
    assert_handshake_refused(
        &sandbox,
        &daemon,
        daemon.tls_with(&issued.cert, &issued.key),
        "carol, revoked",
    )
    .await;
    assert_eq!(value_of(&mut admin, "global", "motd").await, b"hello");
    assert!(
        last.iter().any(|r| r.principal == "carol"
            && r.op == "get"
            && r.decision == Decision::Deny
            && r.status == "UNAUTHENTICATED"),
        "{last:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_principal_is_unauthenticated() {
    let sandbox = Sandbox::new();
    let daemon = started(&sandbox);
    // A valid certificate from the vault's CA, for a principal no rule names.
    let mut mallory = daemon.client("mallory").await;
    let result = mallory.get(get("global", "motd")).await;
    assert_eq!(code(&result), Code::Unauthenticated, "{result:?}");
    let result = mallory.status(pb::StatusRequest {}).await;
    assert_eq!(code(&result), Code::Unauthenticated, "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_refuses_clients_without_a_certificate_of_the_vault_ca() {
    let sandbox = Sandbox::new();
    let daemon = started(&sandbox);
    // Something in the log first, so that "nothing was added" means something.
    let mut admin = daemon.client("admin").await;
    admin
        .status(pb::StatusRequest {})
        .await
        .expect("admin status");

    assert_handshake_refused(
        &sandbox,
        &daemon,
        daemon.tls_without_identity(),
        "no certificate",
    )
    .await;

    // A certificate for a principal the ACL knows, signed by another CA.
    let other = tempfile::tempdir().expect("tempdir");
    let other_ca = pki::PkiDir::new(other.path().join("tls"));
    other_ca
        .create(&["localhost".into(), "127.0.0.1".into()])
        .expect("another CA");
    let forged = other_ca
        .issue_client("admin")
        .expect("issue from the other CA");
    assert_handshake_refused(
        &sandbox,
        &daemon,
        daemon.tls_with(&forged.cert, &forged.key),
        "another CA",
    )
    .await;

    // The daemon still serves its real clients.
    admin
        .status(pb::StatusRequest {})
        .await
        .expect("admin status after the refused handshakes");
}
