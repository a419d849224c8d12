//! Line-oriented tokenizers, one per format. They do not validate: each pulls out the
//! `(line, key, value)` triples it can and notes what it could not read, so a broken file
//! is still scanned to its end and nothing here panics.

mod env;
mod ini;
mod inline;
mod json;
mod toml;
mod yaml;

use std::path::Path;

/// The formats the scanner reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Toml,
    Yaml,
    Json,
    Ini,
    Env,
}

impl Format {
    /// The format of a file, by its extension or name; `None` for files the scanner skips.
    pub(crate) fn of(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name == ".env" || name.starts_with(".env.") || name.ends_with(".env") {
            return Some(Format::Env);
        }
        if name == ".npmrc" || name == ".pypirc" {
            return Some(Format::Ini);
        }
        let ext = name.rsplit_once('.')?.1;
        match ext {
            "toml" => Some(Format::Toml),
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            "ini" | "cfg" | "conf" => Some(Format::Ini),
            _ => None,
        }
    }

    /// Tokenizes `text`.
    pub(crate) fn parse(self, text: &str) -> Parsed {
        let mut out = Parsed::default();
        match self {
            Format::Toml => toml::parse(text, &mut out),
            Format::Yaml => yaml::parse(text, &mut out),
            Format::Json => json::parse(text, &mut out),
            Format::Ini => ini::parse(text, &mut out),
            Format::Env => env::parse(text, &mut out),
        }
        out
    }
}

/// A value and where it sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// 1-based line where the value starts.
    pub line: usize,
    /// Dotted key path (`db.password`); empty when the value has no key.
    pub key: String,
    /// The value, unquoted and unescaped.
    pub value: String,
}

/// A value spread over lines that never ends (a quoted string, a multi-line string, an
/// array or flow collection) is cut after this many lines rather than swallowing the file.
pub(crate) const MAX_VALUE_LINES: usize = 10_000;

/// What a tokenizer got out of a file.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub entries: Vec<Entry>,
    /// `(line, message)`: what could not be read. Messages never quote the file.
    pub notes: Vec<(usize, String)>,
}

impl Parsed {
    pub(crate) fn entry(&mut self, line: usize, key: &str, value: String) {
        self.entries.push(Entry {
            line,
            key: key.to_owned(),
            value,
        });
    }

    /// The entries as `(line, key, value)`, for the tokenizers' tests to compare.
    #[cfg(test)]
    pub(crate) fn triples(&self) -> Vec<(usize, &str, &str)> {
        self.entries
            .iter()
            .map(|e| (e.line, e.key.as_str(), e.value.as_str()))
            .collect()
    }

    pub(crate) fn note(&mut self, line: usize, message: &str) {
        // One note per line is enough to point at the problem.
        if self.notes.last().is_none_or(|(l, _)| *l != line) {
            self.notes.push((line, message.to_owned()));
        }
    }
}

/// `parent.key`, or `key` at the top.
pub(crate) fn join_key(parent: &str, key: &str) -> String {
    match (parent.is_empty(), key.is_empty()) {
        (true, _) => key.to_owned(),
        (_, true) => parent.to_owned(),
        _ => format!("{parent}.{key}"),
    }
}

/// Strips one pair of matching surrounding quotes.
pub(crate) fn unquote(text: &str) -> &str {
    let t = text.trim();
    for q in ['"', '\''] {
        if t.len() >= 2 && t.starts_with(q) && t.ends_with(q) {
            return &t[1..t.len() - 1];
        }
    }
    t
}

/// The character a backslash escape stands for (`\n`, `\t`, `\"`...); unknown escapes keep
/// the character.
pub(crate) fn unescape_char(c: char) -> char {
    match c {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        '0' => '\0',
        'b' => '\u{8}',
        'f' => '\u{c}',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_extension_and_name() {
        let of = |p: &str| Format::of(Path::new(p));
        assert_eq!(of("a/b.toml"), Some(Format::Toml));
        assert_eq!(of("x.YML"), Some(Format::Yaml));
        assert_eq!(of("x.yaml"), Some(Format::Yaml));
        assert_eq!(of("x.json"), Some(Format::Json));
        assert_eq!(of("x.ini"), Some(Format::Ini));
        assert_eq!(of(".npmrc"), Some(Format::Ini));
        assert_eq!(of(".env"), Some(Format::Env));
        assert_eq!(of(".env.production"), Some(Format::Env));
        assert_eq!(of("prod.env"), Some(Format::Env));
        assert_eq!(of("main.rs"), None);
        assert_eq!(of("Makefile"), None);
    }
}
