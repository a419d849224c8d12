//! The revocation list: fingerprints of client certificates the daemon refuses.

use std::collections::HashSet;
use std::path::Path;

use crate::dir::{PkiDir, REVOKED_HEADER};
use crate::error::{Error, io, shown};
use crate::files::replace;
use crate::principal::{fingerprint, principal_of};

/// True for 64 lowercase hex digits.
fn is_fingerprint(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Reads `revoked.txt`: one lowercase hex fingerprint per line, `#` comments and blank lines
/// ignored; a bad line is an error naming the line.
pub fn read_revoked(path: &Path) -> Result<HashSet<String>, Error> {
    let text = std::fs::read_to_string(path).map_err(io("reading", path))?;
    parse_revoked(path, &text)
}

fn parse_revoked(path: &Path, text: &str) -> Result<HashSet<String>, Error> {
    let mut set = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !is_fingerprint(line) {
            return Err(Error::RevokedLine {
                path: path.to_path_buf(),
                line: i + 1,
                shown: shown(line),
            });
        }
        set.insert(line.to_owned());
    }
    Ok(set)
}

/// What `revoke` was given, as a fingerprint and an optional note for the list.
fn resolve(fingerprint_or_cert: &str) -> Result<(String, Option<String>), Error> {
    let arg = fingerprint_or_cert.trim();
    // Accept the colon-separated upper-case form other tools print, too.
    let normalized = arg.replace(':', "").to_ascii_lowercase();
    if is_fingerprint(&normalized) {
        return Ok((normalized, None));
    }
    let path = Path::new(arg);
    if !path.is_file() {
        return Err(Error::InvalidFingerprint { shown: shown(arg) });
    }
    let bytes = std::fs::read(path).map_err(io("reading", path))?;
    let der = match x509_parser::pem::parse_x509_pem(&bytes) {
        Ok((_, pem)) if pem.label == "CERTIFICATE" => pem.contents,
        _ => return Err(Error::InvalidFingerprint { shown: shown(arg) }),
    };
    let note = match principal_of(&der) {
        Ok(principal) => format!("# {principal} ({})", path.display()),
        Err(_) => format!("# {}", path.display()),
    };
    Ok((fingerprint(&der), Some(note)))
}

impl PkiDir {
    /// Adds a fingerprint (or the fingerprint of a PEM certificate file) to `revoked.txt`
    /// (atomic replace; idempotent).
    pub fn revoke(&self, fingerprint_or_cert: &str) -> Result<(), Error> {
        let (fp, note) = resolve(fingerprint_or_cert)?;
        let path = self.revoked();
        let mut text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => REVOKED_HEADER.to_owned(),
            Err(e) => return Err(io("reading", &path)(e)),
        };
        if parse_revoked(&path, &text)?.contains(&fp) {
            return Ok(());
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        if let Some(note) = note {
            // A path or principal with a newline must not forge a list line.
            text.push_str(&note.replace(['\n', '\r'], " "));
            text.push('\n');
        }
        text.push_str(&fp);
        text.push('\n');
        replace(&path, text.as_bytes())
    }
}
