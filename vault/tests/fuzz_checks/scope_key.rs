//! The `scope_key` fuzz target's check, shared by the target (fuzz/fuzz_targets/scope_key.rs)
//! and the corpus replay (tests/fuzz_corpus.rs).

use vault::{Error, MAX_KEY_LEN, MAX_SCOPE_COMPONENT, Scope, check_key, shorten_name};

/// Longest error message about a name: the name is cut to 80 characters, each at most 10
/// when `{:?}` escapes it, and the reason is fixed text naming one character.
const MAX_ERROR_LEN: usize = 1024;

/// What the documentation allows in a scope component and a key name.
fn component_ok(text: &str) -> bool {
    (1..=MAX_SCOPE_COMPONENT).contains(&text.len())
        && !text.starts_with('.')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '+' | '-'))
}

/// The check: whether `data` parsed as a scope and as a key name, after checking that
/// `shorten_name` is a bounded prefix, that an accepted scope is its own `Display` and
/// parses back equal with documented components only, that an accepted key name keeps to
/// the documented rules, and that refusals are the right variant with a bounded message.
pub fn check_scope_key(data: &[u8]) -> (bool, bool) {
    let Ok(text) = std::str::from_utf8(data) else {
        return (false, false);
    };
    let short = shorten_name(text);
    if text.chars().count() > 80 {
        let prefix: String = text.chars().take(80).collect();
        assert_eq!(short, format!("{prefix}..."), "shorten_name of a long name");
    } else {
        assert_eq!(short, text, "shorten_name of a short name");
    }

    let scope_ok = match Scope::parse(text) {
        Ok(scope) => {
            assert_eq!(scope.to_string(), text, "a scope is its own Display");
            assert_eq!(Scope::parse(&scope.to_string()).ok(), Some(scope.clone()));
            match &scope {
                Scope::Global => {}
                Scope::Principal(id) | Scope::Skill(id) => assert!(component_ok(id), "{id:?}"),
                Scope::Channel { name, account } => {
                    assert!(component_ok(name) && component_ok(account), "{scope:?}");
                }
            }
            true
        }
        Err(e) => {
            assert!(matches!(e, Error::InvalidScope { .. }), "{e:?}");
            let message = e.to_string();
            assert!(
                message.len() <= MAX_ERROR_LEN,
                "scope error of {} bytes",
                message.len()
            );
            false
        }
    };

    let key_ok = match check_key(text) {
        Ok(()) => {
            assert!((1..=MAX_KEY_LEN).contains(&text.len()));
            assert!(!text.starts_with('.') && !text.contains(".."), "{text:?}");
            assert!(
                text.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
                "{text:?}"
            );
            true
        }
        Err(e) => {
            assert!(matches!(e, Error::InvalidKeyName { .. }), "{e:?}");
            let message = e.to_string();
            assert!(
                message.len() <= MAX_ERROR_LEN,
                "key error of {} bytes",
                message.len()
            );
            false
        }
    };
    (scope_ok, key_ok)
}
