//! The real `vaultctl` binary with its KEK in a private gnome-keyring: a vault made with
//! `init --kek keyring:...` is in direct mode (the key computes in process once read), stores
//! and reads secrets, a second init on the same entry refuses to replace it, and a locked
//! keyring or a missing session bus is exit code 1 with a message that says what to do, never
//! a hang; an init that fails after the entry was made removes it again, so the corrected
//! command runs. No run shows a secret value on stderr.
#![forbid(unsafe_code)]

use std::process::Command;

use keystore_tests::{Keyring, in_unlocked_keyring, vaultctl_binary};
use test_support::Vaultctl;

const URI: &str = "keyring:service=vault-ctl;account=kek";

/// vaultctl with its home in the keyring's private directory.
fn vaultctl(keyring: &Keyring, bus: bool) -> Vaultctl<'static> {
    let binary = vaultctl_binary(keyring.dir());
    Vaultctl::new(
        move || {
            let mut command = Command::new(&binary);
            if !bus {
                command.env_remove("DBUS_SESSION_BUS_ADDRESS");
            }
            command
        },
        &keyring.dir().join("home"),
    )
}

fn path(keyring: &Keyring, name: &str) -> String {
    keyring.dir().join(name).display().to_string()
}

#[test]
fn a_vault_with_its_kek_in_the_keyring_round_trips_and_a_locked_keyring_is_a_clear_error() {
    in_unlocked_keyring(|keyring| {
        let ctl = vaultctl(keyring, true);
        let vault = path(keyring, "vault");
        let out = ctl
            .ok(&["--vault", &vault, "init", "--kek", URI], b"")
            .stdout();
        assert!(out.starts_with("initialised vault at "), "{out}");
        // No device: the key is read once at unlock, so direct mode costs nothing per value.
        assert!(out.contains("\nmode: direct\n"), "{out}");
        assert_eq!(
            keystore_tests::lookup("vault-ctl", "kek").map(|key| key.len()),
            Some(32)
        );

        ctl.keep_secret("hunter2-in-the-keyring");
        let out = ctl
            .ok(
                &["--vault", &vault, "set", "global", "db-password"],
                b"hunter2-in-the-keyring",
            )
            .stdout();
        assert!(
            out.starts_with("stored global db-password version "),
            "{out}"
        );
        let got = ctl.ok(&["--vault", &vault, "get", "global", "db-password"], b"");
        assert_eq!(got.stdout(), "hunter2-in-the-keyring");
        let listed = ctl.ok(&["--vault", &vault, "kek", "list"], b"").stdout();
        assert!(listed.contains("keyring:"), "{listed}");

        // Another vault on the same entry would replace the first vault's key: refused.
        let other = path(keyring, "other");
        ctl.fails(
            &["--vault", &other, "init", "--kek", URI],
            b"",
            &["already has an entry service=vault-ctl account=kek"],
        );
        assert_eq!(
            keystore_tests::lookup("vault-ctl", "kek").map(|key| key.len()),
            Some(32)
        );

        // No session bus: the keystore cannot be reached.
        vaultctl(keyring, false).fails(
            &["--vault", &vault, "get", "global", "db-password"],
            b"",
            &["cannot reach the OS keystore"],
        );

        keystore_tests::lock();
        let started = std::time::Instant::now();
        ctl.fails(
            &["--vault", &vault, "get", "global", "db-password"],
            b"",
            &["the keyring is locked: unlock it"],
        );
        assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
    });
}

#[test]
fn a_failed_init_removes_the_entry_it_made_and_the_corrected_command_runs() {
    in_unlocked_keyring(|keyring| {
        let ctl = vaultctl(keyring, true);
        let vault = path(keyring, "vault");
        let taken = path(keyring, "taken.key");
        std::fs::write(&taken, [7u8; 32]).expect("write a key file in the way");

        // The keyring KEK is made first, then the second --kek refuses its existing file.
        let file_kek = format!("file:{taken}");
        ctl.fails(
            &["--vault", &vault, "init", "--kek", URI, "--kek", &file_kek],
            b"",
            &["already exists"],
        );
        assert_eq!(keystore_tests::lookup("vault-ctl", "kek"), None);

        // Both KEKs made, then the vault refuses the threshold: both are removed again.
        let new_file = path(keyring, "new.key");
        let new_file_kek = format!("file:{new_file}");
        ctl.fails(
            &[
                "--vault",
                &vault,
                "init",
                "--kek",
                URI,
                "--kek",
                &new_file_kek,
                "--threshold",
                "3",
            ],
            b"",
            &["a threshold of 3 with 2 KEKs"],
        );
        assert_eq!(keystore_tests::lookup("vault-ctl", "kek"), None);
        assert!(!std::path::Path::new(&new_file).exists());

        let out = ctl
            .ok(&["--vault", &vault, "init", "--kek", URI], b"")
            .stdout();
        assert!(out.contains("\nmode: direct\n"), "{out}");
        assert_eq!(
            keystore_tests::lookup("vault-ctl", "kek").map(|key| key.len()),
            Some(32)
        );
        ctl.ok(&["--vault", &vault, "set", "global", "k"], b"v");
        assert_eq!(
            ctl.ok(&["--vault", &vault, "get", "global", "k"], b"")
                .stdout(),
            "v"
        );
    });
}
