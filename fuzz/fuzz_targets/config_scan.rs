//! config-scan on one file of each format (TOML, YAML, JSON, INI, .env, other; the first byte
//! picks it), scanned in memory (config_scan::scan_bytes): scanning never panics, every finding is well-formed (at most 4
//! characters of a value shown, a 16-digit fingerprint, a line within the file), and a token
//! planted after the fuzzed text never shows beyond its first 4 characters in the human,
//! notes or JSON output. config-scan/tests/fuzz_corpus.rs replays the corpus through the same
//! check (config-scan/tests/fuzz_checks/config_scan.rs).
#![no_main]

#[path = "../../config-scan/tests/fuzz_checks/config_scan.rs"]
mod check;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check::check_config_scan(data);
});
