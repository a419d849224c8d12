//! Adding to the revocation list: by certificate file, fingerprint, serial or key hash.
//! Every change is a whole-file replace (readers see the old list or the new one) under a
//! lock (two revocations at once both land), and adding what is listed changes nothing.

use std::path::{Path, PathBuf};

use crate::cert_ids::{CertificateIds, Serial, certificate_ids, subject_hash};
use crate::dir::{PkiDir, REVOKED_HEADER};
use crate::error::{Error, io, shown};
use crate::files::{lock_beside, read, replace};
use crate::principal::principal_of;
use crate::revocation_list::{RevocationEntry, RevocationList, digest};

/// What a revocation wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// The entries that now revoke what was asked for (listed before or just added).
    pub entries: Vec<RevocationEntry>,
    /// How many of them were added (0: all were listed already).
    pub added: usize,
    /// The principal of the certificate revoked, when it is known (a certificate file, or
    /// a certificate of this directory's `clients/` that matches).
    pub principal: Option<String>,
    /// The certificate file the entries were taken from, if any.
    pub cert: Option<PathBuf>,
}

impl Revoked {
    /// True when the only entry is a whole-certificate fingerprint, which a re-encoded copy
    /// of the certificate escapes: revoke by certificate file, serial or key hash instead.
    pub fn fingerprint_only(&self) -> bool {
        matches!(self.entries.as_slice(), [RevocationEntry::Certificate(_)])
    }
}

/// A certificate found for a revocation, and whom it names.
struct Found {
    ids: CertificateIds,
    principal: Option<String>,
    path: PathBuf,
}

/// The DER of a PEM certificate file; `None` if it is not one.
fn cert_der(path: &Path) -> Result<Option<Vec<u8>>, Error> {
    let bytes = std::fs::read(path).map_err(io("reading", path))?;
    Ok(match x509_parser::pem::parse_x509_pem(&bytes) {
        Ok((_, pem)) if pem.label == "CERTIFICATE" => Some(pem.contents),
        _ => None,
    })
}

fn found(path: &Path, der: &[u8]) -> Result<Found, Error> {
    let ids = certificate_ids(der).map_err(|e| match e {
        Error::BadCertificate { reason, .. } => Error::BadCertificate {
            from: Some(path.to_path_buf()),
            reason,
        },
        other => other,
    })?;
    Ok(Found {
        ids,
        principal: principal_of(der).ok(),
        path: path.to_path_buf(),
    })
}

impl PkiDir {
    /// Revokes a certificate given as a PEM file (its key and its issuer and serial: every
    /// encoding of it, and every certificate for its key) or by the SHA-256 fingerprint
    /// `issue` printed (hex, any case, `:` allowed). A fingerprint of a certificate in this
    /// directory's `clients/` revokes that certificate as its file would; any other
    /// fingerprint is listed as such (see [`Revoked::fingerprint_only`]).
    pub fn revoke(&self, cert_or_fingerprint: &str) -> Result<Revoked, Error> {
        let arg = cert_or_fingerprint.trim();
        let normalized = arg.replace(':', "").to_ascii_lowercase();
        if let Some(fp) = digest(&normalized) {
            return match self.find_client(|ids| ids.fingerprint == fp)? {
                Some(found) => self.revoke_found(found),
                None => self.add(vec![RevocationEntry::Certificate(fp)], None, None),
            };
        }
        let path = Path::new(arg);
        if !path.is_file() {
            return Err(Error::InvalidFingerprint { shown: shown(arg) });
        }
        let der = cert_der(path)?.ok_or_else(|| Error::InvalidFingerprint { shown: shown(arg) })?;
        self.revoke_found(found(path, &der)?)
    }

