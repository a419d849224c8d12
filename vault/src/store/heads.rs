//! Each key's version counter (its *head*): the newest version ever written and the newest
//! one deleted, kept beside the versions and tagged by the vault (HMAC under a key derived
//! from its integrity key), so that whoever can write the store but holds no key cannot:
//! - roll a secret back by deleting its newest versions (the head names the newest);
//! - bring back a deleted secret or an old envelope by inserting rows (versions up to the
//!   head's `deleted_through` are gone for good, and a re-created key continues after them,
//!   so an old envelope's version, which its AAD binds, is never current again);
//! - edit the counter (its tag does not verify).
//!
//! What it cannot stop: putting back an older head row together with the rows it covered
//! (a restore of part of the store); whoever does that needs a copy of the store taken
//! earlier, and rolls that key back to that copy.

use std::path::Path;

use crate::Error;

/// A key's counter: versions `deleted_through + 1 ..= latest` exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyHead {
    /// The newest version ever written (0 for none).
    pub latest: u64,
    /// Every version up to this one was deleted (0 for none).
    pub deleted_through: u64,
}

impl KeyHead {
    /// Whether no version exists (never written, or every one deleted).
    pub fn is_empty(&self) -> bool {
        self.deleted_through >= self.latest
    }

    /// A head as a store holds it (signed integers, NULL in a row someone edited). Negative
    /// numbers and NULLs are not ours: they map to huge ones, which the tag then refuses.
    pub(crate) fn from_stored(latest: Option<i64>, deleted_through: Option<i64>) -> Self {
        KeyHead {
            latest: latest.unwrap_or(-1) as u64,
            deleted_through: deleted_through.unwrap_or(-1) as u64,
        }
    }

    /// The bytes a head's tag covers, besides the scope and key.
    pub(crate) fn encode(&self) -> [u8; 16] {
        let mut out = [0; 16];
        out[..8].copy_from_slice(&self.latest.to_be_bytes());
        out[8..].copy_from_slice(&self.deleted_through.to_be_bytes());
        out
    }
}

/// Checks a compare-and-set write: `expected` (if any) must be the key's current version,
/// 0 when it has none (never written, or deleted).
pub(crate) fn check_expected(
    scope: &str,
    key: &str,
    head: &KeyHead,
    expected: Option<u64>,
) -> Result<(), Error> {
    let current = if head.is_empty() { 0 } else { head.latest };
    match expected {
        Some(expected) if expected != current => Err(Error::VersionMismatch {
            scope: scope.to_owned(),
            key: key.to_owned(),
            expected,
            current,
        }),
        _ => Ok(()),
    }
}

/// Makes and checks the tags of heads: the vault's integrity key does this.
pub trait HeadAuth: Send + Sync {
    /// The tag of `head` for `scope`/`key`.
    fn tag(&self, scope: &str, key: &str, head: &KeyHead) -> Vec<u8>;
    /// Whether `tag` is the tag of `head` for `scope`/`key` (constant-time).
    fn verify(&self, scope: &str, key: &str, head: &KeyHead, tag: &[u8]) -> bool;
}

/// The head of `scope`/`key` as stored, checked: `None` if the key never had one.
pub(crate) fn checked(
    path: &Path,
    auth: &dyn HeadAuth,
    scope: &str,
    key: &str,
    stored: Option<(KeyHead, Vec<u8>)>,
) -> Result<Option<KeyHead>, Error> {
    match stored {
        None => Ok(None),
        Some((head, tag))
            if head.deleted_through <= head.latest && auth.verify(scope, key, &head, &tag) =>
        {
            Ok(Some(head))
        }
        Some(_) => Err(tampered(
            path,
            format!("the version counter of {scope} {key} was edited (its tag does not verify)"),
        )),
    }
}

/// `path` (a store) holds something the vault did not write.
pub(crate) fn tampered(path: &Path, what: String) -> Error {
    Error::Tampered {
        path: path.to_path_buf(),
        what,
    }
}

/// Version rows of `scope`/`key` exist that no head accounts for.
pub(crate) fn rows_without_head(path: &Path, scope: &str, key: &str) -> Error {
    tampered(
        path,
        format!(
            "{scope} {key} has stored versions but no version counter: they were put in without the vault"
        ),
    )
}

/// Which version a read returns, from the checked head: the latest, or `wanted` if it
/// exists; `found` says whether the store holds a row for it. Errors name the tampering.
pub(crate) fn resolve_read(
    path: &Path,
    scope: &str,
    key: &str,
    head: &KeyHead,
    wanted: Option<u64>,
    found: bool,
) -> Result<u64, Error> {
    let not_found = || crate::store::not_found(scope, key, wanted);
    let version = match wanted {
        None if head.is_empty() => {
            return if found {
                Err(deleted_back(path, scope, key, head.latest))
            } else {
                Err(not_found())
            };
        }
        None => head.latest,
        Some(v) if v == 0 || v > head.latest => {
            return if found {
                Err(tampered(
                    path,
                    format!("{scope} {key} holds version {v}, which the vault never wrote"),
                ))
            } else {
                Err(not_found())
            };
        }
        Some(v) if v <= head.deleted_through => {
            return if found {
                Err(deleted_back(path, scope, key, v))
            } else {
                Err(not_found())
            };
        }
        Some(v) => v,
    };
    if !found {
        return Err(tampered(
            path,
            format!(
                "version {version} of {scope} {key} is missing (the vault never deletes single versions): the secret was rolled back"
            ),
        ));
    }
    Ok(version)
}

fn deleted_back(path: &Path, scope: &str, key: &str, version: u64) -> Error {
    tampered(
        path,
        format!("version {version} of {scope} {key} was deleted, and a copy of it was put back"),
    )
}
