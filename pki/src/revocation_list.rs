//! The revocation list, `revoked.txt`: one entry per line, `#` comments and blank lines
//! ignored. Entries, strongest first:
//!
//! - `spki-sha256:<64 hex>`: SHA-256 of a SubjectPublicKeyInfo; refuses every certificate
//!   for that key, whatever its serial or encoding (the key itself is compromised).
//! - `issuer-serial:<64 hex>:<serial hex>`: SHA-256 of the issuer Name DER and the serial
//!   number (lowercase hex, no leading zeros); refuses that one certificate in any encoding.
//! - `cert-sha256:<64 hex>`, or 64 hex digits alone (lists written before the other forms):
//!   SHA-256 of one DER encoding. Weak: the holder of an ECDSA certificate can re-encode it
//!   into other bytes (see `cert_ids`), so `vaultctl pki revoke` writes the two forms above
//!   whenever it can.
//!
//! Entries are lowercase and canonical; anything else is an error naming the line.

use std::collections::HashSet;
use std::fmt;
use std::io::Read;
use std::path::Path;

use crate::cert_ids::{CertificateIds, Serial, Sha256};
use crate::error::{Error, io, shown};
use crate::principal::hex;

/// The largest revocation list read (a list of a hundred thousand entries is 15 MB).
pub const MAX_LIST_BYTES: u64 = 32 << 20;

/// One entry of the revocation list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RevocationEntry {
    /// Every certificate for the public key whose SubjectPublicKeyInfo has this SHA-256.
    Key(Sha256),
    /// The certificate with this serial from the issuer whose Name DER has this SHA-256.
    IssuerSerial {
        /// SHA-256 of the issuer Name DER.
        issuer: Sha256,
        /// The serial number.
        serial: Serial,
    },
    /// One DER encoding of a certificate, by its SHA-256 fingerprint.
    Certificate(Sha256),
}

impl RevocationEntry {
    /// Parses one entry in its canonical form (see the module documentation).
    pub fn parse(text: &str) -> Option<RevocationEntry> {
        if let Some(digest) = digest(text) {
            return Some(RevocationEntry::Certificate(digest));
        }
        let (kind, rest) = text.split_once(':')?;
        match kind {
            "cert-sha256" => digest(rest).map(RevocationEntry::Certificate),
            "spki-sha256" => digest(rest).map(RevocationEntry::Key),
            "issuer-serial" => {
                let (issuer, serial) = rest.split_once(':')?;
                Some(RevocationEntry::IssuerSerial {
                    issuer: digest(issuer)?,
                    serial: Serial::canonical(serial)?,
                })
            }
            _ => None,
        }
    }

    /// Whether this entry revokes the certificate with these identifiers.
    pub fn revokes(&self, ids: &CertificateIds) -> bool {
        match self {
            RevocationEntry::Key(key) => *key == ids.key,
            RevocationEntry::IssuerSerial { issuer, serial } => {
                *issuer == ids.issuer && *serial == ids.serial
            }
            RevocationEntry::Certificate(fingerprint) => *fingerprint == ids.fingerprint,
        }
    }

    /// The entries that revoke a certificate whatever its encoding: its key and its
    /// issuer and serial.
    pub fn for_certificate(ids: &CertificateIds) -> [RevocationEntry; 2] {
        [
            RevocationEntry::Key(ids.key),
            RevocationEntry::IssuerSerial {
                issuer: ids.issuer,
                serial: ids.serial.clone(),
            },
        ]
    }
}

/// The canonical line: `spki-sha256:...`, `issuer-serial:...:...` or `cert-sha256:...`.
impl fmt::Display for RevocationEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RevocationEntry::Key(key) => write!(f, "spki-sha256:{}", hex(key)),
            RevocationEntry::IssuerSerial { issuer, serial } => {
                write!(f, "issuer-serial:{}:{serial}", hex(issuer))
            }
            RevocationEntry::Certificate(fp) => write!(f, "cert-sha256:{}", hex(fp)),
        }
    }
}

/// 64 lowercase hex digits, as a digest.
pub(crate) fn digest(text: &str) -> Option<Sha256> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 || !bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let nibble = |b: u8| if b <= b'9' { b - b'0' } else { b - b'a' + 10 };
        out[i] = nibble(pair[0]) << 4 | nibble(pair[1]);
    }
    Some(out)
}

/// The entries of a revocation list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevocationList {
    entries: HashSet<RevocationEntry>,
}

impl RevocationList {
    /// Parses the text of a revocation list read from `path` (named in errors); a line
    /// that is not an entry, comment or blank is an error naming it.
    pub fn parse(path: &Path, text: &str) -> Result<RevocationList, Error> {
        let mut entries = HashSet::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let entry = RevocationEntry::parse(line).ok_or_else(|| Error::RevokedLine {
                path: path.to_path_buf(),
                line: i + 1,
                shown: shown(line),
            })?;
            entries.insert(entry);
        }
        Ok(RevocationList { entries })
    }

    /// Parses the bytes of a revocation list read from `path` (which must be UTF-8).
    pub fn parse_bytes(path: &Path, bytes: &[u8]) -> Result<RevocationList, Error> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            Error::RevokedLine {
                path: path.to_path_buf(),
                line: line + 1,
                shown: "(not UTF-8 text)".into(),
            }
        })?;
        RevocationList::parse(path, text)
    }

    /// How many distinct entries it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether it holds `entry`.
    pub fn contains(&self, entry: &RevocationEntry) -> bool {
        self.entries.contains(entry)
    }

    /// Its entries, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &RevocationEntry> {
        self.entries.iter()
    }

    /// The entry that revokes the certificate with these identifiers, if one does (the
    /// strongest: key, then issuer and serial, then fingerprint).
    pub fn revoked_by(&self, ids: &CertificateIds) -> Option<&RevocationEntry> {
        let [key, issuer_serial] = RevocationEntry::for_certificate(ids);
        let fingerprint = RevocationEntry::Certificate(ids.fingerprint);
        [key, issuer_serial, fingerprint]
            .iter()
            .find_map(|entry| self.entries.get(entry))
    }
}

/// Reads and parses `revoked.txt` (at most [`MAX_LIST_BYTES`]); a bad line is an error
/// naming the line.
pub fn read_revoked(path: &Path) -> Result<RevocationList, Error> {
    let bytes = read_list_bytes(path)?;
    RevocationList::parse_bytes(path, &bytes)
}

/// The bytes of a revocation list file, refused beyond [`MAX_LIST_BYTES`].
pub fn read_list_bytes(path: &Path) -> Result<Vec<u8>, Error> {
    let file = std::fs::File::open(path).map_err(io("reading", path))?;
    let mut bytes = Vec::new();
    file.take(MAX_LIST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io("reading", path))?;
    if bytes.len() as u64 > MAX_LIST_BYTES {
        return Err(Error::RevokedTooLarge {
            path: path.to_path_buf(),
            max: MAX_LIST_BYTES,
        });
    }
    Ok(bytes)
}
