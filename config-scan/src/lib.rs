//! Finds plaintext secrets in configuration files, and `vault://` references to keys a vault
//! does not hold.
//!
//! [`scan`] walks files and directories ([`scan_bytes`] scans bytes already in memory as a
//! named file) (see [`SKIPPED_DIRS`]), reads TOML, YAML, JSON, INI
//! and `.env` files with forgiving line-oriented tokenizers that keep each value's key and
//! line, and reports:
//! - well-known credential formats anywhere in a file (provider API keys, cloud access keys,
//!   Git hosting and chat bot tokens, JWTs) and PEM private key blocks: [`Severity::Blocking`];
//! - high-entropy values under secret-sounding names (`password`, `secret`, `token`,
//!   `api_key`...), and `vault://` references the given [`VaultIndex`] cannot find:
//!   [`Severity::Warning`].
//!
//! References (`vault://`, `env://`, `file://`, `exec://`), empty values and placeholders
//! (`changeme`, `${VAR}`, `<...>`, `xxxx`) are not findings. Values never leave the scanner:
//! a [`Finding`] holds at most 4 characters of one (see [`Finding::masked`]) and a
//! fingerprint for the [`Allowlist`]. Malformed files never fail a scan: what could not be
//! read becomes a [`Note`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod allowlist;
mod detect;
mod error;
mod finding;
mod format;
mod mask;
mod refs;
mod report;
mod scan_text;
mod walk;

use std::path::{Path, PathBuf};

pub use allowlist::{Allowlist, DEFAULT_ALLOWLIST};
pub use error::Error;
pub use finding::{Finding, Kind, Note, Severity};
pub use refs::{Lookup, VaultIndex, VaultRef};
pub use report::{JSON_SCHEMA, Report};
pub use walk::SKIPPED_DIRS;

/// Files larger than this are skipped unless [`Options::max_file_size`] says otherwise.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1024 * 1024;

/// How to scan.
#[derive(Debug, Clone)]
pub struct Options {
    /// Files larger than this many bytes are skipped with a note.
    pub max_file_size: u64,
    /// The allowlist for every root; `None`: each scanned directory's own
    /// [`DEFAULT_ALLOWLIST`] file, if it has one.
    pub allowlist: Option<Allowlist>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            allowlist: None,
        }
    }
}

/// Scans `paths` (files or directories); `vault`, if given, checks `vault://` references.
///
/// Fails only when a path cannot be scanned at all (missing, unreadable) or a default
/// allowlist is malformed; problems inside the tree become notes.
pub fn scan(
    paths: &[PathBuf],
    options: &Options,
    vault: Option<&dyn VaultIndex>,
) -> Result<Report, Error> {
    let mut report = Report::default();
    for root in paths {
        let walk::Walk { files, notes } = walk::files_under(root)?;
        for (path, message) in notes {
            report.notes.push(Note {
                path,
                line: None,
                message,
            });
        }
        let default_allowlist = root.join(DEFAULT_ALLOWLIST);
        let own_allowlist = match &options.allowlist {
            Some(_) => None,
            None if root.is_dir() && default_allowlist.is_file() => {
                Some(Allowlist::read(&default_allowlist)?)
            }
            None => None,
        };
        let allowlist = options.allowlist.as_ref().or(own_allowlist.as_ref());
        for file in files {
            scan_file(&file, options, vault, allowlist, &mut report);
        }
    }
    Ok(report)
}

/// Scans `bytes` as the contents of a file at `path`, without reading the filesystem: the
/// format comes from the name, the findings' paths are `path` and their fingerprints are
/// taken relative to its file name, as when [`scan`] is given that one file. Only
/// `options.allowlist` applies (no directory's default allowlist is looked for). For callers
/// that hold the bytes already, such as the fuzz target.
pub fn scan_bytes(
    path: &Path,
    bytes: &[u8],
    options: &Options,
    vault: Option<&dyn VaultIndex>,
) -> Report {
    let mut report = Report::default();
    let file = walk::FileToScan::named(path);
    scan_file_bytes(
        &file,
        Ok(bytes.to_vec()),
        options,
        vault,
        options.allowlist.as_ref(),
        &mut report,
    );
    report
}

fn scan_file(
    file: &walk::FileToScan,
    options: &Options,
    vault: Option<&dyn VaultIndex>,
    allowlist: Option<&Allowlist>,
    report: &mut Report,
) {
    let bytes = read_capped(&file.path, options.max_file_size);
    scan_file_bytes(file, bytes, options, vault, allowlist, report);
}

/// Scans what was read of `file` (up to one byte past the size limit).
fn scan_file_bytes(
    file: &walk::FileToScan,
    bytes: std::io::Result<Vec<u8>>,
    options: &Options,
    vault: Option<&dyn VaultIndex>,
    allowlist: Option<&Allowlist>,
    report: &mut Report,
) {
    let note = |report: &mut Report, line: Option<usize>, message: String| {
        report.notes.push(Note {
            path: file.path.clone(),
            line,
            message,
        });
    };
    let Some(text) = text_of(bytes, options.max_file_size, &mut |m| note(report, None, m)) else {
        return;
    };
    if file.format.is_none() {
        note(
            report,
            None,
            "not a TOML, YAML, JSON, INI or .env file: only token formats and private keys \
             were looked for"
                .into(),
        );
    }
    report.files_scanned += 1;
    let scanned = scan_text::scan_text(&text, file.format, vault);
    for (line, message) in scanned.notes {
        note(report, Some(line), message);
    }
    report.unchecked_refs += scanned.unchecked_refs;
    for raw in scanned.findings {
        let kind = raw.kind.as_str();
        let mut finding = Finding {
            path: file.path.clone(),
            rel_path: file.rel.clone(),
            line: raw.line,
            kind: raw.kind,
            key: mask::printable_key(&raw.key),
            masked: raw.shown.unwrap_or_else(|| mask::mask(&raw.value)),
            fingerprint: mask::fingerprint(&file.rel, kind, &raw.value),
            allowed: false,
            detail: raw.detail,
        };
        finding.allowed = allowlist.is_some_and(|a| a.allows(&finding));
        report.findings.push(finding);
    }
}

/// The file's bytes, up to one byte past the cap, so a file that grew after the walk is
/// still caught.
fn read_capped(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(max.saturating_add(1)).read_to_end(&mut bytes))?;
    Ok(bytes)
}

/// The file's text, or `None` with a note when it is too large, unreadable or binary.
fn text_of(
    bytes: std::io::Result<Vec<u8>>,
    max: u64,
    note: &mut dyn FnMut(String),
) -> Option<String> {
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(e) => {
            note(format!("cannot read: {e}"));
            return None;
        }
    };
    if bytes.len() as u64 > max {
        note(format!(
            "larger than {max} bytes: skipped (raise the limit with --max-file-size)"
        ));
        return None;
    }
    if bytes.contains(&0) {
        note("binary (holds NUL bytes): skipped".into());
        return None;
    }
    match String::from_utf8(bytes) {
        Ok(text) => Some(text),
        Err(e) => {
            note("not UTF-8: scanned with invalid bytes replaced".into());
            Some(String::from_utf8_lossy(e.as_bytes()).into_owned())
        }
    }
}
