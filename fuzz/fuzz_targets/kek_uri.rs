//! KEK URIs of every scheme (configuration, command line, vault.json), through the registry
//! that every URI enters by (`kek_providers::check_uri`): it never panics, its refusals are
//! bounded and never repeat a secret placed in the URI (a PIN, a passphrase typed as the
//! source), and it agrees with the `pkcs11:` and `tpm2:` parsers. One target rather than one
//! per scheme: the per-scheme parsers are private to the registry. kek-providers/tests/
//! fuzz_corpus.rs replays the corpus through the same check (tests/fuzz_checks/kek_uri.rs).
#![no_main]

#[path = "../../kek-providers/tests/fuzz_checks/kek_uri.rs"]
mod check;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check::check_kek_uri(data);
});
