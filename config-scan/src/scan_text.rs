//! Scanning one file's text: PEM blocks and tokens over the raw lines (so comments and
//! broken files are covered), then the value rules over the tokenizer's entries (which know
//! the key).

use std::collections::HashMap;

use crate::detect::pem::find_pem;
use crate::detect::tokens::find_tokens;
use crate::detect::values::classify;
use crate::finding::Kind;
use crate::format::{Entry, Format, Parsed};
use crate::refs::{Lookup, VaultIndex, parse_vault_ref};

/// A finding before masking: the value is dropped once masked and fingerprinted.
#[derive(Debug)]
pub(crate) struct RawFinding {
    pub line: usize,
    pub kind: Kind,
    pub key: String,
    pub value: String,
    /// What output shows instead of the masked value (a PEM header, a reference).
    pub shown: Option<String>,
    pub detail: Option<String>,
}

/// What scanning one file gave.
#[derive(Debug, Default)]
pub(crate) struct FileScan {
    pub findings: Vec<RawFinding>,
    pub notes: Vec<(usize, String)>,
    /// `vault://` references seen while no vault was given to check them.
    pub unchecked_refs: usize,
}

/// Scans `text`; `format` is `None` for a file named on the command line whose format is not
/// known (tokens and PEM blocks only).
pub(crate) fn scan_text(
    text: &str,
    format: Option<Format>,
    vault: Option<&dyn VaultIndex>,
) -> FileScan {
    let parsed = format.map(|f| f.parse(text)).unwrap_or_default();
    let Parsed { entries, notes } = parsed;
    let mut out = FileScan {
        notes,
        ..FileScan::default()
    };
    let pems = find_pem(text);
    let keys = KeyIndex::new(&entries);
    for pem in &pems {
        out.findings.push(RawFinding {
            line: pem.line,
            kind: Kind::PemPrivateKey,
            key: keys.key_for(pem.line, &pem.header),
            value: pem.block.clone(),
            shown: Some(pem.header.clone()),
            detail: None,
        });
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut in_pem = vec![false; lines.len() + 2];
    for pem in &pems {
        for covered in in_pem.iter_mut().take(pem.last_line + 1).skip(pem.line) {
            *covered = true;
        }
    }
    // Tokens by line, so an entry's value is only compared with the tokens of its lines.
    let mut tokens_on: HashMap<usize, Vec<String>> = HashMap::new();
    for (index, line) in lines.iter().enumerate() {
        let number = index + 1;
        if in_pem[number] {
            continue;
        }
        for m in find_tokens(line) {
            let token = &line[m.start..m.end];
            out.findings.push(RawFinding {
                line: number,
                kind: m.kind,
                key: keys.key_for(number, token),
                value: token.to_owned(),
                shown: None,
                detail: None,
            });
            tokens_on.entry(number).or_default().push(token.to_owned());
        }
    }
    for entry in &entries {
        let value = entry.value.trim();
        let span = entry.line..=entry.line + entry.value.matches('\n').count();
        let already = value.contains("PRIVATE KEY")
            || span.into_iter().any(|l| {
                tokens_on
                    .get(&l)
                    .is_some_and(|ts| ts.iter().any(|t| value.contains(t.as_str())))
            });
        if already {
            continue;
        }
        if let Some(parsed) = parse_vault_ref(value) {
            check_ref(entry, value, parsed, vault, &mut out);
            continue;
        }
        if let Some(kind) = classify(&entry.key, value) {
            out.findings.push(RawFinding {
                line: entry.line,
                kind,
                key: entry.key.clone(),
                value: value.to_owned(),
                shown: None,
                detail: None,
            });
        }
    }
    out.findings.sort_by_key(|f| f.line);
    out
}

fn check_ref(
    entry: &Entry,
    value: &str,
    parsed: Result<crate::VaultRef, String>,
    vault: Option<&dyn VaultIndex>,
    out: &mut FileScan,
) {
    let (kind, detail) = match parsed {
        Err(reason) => (Kind::InvalidVaultRef, reason),
        Ok(reference) => match vault.map(|v| v.lookup(&reference)) {
            None => {
                out.unchecked_refs += 1;
                return;
            }
            Some(Lookup::Found) => return,
            Some(Lookup::MissingKey) => (
                Kind::MissingVaultRef,
                format!("the vault has no {} {}", reference.scope, reference.key),
            ),
            Some(Lookup::MissingVersion { latest }) => (
                Kind::MissingVaultRef,
                format!(
                    "{} {} has no version {} (latest {latest})",
                    reference.scope,
                    reference.key,
                    reference.version.unwrap_or_default()
                ),
            ),
            Some(Lookup::Invalid(reason)) => (Kind::InvalidVaultRef, reason),
        },
    };
    out.findings.push(RawFinding {
        line: entry.line,
        kind,
        key: entry.key.clone(),
        value: value.to_owned(),
        shown: Some(crate::mask::printable_key(value)),
        detail: Some(detail),
    });
}

/// Which entry a token or PEM block found in the raw text belongs to.
struct KeyIndex<'a> {
    /// Entries by the line they start on.
    by_line: HashMap<usize, Vec<&'a Entry>>,
    /// Entries whose value spans lines (multi-line strings, block scalars).
    multi_line: Vec<&'a Entry>,
}

