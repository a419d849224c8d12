//! Runs the real vaultctl binary against a temporary vault.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

/// A temporary home, config dir and vault dir for one test.
pub struct Sandbox {
    pub root: TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Self {
            root: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn vault_dir(&self) -> PathBuf {
        self.root.path().join("vault")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// A vaultctl command with the sandbox's vault, home and config dirs.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vaultctl"));
        cmd.arg("--vault").arg(self.vault_dir()).args(args);
        // Nothing from the test's own environment points vaultctl elsewhere.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("VAULTCTL_") {
                cmd.env_remove(name);
            }
        }
        cmd.env("HOME", self.root.path().join("home"))
            .env("XDG_CONFIG_HOME", self.root.path().join("config"))
            .env("XDG_DATA_HOME", self.root.path().join("data"));
        cmd
    }

    /// Runs vaultctl with `stdin` as input.
    pub fn run_with_input(&self, args: &[&str], stdin: &[u8]) -> Output {
        run(self.cmd(args), stdin)
    }

    /// Runs vaultctl with empty input.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_input(args, b"")
    }

    /// Runs vaultctl and asserts success.
    pub fn ok(&self, args: &[&str], stdin: &[u8]) -> Output {
        let out = self.run_with_input(args, stdin);
        assert_success(&out, args);
        out
    }

    /// Initialises a vault with a file KEK at `kek.key` in the sandbox.
    pub fn init_file_kek(&self) -> String {
        let uri = format!("file:{}", self.path("keys/kek.key").display());
        self.ok(&["init", "--kek", &uri], b"");
        uri
    }
}

pub fn run(mut cmd: Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vaultctl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait vaultctl")
}

/// `template` (a vaultctl command with its arguments and environment) run on a
/// pseudo-terminal by util-linux `script`, which shows on its stdout what the terminal showed.
pub fn on_pseudo_terminal(template: &Command) -> Command {
    let mut line = vec![template.get_program().to_string_lossy().into_owned()];
    line.extend(
        template
            .get_args()
            .map(|a| a.to_string_lossy().into_owned()),
    );
    let quoted: Vec<String> = line
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &quoted.join(" "), "/dev/null"]);
    for (key, value) in template.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    cmd
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn assert_success(out: &Output, args: &[&str]) {
    assert!(
        out.status.success(),
        "vaultctl {args:?} failed: {}",
        stderr(out)
    );
}

/// Asserts exit code 1, an error message containing `needle`, and no panic.
pub fn assert_fails_with(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "expected exit 1, stderr: {err}");
    assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    assert!(!err.contains("panicked"), "vaultctl panicked: {err}");
}
