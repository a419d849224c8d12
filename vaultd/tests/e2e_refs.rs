//! End to end: `vaultctl exec` and `vaultctl resolve` in remote mode read `vault://`
//! references from vaultd (as the client certificate's principal, audited), and the
//! daemon's refusal stops the run with its message, never a value.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::{Sandbox, vaultctl};

const VALUE: &str = "remote-value-6b1e";

/// Runs vaultctl with the daemon's `export` lines as its environment (and none of the
/// test's own VAULT_* variables).
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

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn exec_and_resolve_read_vault_refs_from_the_daemon() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start();
    let exports: Vec<(String, String)> = daemon
        .printed
        .iter()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|assignment| assignment.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    assert!(
        exports.iter().any(|(name, _)| name == "VAULT_ADDR"),
        "{:#?}",
        daemon.printed
    );

    let set = vaultctl_with(
        &exports,
        &["set", "global", "db-password"],
        VALUE.as_bytes(),
    );
    assert!(set.status.success(), "{}", stderr(&set));

    let check = format!("test \"$DB\" = {VALUE}");
    let exec = vaultctl_with(
        &exports,
        &[
            "exec",
            "--env",
            "DB=vault://global/db-password",
            "--",
            "sh",
            "-c",
            &check,
        ],
        b"",
    );
    assert_eq!(exec.status.code(), Some(0), "{}", stderr(&exec));
    let exec = vaultctl_with(
        &exports,
        &[
            "exec",
            "--env",
            "DB=vault://global/db-password",
            "--",
            "sh",
            "-c",
            "exit 3",
        ],
        b"",
    );
    assert_eq!(exec.status.code(), Some(3), "{}", stderr(&exec));

    let resolve = vaultctl_with(&exports, &["resolve", "vault://global/db-password"], b"");
    assert!(resolve.status.success(), "{}", stderr(&resolve));
    assert_eq!(resolve.stdout, VALUE.as_bytes());

    // The daemon's refusal is the error; nothing runs.
    let marker = sandbox.root().join("ran");
    let missing = vaultctl_with(
        &exports,
        &[
            "exec",
            "--env",
            "DB=vault://global/missing",
            "--",
            "touch",
            marker.to_str().expect("utf8"),
        ],
        b"",
    );
    assert_eq!(missing.status.code(), Some(1));
    let err = stderr(&missing);
    assert!(err.contains("cannot set DB (--env), nothing was run: vault://global/missing: vaultd answered NOT_FOUND"), "{err}");
    assert!(!marker.exists());
    for out in [&exec, &missing] {
        assert!(!stderr(out).contains(VALUE));
        assert!(!String::from_utf8_lossy(&out.stdout).contains(VALUE));
    }

    // Each vault:// read reached the daemon as the dev admin, and was audited.
    let gets: Vec<String> = sandbox
        .audit_records()
        .iter()
        .filter(|r| r.op == "get")
        .map(|r| format!("{} {}", r.principal, r.status))
        .collect();
    assert_eq!(
        gets,
        ["admin OK", "admin OK", "admin OK", "admin NOT_FOUND"]
    );
}
