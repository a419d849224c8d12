//! The file KEK: a random 256-bit key in a file of its own (mode 0600), used by a
//! [`SoftwareKek`]. It protects secrets against a copy of the vault directory alone, so the key
//! file belongs elsewhere (another disk, a secrets mount) and in the backups.
//!
//! URI: `file:<path>`; the canonical form has the absolute path.

mod create;
mod open;

use std::path::{Path, PathBuf};

use envelope::Dek;

use crate::{BuiltKek, Error};

pub(crate) use create::create;
pub(crate) use open::open;

/// Domain separation for the key id: the label is derived from the key, not from the path,
/// so a key file moved or restored elsewhere is still the same KEK, and another key is not.
const KEY_ID_CONTEXT: &[u8] = b"vault file kek id v1";

/// A parsed `file:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileKekSpec {
    /// Absolute path of the key file.
    path: PathBuf,
}

impl FileKekSpec {
    /// Parses what follows `file:`; relative paths are made absolute against the current
    /// directory so that the pinned URI still works from anywhere.
    pub(crate) fn parse(rest: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidUri {
            reason: format!("{reason}, e.g. file:/etc/vault/kek.key"),
        };
        if rest.is_empty() {
            return Err(invalid("a file KEK needs the key file's path"));
        }
        if rest.ends_with('/') {
            return Err(invalid("a file KEK's path names a file, not a directory"));
        }
        let path =
            std::path::absolute(rest).map_err(Error::io("resolving the path", rest.as_ref()))?;
        if path.to_str().is_none() {
            return Err(invalid("the absolute key file path is not valid UTF-8"));
        }
        Ok(Self { path })
    }

    /// The key file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// `file:<absolute path>`.
    pub(crate) fn canonical_uri(&self) -> String {
        format!("file:{}", self.path.display())
    }

    /// The provider for `key`, with its key-derived id.
    fn build(&self, key: Dek) -> Result<BuiltKek, Error> {
        crate::software_kek::key_derived("file", KEY_ID_CONTEXT, self.canonical_uri(), key)
    }
}
