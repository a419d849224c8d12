//! The TPM provider's parsers of untrusted input: `tpm2:` KEK URIs (configuration, command
//! line) and stanza bodies (envelopes). `Tpm2Uri::parse` and `SealedBody::parse` never panic;
//! an accepted URI's canonical form parses back to it and is a fixed point; an accepted body
//! re-encodes to the same bytes. kek-providers/tests/fuzz_corpus.rs replays the corpus through
//! the same checks (kek-providers/tests/fuzz_checks/tpm2_uri.rs).
#![no_main]

#[path = "../../kek-providers/tests/fuzz_checks/tpm2_uri.rs"]
mod check;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check::check_tpm2_uri(data);
    check::check_tpm2_body(data);
});
