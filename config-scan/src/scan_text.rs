//! Scanning one file's text: PEM blocks and tokens over the raw lines (so comments and
//! broken files are covered), then the value rules over the tokenizer's entries (which know
//! the key).

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
    for pem in &pems {
        out.findings.push(RawFinding {
            line: pem.line,
            kind: Kind::PemPrivateKey,
            key: key_for(&entries, pem.line, &pem.header),
            value: pem.block.clone(),
            shown: Some(pem.header.clone()),
            detail: None,
        });
    }
    let mut token_texts: Vec<String> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if pems
            .iter()
            .any(|p| (p.line..=p.last_line).contains(&number))
        {
            continue;
        }
        for m in find_tokens(line) {
            let token = &line[m.start..m.end];
            out.findings.push(RawFinding {
                line: number,
                kind: m.kind,
                key: key_for(&entries, number, token),
                value: token.to_owned(),
                shown: None,
                detail: None,
            });
            token_texts.push(token.to_owned());
        }
    }
    for entry in &entries {
        let value = entry.value.trim();
        let already =
            value.contains("PRIVATE KEY") || token_texts.iter().any(|t| value.contains(t.as_str()));
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

/// The key of the entry holding `needle` that starts at or before `line` (the nearest), or
/// of the first entry on `line`, or empty.
fn key_for(entries: &[Entry], line: usize, needle: &str) -> String {
    entries
        .iter()
        .filter(|e| e.line <= line && e.value.contains(needle))
        .max_by_key(|e| e.line)
        .or_else(|| entries.iter().find(|e| e.line == line))
        .map(|e| e.key.clone())
        .unwrap_or_default()
}
