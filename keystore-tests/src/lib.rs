//! Test support for the OS keystore provider: each test gets a private, unlocked
//! gnome-keyring on a private D-Bus session bus, in a process of its own.
//!
//! The Secret Service is found through `DBUS_SESSION_BUS_ADDRESS`, which the `keyring` crate
//! reads once per process, and setting an environment variable from inside a test would need
//! `unsafe` and would race with the other test threads. So [`in_unlocked_keyring`] makes a
//! private directory (`home/`, and `run/` of mode 0700 for `XDG_RUNTIME_DIR`), then runs the
//! current test again in a child process of the same test binary under `dbus-run-session`,
//! after `gnome-keyring-daemon --unlock --components=secrets` has made and unlocked the
//! login keyring there; the child runs the test body. The bus and the daemon end with the
//! child.
//!
//! ```no_run
//! #[test]
//! fn stores_an_entry() {
//!     keystore_tests::in_unlocked_keyring(|_keyring| {
//!         keystore_tests::store("svc", "acct", b"value");
//!         assert_eq!(keystore_tests::lookup("svc", "acct").as_deref(), Some(&b"value"[..]));
//!     });
//! }
//! ```
//!
//! Benchmark binaries run their whole `main` the same way with [`main_in_keyring_session`].
//!
//! Without gnome-keyring, secret-tool or D-Bus a test skips, saying so on stderr, unless
//! `VAULT_REQUIRE_HW` is set, when it fails.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::env;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use test_support::child::{CHILD_TEST_ARGS, exit_code, ran_one_passing_test, show_output};

pub use test_support::{require_hw, vaultctl_binary};

/// Set in the child to the private directory; its presence tells the child to run the test.
const FIXTURE_ENV: &str = "VAULT_KEYRING_FIXTURE";
/// The login keyring's password in the child (a test keyring: nothing secret).
const PASSWORD_ENV: &str = "VAULT_KEYRING_FIXTURE_PASSWORD";
const PASSWORD: &str = "vault-test-keyring";
/// The programs the fixture runs.
const PROGRAMS: [&str; 5] = [
    "dbus-run-session",
    "dbus-daemon",
    "dbus-send",
    "gnome-keyring-daemon",
    "secret-tool",
];
/// The deadline of one test's child process, in seconds: a hung keystore fails the test.
const CHILD_TIMEOUT_SECS: &str = "300";
/// Starts the unlocked keyring, then runs the test binary (`"$@"`). The daemon's variables
/// are exported so that the test's tools reach this daemon and no other.
const CHILD_SCRIPT: &str = r#"set -e
vars=$(printf %s "$VAULT_KEYRING_FIXTURE_PASSWORD" | gnome-keyring-daemon --unlock --components=secrets)
eval "$vars"
export GNOME_KEYRING_CONTROL
unset VAULT_KEYRING_FIXTURE_PASSWORD
exec "$@""#;
/// Variables of a desktop session that would lead the child to the developer's own keyring
/// or show an unlock prompt on their screen.
const SESSION_VARS: [&str; 6] = [
    "DBUS_SESSION_BUS_ADDRESS",
    "GNOME_KEYRING_CONTROL",
    "SSH_AUTH_SOCK",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XDG_DATA_DIRS",
];

/// Whether this process has handed out its keyring; one test per child process.
static ENTERED: AtomicBool = AtomicBool::new(false);

/// A test's private keyring: the Secret Service on the child's session bus.
#[derive(Debug)]
pub struct Keyring {
    dir: PathBuf,
}

