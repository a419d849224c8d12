//! YAML, line by line: indentation gives the key path, `- ` starts a list item, values are
//! plain, quoted (may span lines), block scalars (`|`, `>`: PEM keys often sit in one) or
//! flow collections (through the inline lexer). Anchors and tags are stripped; aliases and
//! complex keys are skipped. No YAML library: this reads broken files too.

use super::inline::{Balance, Style, lex, read_quoted};
use super::{MAX_VALUE_LINES, Parsed, join_key};

const STYLE: Style = Style {
    assign: ':',
    hash_comments: true,
};

pub(super) fn parse(text: &str, out: &mut Parsed) {
    let lines: Vec<&str> = text.lines().collect();
    // (indent, key path) of the mappings we are inside.
    let mut stack: Vec<(usize, String)> = Vec::new();
    // Indent of the last line holding a key or a list item.
    let mut last_indent: Option<usize> = None;
    let mut i = 0;
    while i < lines.len() {
        let number = i + 1;
        let content = strip_comment(lines[i]);
        i += 1;
        let trimmed = content.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('%') {
            continue;
        }
        if trimmed.starts_with("---") || trimmed.starts_with("...") {
            stack.clear();
            continue;
        }
        let mut rest = trimmed;
        let mut is_item = false;
        while rest == "-" || rest.starts_with("- ") {
            is_item = true;
            rest = rest[1..].trim_start();
        }
        let indent = content.len() - rest.len();
        while stack.last().is_some_and(|(at, _)| *at >= indent) {
            stack.pop();
        }
        let parent = stack.last().map(|(_, p)| p.clone()).unwrap_or_default();
        if rest.is_empty() || rest.starts_with('?') || rest.starts_with('*') {
            continue;
        }
        let key_or_item = split_key(rest);
        let continues = last_indent.is_some_and(|l| indent > l);
        if key_or_item.is_some() || is_item {
            // Continuation lines must be indented past the key, or past an item's dash.
            last_indent = Some(if is_item {
                content.len() - trimmed.len()
            } else {
                indent
            });
        }
        match key_or_item {
            Some((key, value)) => {
                let path = join_key(&parent, &key);
                let value = strip_props(value);
                if value.is_empty() {
                    stack.push((indent, path));
                } else {
                    read_value(value, number, &path, indent, &lines, &mut i, out);
                }
            }
            None if is_item => read_value(rest, number, &parent, indent, &lines, &mut i, out),
            // A plain scalar continued on a more indented line: legal, nothing to pair.
            None if continues => {}
            None => out.note(number, "expected key: value or a list item"),
        }
    }
}

/// Reads the value that starts as `value` on line `number`, taking in following lines
/// (block scalars, open quotes, open brackets) by advancing `i`.
fn read_value(
    value: &str,
    number: usize,
    key: &str,
    indent: usize,
    lines: &[&str],
    i: &mut usize,
    out: &mut Parsed,
) {
    let value = strip_props(value);
    if value.starts_with('*') {
        return;
    }
    if value.starts_with('|') || value.starts_with('>') {
        let mut body: Vec<&str> = Vec::new();
        while *i < lines.len() {
            let line = lines[*i];
            let line_indent = line.len() - line.trim_start().len();
            if !line.trim().is_empty() && line_indent <= indent {
                break;
            }
            body.push(line);
            *i += 1;
        }
        let strip = body
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start().len())
            .min()
            .unwrap_or(0);
        let text: Vec<&str> = body.iter().map(|l| l.get(strip..).unwrap_or("")).collect();
        out.entry(number, key, text.join("\n").trim_end().to_owned());
        return;
    }
    if value.starts_with('{') || value.starts_with('[') {
        let text = gather(value, number, lines, i, |b| b.depth() <= 0);
        lex(&text, number, key, STYLE, out);
        return;
    }
    if value.starts_with('"') || value.starts_with('\'') {
        let text = gather(value, number, lines, i, |b| !b.in_quote());
        let (unquoted, _, closed) = quoted(&text);
        if !closed {
            out.note(number, "quoted value not closed");
        }
        out.entry(number, key, unquoted);
        return;
    }
    out.entry(number, key, value.trim_end().to_owned());
}

