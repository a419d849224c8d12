//! Replays the checked-in corpus of the `config_scan` fuzz target (`fuzz/corpus/config_scan/`:
//! the seeds and every input that ever crashed it) through the target's check, so a fixed
//! crash stays fixed in a plain `cargo test`.

use std::path::Path;

#[path = "fuzz_checks/config_scan.rs"]
mod config_scan_check;

#[test]
fn config_scan_corpus_passes_the_fuzz_checks() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/config_scan");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&corpus).expect("corpus dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let data = std::fs::read(&path).expect("read");
        let scanned = config_scan_check::check_config_scan(dir.path(), &data);
        // Seeds (clean-*) hold no secret, and the token planted after each is found.
        if name.starts_with("clean-") {
            assert_eq!(scanned.findings, 0, "{name}: found something");
            assert_eq!(
                scanned.canary_found,
                Some(true),
                "{name}: planted token missed"
            );
        }
        replayed += 1;
    }
    assert!(replayed > 0, "the corpus is missing");
}
