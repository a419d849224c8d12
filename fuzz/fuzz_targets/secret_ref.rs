//! Secret references (`vault://`, `env://`, `file://`, `exec://`, from configuration files and
//! command lines): `secret_refs::parse` never panics; an accepted reference keeps to its
//! bounds, and its `Display` is canonical: it parses back to the same reference and is a
//! fixed point. secret-refs/tests/fuzz_corpus.rs replays the corpus through the same check
//! (secret-refs/tests/fuzz_checks/secret_ref.rs).
#![no_main]

#[path = "../../secret-refs/tests/fuzz_checks/secret_ref.rs"]
mod check;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check::check_secret_ref(data);
});
