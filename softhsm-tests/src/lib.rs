//! Test support for everything that talks to SoftHSM2: each test gets a private token in a
//! process of its own.
//!
//! SoftHSM reads `SOFTHSM2_CONF` once per process, at `C_Initialize`, and a process may call
//! `C_Initialize` once; setting the variable from inside a test would need `unsafe` and would
//! race with the other test threads. So [`in_private_token`] makes a private token directory,
//! then runs the current test again in a child process of the same test binary with
//! `SOFTHSM2_CONF` set on the child's `Command`; the child runs the test body. Benchmark
//! binaries do the same for their whole `main` with [`main_in_private_token`].
//!
//! ```no_run
//! #[test]
//! fn lists_the_token() {
//!     softhsm_tests::in_private_token(|hsm| {
//!         let output = hsm.pkcs11_tool().arg("--list-token-slots").output().unwrap();
//!         assert!(String::from_utf8_lossy(&output.stdout).contains(hsm.token_label()));
//!     });
//! }
//! ```
//!
//! Without SoftHSM2 (no `softhsm2-util` on `PATH`, or no module file) a test skips, saying so
//! on stderr, unless `VAULT_REQUIRE_HW` is set, when it fails.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod availability;
mod reexec;
mod setup;
mod softhsm;
mod uri;

use std::time::Instant;

pub use availability::{softhsm_available, softhsm_module_path};
pub use softhsm::SoftHsm;
pub use test_support::{require_hw, vaultctl_binary};

use setup::PrivateToken;

/// Runs `test` with a fresh private SoftHSM token, in a child process of its own.
///
/// Call it once, as the whole body of a `#[test]` function, with a closure literal: the
/// parent process sets up the token and runs the same test again in a child process
/// (`<test binary> <test name> --exact --nocapture --test-threads=1 --include-ignored`) with
/// `SOFTHSM2_CONF` set; only there does `test` run. Code outside the closure runs in both
/// processes. The parent fails, showing the child's stdout and stderr, if the child fails or
/// does not run exactly one passing test. `#[should_panic]` does not work on such a test
/// (the parent never panics when the child does as expected); check the panic inside.
///
/// Without SoftHSM2 it returns without running `test`, after printing
/// `skipped: SoftHSM2 not installed (run scripts/install-deps.sh)` to stderr, or panics
/// with that message if `VAULT_REQUIRE_HW` is set.
#[track_caller]
pub fn in_private_token(test: impl FnOnce(&SoftHsm)) {
    if let Some(hsm) = reexec::fixture_child() {
        test(&hsm);
        return;
    }
    let name = reexec::current_test_name(std::any::type_name_of_val(&test));
    if availability::skip_without_softhsm(&name) {
        return;
    }
    let started = Instant::now();
    let token = PrivateToken::create();
    reexec::run_test_in_child(&name, &token, started.elapsed());
}

/// For benchmark binaries (`harness = false`): runs the whole `main` in a child process that
/// has a private token.
///
/// The parent makes the token, runs the current executable again with the same arguments
/// and `SOFTHSM2_CONF` set, and exits with the child's exit code (128 + the signal if a
/// signal ended it); `main` runs only in the child. Without SoftHSM2 the parent prints the
/// skip line and exits 0, or panics if `VAULT_REQUIRE_HW` is set.
///
/// ```no_run
/// // The bench's `main`:
/// softhsm_tests::main_in_private_token(|hsm| {
///     println!("benchmarking against {}", hsm.kek_uri("bench-kek"));
/// });
/// ```
#[track_caller]
pub fn main_in_private_token(main: impl FnOnce(&SoftHsm)) {
    if let Some(hsm) = reexec::fixture_child() {
        main(&hsm);
        return;
    }
    let exe = reexec::current_exe();
    let program = exe.file_name().map_or_else(
        || exe.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    if availability::skip_without_softhsm(&program) {
        std::process::exit(0);
    }
    let token = PrivateToken::create();
    let status = reexec::rerun_main_in_child(&token);
    // process::exit runs no destructors: remove the token dir first.
    drop(token);
    std::process::exit(test_support::child::exit_code(status));
}
