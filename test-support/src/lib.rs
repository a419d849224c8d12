//! Test support shared by the hardware fixtures (`softhsm-tests`, `tpm-tests`):
//!
//! - the project's skip rule for a test whose device or emulator is not installed
//!   ([`skip_unless_installed`], [`require_hw`]), [`find_program`] to tell, and
//!   [`assert_skip_rule`] to test a fixture's skip;
//! - this build's `vaultctl` binary, built first when cargo runs the tests
//!   ([`vaultctl_binary`]);
//! - [`stdout_of`], to run a fixture's tool that must succeed;
//! - [`Vaultctl`], a runner for that binary that checks no run panics or shows a secret;
//! - [`child`]: what the fixtures that rerun a test in a child process share;
//! - [`auto`]: a TPM that does not answer and auto's skip notes, for the `--kek auto` tests;
//! - [`fuzz_corpus::for_each_seed`], to replay a fuzz target's checked-in corpus;
//! - [`postgres`]: a real PostgreSQL server, a fresh database per test
//!   ([`postgres::database`]) or a server of a test's own ([`postgres::PgServer`]);
//! - with the `kek` feature, [`kek`]: the KEK providers' test helpers;
//! - [`x509::high_s_copy`]: a certificate re-encoded as its holder can, for revocation tests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auto;
mod availability;
pub mod child;
mod command;
pub mod fuzz_corpus;
#[cfg(feature = "kek")]
pub mod kek;
pub mod postgres;
mod vaultctl;
mod vaultctl_bin;
pub mod x509;

pub use availability::{
    assert_skip_rule, find_program, is_executable_file, require_hw, skip_unless_installed,
};
pub use command::stdout_of;
pub use vaultctl::{ErrorLine, Run, Vaultctl};
pub use vaultctl_bin::vaultctl_binary;
