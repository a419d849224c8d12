//! End to end: `vaultd --dev` prints how to use it, and what it prints works as printed.

mod common;

use std::process::Output;

use common::{Sandbox, vaultctl_with};

fn check(output: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "vaultctl {what} failed ({}): stdout {stdout:?}, stderr {:?}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn printed_exports_make_vaultctl_work() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start();

    let exports = daemon.exports();
    let names: Vec<&str> = exports.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "VAULTCTL_ADDR",
            "VAULTCTL_CACERT",
            "VAULTCTL_CLIENT_CERT",
            "VAULTCTL_CLIENT_KEY"
        ],
        "printed: {:#?}",
        daemon.printed
    );
    assert_eq!(exports[0].1, daemon.url());
    assert!(
        daemon.printed.iter().any(|l| l == "vaultctl status"),
        "the instructions name the first command: {:#?}",
        daemon.printed
    );

    let status = check(&vaultctl_with(&exports, &["status"], b""), "status");
    assert!(status.contains("locked:  no"), "status: {status}");

    let set = check(
        &vaultctl_with(&exports, &["set", "global", "db-password"], b"hunter2"),
        "set",
    );
    assert!(set.contains("version 1"), "set: {set}");

    let got = check(
        &vaultctl_with(&exports, &["get", "global", "db-password"], b""),
        "get",
    );
    assert_eq!(got, "hunter2");

    // The calls reached the daemon as the dev admin, and were audited: the put as started
    // before it ran and with its outcome (the version it wrote) after.
    let records = sandbox.audit_records();
    let ops: Vec<(&str, &str, String, &str, Option<u64>)> = records
        .iter()
        .map(|r| {
            let stage = r.stage.to_string();
            (
                r.principal.as_str(),
                r.op.as_str(),
                stage,
                r.status.as_str(),
                r.version,
            )
        })
        .collect();
    let row = |op, stage: &str, version| ("admin", op, stage.to_owned(), "OK", version);
    assert_eq!(
        ops,
        [
            row("status", "outcome", None),
            row("put", "started", None),
            row("put", "outcome", Some(1)),
            row("get", "outcome", None),
        ]
    );
    assert_eq!(records[2].call, Some(records[1].seq));

    // Graceful stop: SIGTERM drains and exits 0.
    let exit = daemon.terminate();
    assert!(exit.success(), "vaultd exit after SIGTERM: {exit}");
}

#[test]
fn hashicorp_vault_variables_are_not_read() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start();
    let exports = daemon.exports();

    // A machine set up for HashiCorp Vault: its names point elsewhere, ours at vaultd.
    let mut beside_hashicorp = exports.clone();
    for (name, value) in [
        ("VAULT_ADDR", "https://127.0.0.1:1"),
        ("VAULT_CACERT", "/nonexistent/ca.pem"),
        ("VAULT_CLIENT_CERT", "/nonexistent/client.pem"),
        ("VAULT_CLIENT_KEY", "/nonexistent/client.key"),
    ] {
        beside_hashicorp.push((name.to_owned(), value.to_owned()));
    }
    let status = check(
        &vaultctl_with(&beside_hashicorp, &["status"], b""),
        "status",
    );
    assert!(status.contains("locked:  no"), "status: {status}");

    // The old names alone, even pointing at this daemon, leave vaultctl in local mode.
    let old_names: Vec<(String, String)> = exports
        .iter()
        .map(|(name, value)| (name.replacen("VAULTCTL_", "VAULT_", 1), value.clone()))
        .collect();
    assert!(old_names.iter().any(|(name, _)| name == "VAULT_ADDR"));
    let before = sandbox.audit_records().len();
    let no_vault = sandbox.root().join("no-vault-here");
    let no_vault = no_vault.to_str().expect("utf-8 path");
    let local = vaultctl_with(&old_names, &["--vault", no_vault, "list"], b"");
    let stderr = String::from_utf8_lossy(&local.stderr);
    assert!(!local.status.success(), "no vault there: {stderr}");
    assert!(
        stderr.contains(no_vault) && !stderr.contains("vaultd"),
        "a local error about the directory: {stderr}"
    );
    assert_eq!(
        sandbox.audit_records().len(),
        before,
        "nothing reached the daemon"
    );
}