/// `first` and the following lines until `done` says the text is complete.
fn gather(
    first: &str,
    number: usize,
    lines: &[&str],
    i: &mut usize,
    done: impl Fn(&Balance) -> bool,
) -> String {
    let mut text = first.to_owned();
    let mut balance = Balance::new(true);
    balance.feed(first);
    while !done(&balance) && *i < lines.len() && *i - number < MAX_VALUE_LINES {
        balance.feed("\n");
        balance.feed(lines[*i]);
        text.push('\n');
        text.push_str(lines[*i]);
        *i += 1;
    }
    text
}

fn quoted(text: &str) -> (String, usize, bool) {
    let chars: Vec<char> = text.chars().collect();
    let mut line = 0;
    read_quoted(&chars, 0, STYLE, &mut line)
}

/// `key: value` -> `(key, value)`, with a quoted or plain key; `None` for a scalar.
fn split_key(rest: &str) -> Option<(String, &str)> {
    if rest.starts_with('"') || rest.starts_with('\'') {
        let (key, end, closed) = quoted(rest);
        let after: String = rest.chars().skip(end).collect();
        let after = after.trim_start();
        if !closed || !after.starts_with(':') {
            return None;
        }
        let at = rest.len() - after.len();
        return Some((key, rest[at + 1..].trim_start()));
    }
    if rest.starts_with('{') || rest.starts_with('[') {
        return None;
    }
    let at = rest.match_indices(':').map(|(at, _)| at).find(|&at| {
        rest[at + 1..]
            .chars()
            .next()
            .is_none_or(char::is_whitespace)
    })?;
    Some((
        rest[..at].trim_end().to_owned(),
        rest[at + 1..].trim_start(),
    ))
}

/// Drops a leading tag (`!!str`) and anchor (`&name`).
fn strip_props(mut value: &str) -> &str {
    while value.starts_with('!') || value.starts_with('&') {
        value = value
            .split_once(char::is_whitespace)
            .map_or("", |(_, r)| r.trim_start());
    }
    value
}

/// The line without a trailing `# comment` (a `#` at the start or after a space, outside
/// quotes).
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev_space = true;
    for (at, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if (c == '"' || c == '\'') && prev_space => quote = Some(c),
            None if c == '#' && prev_space => return &line[..at],
            None => {}
        }
        prev_space = c.is_whitespace() || (quote.is_none() && c == ':');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::super::Format;

    #[test]
    fn nesting_lists_quotes_blocks_and_flow() {
        let out = Format::Yaml.parse(
            "# c\ndb:\n  user: bob # note\n  password: \"p#w\"\nservers:\n  - name: a\n    token: 't'\n\
             - plain\nkey: |\n  line1\n  line2\nflow: {a: 1, b: [x, 'y']}\nurl: http://h:1/p\nbroken\n---\n\
             x: &anchor !!str v\n  continued plain scalar\nl:\n  - a b\n    c d\n",
        );
        assert_eq!(
            out.triples(),
            vec![
                (3, "db.user", "bob"),
                (4, "db.password", "p#w"),
                (6, "servers.name", "a"),
                (7, "servers.token", "t"),
                (8, "servers", "plain"),
                (9, "key", "line1\nline2"),
                (12, "flow.a", "1"),
                (12, "flow.b", "x"),
                (12, "flow.b", "y"),
                (13, "url", "http://h:1/p"),
                (16, "x", "v"),
                (19, "l", "a b"),
            ]
        );
        assert_eq!(
            out.notes,
            vec![(14, "expected key: value or a list item".to_owned())]
        );
    }
}
