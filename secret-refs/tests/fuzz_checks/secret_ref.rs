//! The `secret_ref` fuzz target's check, shared by the target (fuzz/fuzz_targets/secret_ref.rs)
//! and the corpus replay (tests/fuzz_corpus.rs).

use std::path::{Component, Path};

use secret_refs::{
    MAX_ENV_NAME_LEN, MAX_EXEC_ARG_LEN, MAX_EXEC_ARGS, MAX_PATH_LEN, SecretRef, parse,
};

/// Longest error message: the reference is cut to 80 characters (at most 10 bytes each when
/// `{:?}` escapes them), and a reason quotes at most one such cut name.
const MAX_ERROR_LEN: usize = 2048;

/// An absolute path of normal components only, within the length bound.
fn path_ok(path: &Path) -> bool {
    path.as_os_str().len() <= MAX_PATH_LEN
        && path.is_absolute()
        && path
            .components()
            .skip(1)
            .all(|c| matches!(c, Component::Normal(_)))
        && path
            .to_str()
            .is_some_and(|p| !p.chars().any(char::is_control))
}

/// The check: whether `data` parsed, after checking that an accepted reference keeps to its
/// documented bounds and that its `Display` (the canonical form) parses back to the same
/// reference and is a fixed point, and that a refusal's message is bounded.
pub fn check_secret_ref(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    match parse(text) {
        Ok(reference) => {
            match &reference {
                SecretRef::Vault { key, version, .. } => {
                    vault::check_key(key).expect("the key name is valid");
                    assert_ne!(*version, Some(0), "version 0");
                }
                SecretRef::Env { name } => {
                    assert!((1..=MAX_ENV_NAME_LEN).contains(&name.len()), "{name:?}");
                }
                SecretRef::File { path } => assert!(path_ok(path), "{path:?}"),
                SecretRef::Exec { program, args } => {
                    assert!(path_ok(program), "{program:?}");
                    assert!(args.len() <= MAX_EXEC_ARGS);
                    for arg in args {
                        assert!(arg.len() <= MAX_EXEC_ARG_LEN && !arg.contains('\0'));
                    }
                }
                _ => {}
            }
            let canonical = reference.to_string();
            let again = parse(&canonical)
                .unwrap_or_else(|e| panic!("canonical form {canonical:?} refused: {e}"));
            assert_eq!(
                again, reference,
                "canonical form {canonical:?} parses differently"
            );
            assert_eq!(again.to_string(), canonical, "not a fixed point");
            true
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.len() <= MAX_ERROR_LEN,
                "error of {} bytes",
                message.len()
            );
            false
        }
    }
}
