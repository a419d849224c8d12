//! The anchor: a copy of the log's head kept outside the log's directory of files, in the
//! vault's metadata (`vault.json`), so that cutting records and rewriting the head is caught.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::config::VaultConfig;

/// A checkpoint of the audit log: the seq of a record and its MAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anchor {
    /// The record's seq.
    pub seq: u64,
    /// Its MAC (lowercase hex).
    pub mac: String,
}

/// Where the log keeps its anchor. [`super::AuditLog`] reads it when it opens (a log that does
/// not reach it, or differs at its seq, is refused) and writes it at checkpoints (every
/// checkpoint interval while records arrive, and when it closes).
pub trait AuditAnchor: Send + Sync + std::fmt::Debug {
    /// The anchor last written, if any.
    fn read(&self) -> Result<Option<Anchor>, Error>;
    /// Replaces the anchor, durably.
    fn write(&self, anchor: &Anchor) -> Result<(), Error>;
}

/// No anchor: a log that only its head checkpoint protects (tests, logs of no vault).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAnchor;

impl AuditAnchor for NoAnchor {
    fn read(&self) -> Result<Option<Anchor>, Error> {
        Ok(None)
    }

    fn write(&self, _anchor: &Anchor) -> Result<(), Error> {
        Ok(())
    }
}

/// The anchor in the `audit_anchor` field of a vault's `vault.json`, written through
/// `VaultConfig::update` (under the vault lock, atomically replaced).
#[derive(Debug, Clone)]
pub struct VaultAnchor {
    dir: PathBuf,
}

impl VaultAnchor {
    /// The anchor of the vault in `dir`.
    pub fn new(dir: &Path) -> Self {
        VaultAnchor {
            dir: dir.to_path_buf(),
        }
    }
}

impl AuditAnchor for VaultAnchor {
    fn read(&self) -> Result<Option<Anchor>, Error> {
        Ok(VaultConfig::read(&self.dir)?.audit_anchor)
    }

    fn write(&self, anchor: &Anchor) -> Result<(), Error> {
        VaultConfig::update(&self.dir, |config| {
            config.audit_anchor = Some(anchor.clone());
            Ok(())
        })
        .map(drop)
    }
}
