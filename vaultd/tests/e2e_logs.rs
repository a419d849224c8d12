//! End to end: the daemon's logs. At debug level a whole run (secrets written and read,
//! transit, data keys, lock and unlock with a passphrase, a wrong passphrase) logs every
//! request with its principal and outcome, and none of the values, plaintexts, keys or
//! passphrases used, in any common encoding. Lines carry RFC 3339 times and real levels, as
//! text or JSON.

mod common;

use base64::Engine;
use common::{Sandbox, vaultctl};
use proto::v1 as pb;

const PASSPHRASE: &str = "tr0ub4dor-passphrase-91c4";
const WRONG_PASSPHRASE: &str = "not-the-passphrase-5e0a";

/// Every encoding a value could leak in: as text, hex (either case) and base64.
fn encodings(value: &[u8]) -> Vec<String> {
    let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
    let mut forms = vec![
        hex.to_ascii_uppercase(),
        hex,
        base64::engine::general_purpose::STANDARD.encode(value),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(value),
    ];
    if let Ok(text) = std::str::from_utf8(value) {
        forms.push(text.to_owned());
    }
    forms
}

/// RFC 3339 in UTC as the logs print it: `2026-01-02T03:04:05.678901Z`.
fn is_rfc3339_utc(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| range.into_iter().all(|i| b[i].is_ascii_digit());
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && text.ends_with('Z')
}

