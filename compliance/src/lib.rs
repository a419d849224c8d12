//! The shared test suites: every `SecretStore` (through a `Vault`) and every `KekProvider`
//! runs them with one macro line. See `kek_suite!` and `store_suite!`.
#![forbid(unsafe_code)]

pub mod kek_suite;
pub mod store_suite;

pub use store_suite::files_below;
