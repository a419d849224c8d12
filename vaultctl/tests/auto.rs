//! `init --kek auto` and `kek add auto` with the real binary on a machine that offers no
//! device: the TPM is a closed port (VAULTCTL_TPM_TCTI, so the tests never depend on whether
//! this machine has /dev/tpmrm0), no PKCS#11 token is configured and there is no session bus.
//! Auto then makes a key file and says why it skipped each stronger candidate; a broken
//! VAULTCTL_PKCS11_URI or VAULTCTL_TPM_TCTI is an error rather than a silent fall-through. The
//! TPM, PKCS#11 and keystore choices are tested on their emulators (tpm-tests,
//! softhsm-tests, keystore-tests: tests/auto.rs).

mod common;

use std::process::Output;

use common::{Sandbox, assert_fails_with, assert_success, stderr, stdout};
use test_support::auto::{closed_tpm_tcti, skip_notes};
use vault::Vault;

/// Every variable auto reads, unset unless a test sets it.
const AUTO_ENV: [&str; 3] = [
    "VAULTCTL_TPM_TCTI",
    "VAULTCTL_PKCS11_URI",
    "DBUS_SESSION_BUS_ADDRESS",
];

/// vaultctl `args` with auto's variables unset but for `env`; tpm2-tss's own log of the
/// refused connection is silenced (TSS2_LOG), as the other TPM tests do.
fn run(sb: &Sandbox, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    let mut cmd = sb.cmd(args);
    for name in AUTO_ENV {
        cmd.env_remove(name);
    }
    cmd.env("TSS2_LOG", "all+none");
    for (name, value) in env {
        cmd.env(name, value);
    }
    common::run(cmd, stdin)
}

/// The URIs the vault pins.
fn pinned(sb: &Sandbox) -> Vec<String> {
    Vault::read_config(&sb.vault_dir())
        .expect("read vault.json")
        .keks
        .into_iter()
        .map(|kek| kek.uri)
        .collect()
}

fn key_files(sb: &Sandbox) -> Vec<String> {
    std::fs::read_dir(sb.path("config/vault/keys"))
        .map(|dir| {
            dir.map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
        })
        .unwrap_or_default()
}

#[test]
fn with_nothing_stronger_auto_makes_a_key_file_and_names_each_reason() {
    let sb = Sandbox::new();
    let tcti = closed_tpm_tcti();
    let env = [("VAULTCTL_TPM_TCTI", tcti.as_str())];
    let out = run(&sb, &["init", "--kek", "auto"], &env, b"");
    assert_success(&out, &["init", "--kek", "auto"]);

    let notes = skip_notes(&stderr(&out));
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(
        notes[0].starts_with(&format!(
            "note: auto: skipped TPM: cannot reach the TPM through {tcti}: "
        )),
        "{notes:?}"
    );
    assert_eq!(
        notes[1],
        "note: auto: skipped PKCS#11: VAULTCTL_PKCS11_URI is not set"
    );
    assert_eq!(
        notes[2],
        "note: auto: skipped OS keystore: no D-Bus session bus for the Secret Service (DBUS_SESSION_BUS_ADDRESS is not set)"
    );
    // The key file protects everything: the backup note is there as for the default KEK.
    assert!(stderr(&out).contains("back it up"), "{}", stderr(&out));

    let uris = pinned(&sb);
    assert_eq!(uris.len(), 1, "{uris:?}");
    let keys = sb.path("config/vault/keys");
    assert!(
        uris[0].starts_with(&format!("file:{}/kek-", keys.display())),
        "{uris:?}"
    );
    let kek_line = stdout(&out)
        .lines()
        .find(|line| line.starts_with("kek: "))
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(
        kek_line.ends_with(&format!(
            "({}) (auto: file because no TPM, configured PKCS#11 token or OS keystore is available)",
            uris[0]
        )),
        "{kek_line}"
    );
    assert!(stdout(&out).contains("mode: direct"), "{}", stdout(&out));
    assert_eq!(key_files(&sb).len(), 1);

    // The pinned file KEK opens the vault: no "auto" is left to resolve later.
    assert_success(
        &run(&sb, &["set", "global", "db"], &[], b"auto-picked-value"),
        &["set"],
    );
    let got = run(&sb, &["get", "global", "db"], &[], b"");
    assert_success(&got, &["get"]);
    assert_eq!(got.stdout, b"auto-picked-value");
}

#[test]
fn an_unreachable_session_bus_is_skipped_with_its_reason() {
    let sb = Sandbox::new();
    let tcti = closed_tpm_tcti();
    let bus = format!("unix:path={}", sb.path("no-bus").display());
    let env = [
        ("VAULTCTL_TPM_TCTI", tcti.as_str()),
        ("DBUS_SESSION_BUS_ADDRESS", bus.as_str()),
    ];
    let out = run(&sb, &["init", "--kek", "auto"], &env, b"");
    assert_success(&out, &["init", "--kek", "auto"]);
    let notes = skip_notes(&stderr(&out));
    assert!(
        notes[2].starts_with("note: auto: skipped OS keystore: cannot reach the OS keystore"),
        "{notes:?}"
    );
    assert!(pinned(&sb)[0].starts_with("file:"));
}

