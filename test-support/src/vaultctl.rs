//! [`Vaultctl`]: runs the real `vaultctl` and checks what no run may show.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What no stderr may contain: a panic and its backtrace (every run has `RUST_BACKTRACE=1`).
const PANIC_MARKS: [&str; 3] = ["panicked", "stack backtrace", "RUST_BACKTRACE"];
/// The variables that point vaultctl at a vault, a server or a cache, or set its waits; no
/// run inherits them.
const VAULT_ENV: [&str; 11] = [
    "VAULTCTL_DIR",
    "VAULTCTL_ADDR",
    "VAULTCTL_DEV_DIR",
    "VAULTCTL_CACERT",
    "VAULTCTL_CLIENT_CERT",
    "VAULTCTL_CLIENT_KEY",
    "VAULTCTL_CACHE_TTL",
    "VAULTCTL_REQUIRE_MLOCK",
    "VAULTCTL_CONNECT_TIMEOUT",
    "VAULTCTL_REQUEST_TIMEOUT",
    "VAULTCTL_RETRIES",
];

/// What one vaultctl run did.
#[derive(Debug)]
pub struct Run {
    /// The arguments it ran with.
    pub args: Vec<String>,
    /// Its exit code (`None` if a signal ended it).
    pub code: Option<i32>,
    /// Its stdout.
    pub stdout: Vec<u8>,
    /// Its stderr, lossily decoded.
    pub stderr: String,
}

impl Run {
    /// Stdout, lossily decoded.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Which `error:` line of a failed run [`Vaultctl::fails`] checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorLine {
    /// The first.
    First,
    /// The last: vaultctl prints its own last, after any a library logged.
    Last,
}

/// Runs vaultctl from one base [`Command`] (the binary, and what the fixture sets, such as
/// `SOFTHSM2_CONF`), with its home, config and data directories in a home directory of the
/// test's, without the `VAULTCTL_*` variables of the test's environment; and checks every run:
/// no panic and nothing [forbidden](Self::forbid_on_stderr) on stderr, no
/// [secret](Self::keep_secret) on stderr, no [hidden value](Self::keep_hidden) (a PIN) on
/// stdout or stderr.
pub struct Vaultctl<'a> {
    command: Box<dyn Fn() -> Command + 'a>,
    home: PathBuf,
    env: RefCell<Vec<(String, String)>>,
    never_on_stderr: RefCell<Vec<String>>,
    never_on_stdout: RefCell<Vec<String>>,
    forbidden_on_stderr: RefCell<Vec<String>>,
    error_line: Cell<ErrorLine>,
}

impl<'a> Vaultctl<'a> {
    /// Runs what `command` returns (e.g. `Command::new(vaultctl_binary(dir))`), with `HOME`
    /// set to `home`, `XDG_CONFIG_HOME` to `<home>/.config` and `XDG_DATA_HOME` to
    /// `<home>/.local/share`. [`fails`](Self::fails) checks the first `error:` line.
    pub fn new(command: impl Fn() -> Command + 'a, home: &Path) -> Self {
        Self {
            command: Box::new(command),
            home: home.to_owned(),
            env: RefCell::new(Vec::new()),
            never_on_stderr: RefCell::new(Vec::new()),
            never_on_stdout: RefCell::new(Vec::new()),
            forbidden_on_stderr: RefCell::new(Vec::new()),
            error_line: Cell::new(ErrorLine::First),
        }
    }

    /// From now on, every run has `name=value` in its environment.
    pub fn set_env(&self, name: &str, value: &str) {
        self.env
            .borrow_mut()
            .push((name.to_owned(), value.to_owned()));
    }

    /// From now on, no run may show `value` (a secret value, which `get` does show on stdout)
    /// on stderr.
    pub fn keep_secret(&self, value: &str) {
        self.never_on_stderr.borrow_mut().push(value.to_owned());
    }

    /// From now on, no run may show `value` (a PIN) on stdout or stderr.
    pub fn keep_hidden(&self, value: &str) {
        self.keep_secret(value);
        self.never_on_stdout.borrow_mut().push(value.to_owned());
    }

    /// From now on, no run may show `needle` (e.g. a library's log line) on stderr.
    pub fn forbid_on_stderr(&self, needle: &str) {
        self.forbidden_on_stderr
            .borrow_mut()
            .push(needle.to_owned());
    }

