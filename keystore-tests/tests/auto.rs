//! `vaultctl init --kek auto` with the TPM unreachable (VAULTCTL_TPM_TCTI names a closed port),
//! no PKCS#11 token configured and a private unlocked gnome-keyring on the session bus: auto
//! stores a new key in an entry of its own, pins the concrete `keyring:` URI, says why it
//! skipped the TPM and PKCS#11, and the vault round-trips secrets. With the keyring locked
//! auto skips it at once, saying so, and makes a key file.
#![forbid(unsafe_code)]

use std::process::Command;
use std::time::{Duration, Instant};

use keystore_tests::{Keyring, in_unlocked_keyring, vaultctl_binary};
use test_support::Vaultctl;
use test_support::auto::{closed_tpm_tcti, skip_notes};

const VALUE: &str = "sealed-under-the-auto-picked-keyring";

/// vaultctl on the keyring's session bus, with the TPM unreachable and no PKCS#11 token.
fn vaultctl(keyring: &Keyring) -> Vaultctl<'static> {
    let binary = vaultctl_binary(keyring.dir());
    let ctl = Vaultctl::new(
        move || {
            let mut command = Command::new(&binary);
            command.env_remove("VAULTCTL_PKCS11_URI");
            command
        },
        &keyring.dir().join("home"),
    );
    ctl.set_tpm_tcti(&closed_tpm_tcti());
    ctl.keep_secret(VALUE);
    ctl
}

#[test]
fn auto_keeps_the_kek_in_the_keyring_when_no_device_answers() {
    in_unlocked_keyring(|keyring| {
        let ctl = vaultctl(keyring);
        let vault = keyring.dir().join("vault").display().to_string();
        let out = ctl.ok(&["--vault", &vault, "init", "--kek", "auto"], b"");

        let notes = skip_notes(&out.stderr);
        assert_eq!(notes.len(), 2, "{}", out.stderr);
        assert!(
            notes[0].starts_with("note: auto: skipped TPM: cannot reach the TPM through swtpm:"),
            "{notes:?}"
        );
        assert_eq!(
            notes[1],
            "note: auto: skipped PKCS#11: VAULTCTL_PKCS11_URI is not set"
        );
        let stdout = out.stdout();
        let line = stdout
            .lines()
            .find(|line| line.starts_with("kek: keyring:"))
            .unwrap_or_else(|| panic!("no keyring KEK line: {stdout}"));
        let account = line
            .split("account=")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .expect("the KEK line names the entry");
        assert!(
            account.starts_with("vault-") && account.len() == 22,
            "{line}"
        );
        assert!(
            line.ends_with(&format!(
                "(auto: OS keystore because the Secret Service on the D-Bus session bus answers; the key is in a new entry service=vault account={account})"
            )),
            "{line}"
        );
        assert_eq!(
            keystore_tests::lookup("vault", account).map(|key| key.len()),
            Some(32)
        );
        let listed = ctl.ok(&["--vault", &vault, "kek", "list"], b"").stdout();
        assert!(
            listed.contains(&format!("keyring:service=vault;account={account}")),
            "{listed}"
        );

        ctl.ok(
            &["--vault", &vault, "set", "global", "db-password"],
            VALUE.as_bytes(),
        );
        let got = ctl.ok(&["--vault", &vault, "get", "global", "db-password"], b"");
        assert_eq!(got.stdout(), VALUE);
    });
}

#[test]
fn a_locked_keyring_is_skipped_at_once_for_a_key_file() {
    in_unlocked_keyring(|keyring| {
        let ctl = vaultctl(keyring);
        keystore_tests::lock();
        let vault = keyring.dir().join("vault").display().to_string();
        let started = Instant::now();
        let out = ctl.ok(&["--vault", &vault, "init", "--kek", "auto"], b"");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let notes = skip_notes(&out.stderr);
        assert_eq!(notes.len(), 3, "{}", out.stderr);
        assert!(
            notes[2].starts_with("note: auto: skipped OS keystore: ")
                && notes[2].contains("the keyring is locked: unlock it"),
            "{notes:?}"
        );
        assert!(
            out.stdout().contains("(auto: file because "),
            "{}",
            out.stdout()
        );
    });
}
