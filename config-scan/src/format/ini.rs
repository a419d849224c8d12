//! INI files (and `.npmrc`): `[section]`, `key = value` or `key: value`, `;` and `#`
//! comment lines. Values are taken whole (passwords may hold `#` or `;`), unquoted.

use super::{Parsed, join_key, unquote};

pub(super) fn parse(text: &str, out: &mut Parsed) {
    let mut section = String::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            match rest.strip_suffix(']') {
                Some(name) => section = name.trim().to_owned(),
                None => out.note(number, "section header without `]`"),
            }
            continue;
        }
        let Some(at) = separator(line) else {
            out.note(number, "expected key = value");
            continue;
        };
        let key = line[..at].trim();
        let value = unquote(&line[at + 1..]);
        out.entry(number, &join_key(&section, key), value.to_owned());
    }
}

/// The first `=`, or a `:` before it that is followed by a space or the end (so the
/// `.npmrc` key `//registry.npmjs.org/:_authToken=...` splits at `=`).
fn separator(line: &str) -> Option<usize> {
    let eq = line.find('=');
    let colon = line.match_indices(':').map(|(at, _)| at).find(|&at| {
        line[at + 1..]
            .chars()
            .next()
            .is_none_or(char::is_whitespace)
    });
    match (eq, colon) {
        (Some(e), Some(c)) => Some(e.min(c)),
        (e, c) => e.or(c),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Format;

    #[test]
    fn sections_keys_and_npmrc_lines() {
        let out = Format::Ini.parse(
            "; c\n[db]\npassword = \"p=1\"\nuser: bob\n//r.example/:_authToken=t\n[bad\nnokey\n",
        );
        assert_eq!(
            out.triples(),
            vec![
                (3, "db.password", "p=1"),
                (4, "db.user", "bob"),
                (5, "db.//r.example/:_authToken", "t"),
            ]
        );
        assert_eq!(out.notes.len(), 2);
    }
}
