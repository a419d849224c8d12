//! Whether swtpm and tpm2-tools are installed, and the project's skip rule when they are not.

use std::env;
use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// Names the swtpm program to run instead of `swtpm` on `PATH`.
pub(crate) const SWTPM_ENV: &str = "VAULT_SWTPM";
/// Set (to anything) where the hardware and its emulators must be present: a test that would
/// skip fails instead. `scripts/test.sh` sets it.
const REQUIRE_HW_ENV: &str = "VAULT_REQUIRE_HW";
const INSTALL_HINT: &str = "run scripts/install-deps.sh";
/// The tpm2-tools programs the fixture runs itself (readiness is checked in-process).
const TPM2_TOOLS: [&str; 5] = [
    "tpm2_shutdown",
    "tpm2_pcrextend",
    "tpm2_pcrreset",
    "tpm2_pcrread",
    "tpm2_getcap",
];

/// Whether swtpm and the tpm2-tools programs the fixture uses are installed, so that
/// [`Swtpm::start`](crate::Swtpm::start) starts one.
pub fn swtpm_available() -> bool {
    missing_reason().is_none()
}

/// Whether `VAULT_REQUIRE_HW` is set: then a test must not skip for want of hardware.
pub fn require_hw() -> bool {
    env::var_os(REQUIRE_HW_ENV).is_some()
}

/// The swtpm program: `VAULT_SWTPM` if set (a path, or a name looked up on `PATH`), else
/// `swtpm`.
pub(crate) fn swtpm_program() -> OsString {
    env::var_os(SWTPM_ENV)
        .filter(|program| !program.is_empty())
        .unwrap_or_else(|| "swtpm".into())
}

/// What is missing for the fixture to work, or `None` when nothing is.
fn missing_reason() -> Option<String> {
    let swtpm = swtpm_program();
    if find_program(&swtpm).is_none() {
        return Some(format!(
            "{} is not an executable file or on PATH",
            Path::new(&swtpm).display()
        ));
    }
    TPM2_TOOLS
        .iter()
        .find(|tool| find_program(tool.as_ref()).is_none())
        .map(|tool| format!("{tool} (tpm2-tools) is not on PATH"))
}

/// Applies the skip rule for the running test: `false` when swtpm is there; `true`, after
/// saying so on stderr, when it is missing and `VAULT_REQUIRE_HW` is unset; a panic when it
/// is missing and `VAULT_REQUIRE_HW` is set.
///
/// The line goes to the process's stderr directly rather than through `eprintln!`, which
/// libtest captures and shows only for failing tests: a skipped test must never pass silently,
/// as if it had tested something.
#[track_caller]
pub(crate) fn skip_without_swtpm() -> bool {
    let Some(reason) = missing_reason() else {
        return false;
    };
    // libtest names each test's thread after the test.
    let thread = std::thread::current();
    let what = thread.name().unwrap_or("swtpm test");
    if require_hw() {
        panic!(
            "{what}: swtpm not installed ({INSTALL_HINT}): {reason}; \
             {REQUIRE_HW_ENV} is set, so this cannot be skipped"
        );
    }
    // Nothing better to do if stderr itself is gone.
    let _ = writeln!(
        std::io::stderr(),
        "{what}: skipped: swtpm not installed ({INSTALL_HINT}): {reason}"
    );
    true
}

/// `program` itself if it names a file (has a `/`), else the first executable file of that
/// name in the `PATH` directories; `None` if that is not an executable file.
fn find_program(program: &std::ffi::OsStr) -> Option<PathBuf> {
    let program = Path::new(program);
    if program.components().count() > 1 {
        return is_executable_file(program).then(|| program.to_owned());
    }
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable_file(candidate))
}

fn is_executable_file(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_by_name_and_by_path() {
        assert!(find_program("sh".as_ref()).is_some());
        assert!(find_program("no-such-program-for-tpm-tests".as_ref()).is_none());
        assert!(find_program("/bin/sh".as_ref()).is_some());
        assert!(find_program("/nonexistent/swtpm".as_ref()).is_none());
        // A directory is not a program.
        assert!(find_program("/bin".as_ref()).is_none());
    }
}
