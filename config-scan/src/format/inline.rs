//! A forgiving lexer for bracketed key/value text: all of a JSON document, a TOML value
//! (`{ user = "a", password = "b" }`, arrays) and a YAML flow collection. It keeps a stack
//! of key paths for nested objects and arrays, pairs each scalar with the key before it, and
//! counts lines, so every value comes out with its dotted key and line.

use super::{Parsed, join_key, unescape_char};

/// How keys are assigned and whether `#` starts a comment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    /// `:` for JSON and YAML, `=` for TOML.
    pub assign: char,
    /// TOML and YAML have `#` comments; JSON does not.
    pub hash_comments: bool,
}

/// Lexes `text`, whose first character is on `first_line`, under `base_key`.
pub(crate) fn lex(text: &str, first_line: usize, base_key: &str, style: Style, out: &mut Parsed) {
    let chars: Vec<char> = text.chars().collect();
    let mut line = first_line;
    let mut stack: Vec<String> = vec![base_key.to_owned()];
    let mut pending: Option<String> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            c if c.is_whitespace() => i += 1,
            '#' if style.hash_comments => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '{' | '[' => {
                let top = stack.last().map(String::as_str).unwrap_or_default();
                stack.push(join_key(top, &pending.take().unwrap_or_default()));
                i += 1;
            }
            '}' | ']' => {
                if stack.len() > 1 {
                    stack.pop();
                } else {
                    out.note(line, "closing bracket without an opening one");
                }
                pending = None;
                i += 1;
            }
            ',' => {
                pending = None;
                i += 1;
            }
            c if c == style.assign => i += 1,
            _ => {
                let start_line = line;
                let token = if c == '"' || c == '\'' {
                    let (token, next, closed) = read_quoted(&chars, i, style, &mut line);
                    if !closed {
                        out.note(start_line, "string not closed");
                    }
                    i = next;
                    token
                } else {
                    let end = bare_end(&chars, i, style);
                    let token: String = chars[i..end].iter().collect();
                    i = end;
                    token
                };
                let mut j = i;
                while j < chars.len() && (chars[j] == ' ' || chars[j] == '\t') {
                    j += 1;
                }
                if j < chars.len() && chars[j] == style.assign {
                    pending = Some(token);
                    i = j + 1;
                } else {
                    let top = stack.last().map(String::as_str).unwrap_or_default();
                    let key = join_key(top, pending.as_deref().unwrap_or_default());
                    out.entry(start_line, &key, token);
                    pending = None;
                }
            }
        }
    }
    if stack.len() > 1 {
        out.note(line, "bracket not closed");
    }
}

/// Where an unquoted scalar starting at `i` ends.
fn bare_end(chars: &[char], i: usize, style: Style) -> usize {
    let mut end = i;
    while end < chars.len() {
        let c = chars[end];
        let next_is_space = chars.get(end + 1).is_none_or(|n| n.is_whitespace());
        let stops = c.is_whitespace()
            || matches!(c, '{' | '}' | '[' | ']' | ',')
            // `:` assigns in YAML only before a space, so `http://host` stays one scalar.
            || (c == style.assign && (style.assign == '=' || next_is_space));
        if stops {
            break;
        }
        end += 1;
    }
    // A lone character that stops a scalar: consume it so the caller always advances.
    end.max(i + 1)
}

/// Reads the quoted string opening at `i`: `(contents, index after it, closed?)`.
pub(crate) fn read_quoted(
    chars: &[char],
    i: usize,
    style: Style,
    line: &mut usize,
) -> (String, usize, bool) {
    let quote = chars[i];
    let mut out = String::new();
    let mut j = i + 1;
    while j < chars.len() {
        let c = chars[j];
        if c == '\n' {
            *line += 1;
        }
        if quote == '"' && c == '\\' && j + 1 < chars.len() {
            let e = chars[j + 1];
            if e == 'u' {
                let hex: String = chars[j + 2..chars.len().min(j + 6)].iter().collect();
                if let Some(ch) = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                {
                    out.push(char::from_u32(ch).unwrap_or('\u{fffd}'));
                    j += 6;
                    continue;
                }
            }
            if e == '\n' {
                *line += 1;
            }
            out.push(unescape_char(e));
            j += 2;
            continue;
        }
        if c == quote {
            // YAML writes a single quote inside single quotes as ''.
            if quote == '\'' && style.assign == ':' && chars.get(j + 1) == Some(&'\'') {
                out.push('\'');
                j += 2;
                continue;
            }
            return (out, j + 1, true);
        }
        out.push(c);
        j += 1;
    }
    (out, j, false)
}

/// Bracket depth and quote state of text fed to it a line at a time, so a value gathered
/// over many lines costs one pass, not one pass per line.
#[derive(Debug, Default)]
pub(crate) struct Balance {
    depth: i64,
    quote: Option<char>,
    escaped: bool,
    comment: bool,
    /// YAML quoted scalars continue on the next line; TOML strings end there.
    quotes_span_lines: bool,
}

impl Balance {
    pub(crate) fn new(quotes_span_lines: bool) -> Self {
        Self {
            quotes_span_lines,
            ..Self::default()
        }
    }

    /// Takes in more text (a line, or a newline and a line).
    pub(crate) fn feed(&mut self, text: &str) {
        for c in text.chars() {
            if self.comment {
                self.comment = c != '\n';
                continue;
            }
            match self.quote {
                Some(_) if self.escaped => self.escaped = false,
                Some('"') if c == '\\' => self.escaped = true,
                Some(q) if c == q || (c == '\n' && !self.quotes_span_lines) => self.quote = None,
                Some(_) => {}
                None => match c {
                    '"' | '\'' => self.quote = Some(c),
                    '#' => self.comment = true,
                    '[' | '{' => self.depth += 1,
                    ']' | '}' => self.depth -= 1,
                    _ => {}
                },
            }
        }
    }

    /// Open brackets minus closed ones, outside strings and comments.
    pub(crate) fn depth(&self) -> i64 {
        self.depth
    }

    /// Whether a quoted string is still open.
    pub(crate) fn in_quote(&self) -> bool {
        self.quote.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Style = Style {
        assign: ':',
        hash_comments: false,
    };

    fn lexed(text: &str, style: Style) -> Parsed {
        let mut out = Parsed::default();
        lex(text, 1, "", style, &mut out);
        out
    }

    #[test]
    fn nested_keys_get_dotted_paths_and_lines() {
        let out = lexed(
            "{\n \"db\": {\"user\": \"a\",\n  \"password\": \"p\\\"w\"},\n \"n\": [1, \"x\"]\n}",
            JSON,
        );
        assert_eq!(
            out.triples(),
            vec![
                (2, "db.user", "a"),
                (3, "db.password", "p\"w"),
                (4, "n", "1"),
                (4, "n", "x"),
            ]
        );
    }

    #[test]
    fn broken_input_is_noted_not_fatal() {
        for text in ["{\"a\": \"b", "}}}", "{{{", "\"\\u12", ":::", "\"\\"] {
            let mut out = Parsed::default();
            lex(text, 1, "", JSON, &mut out);
            assert!(!out.notes.is_empty() || text == ":::", "{text}");
        }
    }
}
