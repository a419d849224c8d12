//! PKCS#11 URIs (RFC 7512, from configuration and the command line): `Pkcs11Uri::parse` never
//! panics, and whatever it accepts has a canonical form that parses back to the same URI
//! (without the PIN), is its own canonical form, is no longer than the input and carries no
//! `pin-value` attribute. kek-providers/tests/fuzz_corpus.rs replays the corpus through the
//! same check (kek-providers/tests/fuzz_checks/pkcs11_uri.rs).
#![no_main]

#[path = "../../kek-providers/tests/fuzz_checks/pkcs11_uri.rs"]
mod check;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check::check_pkcs11_uri(data);
});