impl<'a> KeyIndex<'a> {
    fn new(entries: &'a [Entry]) -> Self {
        let mut by_line: HashMap<usize, Vec<&Entry>> = HashMap::new();
        for e in entries {
            by_line.entry(e.line).or_default().push(e);
        }
        let multi_line = entries.iter().filter(|e| e.value.contains('\n')).collect();
        Self {
            by_line,
            multi_line,
        }
    }

    /// The key of the entry on `line` holding `needle`, else of the nearest multi-line
    /// entry starting before it that holds it, else of the first entry on `line`, else empty.
    fn key_for(&self, line: usize, needle: &str) -> String {
        let on_line = self
            .by_line
            .get(&line)
            .map(Vec::as_slice)
            .unwrap_or_default();
        on_line
            .iter()
            .find(|e| e.value.contains(needle))
            .or_else(|| {
                self.multi_line
                    .iter()
                    .filter(|e| e.line <= line && e.value.contains(needle))
                    .max_by_key(|e| e.line)
            })
            .or_else(|| on_line.first())
            .map(|e| e.key.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMATS: [Format; 5] = [
        Format::Toml,
        Format::Yaml,
        Format::Json,
        Format::Ini,
        Format::Env,
    ];

    /// Constructs of every format (nesting, quotes, escapes, multi-line values, comments,
    /// non-ASCII), to be cut at every character.
    const SAMPLE: &str = "# c\n[a.b]\nk = \"v\\\"q\" # x\nt = { u = 'w', p = [1, \"é\"] }\n\
        m = \"\"\"\nl1\n\"\"\"\n- item\nkey: |\n  block\n  more\nf: {a: [x, 'y''z']}\n\
        {\"j\": {\"k\": [\"\\u00e9\", null]}}\n; ini\nexport E=\"multi\nline\"\nS='x'\n\
        password = Zq8#kL2!mN4$pR6^\n";

    #[test]
    fn every_truncation_of_every_format_scans_without_panicking() {
        for format in FORMATS {
            for (at, _) in SAMPLE.char_indices() {
                let scanned = scan_text(&SAMPLE[..at], Some(format), None);
                assert!(scanned.findings.iter().all(|f| f.line >= 1));
            }
        }
    }

    #[test]
    fn random_config_like_text_scans_without_panicking() {
        let alphabet: Vec<char> = "ab:=#\"'\\{}[],-|>\n \t.&*!$<>xé1".chars().collect();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..2_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 120) as usize;
            let text: String = (0..len)
                .map(|i| alphabet[((x >> (i % 50)) as usize + i * 7) % alphabet.len()])
                .collect();
            for format in FORMATS {
                scan_text(&text, Some(format), None);
            }
        }
    }

    /// Values that never close, over thousands of lines: each added line is looked at once
    /// (a rescan per line would make these take minutes).
    #[test]
    fn unclosed_values_over_many_lines_are_noted() {
        let body = "\"x\", 'y' { [\n".repeat(20_000);
        for (format, opening) in [
            (Format::Toml, "k = [\n"),
            (Format::Toml, "k = \"\"\"\n"),
            (Format::Yaml, "k: \"\n"),
            (Format::Yaml, "k: [\n"),
            (Format::Json, "{\"k\": [\n"),
            (Format::Env, "K=\"\n"),
        ] {
            let scanned = scan_text(&format!("{opening}{body}"), Some(format), None);
            assert!(!scanned.notes.is_empty(), "{format:?} {opening:?}");
        }
    }
}