/// A development vault with a passphrase KEK (its file in the sandbox) beside its key file.
fn sandbox_with_passphrase() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.start().terminate();
    let passphrase_file = sandbox.root().join("passphrase");
    std::fs::write(&passphrase_file, format!("{PASSPHRASE}\n")).expect("write");
    let added = std::process::Command::new(vaultctl())
        .arg("--vault")
        .arg(sandbox.vault_dir())
        .args(["kek", "add"])
        // Cheap Argon2 parameters: the tests run unoptimised.
        .arg(format!(
            "passphrase:file={};m=8192;t=1;p=1",
            passphrase_file.display()
        ))
        .env_remove("VAULT_ADDR")
        .output()
        .expect("run vaultctl");
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    sandbox
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_of_a_run_hold_no_secret() {
    let sandbox = sandbox_with_passphrase();
    let daemon = sandbox.daemon().env("VAULTD_LOG", "debug").start();
    // Unlock must take the passphrase through the API: its file goes once the KEKs are built.
    std::fs::remove_file(sandbox.root().join("passphrase")).expect("remove the passphrase file");
    let mut admin = daemon.client("admin").await;
    let mut secrets: Vec<Vec<u8>> = vec![PASSPHRASE.into(), WRONG_PASSPHRASE.into()];

    let value = b"db-password-7f3a9c2e".to_vec();
    let binary = vec![
        0x9c, 0x01, 0xfe, 0x7a, 0x33, 0xd2, 0x48, 0x11, 0xe0, 0x5b, 0xa7, 0x6c,
    ];
    for (key, value) in [("db", &value), ("blob", &binary)] {
        admin
            .put(pb::PutRequest {
                scope: "global".into(),
                key: key.into(),
                value: value.clone(),
                expected_version: None,
            })
            .await
            .expect("put");
        let read = admin
            .get(pb::GetRequest {
                scope: "global".into(),
                key: key.into(),
                version: None,
            })
            .await
            .expect("get")
            .into_inner();
        assert_eq!(&read.value, value);
    }
    secrets.extend([value.clone(), binary.clone()]);

    let plaintext = b"transit-plaintext-c81d42".to_vec();
    let sealed = admin
        .seal(pb::SealRequest {
            context: "app".into(),
            plaintext: plaintext.clone(),
        })
        .await
        .expect("seal")
        .into_inner()
        .envelope;
    let rewrapped = admin
        .rewrap(pb::RewrapRequest {
            context: "app".into(),
            envelope: sealed,
        })
        .await
        .expect("rewrap")
        .into_inner()
        .envelope;
    let opened = admin
        .open(pb::OpenRequest {
            context: "app".into(),
            envelope: rewrapped,
        })
        .await
        .expect("open")
        .into_inner()
        .plaintext;
    assert_eq!(opened, plaintext);
    let data_key = admin
        .generate_data_key(pb::GenerateDataKeyRequest {
            context: "app".into(),
            length: 32,
        })
        .await
        .expect("data key")
        .into_inner()
        .plaintext_key;
    secrets.extend([plaintext, data_key]);

    admin.lock(pb::LockRequest {}).await.expect("lock");
    // The key file is moved away: only the passphrase can unlock.
    let key_file = sandbox.dev_dir().join("keys").join("kek.key");
    let moved = sandbox.root().join("kek.key.away");
    std::fs::rename(&key_file, &moved).expect("move the key file away");
    let wrong = admin
        .unlock(pb::UnlockRequest {
            passphrase: WRONG_PASSPHRASE.into(),
        })
        .await;
    assert!(wrong.is_err(), "{wrong:?}");
    admin
        .unlock(pb::UnlockRequest {
            passphrase: PASSPHRASE.into(),
        })
        .await
        .expect("unlock with the passphrase");
    std::fs::rename(&moved, &key_file).expect("put the key file back");
    let key_bytes = std::fs::read(&key_file).expect("the KEK file");
    secrets.push(key_bytes);
    let read = admin.get(pb::GetRequest {
        scope: "global".into(),
        key: "db".into(),
        version: None,
    });
    assert_eq!(read.await.expect("get").into_inner().value, value);
    daemon.terminate();

    let logs = std::fs::read_to_string(sandbox.root().join("vaultd-1.stderr")).expect("logs");
    // The run was logged at debug level, with who asked what and how it ended...
    assert!(logs.contains(" DEBUG "), "no debug lines:\n{logs}");
    for needle in [
        "method=\"put\"",
        "method=\"unlock\"",
        "principal=\"admin\"",
        "outcome=\"OK\"",
        "outcome=\"FAILED_PRECONDITION\"",
        "answered",
    ] {
        assert!(logs.contains(needle), "{needle} not in:\n{logs}");
    }
    // ...and nothing secret.
    for secret in &secrets {
        for form in encodings(secret) {
            assert!(!logs.contains(&form), "{form:?} is in the logs:\n{logs}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_lines_have_rfc3339_times_and_info_hides_debug() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start();
    daemon
        .client("admin")
        .await
        .status(pb::StatusRequest {})
        .await
        .expect("status");
    let logs = daemon.stderr();
    daemon.terminate();
    assert!(!logs.is_empty());
    for line in logs.lines() {
        let time = line.split(' ').next().unwrap_or_default();
        assert!(is_rfc3339_utc(time), "{line}");
    }
    assert!(logs.contains(" INFO "), "{logs}");
    assert!(!logs.contains(" DEBUG "), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_carry_time_level_and_the_request_span() {
    let sandbox = Sandbox::new();
    let daemon = sandbox
        .daemon()
        .arg("--log-format")
        .arg("json")
        .env("VAULTD_LOG", "debug")
        .start();
    daemon
        .client("admin")
        .await
        .status(pb::StatusRequest {})
        .await
        .expect("status");
    daemon.terminate();
    let logs = std::fs::read_to_string(sandbox.root().join("vaultd-0.stderr")).expect("logs");
    let mut answered = 0;
    for line in logs.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let time = event["timestamp"].as_str().unwrap_or_default();
        assert!(is_rfc3339_utc(time), "{line}");
        let level = event["level"].as_str().unwrap_or_default();
        assert!(
            ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&level),
            "{line}"
        );
        if event["fields"]["message"] == "answered" {
            assert_eq!(event["level"], "DEBUG", "{line}");
            assert_eq!(event["span"]["method"], "status", "{line}");
            assert_eq!(event["span"]["principal"], "admin", "{line}");
            assert_eq!(event["span"]["outcome"], "OK", "{line}");
            answered += 1;
        }
    }
    assert_eq!(answered, 1, "{logs}");
}
