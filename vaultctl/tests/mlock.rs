//! vaultctl where the kernel refuses to lock memory (RLIMIT_MEMLOCK 0, no CAP_IPC_LOCK):
//! best-effort by default (one warning, status tells), an error with --require-mlock.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Output};

use common::{Sandbox, assert_fails_with, stderr, stdout};

/// Runs vaultctl with RLIMIT_MEMLOCK 0 and, when we are root, as `nobody` (root's
/// CAP_IPC_LOCK would lock regardless of the limit).
fn unlockable(sb: &Sandbox, args: &[&str], input: &[u8]) -> Output {
    let template = sb.cmd(args);
    let mut cmd = Command::new("sh");
    cmd.args(["-c", r#"ulimit -l 0 && exec "$@""#, "sh"]);
    let root = std::fs::metadata("/proc/self").expect("proc").uid() == 0;
    if root {
        cmd.args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ]);
    }
    cmd.arg(template.get_program()).args(template.get_args());
    for (key, value) in template.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    common::run(cmd, input)
}

#[test]
fn unlockable_memory_is_a_warning_by_default_and_an_error_when_required() {
    let sb = Sandbox::new();
    // `nobody` must be able to make the vault and its key file in the sandbox.
    std::fs::set_permissions(sb.root.path(), std::fs::Permissions::from_mode(0o777))
        .expect("chmod");

    let required = unlockable(&sb, &["--require-mlock", "status"], b"");
    assert_fails_with(&required, "could not lock secret memory");

    let init = unlockable(
        &sb,
        &[
            "init",
            "--kek",
            &format!("file:{}", sb.path("k/kek.key").display()),
        ],
        b"",
    );
    assert!(init.status.success(), "{}", stderr(&init));
    let set = unlockable(&sb, &["set", "global", "k"], b"value");
    assert!(set.status.success(), "{}", stderr(&set));
    assert_eq!(
        stderr(&set).matches("lock").count(),
        1,
        "reported once: {}",
        stderr(&set)
    );
    let status = unlockable(&sb, &["status"], b"");
    assert!(
        stdout(&status).contains("could not be locked"),
        "{}",
        stdout(&status)
    );
    let get = unlockable(&sb, &["get", "global", "k"], b"");
    assert_eq!(get.stdout, b"value");
}
