//! Replays the checked-in corpus of the `secret_ref` fuzz target (`fuzz/corpus/secret_ref/`:
//! the seeds and every input that ever crashed it) through the target's check, so a fixed
//! crash stays fixed in a plain `cargo test`.

use std::path::Path;

#[path = "fuzz_checks/secret_ref.rs"]
mod secret_ref_check;

#[test]
fn secret_ref_corpus_round_trips() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/secret_ref");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let parsed = secret_ref_check::check_secret_ref(&std::fs::read(&path).expect("read"));
        // Seeds say what they expect: ok-* parse, bad-* are refused (regression-* either).
        if name.starts_with("ok-") {
            assert!(parsed, "{name} was refused");
        } else if name.starts_with("bad-") {
            assert!(!parsed, "{name} parsed");
        }
        replayed += 1;
    }
    assert!(replayed > 0, "the corpus is missing");
}
