//! The one rule for principal ids: who a client certificate names (`pki`), whose scope
//! `principal:<id>` is (`vault`), whom an ACL rule names (`vaultd`), and who the audit log
//! records. A principal id is 1 to 64 of `A-Z a-z 0-9 . _ @ + -`, does not start with `.`,
//! and is not `-` alone: the audit log writes `-` for "no principal".
//!
//! It is its own crate, below both `pki` and `vault`, so that each uses this code rather
//! than a copy of it (`pki` does not depend on `vault`, nor the other way round).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fmt;

/// The longest principal id, in bytes (every allowed character is one byte).
pub const MAX_LEN: usize = 64;

/// What the audit log records as the principal of a request that named none; never a
/// principal id itself.
pub const NO_PRINCIPAL: &str = "-";

/// The rule in words, for error messages that say what to do.
pub const RULE: &str = "1 to 64 of A-Z a-z 0-9 . _ @ + -, not starting with '.', and not '-' alone";

/// Why a string is not a principal id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalid {
    /// It is empty.
    Empty,
    /// It is longer than [`MAX_LEN`].
    TooLong,
    /// It starts with `.` (ids become file names: `clients/<id>.pem`).
    LeadingDot,
    /// It is `-`, which the audit log writes for "no principal".
    Reserved,
    /// It holds a character outside `A-Z a-z 0-9 . _ @ + -` (the first one found).
    Character(char),
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::Empty => write!(f, "it is empty; use {RULE}"),
            Invalid::TooLong => write!(f, "it is longer than {MAX_LEN} characters"),
            Invalid::LeadingDot => write!(f, "it starts with '.'; use {RULE}"),
            Invalid::Reserved => write!(
                f,
                "'{NO_PRINCIPAL}' alone is reserved (the audit log's \"no principal\"); use {RULE}"
            ),
            Invalid::Character(c) => {
                write!(
                    f,
                    "it contains {c:?}; only A-Z a-z 0-9 . _ @ + - are allowed"
                )
            }
        }
    }
}

impl std::error::Error for Invalid {}

/// Whether `c` may appear in a principal id.
pub fn is_allowed_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '+' | '-')
}

/// Checks a principal id against the rule (see the crate documentation).
pub fn check(id: &str) -> Result<(), Invalid> {
    if id.is_empty() {
        return Err(Invalid::Empty);
    }
    if let Some(bad) = id.chars().find(|&c| !is_allowed_char(c)) {
        return Err(Invalid::Character(bad));
    }
    if id.len() > MAX_LEN {
        return Err(Invalid::TooLong);
    }
    if id.starts_with('.') {
        return Err(Invalid::LeadingDot);
    }
    if id == NO_PRINCIPAL {
        return Err(Invalid::Reserved);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_ids_pass() {
        for id in [
            "a",
            "admin",
            "ci-bot",
            "alice@example.com",
            "svc+deploy_1.2",
            "-x",
            "x-",
            "--",
            "a.",
            &"a".repeat(MAX_LEN),
        ] {
            assert_eq!(check(id), Ok(()), "{id:?}");
        }
    }

    #[test]
    fn each_rule_has_its_reason() {
        assert_eq!(check(""), Err(Invalid::Empty));
        assert_eq!(check(&"a".repeat(MAX_LEN + 1)), Err(Invalid::TooLong));
        assert_eq!(check(".hidden"), Err(Invalid::LeadingDot));
        assert_eq!(check("."), Err(Invalid::LeadingDot));
        assert_eq!(check(".."), Err(Invalid::LeadingDot));
        assert_eq!(check("-"), Err(Invalid::Reserved));
        assert_eq!(check("a b"), Err(Invalid::Character(' ')));
        assert_eq!(check("a/b"), Err(Invalid::Character('/')));
        assert_eq!(check("a:b"), Err(Invalid::Character(':')));
        assert_eq!(check("é"), Err(Invalid::Character('é')));
        assert_eq!(check("a\n"), Err(Invalid::Character('\n')));
        // A long id of bad characters is reported by its character, not its length.
        assert_eq!(check(&"/".repeat(100)), Err(Invalid::Character('/')));
    }

    #[test]
    fn messages_say_what_to_use() {
        for bad in ["", ".x", "-"] {
            let text = check(bad).unwrap_err().to_string();
            assert!(text.contains(RULE), "{bad:?}: {text}");
        }
    }

    proptest::proptest! {
        /// The rule, restated independently: whatever passes is printable ASCII of the
        /// allowed set, within bounds, and neither hidden nor the placeholder.
        #[test]
        fn check_matches_the_rule(id in "[-._@+a-zA-Z0-9 /:é]{0,70}") {
            let expected = !id.is_empty()
                && id.len() <= MAX_LEN
                && !id.starts_with('.')
                && id != "-"
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._@+-".contains(&b));
            proptest::prop_assert_eq!(check(&id).is_ok(), expected, "{:?}", id);
        }
    }
}
