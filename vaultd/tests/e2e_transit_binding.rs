//! End to end: transit contexts. `{self}` in a context pattern gives each caller a namespace
//! of its own; a context two principals may use is shared between them unless a rule binds
//! it to the caller (`bind_caller = true`), which puts the caller's principal in the
//! envelope's AAD.

mod common;

use common::{Client, Sandbox};
use proto::v1 as pb;
use tonic::Code;

/// Each caller's own contexts, `<id>-*`.
const OWN_CONTEXTS: &str = r#"
[[acl]]
principal = "*"
scopes = ["transit"]
keys = ["{self}-*"]
operations = ["seal", "open"]
"#;

/// The same, a shared context and two bound ones.
const ACL: &str = r#"
[[acl]]
principal = "*"
scopes = ["transit"]
keys = ["{self}-*"]
operations = ["seal", "open"]

[[acl]]
principal = "*"
scopes = ["transit"]
keys = ["shared"]
operations = ["seal", "open"]

[[acl]]
principal = "*"
scopes = ["transit"]
keys = ["backups", "reports-*"]
operations = ["seal", "open"]
bind_caller = true
"#;

async fn seal(client: &mut Client, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, Code> {
    client
        .seal(pb::SealRequest {
            context: context.into(),
            plaintext: plaintext.to_vec(),
        })
        .await
        .map(|r| r.into_inner().envelope)
        .map_err(|s| s.code())
}

async fn open(client: &mut Client, context: &str, envelope: &[u8]) -> Result<Vec<u8>, Code> {
    client
        .open(pb::OpenRequest {
            context: context.into(),
            envelope: envelope.to_vec(),
        })
        .await
        .map(|r| r.into_inner().plaintext)
        .map_err(|s| s.code())
}

async fn rewrap(client: &mut Client, context: &str, envelope: &[u8]) -> Result<Vec<u8>, Code> {
    client
        .rewrap(pb::RewrapRequest {
            context: context.into(),
            envelope: envelope.to_vec(),
        })
        .await
        .map(|r| r.into_inner().envelope)
        .map_err(|s| s.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_in_a_context_pattern_is_each_callers_own_namespace() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.daemon().config(OWN_CONTEXTS).start();
    let mut alice = daemon.client("alice").await;
    let mut bob = daemon.client("bob").await;

    let sealed = seal(&mut alice, "alice-notes", b"alice's notes")
        .await
        .expect("alice seals under her own prefix");
    assert_eq!(
        open(&mut alice, "alice-notes", &sealed)
            .await
            .expect("open"),
        b"alice's notes"
    );
    // Bob may not use alice's namespace, neither to open nor to seal, but has his own.
    assert_eq!(
        open(&mut bob, "alice-notes", &sealed).await,
        Err(Code::PermissionDenied)
    );
    assert_eq!(
        seal(&mut bob, "alice-notes", b"x").await,
        Err(Code::PermissionDenied)
    );
    seal(&mut bob, "bob-notes", b"bob's")
        .await
        .expect("bob seals under his own prefix");
    // `{self}` is no literal: nobody has a context named after it.
    assert_eq!(
        seal(&mut alice, "{self}-notes", b"x").await,
        Err(Code::PermissionDenied)
    );
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_context_opens_only_for_the_caller_that_sealed() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.daemon().config(ACL).start();
    let mut alice = daemon.client("alice").await;
    let mut bob = daemon.client("bob").await;

    // A shared context: what alice seals, bob (allowed on it too) opens. Documented.
    let shared = seal(&mut alice, "shared", b"for everyone on shared")
        .await
        .expect("seal shared");
    assert_eq!(
        open(&mut bob, "shared", &shared).await.expect("bob opens"),
        b"for everyone on shared"
    );

    // A bound context: both may use it, but each only for themselves.
    for context in ["backups", "reports-2024"] {
        let sealed = seal(&mut alice, context, b"alice's backup key")
            .await
            .expect("alice seals");
        assert_eq!(
            open(&mut alice, context, &sealed)
                .await
                .expect("alice opens"),
            b"alice's backup key"
        );
        assert_eq!(
            open(&mut bob, context, &sealed).await,
            Err(Code::InvalidArgument),
            "{context}: bob is allowed on the context but the envelope is alice's"
        );
        assert_eq!(
            rewrap(&mut bob, context, &sealed).await,
            Err(Code::InvalidArgument)
        );
        // Alice's rewrap keeps the binding.
        let rewrapped = rewrap(&mut alice, context, &sealed)
            .await
            .expect("alice rewraps");
        assert_eq!(
            open(&mut alice, context, &rewrapped).await.expect("open"),
            b"alice's backup key"
        );
        assert_eq!(
            open(&mut bob, context, &rewrapped).await,
            Err(Code::InvalidArgument)
        );
        // Bob's own data under the same context is his.
        let bobs = seal(&mut bob, context, b"bob's").await.expect("bob seals");
        assert_eq!(
            open(&mut bob, context, &bobs).await.expect("open"),
            b"bob's"
        );
        assert_eq!(
            open(&mut alice, context, &bobs).await,
            Err(Code::InvalidArgument)
        );
    }
    // A bound envelope moved to a shared context does not open there either.
    let bound = seal(&mut alice, "backups", b"k").await.expect("seal");
    assert_eq!(
        open(&mut alice, "shared", &bound).await,
        Err(Code::InvalidArgument)
    );

    // A generated data key's sealed copy is bound the same way.
    let generated = alice
        .generate_data_key(pb::GenerateDataKeyRequest {
            context: "backups".into(),
            length: 32,
        })
        .await
        .expect("generate")
        .into_inner();
    assert_eq!(
        open(&mut alice, "backups", &generated.sealed_key)
            .await
            .expect("alice opens her data key"),
        generated.plaintext_key
    );
    assert_eq!(
        open(&mut bob, "backups", &generated.sealed_key).await,
        Err(Code::InvalidArgument)
    );
    assert!(daemon.terminate().success());
}

#[test]
fn misplaced_bindings_and_braces_are_refused_at_start() {
    let cases = [
        (
            "[[acl]]\nprincipal = \"*\"\nscopes = [\"global\"]\noperations = [\"read\"]\nbind_caller = true\n",
            "acl[0].bind_caller",
            "scopes must be [\"transit\"]",
        ),
        (
            "[[acl]]\nprincipal = \"*\"\nscopes = [\"transit\", \"global\"]\noperations = [\"seal\"]\nbind_caller = true\n",
            "acl[0].bind_caller",
            "scopes must be [\"transit\"]",
        ),
        (
            "[[acl]]\nprincipal = \"alice\"\nscopes = [\"transit\"]\noperations = [\"read\"]\nbind_caller = true\n",
            "acl[0].bind_caller",
            "list seal or open",
        ),
        (
            "[[acl]]\nprincipal = \"*\"\nscopes = [\"transit\"]\nkeys = [\"{caller}-*\"]\noperations = [\"seal\"]\n",
            "acl[0].keys[0]",
            "{self} (the caller's principal id) is the only substitution",
        ),
        (
            "[[acl]]\nprincipal = \"*\"\nscopes = [\"transit\"]\nkeys = [\"{self\"]\noperations = [\"seal\"]\n",
            "acl[0].keys[0]",
            "brace that is not part of {self}",
        ),
    ];
    for (config, field, reason) in cases {
        let sandbox = Sandbox::new();
        let failure = match sandbox.daemon().config(config).try_start() {
            Ok(daemon) => {
                daemon.terminate();
                panic!("vaultd started with {config}");
            }
            Err(failure) => failure,
        };
        assert!(
            failure.contains(field) && failure.contains(reason),
            "{config}: {failure}"
        );
    }
}
