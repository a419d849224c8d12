//! `vaultctl init --kek auto` on a private swtpm named by VAULTCTL_TPM_TCTI: the TPM is the
//! strongest candidate, so auto takes it (without looking further: a broken
//! VAULTCTL_PKCS11_URI beside it goes unread), pins its concrete `tpm2:` URI, says why, and the
//! vault is tiered and round-trips secrets; with the swtpm gone the vault does not open, so
//! the secrets really are behind the TPM.
#![forbid(unsafe_code)]

use std::process::Command;

use test_support::{ErrorLine, Vaultctl};
use tpm_tests::Swtpm;

const VALUE: &str = "sealed-under-the-auto-picked-tpm";

#[test]
fn auto_picks_the_tpm_and_the_vault_round_trips() {
    let Some(tpm) = Swtpm::start() else { return };
    let binary = test_support::vaultctl_binary(tpm.dir());
    let ctl = Vaultctl::new(
        move || {
            let mut command = Command::new(&binary);
            // The keystore must not matter either: the TPM comes first.
            command.env_remove("DBUS_SESSION_BUS_ADDRESS");
            command
        },
        &tpm.dir().join("home"),
    );
    ctl.set_tpm_tcti(&tpm.tcti());
    ctl.set_env(
        "VAULTCTL_PKCS11_URI",
        "pkcs11:token=never-read?module-path=/nonexistent/module.so&pin-source=env:NONE",
    );
    ctl.check_error_line(ErrorLine::Last);
    ctl.keep_secret(VALUE);
    let vault = tpm.dir().join("vault").display().to_string();

    let out = ctl.ok(&["--vault", &vault, "init", "--kek", "auto"], b"");
    let uri = format!("tpm2:tcti={};label=tpm", tpm.tcti());
    let stdout = out.stdout();
    assert!(
        stdout.contains(&format!(
            "kek: tpm2:tpm#v1 ({uri}) (auto: TPM because the TPM at {} (from VAULTCTL_TPM_TCTI) answers; it is a software TPM (simulator), not dedicated hardware)\n",
            tpm.tcti()
        )),
        "{stdout}"
    );
    // A device KEK: tiered by the usual rule.
    assert!(stdout.contains("mode: tiered\n"), "{stdout}");
    assert!(
        !out.stderr.contains("note: auto: skipped"),
        "{}",
        out.stderr
    );

    let listed = ctl.ok(&["--vault", &vault, "kek", "list"], b"").stdout();
    assert!(listed.contains(&uri), "{listed}");
    assert!(!listed.contains("auto"), "{listed}");

    ctl.ok(
        &["--vault", &vault, "set", "global", "db-password"],
        VALUE.as_bytes(),
    );
    let got = ctl.ok(&["--vault", &vault, "get", "global", "db-password"], b"");
    assert_eq!(got.stdout(), VALUE);

    // Without the TPM the vault does not open: the pinned KEK is the TPM and nothing else.
    let killed = Command::new("kill")
        .args(["-KILL", &tpm.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let failed = ctl.run(&["--vault", &vault, "get", "global", "db-password"], b"");
    assert_eq!(failed.code, Some(1), "{}", failed.stderr);
    assert!(failed.stderr.contains("TPM"), "{}", failed.stderr);
}
