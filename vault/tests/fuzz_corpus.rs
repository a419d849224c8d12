//! Replays the checked-in corpora of the vault's fuzz targets (`fuzz/corpus/<target>/`: the
//! seeds and every input that ever crashed a target) through the targets' checks, so a fixed
//! crash stays fixed in a plain `cargo test`. Seeds say what they expect: `ok-*` are
//! accepted, `bad-*` refused, `regression-*` either way.

use test_support::fuzz_corpus::{assert_as_named, for_each_seed};

#[path = "fuzz_checks/audit_line.rs"]
mod audit_line_check;

#[path = "fuzz_checks/scope_key.rs"]
mod scope_key_check;

#[path = "fuzz_checks/vault_config.rs"]
mod vault_config_check;

#[test]
fn scope_key_corpus_passes_the_fuzz_checks() {
    for_each_seed("scope_key", |name, data| {
        let (scope, key) = scope_key_check::check_scope_key(data);
        // ok-scope-* are scopes, ok-key-* key names, bad-* neither.
        if name.starts_with("ok-scope-") {
            assert!(scope, "{name} was refused as a scope");
        } else if name.starts_with("ok-key-") {
            assert!(key, "{name} was refused as a key name");
        } else if name.starts_with("bad-") {
            assert!(!scope && !key, "{name} was accepted");
        }
    });
}

#[test]
fn vault_config_corpus_round_trips() {
    for_each_seed("vault_config", |name, data| {
        let parsed = vault_config_check::check_vault_config(data);
        assert_as_named(name, parsed);
    });
}

#[test]
fn audit_line_corpus_agrees_with_verify() {
    let dir = tempfile::tempdir().expect("temp dir");
    for_each_seed("audit_line", |name, data| {
        let verified = audit_line_check::check_audit_log(dir.path(), data);
        assert_as_named(name, verified.is_some());
    });
}
