//! The shared test suites: every `SecretStore` (through a `Vault`) and every `KekProvider`
//! runs them with one macro line. See `kek_suite!` and `store_suite!`.
//!
//! Both macros take an optional `run: RUNNER` argument: each generated test's body becomes
//! `RUNNER(|| body)`, so that a provider whose tests need an environment (a private HSM token
//! in a child process, say) can set it up around every test. Without it the body runs
//! directly ([`run_directly`]).
#![forbid(unsafe_code)]

pub mod kek_suite;
pub mod store_suite;
pub mod tamper;

pub use store_suite::{files_below, state_files_below};

/// The default runner of the suites' tests: runs the body as it is.
pub fn run_directly(body: impl FnOnce()) {
    body()
}

/// The runner a suite macro was given, or [`run_directly`].
#[doc(hidden)]
#[macro_export]
macro_rules! __runner {
    () => {
        $crate::run_directly
    };
    ($run:expr) => {
        $run
    };
}
