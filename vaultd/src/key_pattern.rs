//! Key-name (and transit-context) patterns of ACL rules: `*` matches any run of
//! characters, `{self}` stands for the caller's principal id. Principal ids never hold `*`
//! or braces, so the substitution cannot widen a pattern; any other brace is refused.
//! Matching allocates nothing.

/// A compiled key (or transit context) pattern.
#[derive(Debug, Clone)]
pub(crate) struct KeyPattern(Glob);

impl KeyPattern {
    /// Compiles a pattern; the error says what is wrong and what to write.
    pub(crate) fn compile(text: &str) -> Result<KeyPattern, String> {
        Glob::compile(text).map(KeyPattern)
    }

    /// Whether `key` matches, with `{self}` standing for `principal`.
    pub(crate) fn matches(&self, principal: &str, key: &str) -> bool {
        self.0.matches(principal, key)
    }

    /// Whether every key matches (`*`), whoever the caller.
    pub(crate) fn matches_every_key(&self) -> bool {
        matches!(self.0, Glob::Any)
    }
}

/// A compiled glob: `*` matches any run of characters, `{self}` the caller's principal id.
#[derive(Debug, Clone)]
enum Glob {
    /// `*`.
    Any,
    /// No `*`: the whole key.
    Exact(Piece),
    /// One or more `*`: the text before the first, after the last, and the pieces between,
    /// which must appear in order.
    Pattern {
        prefix: Piece,
        middle: Vec<Piece>,
        suffix: Piece,
    },
}

/// The substitution a key pattern may hold.
const SELF_TOKEN: &str = "{self}";

impl Glob {
    fn compile(text: &str) -> Result<Glob, String> {
        let shown = || vault::shorten_name(text);
        if text.is_empty() {
            return Err("the key pattern is empty; use \"*\" for every key".into());
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !c.is_ascii_graphic() || matches!(c, '/' | '\\'))
        {
            return Err(format!(
                "the key pattern {:?} contains {bad:?}; keys are printable ASCII without / and \\",
                shown()
            ));
        }
        if text.replace(SELF_TOKEN, "").contains(['{', '}']) {
            return Err(format!(
                "the key pattern {:?} has a brace that is not part of {SELF_TOKEN}; \
                 {SELF_TOKEN} (the caller's principal id) is the only substitution, and \
                 keys matched literally may not hold braces",
                shown()
            ));
        }
        if text.chars().all(|c| c == '*') {
            return Ok(Glob::Any);
        }
        let mut pieces = text.split('*');
        let first = Piece::compile(pieces.next().unwrap_or_default());
        let Some(last) = pieces.next_back() else {
            return Ok(Glob::Exact(first));
        };
        Ok(Glob::Pattern {
            prefix: first,
            middle: pieces
                .filter(|p| !p.is_empty())
                .map(Piece::compile)
                .collect(),
            suffix: Piece::compile(last),
        })
    }

    fn matches(&self, principal: &str, key: &str) -> bool {
        match self {
            Glob::Any => true,
            Glob::Exact(exact) => exact.len(principal) == key.len() && exact.starts(principal, key),
            Glob::Pattern {
                prefix,
                middle,
                suffix,
            } => {
                let (before, after) = (prefix.len(principal), suffix.len(principal));
                if key.len() < before + after
                    || !prefix.starts(principal, key)
                    || !key
                        .get(key.len() - after..)
                        .is_some_and(|end| suffix.starts(principal, end))
                {
                    return false;
                }
                let Some(mut rest) = key.get(before..key.len() - after) else {
                    return false;
                };
                for piece in middle {
                    match piece.find(principal, rest) {
                        Some(end) => rest = &rest[end..],
                        None => return false,
                    }
                }
                true
            }
        }
    }
}

/// The text of a glob between two stars: literal runs and `{self}`s, in order.
#[derive(Debug, Clone)]
struct Piece(Vec<Part>);

