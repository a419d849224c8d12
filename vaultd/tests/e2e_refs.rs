//! End to end: `vaultctl exec` and `vaultctl resolve` in remote mode read `vault://`
//! references from vaultd (as the client certificate's principal, audited), and the
//! daemon's refusal stops the run with its message, never a value.

mod common;

use std::process::Output;

use common::{Sandbox, vaultctl_with};

const VALUE: &str = "remote-value-6b1e";

/// `vaultctl exec --env DB=REFERENCE -- COMMAND...` against the daemon.
fn exec_with_db(exports: &[(String, String)], reference: &str, command: &[&str]) -> Output {
    let env = format!("DB={reference}");
    let args = [&["exec", "--env", env.as_str(), "--"], command].concat();
    vaultctl_with(exports, &args, b"")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn exec_and_resolve_read_vault_refs_from_the_daemon() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start();
    let exports = daemon.exports();
    assert!(
        exports.iter().any(|(name, _)| name == "VAULTCTL_ADDR"),
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
    let exec = exec_with_db(
        &exports,
        "vault://global/db-password",
        &["sh", "-c", &check],
    );
    assert_eq!(exec.status.code(), Some(0), "{}", stderr(&exec));
    let exec = exec_with_db(
        &exports,
        "vault://global/db-password",
        &["sh", "-c", "exit 3"],
    );
    assert_eq!(exec.status.code(), Some(3), "{}", stderr(&exec));

    let resolve = vaultctl_with(&exports, &["resolve", "vault://global/db-password"], b"");
    assert!(resolve.status.success(), "{}", stderr(&resolve));
    assert_eq!(resolve.stdout, VALUE.as_bytes());

    // The daemon's refusal is the error; nothing runs.
    let marker = sandbox.root().join("ran");
    let missing = exec_with_db(
        &exports,
        "vault://global/missing",
        &["touch", marker.to_str().expect("utf8")],
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