    /// Revokes the certificate with this serial number (hex, see [`Serial::from_hex`])
    /// issued by this directory's CA (`ca.pem`).
    pub fn revoke_serial(&self, serial: &str) -> Result<Revoked, Error> {
        let serial = Serial::from_hex(serial)?;
        let ca_path = self.ca_cert();
        let ca_der = cert_der(&ca_path)?.ok_or_else(|| Error::BadCertificate {
            from: Some(ca_path.clone()),
            reason: "not a PEM certificate".into(),
        })?;
        let issuer = subject_hash(&ca_der)?;
        let found = self.find_client(|ids| ids.issuer == issuer && ids.serial == serial)?;
        let entry = RevocationEntry::IssuerSerial { issuer, serial };
        self.add_noting(vec![entry], found)
    }

    /// Revokes every certificate for the public key whose SubjectPublicKeyInfo DER has
    /// this SHA-256 (64 hex digits, any case, `:` allowed, `spki-sha256:` prefix allowed).
    pub fn revoke_key_hash(&self, key_hash: &str) -> Result<Revoked, Error> {
        let text = key_hash.trim();
        let text = text.strip_prefix("spki-sha256:").unwrap_or(text);
        let key = digest(&text.replace(':', "").to_ascii_lowercase()).ok_or_else(|| {
            Error::InvalidKeyHash {
                shown: shown(key_hash),
            }
        })?;
        let found = self.find_client(|ids| ids.key == key)?;
        self.add_noting(vec![RevocationEntry::Key(key)], found)
    }

    fn revoke_found(&self, found: Found) -> Result<Revoked, Error> {
        let entries = RevocationEntry::for_certificate(&found.ids).to_vec();
        self.add_noting(entries, Some(found))
    }

    fn add_noting(
        &self,
        entries: Vec<RevocationEntry>,
        found: Option<Found>,
    ) -> Result<Revoked, Error> {
        match found {
            Some(found) => self.add(entries, found.principal, Some(found.path)),
            None => self.add(entries, None, None),
        }
    }

    /// The first certificate of `clients/` whose identifiers satisfy `matches`; files that
    /// are not certificates are skipped.
    fn find_client(
        &self,
        matches: impl Fn(&CertificateIds) -> bool,
    ) -> Result<Option<Found>, Error> {
        let dir = self.clients_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("listing", &dir)(e)),
        };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "pem"))
            .collect();
        paths.sort();
        for path in paths {
            let Ok(Some(der)) = cert_der(&path) else {
                continue;
            };
            if let Ok(found) = found(&path, &der)
                && matches(&found.ids)
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Adds `entries` that are not listed yet, after a comment naming the principal and
    /// file, in one replace of the whole list under its lock.
    fn add(
        &self,
        entries: Vec<RevocationEntry>,
        principal: Option<String>,
        cert: Option<PathBuf>,
    ) -> Result<Revoked, Error> {
        let path = self.revoked();
        let _lock = lock_beside(&path)?;
        let mut text = match read(&path) {
            Ok(bytes) => String::from_utf8(bytes).map_err(|_| Error::RevokedLine {
                path: path.clone(),
                line: 1,
                shown: "(not UTF-8 text)".into(),
            })?,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                REVOKED_HEADER.to_owned()
            }
            Err(e) => return Err(e),
        };
        // A list that does not parse is not added to: the daemon would not read the result.
        let listed = RevocationList::parse(&path, &text)?;
        let new: Vec<&RevocationEntry> = entries.iter().filter(|e| !listed.contains(e)).collect();
        if !new.is_empty() {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            let note = match (&principal, &cert) {
                (Some(p), Some(c)) => Some(format!("# {p} ({})", c.display())),
                (None, Some(c)) => Some(format!("# {}", c.display())),
                (Some(p), None) => Some(format!("# {p}")),
                (None, None) => None,
            };
            if let Some(note) = note {
                // A path or principal with a newline must not forge a list line.
                text.push_str(&note.replace(['\n', '\r'], " "));
                text.push('\n');
            }
            for entry in &new {
                text.push_str(&entry.to_string());
                text.push('\n');
            }
            replace(&path, text.as_bytes())?;
        }
        Ok(Revoked {
            added: new.len(),
            entries,
            principal,
            cert,
        })
    }
}
