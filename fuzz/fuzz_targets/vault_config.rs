//! `vault.json` (in the vault directory, so writable by whoever can write there):
//! `VaultConfig::from_bytes` never panics, refuses with a damaged-marker error, and what it
//! accepts pins a KEK and round-trips through the form `VaultConfig::update` writes.
//! vault/tests/fuzz_corpus.rs replays the corpus through the same check
//! (vault/tests/fuzz_checks/vault_config.rs).
#![no_main]

#[path = "../../vault/tests/fuzz_checks/vault_config.rs"]
mod check;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check::check_vault_config(data);
});
