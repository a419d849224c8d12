//! End to end: `vaultd --dev` prints how to use it, and what it prints works as printed.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::{Sandbox, vaultctl};

/// Runs the vaultctl binary with the `export NAME=VALUE` lines applied as its environment
/// (and no VAULT_* variable of the test's own), feeding `stdin`.
fn vaultctl_with(exports: &[(String, String)], args: &[&str], stdin: &[u8]) -> Output {
    let mut command = Command::new(vaultctl());
    for (name, _) in std::env::vars() {
        if name.starts_with("VAULT_") {
            command.env_remove(name);
        }
    }
    command
        .envs(exports.iter().map(|(k, v)| (k, v)))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn vaultctl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write vaultctl's stdin");
    child.wait_with_output().expect("wait for vaultctl")
}

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

    let exports: Vec<(String, String)> = daemon
        .printed
        .iter()
        .filter_map(|line| line.strip_prefix("export "))
        .map(|assignment| {
            let (name, value) = assignment
                .split_once('=')
                .unwrap_or_else(|| panic!("not NAME=VALUE: {assignment:?}"));
            (name.to_owned(), value.to_owned())
        })
        .collect();
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

    // The calls reached the daemon as the dev admin, and were audited.
    let records = sandbox.audit_records();
    let ops: Vec<(&str, &str, &str)> = records
        .iter()
        .map(|r| (r.principal.as_str(), r.op.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(
        ops,
        [
            ("admin", "status", "OK"),
            ("admin", "put", "OK"),
            ("admin", "get", "OK")
        ]
    );

    // Graceful stop: SIGTERM drains and exits 0.
    let exit = daemon.terminate();
    assert!(exit.success(), "vaultd exit after SIGTERM: {exit}");
}