    /// From now on, [`fails`](Self::fails) checks this `error:` line.
    pub fn check_error_line(&self, which: ErrorLine) {
        self.error_line.set(which);
    }

    /// Runs vaultctl with `args` and `stdin`; checks that stderr shows no panic, nothing
    /// forbidden and no secret, and that stdout shows no hidden value.
    #[track_caller]
    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Run {
        let home = &self.home;
        let mut command = (self.command)();
        command
            .args(args)
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            // A panic would show its backtrace, which the checks below look for.
            .env("RUST_BACKTRACE", "1");
        for variable in VAULT_ENV {
            command.env_remove(variable);
        }
        for (name, value) in self.env.borrow().iter() {
            command.env(name, value);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("vaultctl starts");
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(stdin)
            .expect("vaultctl reads its stdin");
        let output = child.wait_with_output().expect("vaultctl ends");
        let run = Run {
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            code: output.status.code(),
            stdout: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        let forbidden = self.forbidden_on_stderr.borrow();
        for needle in PANIC_MARKS
            .into_iter()
            .chain(forbidden.iter().map(String::as_str))
        {
            assert!(
                !run.stderr.contains(needle),
                "vaultctl {:?} shows {needle:?} on stderr:\n{}",
                run.args,
                run.stderr
            );
        }
        for secret in self.never_on_stderr.borrow().iter() {
            assert!(
                !run.stderr.contains(secret.as_str()),
                "vaultctl {:?} showed a secret or PIN on stderr:\n{}",
                run.args,
                run.stderr
            );
        }
        let stdout = run.stdout();
        for hidden in self.never_on_stdout.borrow().iter() {
            assert!(
                !stdout.contains(hidden.as_str()),
                "vaultctl {:?} showed a PIN on stdout",
                run.args
            );
        }
        run
    }

    /// Runs vaultctl and asserts exit code 0.
    #[track_caller]
    pub fn ok(&self, args: &[&str], stdin: &[u8]) -> Run {
        let run = self.run(args, stdin);
        assert_eq!(
            run.code,
            Some(0),
            "vaultctl {:?} failed:\n{}",
            run.args,
            run.stderr
        );
        run
    }

    /// Runs vaultctl and asserts exit code 1, nothing on stdout, and an `error:` line (the
    /// first or the last: [`check_error_line`](Self::check_error_line)) containing every one
    /// of `expected`; returns stderr.
    #[track_caller]
    pub fn fails(&self, args: &[&str], stdin: &[u8], expected: &[&str]) -> String {
        self.fails_with_code(1, args, stdin, expected)
    }

    /// [`fails`](Self::fails) with exit code `code` (2: a usage error).
    #[track_caller]
    pub fn fails_with_code(
        &self,
        code: i32,
        args: &[&str],
        stdin: &[u8],
        expected: &[&str],
    ) -> String {
        let run = self.run(args, stdin);
        assert_eq!(
            run.code,
            Some(code),
            "vaultctl {:?}: expected exit code {code}; stdout:\n{}\nstderr:\n{}",
            run.args,
            run.stdout(),
            run.stderr
        );
        assert!(
            run.stdout.is_empty(),
            "vaultctl {:?}: {}",
            run.args,
            run.stdout()
        );
        let mut errors = run
            .stderr
            .lines()
            .filter(|line| line.starts_with("error: "));
        let error = match self.error_line.get() {
            ErrorLine::First => errors.next(),
            ErrorLine::Last => errors.next_back(),
        }
        .unwrap_or_else(|| panic!("vaultctl {:?}: no error line:\n{}", run.args, run.stderr));
        for needle in expected {
            assert!(
                error.contains(needle),
                "vaultctl {:?}: the error lacks {needle:?}:\n{}",
                run.args,
                run.stderr
            );
        }
        run.stderr
    }
}

impl fmt::Debug for Vaultctl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vaultctl")
            .field("command", &(self.command)())
            .field("home", &self.home)
            // Names only: a value may be a PIN.
            .field(
                "env",
                &self
                    .env
                    .borrow()
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .field("secrets", &self.never_on_stderr.borrow().len())
            .field("forbidden_on_stderr", &self.forbidden_on_stderr.borrow())
            .field("error_line", &self.error_line.get())
            .finish()
    }
}
