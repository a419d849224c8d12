//! The OS keystore provider's own tests, on a private gnome-keyring per test: it never
//! replaces an entry, `discard_created` (a failed init) removes an entry it made and no
//! other, and a missing entry, an entry of another program and a locked keyring are clear
//! errors (the locked one fast, never a hang); and the fixture's skip rule.
#![forbid(unsafe_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use kek_providers::{BuiltKek, Created, Error, KekEnv};
use keystore_tests::in_unlocked_keyring;

fn env(dir: &Path) -> KekEnv<'_> {
    KekEnv { vault_dir: dir }
}

fn create(uri: &str) -> Result<BuiltKek, Error> {
    kek_providers::create(uri, &env(Path::new("/nonexistent")))
}

fn open(uri: &str) -> Result<BuiltKek, Error> {
    kek_providers::open(uri, &env(Path::new("/nonexistent")))
}

#[test]
fn create_stores_a_random_key_and_never_replaces_an_entry() {
    in_unlocked_keyring(|_| {
        // The defaults, in canonical form.
        let built = create("keyring:").expect("create the default entry");
        assert_eq!(built.uri, "keyring:service=vault;account=kek");
        assert_eq!(built.created, Some(created("vault", "kek")));
        let key = keystore_tests::lookup("vault", "kek").expect("the entry is there");
        assert_eq!(key.len(), 32);
        let assurance = built.provider.assurance();
        assert!(
            !assurance.hardware && !assurance.non_exportable,
            "{assurance}"
        );
        assert!(built.provider.computes_in_process());

        let err = create("keyring:account=kek").expect_err("the entry exists");
        assert!(matches!(err, Error::KeystoreEntryExists { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("already has an entry service=vault account=kek")
                && message.contains("never replaces one"),
            "{message}"
        );
        assert_eq!(keystore_tests::lookup("vault", "kek"), Some(key));
        let reopened = open(&built.uri).expect("open the entry");
        assert_eq!(reopened.provider.id(), built.provider.id());

        // Another entry is another key, with another id.
        let other = create("keyring:service=vault;account=other").expect("another entry");
        assert_ne!(other.provider.id(), built.provider.id());
    });
}

fn created(service: &str, account: &str) -> Created {
    Created::KeystoreEntry {
        service: service.into(),
        account: account.into(),
    }
}

#[test]
fn discard_created_removes_the_new_entry_and_only_that() {
    in_unlocked_keyring(|_| {
        keystore_tests::store("vault-test", "neighbour", b"left alone");
        let built = create("keyring:service=vault-test;account=discard").expect("create");
        assert_eq!(built.created, Some(created("vault-test", "discard")));
        // Opened, the same entry is not the caller's to remove.
        let opened = open(&built.uri).expect("open");
        assert_eq!(opened.created, None);
        kek_providers::discard_created(&[opened]);
        assert!(keystore_tests::lookup("vault-test", "discard").is_some());

        kek_providers::discard_created(std::slice::from_ref(&built));
        assert_eq!(keystore_tests::lookup("vault-test", "discard"), None);
        assert_eq!(
            keystore_tests::lookup("vault-test", "neighbour").as_deref(),
            Some(&b"left alone"[..])
        );
        // Gone already: nothing to do, no error.
        kek_providers::discard_created(&[built]);
        create("keyring:service=vault-test;account=discard").expect("create again");
    });
}

#[test]
fn a_missing_entry_is_a_clear_error() {
    in_unlocked_keyring(|_| {
        let err = open("keyring:service=vault-test;account=absent").expect_err("no such entry");
        assert!(matches!(err, Error::KeystoreEntryMissing { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("has no KEK entry service=vault-test account=absent"),
            "{message}"
        );
    });
}

#[test]
fn an_entry_of_another_program_is_not_taken_for_a_kek() {
    in_unlocked_keyring(|_| {
        keystore_tests::store("vault-test", "password", b"hunter2");
        let err = open("keyring:service=vault-test;account=password").expect_err("not a KEK");
        assert!(matches!(err, Error::KeystoreEntryInvalid { .. }), "{err:?}");
        assert!(
            err.to_string().contains("holds 7 bytes, a KEK is 32"),
            "{err}"
        );
        // And creating there refuses, leaving the other program's value alone.
        let err = create("keyring:service=vault-test;account=password").expect_err("exists");
        assert!(matches!(err, Error::KeystoreEntryExists { .. }), "{err:?}");
        assert_eq!(
            keystore_tests::lookup("vault-test", "password").as_deref(),
            Some(&b"hunter2"[..])
        );
    });
}

#[test]
fn a_locked_keyring_is_a_clear_error_and_fast() {
    in_unlocked_keyring(|_| {
        let uri = "keyring:service=vault-test;account=locked";
        let built = create(uri).expect("create while unlocked");
        keystore_tests::lock();
        assert!(keystore_tests::is_locked(), "the login keyring is locked");

        for (what, result) in [
            ("open", timed(|| open(uri))),
            (
                "create",
                timed(|| create("keyring:service=vault-test;account=new")),
            ),
        ] {
            let (result, took) = result;
            let err = result.expect_err(what);
            assert!(
                matches!(err, Error::KeystoreLocked { .. }),
                "{what}: {err:?}"
            );
            let message = err.to_string();
            assert!(
                message.starts_with(
                    "the keyring is locked: unlock it (e.g. log in to the desktop session"
                ),
                "{what}: {message}"
            );
            assert!(took < Duration::from_secs(10), "{what} took {took:?}");
        }
        // The KEK opened before the lock keeps working: its key is in process memory.
        test_support::kek::round_trip(&*built.provider);
    });
}

fn timed<T>(op: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let result = op();
    (result, started.elapsed())
}

#[test]
fn without_gnome_keyring_a_test_skips_or_fails_under_require_hw() {
    let empty = tempfile::tempdir().expect("an empty PATH directory");
    test_support::assert_skip_rule(
        "a_missing_entry_is_a_clear_error",
        "gnome-keyring",
        "dbus-run-session, dbus-daemon, dbus-send, gnome-keyring-daemon, secret-tool not on PATH",
        |command| {
            command.env("PATH", empty.path());
        },
    );
}
