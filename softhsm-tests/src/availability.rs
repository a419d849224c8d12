//! Whether SoftHSM2 is installed, and the project's skip rule when it is not.

use std::env;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// Names a SoftHSM module to use instead of the installed one.
const MODULE_ENV: &str = "VAULT_SOFTHSM_MODULE";
/// Set (to anything) where the hardware and its emulators must be present: a test that would
/// skip fails instead. `scripts/test.sh` sets it.
const REQUIRE_HW_ENV: &str = "VAULT_REQUIRE_HW";
/// Where Debian and Ubuntu install the module; the first is a link to the second.
const MODULE_CANDIDATES: [&str; 2] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
];
const INSTALL_HINT: &str = "run scripts/install-deps.sh";

/// The SoftHSM2 PKCS#11 module: the path in `VAULT_SOFTHSM_MODULE` if that is set, else the
/// first of Debian's install locations that exists (`/usr/lib/softhsm/libsofthsm2.so` when
/// none does).
pub fn softhsm_module_path() -> PathBuf {
    if let Some(path) = env::var_os(MODULE_ENV).filter(|path| !path.is_empty()) {
        return PathBuf::from(path);
    }
    MODULE_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from(MODULE_CANDIDATES[0]))
}

/// Whether `softhsm2-util` is on `PATH` and the SoftHSM module file exists.
pub fn softhsm_available() -> bool {
    missing_reason().is_none()
}

/// Whether `VAULT_REQUIRE_HW` is set: then a test must not skip for want of hardware.
pub fn require_hw() -> bool {
    env::var_os(REQUIRE_HW_ENV).is_some()
}

/// What is missing for SoftHSM to be usable, or `None` when nothing is.
fn missing_reason() -> Option<String> {
    if find_program("softhsm2-util").is_none() {
        return Some("softhsm2-util is not on PATH".to_owned());
    }
    let module = softhsm_module_path();
    if !module.is_file() {
        return Some(format!("the module {} does not exist", module.display()));
    }
    None
}

/// Applies the skip rule for `what` (a test name or a program name): `false` when SoftHSM is
/// there; `true`, after saying so on stderr, when it is missing and `VAULT_REQUIRE_HW` is unset;
/// a panic when it is missing and `VAULT_REQUIRE_HW` is set.
///
/// The line goes to the process's stderr directly rather than through `eprintln!`, which
/// libtest captures and shows only for failing tests: a skipped test must never pass silently,
/// as if it had tested something.
#[track_caller]
pub(crate) fn skip_without_softhsm(what: &str) -> bool {
    let Some(reason) = missing_reason() else {
        return false;
    };
    if require_hw() {
        panic!(
            "{what}: SoftHSM2 not installed ({INSTALL_HINT}): {reason}; \
             {REQUIRE_HW_ENV} is set, so this cannot be skipped"
        );
    }
    // Nothing better to do if stderr itself is gone.
    let _ = writeln!(
        std::io::stderr(),
        "{what}: skipped: SoftHSM2 not installed ({INSTALL_HINT}): {reason}"
    );
    true
}

/// The first executable file named `program` in the `PATH` directories.
fn find_program(program: &str) -> Option<PathBuf> {
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
    fn finds_a_program_every_machine_has() {
        assert!(find_program("sh").is_some());
        assert!(find_program("no-such-program-for-softhsm-tests").is_none());
    }
}
