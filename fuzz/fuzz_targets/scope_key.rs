//! Scopes and key names (every request's address, from callers): `Scope::parse`, `check_key`
//! and `shorten_name` never panic; an accepted scope is its own canonical `Display`; what is
//! accepted keeps to the documented character sets and lengths; refusals are bounded
//! messages. vault/tests/fuzz_corpus.rs replays the corpus through the same check
//! (vault/tests/fuzz_checks/scope_key.rs).
#![no_main]

#[path = "../../vault/tests/fuzz_checks/scope_key.rs"]
mod check;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check::check_scope_key(data);
});
