//! Replays the checked-in corpus of the `config_scan` fuzz target (`fuzz/corpus/config_scan/`:
//! the seeds and every input that ever crashed it) through the target's check, so a fixed
//! crash stays fixed in a plain `cargo test`.

use test_support::fuzz_corpus::for_each_seed;

#[path = "fuzz_checks/config_scan.rs"]
mod config_scan_check;

#[test]
fn config_scan_corpus_passes_the_fuzz_checks() {
    for_each_seed("config_scan", |name, data| {
        let scanned = config_scan_check::check_config_scan(data);
        // Seeds (clean-*) hold no secret, and the token planted after each is found.
        if name.starts_with("clean-") {
            assert_eq!(scanned.findings, 0, "{name}: found something");
            assert_eq!(
                scanned.canary_found,
                Some(true),
                "{name}: planted token missed"
            );
        }
    });
}
