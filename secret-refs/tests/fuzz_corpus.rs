//! Replays the checked-in corpus of the `secret_ref` fuzz target (`fuzz/corpus/secret_ref/`:
//! the seeds and every input that ever crashed it) through the target's check, so a fixed
//! crash stays fixed in a plain `cargo test`.

use test_support::fuzz_corpus::{assert_as_named, for_each_seed};

#[path = "fuzz_checks/secret_ref.rs"]
mod secret_ref_check;

#[test]
fn secret_ref_corpus_round_trips() {
    for_each_seed("secret_ref", |name, data| {
        let parsed = secret_ref_check::check_secret_ref(data);
        assert_as_named(name, parsed);
    });
}
