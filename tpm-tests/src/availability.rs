//! Whether swtpm and tpm2-tools are installed, and the project's skip rule when they are not.

use std::env;
use std::ffi::OsString;
use std::path::Path;

use test_support::find_program;

/// Names the swtpm program to run instead of `swtpm` on `PATH`.
pub(crate) const SWTPM_ENV: &str = "VAULT_SWTPM";
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
        .find(|tool| find_program(tool).is_none())
        .map(|tool| format!("{tool} (tpm2-tools) is not on PATH"))
}

/// Applies the skip rule for the running test: `false` when swtpm is there; `true`, after
/// saying so on stderr, when it is missing and `VAULT_REQUIRE_HW` is unset; a panic when it
/// is missing and `VAULT_REQUIRE_HW` is set.
#[track_caller]
pub(crate) fn skip_without_swtpm() -> bool {
    let Some(reason) = missing_reason() else {
        return false;
    };
    // libtest names each test's thread after the test.
    let thread = std::thread::current();
    let what = thread.name().unwrap_or("swtpm test");
    test_support::skip_unless_installed(what, "swtpm", Some(reason))
}
