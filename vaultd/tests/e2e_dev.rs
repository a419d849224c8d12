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
            "VAULT_ADDR",
            "VAULT_CACERT",
            "VAULT_CLIENT_CERT",
            "VAULT_CLIENT_KEY"
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
