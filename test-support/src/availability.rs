//! The project's skip rule for tests whose hardware (or its emulator) is not installed.

use std::env;
use std::ffi::OsStr;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Set (to anything) where the hardware and its emulators must be present: a test that would
/// skip fails instead. `scripts/test.sh` sets it.
const REQUIRE_HW_ENV: &str = "VAULT_REQUIRE_HW";
const INSTALL_HINT: &str = "run scripts/install-deps.sh";

/// Whether `VAULT_REQUIRE_HW` is set: then a test must not skip for want of hardware.
pub fn require_hw() -> bool {
    env::var_os(REQUIRE_HW_ENV).is_some()
}

/// Applies the skip rule for `what` (a test name or a program name), which needs `fixture`
/// (`SoftHSM2`, `swtpm`): `false` when nothing is `missing`; `true`, after saying so on
/// stderr, when something is and `VAULT_REQUIRE_HW` is unset; a panic when something is and
/// `VAULT_REQUIRE_HW` is set.
///
/// The line goes to the process's stderr directly rather than through `eprintln!`, which
/// libtest captures and shows only for failing tests: a skipped test must never pass silently,
/// as if it had tested something.
#[track_caller]
pub fn skip_unless_installed(what: &str, fixture: &str, missing: Option<String>) -> bool {
    let Some(reason) = missing else {
        return false;
    };
    if require_hw() {
        panic!(
            "{what}: {fixture} not installed ({INSTALL_HINT}): {reason}; \
             {REQUIRE_HW_ENV} is set, so this cannot be skipped"
        );
    }
    // Nothing better to do if stderr itself is gone.
    let _ = writeln!(
        std::io::stderr(),
        "{what}: skipped: {fixture} not installed ({INSTALL_HINT}): {reason}"
    );
    true
}

/// Asserts the skip rule on `test`, a test of the running test binary that needs `fixture`,
/// run again in a child process (`<test> --exact --test-threads=1`) that `configure` points
/// at a fixture that is not there, so that `reason` is what is missing: without
/// `VAULT_REQUIRE_HW` the child passes, printing the skip line on stderr; with it the child
/// fails, saying that the fixture is missing and that this cannot be skipped.
#[track_caller]
pub fn assert_skip_rule(test: &str, fixture: &str, reason: &str, configure: impl Fn(&mut Command)) {
    let run = |require_hw: bool| {
        let mut command = Command::new(env::current_exe().expect("the test binary has a path"));
        command.args([test, "--exact", "--test-threads=1"]);
        configure(&mut command);
        command.env_remove(REQUIRE_HW_ENV);
        if require_hw {
            command.env(REQUIRE_HW_ENV, "1");
        }
        command.output().expect("run the test binary")
    };
    let missing = format!("{fixture} not installed ({INSTALL_HINT}): {reason}");

    let skipped = run(false);
    let stderr = String::from_utf8_lossy(&skipped.stderr);
    assert!(skipped.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{test}: skipped: {missing}")),
        "{stderr}"
    );

    let required = run(true);
    // libtest shows a failed test's panic on stdout.
    let stdout = String::from_utf8_lossy(&required.stdout);
    assert!(!required.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{missing}; {REQUIRE_HW_ENV} is set, so this cannot be skipped"
        )),
        "{stdout}"
    );
}

/// `program` itself if it names a file (has a `/`), else the first executable file of that
/// name in the `PATH` directories; `None` if that is not an executable file.
pub fn find_program(program: impl AsRef<OsStr>) -> Option<PathBuf> {
    let program = Path::new(program.as_ref());
    if program.components().count() > 1 {
        return is_executable_file(program).then(|| program.to_owned());
    }
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable_file(candidate))
}

/// Whether `path` is a file that someone may execute.
pub fn is_executable_file(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_by_name_and_by_path() {
        assert!(find_program("sh").is_some());
        assert!(find_program("no-such-program-for-test-support").is_none());
        assert!(find_program("/bin/sh").is_some());
        assert!(find_program("/nonexistent/swtpm").is_none());
        // A directory is not a program.
        assert!(find_program("/bin").is_none());
    }

    #[test]
    fn nothing_missing_is_no_skip() {
        assert!(!skip_unless_installed("a test", "SoftHSM2", None));
    }
}
