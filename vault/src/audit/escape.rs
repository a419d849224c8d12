//! Escaping of the text a caller chose (scope, key, principal, reasons quoting them), so that
//! no record can make a terminal or a viewer show something else than what it holds.

use std::borrow::Cow;

use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

/// Whether `c` is written escaped: control characters (Cc), format characters (Cf: the
/// bidirectional overrides and isolates, zero-width joiners and spaces, the BOM...), line and
/// paragraph separators, spaces other than the ASCII one, private-use, surrogate and
/// unassigned code points, the invisible characters that are letters or marks by category
/// (Hangul fillers, variation selectors, the combining grapheme joiner), and the backslash
/// itself (so an escape in a record always means an escaped character).
pub fn needs_escape(c: char) -> bool {
    if c.is_ascii() {
        return c == '\\' || c.is_ascii_control();
    }
    if matches!(
        c,
        '\u{034f}'
            | '\u{115f}'
            | '\u{1160}'
            | '\u{17b4}'
            | '\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{ffa0}'
            | '\u{e0100}'..='\u{e01ef}'
    ) {
        return true;
    }
    c.general_category_group() == GeneralCategoryGroup::Other
        || matches!(
            c.general_category(),
            GeneralCategory::SpaceSeparator
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
}

/// `text` with each character of [`needs_escape`] written as visible text: `\\` for a
/// backslash, `\u{202e}` (lowercase hex, Rust's notation) for the others. Borrowed when
/// nothing needs escaping.
pub fn escape_text(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// `text` for display: what [`escape_text`] escapes, but a backslash left as it is. For text
/// that is stored escaped already (a record's fields), so that its escapes show once, while a
/// raw character a forged record holds is still escaped.
pub fn display_text(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\\' && needs_escape(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c == '\\' {
            out.push(c);
        } else {
            push_escaped(&mut out, c);
        }
    }
    Cow::Owned(out)
}

/// `text` escaped as [`escape_text`] does, cut to at most `max` bytes without splitting an
/// escape.
pub(crate) fn escape_bounded(text: &str, max: usize) -> String {
    // The common case, on the writer's path for every field: short printable ASCII.
    if text.len() <= max
        && text
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'\\')
    {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len().min(max));
    let mut piece = String::new();
    for c in text.chars() {
        piece.clear();
        push_escaped(&mut piece, c);
        if out.len() + piece.len() > max {
            break;
        }
        out.push_str(&piece);
    }
    out
}

fn push_escaped(out: &mut String, c: char) {
    if c == '\\' {
        out.push_str("\\\\");
    } else if needs_escape(c) {
        out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
    } else {
        out.push(c);
    }
}

/// Whether `text` is what [`escape_text`] makes of some text: no character that needs an
/// escape appears raw (a backslash only as the start of `\\` or `\u{...}`).
pub(crate) fn is_escaped(text: &str) -> bool {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\\') => {}
                Some('u') => {
                    if chars.next() != Some('{') {
                        return false;
                    }
                    let mut digits = 0;
                    loop {
                        match chars.next() {
                            Some('}') if digits > 0 => break,
                            Some(d) if d.is_ascii_hexdigit() && digits < 6 => digits += 1,
                            _ => return false,
                        }
                    }
                }
                _ => return false,
            }
        } else if needs_escape(c) {
            return false;
        }
    }
    true
}

/// A JSON text with every character of [`needs_escape`] (which JSON allows raw inside
/// strings) written as a JSON `\uXXXX` escape: the same JSON value, safe to print.
pub fn json_printable(json: &str) -> Cow<'_, str> {
    if !json.chars().any(|c| c != '\\' && needs_escape(c)) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if c != '\\' && needs_escape(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misleading_characters_are_escaped_and_plain_text_is_not() {
        assert_eq!(escape_text("db-password"), "db-password");
        assert_eq!(escape_text("ключ-é"), "ключ-é");
        assert_eq!(escape_text("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(escape_text("x\u{200d}y"), "x\\u{200d}y");
        assert_eq!(escape_text("tab\there"), "tab\\u{9}here");
        assert_eq!(escape_text("nb\u{a0}sp"), "nb\\u{a0}sp");
        assert_eq!(
            escape_text("\u{2066}\u{2028}\u{feff}"),
            "\\u{2066}\\u{2028}\\u{feff}"
        );
        assert_eq!(escape_text("a\\u{202e}"), "a\\\\u{202e}");
        assert_eq!(escape_text("\u{e0001}\u{10ffff}"), "\\u{e0001}\\u{10ffff}");
    }

    #[test]
    fn display_text_shows_stored_escapes_once() {
        let stored = escape_text("a\u{202e}b");
        assert_eq!(display_text(&stored), stored);
        assert_eq!(display_text("raw\u{202e}"), "raw\\u{202e}");
    }

    #[test]
    fn escaped_text_is_recognised() {
        for raw in ["plain", "a\u{202e}b", "a\\b", "\u{0}\u{7f}", "a\\u{202e}"] {
            assert!(is_escaped(&escape_text(raw)), "{raw:?}");
        }
        assert!(!is_escaped("a\u{202e}b"));
        assert!(!is_escaped("a\\b"));
        assert!(!is_escaped("a\\u{}"));
    }

    #[test]
    fn bounded_escapes_are_never_split() {
        let text = "\u{202e}".repeat(200);
        let cut = escape_bounded(&text, 1024);
        assert!(cut.len() <= 1024);
        assert_eq!(cut.len() % "\\u{202e}".len(), 0);
        assert!(is_escaped(&cut));
    }

    #[test]
    fn printable_json_is_the_same_value() {
        let json = "{\"key\":\"a\u{202e}b\u{1f600}\\\"\"}";
        let printable = json_printable(json);
        assert!(printable.is_ascii() || !printable.contains('\u{202e}'));
        let a: serde_json::Value = serde_json::from_str(json).expect("json");
        let b: serde_json::Value = serde_json::from_str(&printable).expect("printable json");
        assert_eq!(a, b);
    }
}
