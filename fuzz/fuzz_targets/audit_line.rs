//! The audit log reader (`vaultctl audit verify` and `audit show`): on any file, the line
//! reader (`AuditRecord::parse_line`, `check_line`) never panics and only accepts canonical
//! records with correct MACs (under the corpus key), and `vault::audit::verify` accepts the
//! file exactly when its lines form a chain from seq 1 (refusing otherwise with a
//! damaged-log error), with `tail`
//! returning those records. vault/tests/fuzz_corpus.rs replays the corpus through the same
//! check (vault/tests/fuzz_checks/audit_line.rs).
#![no_main]

#[path = "../../vault/tests/fuzz_checks/audit_line.rs"]
mod check;

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

/// A directory of this process's own for the log and its head.
static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("audit-line-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the log directory");
    dir
});

fuzz_target!(|data: &[u8]| {
    check::check_audit_log(&DIR, data);
});
