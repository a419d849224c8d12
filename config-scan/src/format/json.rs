//! JSON: the whole document through the inline lexer (nesting, arrays, escapes, lines).

use super::Parsed;
use super::inline::{Style, lex};

pub(super) fn parse(text: &str, out: &mut Parsed) {
    let style = Style {
        assign: ':',
        hash_comments: false,
    };
    lex(text, 1, "", style, out);
}