#[test]
fn a_broken_pkcs11_configuration_is_an_error_and_leaves_nothing_behind() {
    let sb = Sandbox::new();
    let tcti = closed_tpm_tcti();
    let missing = sb.path("no-such-module.so");
    let uri = format!(
        "pkcs11:token=vault?module-path={}&pin-source=env:VAULT_TEST_PIN",
        missing.display()
    );
    let env = [
        ("VAULTCTL_TPM_TCTI", tcti.as_str()),
        ("VAULTCTL_PKCS11_URI", uri.as_str()),
    ];
    let out = run(&sb, &["init", "--kek", "auto"], &env, b"");
    assert_fails_with(
        &out,
        "error: --kek auto: VAULTCTL_PKCS11_URI is set, but cannot load PKCS#11 module",
    );
    assert!(
        stderr(&out).contains("unset VAULTCTL_PKCS11_URI to let auto pick another KEK"),
        "{}",
        stderr(&out)
    );
    assert!(Vault::read_config(&sb.vault_dir()).is_err());
    assert!(key_files(&sb).is_empty(), "{:?}", key_files(&sb));

    // A PIN inside the URI could not be pinned: refused, and never echoed.
    let pin = "pin-value-7f3a9c";
    let with_pin = format!(
        "pkcs11:token=vault?module-path={}&pin-value={pin}",
        missing.display()
    );
    let env = [
        ("VAULTCTL_TPM_TCTI", tcti.as_str()),
        ("VAULTCTL_PKCS11_URI", with_pin.as_str()),
    ];
    let out = run(&sb, &["init", "--kek", "auto"], &env, b"");
    assert_fails_with(&out, "gives the PIN with pin-source=file:/PATH");
    assert!(!stderr(&out).contains(pin) && !stdout(&out).contains(pin));

    // Corrected (here: unset), the same command runs.
    let env = [("VAULTCTL_TPM_TCTI", tcti.as_str())];
    assert_success(&run(&sb, &["init", "--kek", "auto"], &env, b""), &["init"]);
}

#[test]
fn a_malformed_tpm_tcti_is_an_error() {
    let sb = Sandbox::new();
    for (tcti, expected) in [
        ("carrier-pigeon:coop=1", "is not a TCTI this vault knows"),
        ("swtpm:port=2321;pcrs=sha256:7", "without ;"),
    ] {
        let out = run(
            &sb,
            &["init", "--kek", "auto"],
            &[("VAULTCTL_TPM_TCTI", tcti)],
            b"",
        );
        assert_fails_with(&out, "error: --kek auto: VAULTCTL_TPM_TCTI is set, but ");
        assert_fails_with(&out, expected);
        assert!(key_files(&sb).is_empty());
    }
}

#[test]
fn auto_goes_with_other_keks_once() {
    let sb = Sandbox::new();
    let tcti = closed_tpm_tcti();
    let env = [
        ("VAULTCTL_TPM_TCTI", tcti.as_str()),
        ("VAULT_TEST_RECOVERY", "recovery passphrase"),
    ];
    let out = run(&sb, &["init", "--kek", "auto", "--kek", "auto"], &env, b"");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--kek auto is given more than once"));
    assert!(key_files(&sb).is_empty());

    let pass = "passphrase:env=VAULT_TEST_RECOVERY;m=8192;t=1;p=1";
    let out = run(&sb, &["init", "--kek", pass, "--kek", "auto"], &env, b"");
    assert_success(&out, &["init"]);
    let uris = pinned(&sb);
    assert_eq!(uris.len(), 2, "{uris:?}");
    assert!(uris[0].starts_with("passphrase:"), "{uris:?}");
    assert!(uris[1].starts_with("file:"), "{uris:?}");
    let auto_lines = stdout(&out).matches("(auto: ").count();
    assert_eq!(auto_lines, 1, "{}", stdout(&out));
}

#[test]
fn kek_add_auto_adds_the_strongest_kek_found() {
    let sb = Sandbox::new();
    let first = sb.init_file_kek();
    let tcti = closed_tpm_tcti();
    let env = [("VAULTCTL_TPM_TCTI", tcti.as_str())];
    let out = run(&sb, &["kek", "add", "auto"], &env, b"");
    assert_success(&out, &["kek", "add", "auto"]);
    assert_eq!(skip_notes(&stderr(&out)).len(), 3, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("(auto: file because "),
        "{}",
        stdout(&out)
    );
    let uris = pinned(&sb);
    assert_eq!(uris.len(), 2, "{uris:?}");
    assert_eq!(uris[0], first);
    assert!(uris[1].starts_with("file:"), "{uris:?}");

    let out = run(&sb, &["kek", "add", "--existing", "auto"], &env, b"");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
