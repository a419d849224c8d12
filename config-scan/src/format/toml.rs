//! TOML: `[table]` and `[[array]]` headers, `key = value` lines, multi-line strings
//! (`"""`, `'''`) and arrays or inline tables spread over lines. Values go through the inline
//! lexer, so `{ user = "a", password = "b" }` yields `key.password`.

use super::inline::{Balance, Style, lex};
use super::{MAX_VALUE_LINES, Parsed, join_key, unquote};

const STYLE: Style = Style {
    assign: '=',
    hash_comments: true,
};

pub(super) fn parse(text: &str, out: &mut Parsed) {
    let lines: Vec<&str> = text.lines().collect();
    let mut table = String::new();
    let mut i = 0;
    while i < lines.len() {
        let number = i + 1;
        let line = lines[i].trim();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            let inner = line.trim_start_matches('[');
            match inner.find(']') {
                Some(end) => table = clean_key(&inner[..end]),
                None => out.note(number, "table header without `]`"),
            }
            continue;
        }
        let Some(eq) = find_outside_quotes(line, '=') else {
            out.note(number, "expected key = value");
            continue;
        };
        let key = join_key(&table, &clean_key(&line[..eq]));
        let value = line[eq + 1..].trim_start();
        if let Some(delim) = ["\"\"\"", "'''"].into_iter().find(|d| value.starts_with(d)) {
            let mut body = value[3..].to_owned();
            // Only newly added lines are searched for the closing delimiter.
            let mut closed = body.contains(delim);
            while !closed && i < lines.len() && i - number < MAX_VALUE_LINES {
                closed = lines[i].contains(delim);
                body.push('\n');
                body.push_str(lines[i]);
                i += 1;
            }
            match body.find(delim) {
                Some(end) => body.truncate(end),
                None => out.note(number, "multi-line string not closed"),
            }
            // A line-ending backslash folds the next line in; the value starts after a
            // newline that directly follows the opening delimiter.
            let body = body.strip_prefix('\n').unwrap_or(&body).to_owned();
            out.entry(number, &key, body);
            continue;
        }
        let mut text = value.to_owned();
        let mut balance = Balance::new(false);
        balance.feed(&text);
        while balance.depth() > 0 && i < lines.len() && i - number < MAX_VALUE_LINES {
            balance.feed("\n");
            balance.feed(lines[i]);
            text.push('\n');
            text.push_str(lines[i]);
            i += 1;
        }
        lex(&text, number, &key, STYLE, out);
    }
}

/// `a . "b.c"` -> `a.b.c`: quotes and spaces around the dots removed.
fn clean_key(raw: &str) -> String {
    raw.split('.')
        .map(|part| unquote(part.trim()))
        .collect::<Vec<_>>()
        .join(".")
}

/// Byte index of the first `wanted` outside quotes.
fn find_outside_quotes(line: &str, wanted: char) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (at, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == wanted => return Some(at),
            None => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::Format;

    #[test]
    fn tables_inline_tables_arrays_and_multiline_strings() {
        let out = Format::Toml.parse(
            "# c\ntop = 1\n[db.main]\npassword = \"pw\" # note\ncreds = { user = \"u\", token = 'tk' }\n\
             list = [\n  \"a\",\n  \"b\",\n]\nkey = \"\"\"\nline1\nline2\"\"\"\nbroken line\n[[srv]]\nx = 'y'\n",
        );
        assert_eq!(
            out.triples(),
            vec![
                (2, "top", "1"),
                (4, "db.main.password", "pw"),
                (5, "db.main.creds.user", "u"),
                (5, "db.main.creds.token", "tk"),
                (7, "db.main.list", "a"),
                (8, "db.main.list", "b"),
                (10, "db.main.key", "line1\nline2"),
                (15, "srv.x", "y"),
            ]
        );
        assert_eq!(out.notes, vec![(13, "expected key = value".to_owned())]);
    }
}
