//! Accepted findings. The file (`.vault-scan-allow` at a scanned directory, or
//! `--allowlist FILE`) has one entry per line; `#` starts a comment:
//!
//! ```text
//! # one finding, by the fingerprint the scanner printed (with or without `fp=`)
//! fp=3f2a9c0d1e2b4a5c
//! # every finding of a kind in the files a glob matches (relative to the scanned root)
//! tests/fixtures/** high-entropy
//! docs/*.yaml jwt
//! # every kind in those files
//! examples/demo.env *
//! ```
//!
//! Globs: `*` and `?` match within one path segment, `**` any number of segments.

use std::path::Path;

use crate::Error;
use crate::finding::{Finding, Kind};
use crate::mask::FINGERPRINT_LEN;

/// The file a scanned directory's own allowlist is read from.
pub const DEFAULT_ALLOWLIST: &str = ".vault-scan-allow";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Fingerprint(String),
    Glob { glob: String, kind: Option<Kind> },
}

/// A parsed allowlist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    entries: Vec<Entry>,
}

impl Allowlist {
    /// Reads and parses the allowlist at `path`.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses allowlist text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, Error> {
        let mut entries = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = match raw.find('#') {
                Some(at) if at == 0 || raw[..at].ends_with(char::is_whitespace) => &raw[..at],
                _ => raw,
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            let fail = |reason: String| Error::Allowlist {
                path: path.to_path_buf(),
                line: index + 1,
                reason,
            };
            match words.as_slice() {
                [] => {}
                [fp] => {
                    let fp = fp.strip_prefix("fp=").unwrap_or(fp).to_ascii_lowercase();
                    if fp.len() != FINGERPRINT_LEN || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(fail(format!(
                            "a lone word must be a {FINGERPRINT_LEN}-digit fingerprint as the \
                             scan prints it (fp=...); for files write `GLOB KIND`"
                        )));
                    }
                    entries.push(Entry::Fingerprint(fp));
                }
                [glob, kind] => {
                    let kind = match *kind {
                        "*" => None,
                        name => Some(Kind::from_name(name).ok_or_else(|| {
                            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                            fail(format!(
                                "unknown kind; use * or one of {}",
                                names.join(", ")
                            ))
                        })?),
                    };
                    entries.push(Entry::Glob {
                        glob: (*glob).to_owned(),
                        kind,
                    });
                }
                _ => return Err(fail("write `FINGERPRINT` or `GLOB KIND`".into())),
            }
        }
        Ok(Self { entries })
    }

    /// Whether an entry accepts `finding`.
    pub fn allows(&self, finding: &Finding) -> bool {
        self.entries.iter().any(|e| match e {
            Entry::Fingerprint(fp) => *fp == finding.fingerprint,
            Entry::Glob { glob, kind } => {
                kind.is_none_or(|k| k == finding.kind) && glob_matches(glob, &finding.rel_path)
            }
        })
    }
}

/// `/`-separated glob match: `**` spans segments, `*` and `?` stay within one.
fn glob_matches(glob: &str, path: &str) -> bool {
    let pattern: Vec<&str> = glob.trim_start_matches("./").split('/').collect();
    let segments: Vec<&str> = path.split('/').collect();
    match_segments(&pattern, &segments)
}

fn match_segments(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| match_segments(rest, &path[skip..])),
        Some((first, rest)) => path
            .split_first()
            .is_some_and(|(seg, tail)| match_segment(first, seg) && match_segments(rest, tail)),
    }
}

fn match_segment(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative wildcard match with one backtrack point: linear, no recursion blow-up.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_matches("**", "a/b/c.env"));
        assert!(glob_matches("a/**/c.env", "a/c.env"));
        assert!(glob_matches("a/**/c.env", "a/x/y/c.env"));
        assert!(glob_matches("*.yaml", "x.yaml"));
        assert!(!glob_matches("*.yaml", "d/x.yaml"));
        assert!(glob_matches("d/?.yaml", "d/x.yaml"));
        assert!(glob_matches("./d/*", "d/x.yaml"));
        assert!(!glob_matches("d/*", "d/e/x.yaml"));
    }

    #[test]
    fn bad_lines_name_their_line() {
        let path = Path::new("allow");
        let err = Allowlist::parse("# ok\n\nnot-a-fingerprint\n", path).unwrap_err();
        assert!(err.to_string().starts_with("allow:3: "), "{err}");
        let err = Allowlist::parse("a/* no-such-kind\n", path).unwrap_err();
        assert!(err.to_string().contains("github-token"), "{err}");
        assert!(Allowlist::parse("a b c\n", path).is_err());
        let ok = Allowlist::parse("fp=0123456789ABCDEF # c\n**/*.env jwt\nx *\n", path).unwrap();
        assert_eq!(ok.entries.len(), 3);
    }
}
