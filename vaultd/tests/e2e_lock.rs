//! End to end: `Lock` drops the root KEKs' key material, and `Unlock` builds the KEKs again
//! from their sources, so an admin certificate alone does not unlock a vault whose KEK
//! sources are gone; a passphrase KEK takes its passphrase through the API.

mod common;

use common::{Sandbox, code, vaultctl};
use proto::v1 as pb;
use tonic::Code;

fn put(key: &str, value: &[u8]) -> pb::PutRequest {
    pb::PutRequest {
        scope: "global".into(),
        key: key.into(),
        value: value.to_vec(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlock_reads_the_key_file_again() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start();
    let mut admin = daemon.client("admin").await;
    admin.put(put("db", b"s3cret")).await.expect("put");
    admin.lock(pb::LockRequest {}).await.expect("lock");

    // The key file is gone while the vault is locked: the daemon kept no copy of its key.
    let key_file = sandbox.dev_dir().join("keys").join("kek.key");
    let moved = sandbox.root().join("kek.key.away");
    std::fs::rename(&key_file, &moved).expect("move the key file away");
    let result = admin.unlock(pb::UnlockRequest::default()).await;
    assert_eq!(code(&result), Code::FailedPrecondition, "{result:?}");
    let message = result.expect_err("refused").message().to_owned();
    assert!(message.contains("kek.key"), "{message}");
    let result = admin.get(get("db")).await;
    assert_eq!(
        code(&result),
        Code::FailedPrecondition,
        "still locked: {result:?}"
    );

    std::fs::rename(&moved, &key_file).expect("put the key file back");
    admin
        .unlock(pb::UnlockRequest::default())
        .await
        .expect("unlock with the key file back");
    let reply = admin.get(get("db")).await.expect("get").into_inner();
    assert_eq!(reply.value, b"s3cret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passphrase_kek_unlocks_with_the_passphrase_given() {
    let sandbox = Sandbox::new();
    // A first start makes the development vault; a passphrase KEK is added beside its key
    // file while no daemon runs.
    sandbox.start().terminate();
    let passphrase_file = sandbox.root().join("passphrase");
    std::fs::write(&passphrase_file, "correct horse battery staple\n").expect("write");
    let data = sandbox.dev_dir().join("data");
    let added = std::process::Command::new(vaultctl())
        .args(["--vault"])
        .arg(&data)
        .args(["kek", "add"])
        // Cheap Argon2 parameters: the tests run unoptimised.
        .arg(format!(
            "passphrase:file={};m=8192;t=1;p=1",
            passphrase_file.display()
        ))
        .env_remove("VAULTCTL_ADDR")
        .output()
        .expect("run vaultctl");
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );

    let daemon = sandbox.start();
    let mut admin = daemon.client("admin").await;
    admin.put(put("db", b"s3cret")).await.expect("put");
    admin.lock(pb::LockRequest {}).await.expect("lock");

    // Both sources are gone: the key file, and the passphrase file now holds another one.
    let key_file = sandbox.dev_dir().join("keys").join("kek.key");
    std::fs::remove_file(&key_file).expect("remove the key file");
    std::fs::write(&passphrase_file, "wrong\n").expect("write");
    let result = admin.unlock(pb::UnlockRequest::default()).await;
    assert_eq!(code(&result), Code::FailedPrecondition, "{result:?}");
    let wrong = admin
        .unlock(pb::UnlockRequest {
            passphrase: b"not it".to_vec(),
        })
        .await;
    assert_eq!(code(&wrong), Code::FailedPrecondition, "{wrong:?}");
    assert!(
        wrong
            .expect_err("wrong")
            .message()
            .contains("wrong passphrase"),
        "the error says the passphrase is wrong"
    );

    admin
        .unlock(pb::UnlockRequest {
            passphrase: b"correct horse battery staple".to_vec(),
        })
        .await
        .expect("unlock with the passphrase given");
    let reply = admin.get(get("db")).await.expect("get").into_inner();
    assert_eq!(reply.value, b"s3cret");

    let stderr = daemon.stderr();
    let audit = std::fs::read_to_string(sandbox.audit_log()).expect("audit log");
    for text in [&stderr, &audit] {
        assert!(!text.contains("correct horse"), "the passphrase leaked");
        assert!(!text.contains("not it"), "a passphrase leaked");
    }
}
