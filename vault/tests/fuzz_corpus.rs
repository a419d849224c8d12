//! Replays the checked-in corpora of the vault's fuzz targets (`fuzz/corpus/<target>/`: the
//! seeds and every input that ever crashed a target) through the targets' checks, so a fixed
//! crash stays fixed in a plain `cargo test`. Seeds say what they expect: `ok-*` are
//! accepted, `bad-*` refused, `regression-*` either way.

use std::path::Path;

#[path = "fuzz_checks/audit_line.rs"]
mod audit_line_check;

#[path = "fuzz_checks/scope_key.rs"]
mod scope_key_check;

#[path = "fuzz_checks/vault_config.rs"]
mod vault_config_check;

/// Every file of fuzz target `target`'s checked-in corpus, as (file name, contents).
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("entry").path();
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&path).expect("read"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    files
}

#[test]
fn scope_key_corpus_passes_the_fuzz_checks() {
    for (name, data) in corpus("scope_key") {
        let (scope, key) = scope_key_check::check_scope_key(&data);
        // ok-scope-* are scopes, ok-key-* key names, bad-* neither.
        if name.starts_with("ok-scope-") {
            assert!(scope, "{name} was refused as a scope");
        } else if name.starts_with("ok-key-") {
            assert!(key, "{name} was refused as a key name");
        } else if name.starts_with("bad-") {
            assert!(!scope && !key, "{name} was accepted");
        }
    }
}

#[test]
fn vault_config_corpus_round_trips() {
    for (name, data) in corpus("vault_config") {
        let parsed = vault_config_check::check_vault_config(&data);
        if name.starts_with("ok-") {
            assert!(parsed, "{name} was refused");
        } else if name.starts_with("bad-") {
            assert!(!parsed, "{name} was accepted");
        }
    }
}

#[test]
fn audit_line_corpus_agrees_with_verify() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, data) in corpus("audit_line") {
        let verified = audit_line_check::check_audit_log(dir.path(), &data);
        if name.starts_with("ok-") {
            assert!(verified.is_some(), "{name} was refused");
        } else if name.starts_with("bad-") {
            assert!(verified.is_none(), "{name} verified");
        }
    }
}
