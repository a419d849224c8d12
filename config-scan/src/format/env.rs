//! `.env` files: `[export ]NAME=value`, with `"double"` (escapes, may span lines),
//! `'single'` (literal, may span lines) or bare values (` #` starts a comment).

use super::{MAX_VALUE_LINES, Parsed};

pub(super) fn parse(text: &str, out: &mut Parsed) {
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let number = i + 1;
        let line = lines[i].trim();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((name, rest)) = line.split_once('=') else {
            out.note(number, "expected NAME=value");
            continue;
        };
        let name = name.trim();
        let rest = rest.trim_start();
        let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'');
        let value = match quote {
            Some(q) => {
                // Gather lines until the closing quote.
                let mut text = rest[1..].to_owned();
                let mut closed = closing_quote(&text, q);
                while closed.is_none() && i < lines.len() && i - number < MAX_VALUE_LINES {
                    text.push('\n');
                    // Only the new line is searched (an escape does not span lines).
                    let from = text.len();
                    text.push_str(lines[i]);
                    i += 1;
                    closed = closing_quote(&text[from..], q).map(|at| from + at);
                }
                let end = match closed {
                    Some(end) => end,
                    None => {
                        out.note(number, "quoted value not closed");
                        text.len()
                    }
                };
                let raw = &text[..end];
                if q == '"' {
                    unescape(raw)
                } else {
                    raw.to_owned()
                }
            }
            None => match rest.find(" #") {
                Some(at) => rest[..at].trim_end().to_owned(),
                None => rest.trim_end().to_owned(),
            },
        };
        out.entry(number, name, value);
    }
}

/// Byte index of the unescaped closing `q` in `text`.
fn closing_quote(text: &str, q: char) -> Option<usize> {
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && q == '"' {
            escaped = true;
        } else if c == q {
            return Some(at);
        }
    }
    None
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e) => out.push(super::unescape_char(e)),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::Format;

    #[test]
    fn reads_names_values_and_lines() {
        let out = Format::Env.parse(
            "# c\nexport A=1\nB=\"x\\ny\"\nC='multi\nline'\nD=bare # comment\nbroken\nE=\"open",
        );
        assert_eq!(
            out.triples(),
            vec![
                (2, "A", "1"),
                (3, "B", "x\ny"),
                (4, "C", "multi\nline"),
                (6, "D", "bare"),
                (8, "E", "open"),
            ]
        );
        assert_eq!(out.notes.len(), 2);
    }
}