impl Keyring {
    /// The private directory (the child's `HOME` is `home/` in it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

// The tools below talk to the session bus of the process, so they work in the child only.

/// Locks the login keyring (the Secret Service's `Lock` of its collection).
#[track_caller]
pub fn lock() {
    test_support::stdout_of(Command::new("dbus-send").args([
        "--session",
        "--dest=org.freedesktop.secrets",
        "--print-reply",
        "/org/freedesktop/secrets",
        "org.freedesktop.Secret.Service.Lock",
        "array:objpath:/org/freedesktop/secrets/collection/login",
    ]));
}

/// Whether the login keyring is locked.
#[track_caller]
pub fn is_locked() -> bool {
    let out = test_support::stdout_of(Command::new("dbus-send").args([
        "--session",
        "--dest=org.freedesktop.secrets",
        "--print-reply",
        "/org/freedesktop/secrets/collection/login",
        "org.freedesktop.DBus.Properties.Get",
        "string:org.freedesktop.Secret.Collection",
        "string:Locked",
    ]));
    out.contains("boolean true")
}

/// Stores `value` under `service` and `account` with secret-tool, as another program
/// would (the `keyring` crate's attributes: `service` and `username`).
#[track_caller]
pub fn store(service: &str, account: &str, value: &[u8]) {
    let mut child = Command::new("secret-tool")
        .args(["store", "--label=test entry", "service", service])
        .args(["username", account])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run secret-tool store");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(value)
        .expect("write to secret-tool");
    let output = child.wait_with_output().expect("wait for secret-tool");
    assert!(output.status.success(), "{}", show_output(&output));
}

/// The value stored under `service` and `account`, read with secret-tool; `None` if
/// there is none.
#[track_caller]
pub fn lookup(service: &str, account: &str) -> Option<Vec<u8>> {
    let output = Command::new("secret-tool")
        .args(["lookup", "service", service, "username", account])
        .stdin(Stdio::null())
        .output()
        .expect("run secret-tool lookup");
    output.status.success().then_some(output.stdout)
}

/// Runs `test` with a private, unlocked gnome-keyring, in a child process of its own.
///
/// Call it once, as the whole body of a `#[test]` function: the parent process makes the
/// private directory and runs the same test again under `dbus-run-session` (`<test binary>
/// <test name> --exact --nocapture --test-threads=1 --include-ignored`); only there does
/// `test` run. The parent fails, showing the child's output, if the child fails or does not
/// run exactly one passing test, or takes longer than 300 s.
///
/// Without the programs it needs it returns without running `test`, after printing
/// `<test>: skipped: gnome-keyring not installed (run scripts/install-deps.sh): ...` to
/// stderr, or panics with that message if `VAULT_REQUIRE_HW` is set.
#[track_caller]
pub fn in_unlocked_keyring(test: impl FnOnce(&Keyring)) {
    if let Some(keyring) = fixture_child() {
        test(&keyring);
        return;
    }
    let name = match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => panic!(
            "keystore-tests: cannot tell which test is running; call in_unlocked_keyring from a #[test] function"
        ),
    };
    if test_support::skip_unless_installed(&name, "gnome-keyring", missing_reason()) {
        return;
    }
    let dir = private_dir();
    let exe = env::current_exe().expect("the test binary has a path");
    let started = Instant::now();
    let output = session_command(dir.path(), Some(CHILD_TIMEOUT_SECS))
        .arg(&exe)
        .arg(&name)
        .args(CHILD_TEST_ARGS)
        .output()
        .unwrap_or_else(|e| panic!("keystore-tests: cannot run dbus-run-session: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !ran_one_passing_test(&stdout) {
        panic!(
            "keystore-tests: test {name} failed in its private-keyring process ({}; exit 124 is the {CHILD_TIMEOUT_SECS} s deadline)\n{}",
            output.status,
            show_output(&output)
        );
    }
    println!(
        "keystore-tests: {name}: private keyring process ran in {} ms; its output:",
        started.elapsed().as_millis()
    );
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
}

/// For benchmark binaries (`harness = false`): runs the whole `main` in a child process on a
/// private D-Bus session with a private, unlocked gnome-keyring.
///
/// The parent makes the private directory, runs the current executable again with the same
/// arguments under `dbus-run-session` (as [`in_unlocked_keyring`] does, without its
/// deadline: a benchmark takes as long as it takes), removes the directory and exits with
/// the child's exit code (128 + the signal if a signal ended it); `main` runs only in the
/// child. Without gnome-keyring, secret-tool or D-Bus the parent prints the skip line and
/// exits 0, or panics if `VAULT_REQUIRE_HW` is set.
///
/// ```no_run
/// // The bench's `main`:
/// keystore_tests::main_in_keyring_session(|keyring| {
///     println!("benchmarking with HOME in {}", keyring.dir().display());
/// });
/// ```
#[track_caller]
pub fn main_in_keyring_session(main: impl FnOnce(&Keyring)) {
    if let Some(keyring) = fixture_child() {
        main(&keyring);
        return;
    }
    let exe = env::current_exe().expect("the running executable has a path");
    let program = exe.file_name().map_or_else(
        || exe.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    if test_support::skip_unless_installed(&program, "gnome-keyring", missing_reason()) {
        std::process::exit(0);
    }
    let dir = private_dir();
    let status = session_command(dir.path(), None)
        .arg(&exe)
        .args(env::args_os().skip(1))
        .status()
        .unwrap_or_else(|e| panic!("keystore-tests: cannot run dbus-run-session: {e}"));
    // process::exit runs no destructors: remove the private directory first.
    drop(dir);
    std::process::exit(exit_code(status));
}

/// A private directory for one keyring: `home/`, and `run/` of mode 0700 (gnome-keyring
/// refuses an `XDG_RUNTIME_DIR` others can enter).
fn private_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("vault-keyring-")
        .tempdir()
        .expect("make the private keyring directory");
    fs::create_dir(dir.path().join("home")).expect("make home/");
    let run = dir.path().join("run");
    fs::create_dir(&run).expect("make run/");
    fs::set_permissions(&run, fs::Permissions::from_mode(0o700)).expect("chmod 700 run/");
    dir
}

/// `dbus-run-session` (under `timeout` when there is a `deadline` in seconds) running
/// [`CHILD_SCRIPT`], which unlocks the keyring and then runs the program and arguments the
/// caller adds, with `dir` as the child's fixture directory and home, and no variable of a
/// desktop session.
fn session_command(dir: &Path, deadline: Option<&str>) -> Command {
    let mut command = match deadline {
        Some(seconds) => {
            let mut command = Command::new("timeout");
            command.args(["--kill-after=10", seconds, "dbus-run-session"]);
            command
        }
        None => Command::new("dbus-run-session"),
    };
    let home = dir.join("home");
    command
        .args(["--", "sh", "-c", CHILD_SCRIPT, "sh"])
        .stdin(Stdio::null())
        .env(FIXTURE_ENV, dir)
        .env(PASSWORD_ENV, PASSWORD)
        .env("XDG_RUNTIME_DIR", dir.join("run"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("HOME", home);
    for var in SESSION_VARS {
        command.env_remove(var);
    }
    command
}

/// In a child started by [`in_unlocked_keyring`], its keyring; `None` in a parent.
#[track_caller]
fn fixture_child() -> Option<Keyring> {
    let dir = env::var_os(FIXTURE_ENV).filter(|dir| !dir.is_empty())?;
    let dir = PathBuf::from(dir);
    assert!(
        env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "keystore-tests: {FIXTURE_ENV} is set but there is no session bus; only the fixture itself should set {FIXTURE_ENV}"
    );
    assert_eq!(
        env::var_os("HOME").map(PathBuf::from),
        Some(dir.join("home")),
        "keystore-tests: the child's HOME is not its private home"
    );
    assert!(
        !ENTERED.swap(true, Ordering::SeqCst),
        "keystore-tests: the fixture was entered twice in one process; call in_unlocked_keyring once per test"
    );
    Some(Keyring { dir })
}

/// What is missing for the fixture, or `None` when nothing is.
fn missing_reason() -> Option<String> {
    let missing: Vec<&str> = PROGRAMS
        .into_iter()
        .filter(|program| test_support::find_program(program).is_none())
        .collect();
    (!missing.is_empty()).then(|| format!("{} not on PATH", missing.join(", ")))
}
