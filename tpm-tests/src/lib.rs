//! Test support for everything that talks to a TPM 2.0: each test starts its own swtpm (the
//! software TPM from the swtpm package) on a private state directory and ports of its own, and
//! reaches it through a TCTI string; dropping the [`Swtpm`] stops it.
//!
//! Unlike SoftHSM, nothing is configured through the process environment: the TCTI string goes
//! to the provider (in its KEK URI) or to tss-esapi directly, so plain `#[test]`s, any number
//! of them at once in one process, each own a swtpm.
//!
//! ```no_run
//! #[test]
//! fn pcr16_binding_breaks_and_heals() {
//!     let Some(tpm) = tpm_tests::Swtpm::start() else { return };
//!     let uri = format!("tpm2:tcti={};pcrs=sha256:16", tpm.tcti());
//!     // ... seal under `uri` ...
//!     tpm.extend_pcr16(b"tampered");
//!     // ... unwrap fails naming PCR 16 ...
//!     tpm.reset_pcr16();
//!     // ... unwrap works again ...
//! }
//! ```
//!
//! Without swtpm or tpm2-tools [`Swtpm::start`] returns `None` after saying on stderr that
//! the test is skipped, unless `VAULT_REQUIRE_HW` is set, when it panics.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod availability;
mod ports;
mod sha256;
mod swtpm;

pub use availability::swtpm_available;
pub use swtpm::Swtpm;
pub use test_support::require_hw;
