//! Scopes and key names: the only strings from callers that reach the store and the AAD.
//!
//! A scope is one of
//! - `global`
//! - `principal:<id>`
//! - `channel:<name>:<account>`
//! - `skill:<id>`
//!
//! where each `<component>` is 1 to 64 characters of `A-Z a-z 0-9 . _ @ + -`, not starting
//! with `.`; a principal `<id>` follows the rule of the `principal-id` crate (the same, and
//! not `-` alone, which the audit log writes for "no principal"), as certificates and ACL
//! rules do. A key name is 1 to 128 characters of `A-Z a-z 0-9 . _ -`, not starting with `.`
//! and not containing `..`. Everything else (empty names, whitespace, control characters,
//! path separators, `:` inside a component) is rejected, so a name is always safe to print,
//! to log and to use in a file name.

use std::fmt;

use crate::Error;

/// Longest scope component.
pub const MAX_SCOPE_COMPONENT: usize = 64;
/// Longest key name.
pub const MAX_KEY_LEN: usize = 128;

/// A validated scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Secrets shared by every principal.
    Global,
    /// Secrets of one principal.
    Principal(String),
    /// Secrets of one account on one channel.
    Channel {
        /// The channel, e.g. `slack`.
        name: String,
        /// The account on that channel.
        account: String,
    },
    /// Secrets of one skill.
    Skill(String),
}

impl Scope {
    /// Parses and validates a scope string.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidScope {
            scope: shorten_name(text),
            reason,
        };
        let (kind, rest) = match text.split_once(':') {
            Some((kind, rest)) => (kind, Some(rest)),
            None => (text, None),
        };
        let scope = match (kind, rest) {
            ("global", None) => Scope::Global,
            ("principal", Some(id)) => {
                principal_id::check(id)
                    .map_err(|why| invalid(format!("the principal id is not valid: {why}")))?;
                Scope::Principal(id.to_owned())
            }
            ("skill", Some(id)) => Scope::Skill(component(id, "skill id").map_err(invalid)?),
            ("channel", Some(rest)) => {
                let (name, account) = rest
                    .split_once(':')
                    .ok_or_else(|| invalid("write it as channel:<name>:<account>".into()))?;
                Scope::Channel {
                    name: component(name, "channel name").map_err(invalid)?,
                    account: component(account, "channel account").map_err(invalid)?,
                }
            }
            _ => {
                return Err(invalid(
                    "use global, principal:<id>, channel:<name>:<account> or skill:<id>".into(),
                ));
            }
        };
        Ok(scope)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Global => f.write_str("global"),
            Scope::Principal(id) => write!(f, "principal:{id}"),
            Scope::Channel { name, account } => write!(f, "channel:{name}:{account}"),
            Scope::Skill(id) => write!(f, "skill:{id}"),
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        Scope::parse(text)
    }
}

fn component(text: &str, what: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if text.len() > MAX_SCOPE_COMPONENT {
        return Err(format!(
            "the {what} is longer than {MAX_SCOPE_COMPONENT} characters"
        ));
    }
    if text.starts_with('.') {
        return Err(format!("the {what} starts with '.'"));
    }
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '+' | '-')))
    {
        return Err(format!(
            "the {what} contains {bad:?}; allowed are A-Z a-z 0-9 . _ @ + -"
        ));
    }
    Ok(text.to_owned())
}

/// Validates a key name (see the module documentation for the rules).
pub fn check_key(key: &str) -> Result<(), Error> {
    let invalid = |reason: String| Error::InvalidKeyName {
        key: shorten_name(key),
        reason,
    };
    if key.is_empty() {
        return Err(invalid("the key name is empty".into()));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(invalid(format!("longer than {MAX_KEY_LEN} characters")));
    }
    if key.starts_with('.') || key.contains("..") {
        return Err(invalid("it starts with '.' or contains '..'".into()));
    }
    if let Some(bad) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(invalid(format!(
            "it contains {bad:?}; allowed are A-Z a-z 0-9 . _ -"
        )));
    }
    Ok(())
}

/// A caller-supplied name cut to a printable length for an error message: a 1 MiB name must
/// not become a 1 MiB error.
pub fn shorten_name(text: &str) -> String {
    const SHOWN: usize = 80;
    match text.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_through_display() {
        for text in [
            "global",
            "principal:alice@example.com",
            "channel:slack:T01+x",
            "skill:deploy-1.2",
        ] {
            assert_eq!(Scope::parse(text).expect(text).to_string(), text);
        }
    }

    #[test]
    fn bad_scopes_are_refused() {
        for text in [
            "",
            "Global",
            "global:",
            "principal",
            "principal:",
            "principal:a:b",
            "channel:x",
            "channel::a",
            "channel:a:",
            "skill:.hidden",
            "principal:.hidden",
            "principal:-",
            "skill:a/b",
            "skill:a b",
            "skill:a\n",
            "nosuch:x",
            &format!("skill:{}", "a".repeat(65)),
        ] {
            assert!(
                matches!(Scope::parse(text), Err(Error::InvalidScope { .. })),
                "{text:?}"
            );
        }
    }

    #[test]
    fn key_names() {
        for ok in ["k", "db.password", "API_KEY-2", &"k".repeat(128)] {
            check_key(ok).expect(ok);
        }
        for bad in [
            "",
            ".env",
            "a..b",
            "../etc",
            "a/b",
            "a\\b",
            "a b",
            "a\nb",
            "a\0b",
            "é",
            &"k".repeat(129),
        ] {
            assert!(
                matches!(check_key(bad), Err(Error::InvalidKeyName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn errors_about_long_names_stay_short() {
        let err = check_key(&"x/".repeat(100_000)).expect_err("invalid");
        assert!(err.to_string().len() < 300);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_names_never_panic_and_valid_ones_round_trip(text in "\\PC{0,80}") {
            if let Ok(scope) = Scope::parse(&text) {
                proptest::prop_assert_eq!(scope.to_string(), text.clone());
            }
            let _ = check_key(&text);
        }
    }
}