#[derive(Debug, Clone)]
enum Part {
    Text(Box<str>),
    /// `{self}`: the caller's principal id.
    OwnId,
}

impl Piece {
    fn compile(text: &str) -> Piece {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find(SELF_TOKEN) {
            if at > 0 {
                parts.push(Part::Text(rest[..at].into()));
            }
            parts.push(Part::OwnId);
            rest = &rest[at + SELF_TOKEN.len()..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.into()));
        }
        Piece(parts)
    }

    fn part<'a>(part: &'a Part, principal: &'a str) -> &'a str {
        match part {
            Part::Text(text) => text,
            Part::OwnId => principal,
        }
    }

    /// Its length with `{self}` standing for `principal`.
    fn len(&self, principal: &str) -> usize {
        self.0.iter().map(|p| Piece::part(p, principal).len()).sum()
    }

    /// Whether `text` starts with it.
    fn starts(&self, principal: &str, text: &str) -> bool {
        let mut rest = text;
        for part in &self.0 {
            match rest.strip_prefix(Piece::part(part, principal)) {
                Some(after) => rest = after,
                None => return false,
            }
        }
        true
    }

    /// Where its first occurrence in `text` ends.
    fn find(&self, principal: &str, text: &str) -> Option<usize> {
        if let [Part::Text(literal)] = self.0.as_slice() {
            return text.find(&**literal).map(|at| at + literal.len());
        }
        let len = self.len(principal);
        text.char_indices()
            .map(|(at, _)| at)
            .find(|&at| self.starts(principal, &text[at..]))
            .map(|at| at + len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let cases = [
            ("*", "anything", true),
            ("db", "db", true),
            ("db", "db2", false),
            ("db.*", "db.password", true),
            ("db.*", "db", false),
            ("*.pem", "tls.pem", true),
            ("*.pem", "tls.key", false),
            ("a*b", "ab", true),
            ("a*b", "axxb", true),
            ("a*b", "a", false),
            ("aba*aba", "aba", false),
            ("aba*aba", "ababa", false),
            ("aba*aba", "abaaba", true),
            ("a*b*c", "a-b-c", true),
            ("a*b*c", "a-c-b", false),
            ("**", "", true),
        ];
        for (pattern, key, expected) in cases {
            let glob = Glob::compile(pattern).expect(pattern);
            assert_eq!(glob.matches("alice", key), expected, "{pattern} vs {key}");
        }
        for bad in ["", "a b", "a/b", "é", "a\n"] {
            assert!(Glob::compile(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn self_in_key_patterns_is_the_callers_id() {
        let cases = [
            ("{self}", "alice", true),
            ("{self}", "alice2", false),
            ("{self}", "{self}", false),
            ("{self}-*", "alice-backups", true),
            ("{self}-*", "alice-", true),
            ("{self}-*", "bob-backups", false),
            ("{self}-*", "alice", false),
            ("*.{self}", "token.alice", true),
            ("*.{self}", "token.alic", false),
            ("a*{self}*z", "a-alice-z", true),
            ("a*{self}*z", "a-alicz", false),
            ("a*x{self}y*z", "a--xalicey--z", true),
            ("a*x{self}y*z", "a--xbobby--z", false),
            ("{self}{self}", "alicealice", true),
            ("é*", "é", false),
        ];
        for (pattern, key, expected) in cases {
            let Ok(glob) = Glob::compile(pattern) else {
                assert!(!expected, "{pattern} does not compile");
                continue;
            };
            assert_eq!(glob.matches("alice", key), expected, "{pattern} vs {key}");
        }
        // Not the text of another principal: the caller's own.
        let glob = Glob::compile("{self}-*").expect("compiles");
        assert!(glob.matches("bob", "bob-x"));
        assert!(!glob.matches("bob", "alice-x"));
        for bad in ["{self", "self}", "{other}", "{}", "a{self}}", "{{self}"] {
            let err = Glob::compile(bad).expect_err(bad);
            assert!(err.contains("{self}"), "{bad}: {err}");
        }
    }
}
