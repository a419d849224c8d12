//! Whether SoftHSM2 is installed, and the project's skip rule when it is not.

use std::env;
use std::path::PathBuf;

use test_support::find_program;

/// Names a SoftHSM module to use instead of the installed one.
const MODULE_ENV: &str = "VAULT_SOFTHSM_MODULE";
/// Where Debian and Ubuntu install the module; the first is a link to the second.
const MODULE_CANDIDATES: [&str; 2] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
];

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
#[track_caller]
pub(crate) fn skip_without_softhsm(what: &str) -> bool {
    test_support::skip_unless_installed(what, "SoftHSM2", missing_reason())
}
