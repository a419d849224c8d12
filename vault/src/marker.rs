//! `vault.json`: what a vault directory pins at init (store kind, KEKs) and the canary that
//! proves at open time that the KEKs given are the right ones.

use std::fs::{File, Permissions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The marker file inside the vault directory.
pub const MARKER_FILE: &str = "vault.json";
/// The marker format this build writes and reads.
const MARKER_FORMAT: u32 = 1;
/// A marker is a few hundred bytes; anything much larger is not ours.
const MAX_MARKER_LEN: u64 = 1 << 20;

/// A KEK pinned at init: the URI it is built from and the id it must have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedKek {
    /// The canonical KEK URI (holds no secret: passphrases come from env, file or prompt).
    pub uri: String,
    /// The KEK id, `kind:label#vN`.
    pub id: String,
}

/// The contents of `vault.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Marker {
    /// The marker format.
    pub format: u32,
    /// The store kind, pinned.
    pub store: String,
    /// The KEKs, pinned.
    pub keks: Vec<PinnedKek>,
    /// When the vault was created (Unix milliseconds).
    pub created_at_ms: i64,
    /// An envelope of a fixed value sealed under every KEK at init (base64).
    pub canary: String,
}

impl Marker {
    pub(crate) fn new(
        store: String,
        keks: Vec<PinnedKek>,
        created_at_ms: i64,
        canary: &[u8],
    ) -> Self {
        Marker {
            format: MARKER_FORMAT,
            store,
            keks,
            created_at_ms,
            canary: BASE64.encode(canary),
        }
    }

    /// Reads the marker of the vault in `dir`.
    pub fn read(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(MARKER_FILE);
        let damaged = |reason: String| Error::Marker {
            path: path.clone(),
            reason,
        };
        let text = match std::fs::metadata(&path) {
            Ok(meta) if meta.len() > MAX_MARKER_LEN => {
                return Err(damaged(format!("it is {} bytes long", meta.len())));
            }
            Ok(_) => std::fs::read_to_string(&path)
                .map_err(Error::io(format!("reading {}", path.display())))?,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::NoVault {
                    dir: dir.to_path_buf(),
                });
            }
            Err(e) => return Err(Error::io(format!("reading {}", path.display()))(e)),
        };
        let marker: Marker =
            serde_json::from_str(&text).map_err(|e| damaged(format!("not valid JSON ({e})")))?;
        if marker.format != MARKER_FORMAT {
            return Err(damaged(format!(
                "format {} is not supported by this build (it reads {MARKER_FORMAT})",
                marker.format
            )));
        }
        if marker.keks.is_empty() {
            return Err(damaged("it pins no KEK".into()));
        }
        Ok(marker)
    }

    /// The canary envelope's bytes.
    pub(crate) fn canary(&self, dir: &Path) -> Result<Vec<u8>, Error> {
        BASE64.decode(&self.canary).map_err(|_| Error::Marker {
            path: dir.join(MARKER_FILE),
            reason: "the canary is not base64".into(),
        })
    }

    /// Writes the marker of a new vault in `dir`.
    pub(crate) fn write_new(&self, dir: &Path) -> Result<(), Error> {
        let path = dir.join(MARKER_FILE);
        let text = serde_json::to_vec_pretty(self).map_err(|e| Error::Marker {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        create_new(&path, &text, dir)
    }
}

/// Creates `path` all or nothing, and never over an existing file: a temp file (0600) in
/// the same directory, synced, renamed into place without replacing, then the directory
/// synced. A crash leaves no marker or the whole one; of two concurrent `init`s one wins.
fn create_new(path: &Path, bytes: &[u8], dir: &Path) -> Result<(), Error> {
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(Error::io(format!(
            "creating a temporary file in {}",
            dir.display()
        )))?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(Error::io(format!("writing {}", temp.path().display())))?;
    temp.persist_noclobber(path)
        .map_err(|e| match e.error.kind() {
            ErrorKind::AlreadyExists => Error::AlreadyInitialised {
                dir: dir.to_path_buf(),
            },
            _ => Error::io(format!("creating {}", path.display()))(e.error),
        })?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(format!("syncing {}", dir.display())))
}
