//! The anchor: a copy of the log's head kept outside the log's directory of files, in the
//! vault's metadata (`vault.json`), so that cutting records and rewriting the head is caught.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::Vault;
use crate::config::VaultConfig;
use crate::keyring::IntegrityKeys;

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

/// The anchor in the `audit_anchor` field of a vault's `vault.json`, read through its MACs
/// and written through `VaultConfig::update` (under the vault lock, atomically replaced,
/// MACed): someone who cuts the log cannot move the anchor back without the vault's keys.
/// Made by [`crate::Vault::audit_anchor`] or [`crate::Vault::following_audit_anchor`].
#[derive(Debug)]
pub struct VaultAnchor {
    dir: PathBuf,
    keys: KeySource,
}

/// Where the anchor's MAC key comes from.
#[derive(Debug)]
enum KeySource {
    /// The integrity keys of an open vault, held for as long as the anchor.
    Held(Arc<IntegrityKeys>),
    /// Those the vault holds at each use: none while it is locked.
    Following(Weak<Vault>),
}

impl VaultAnchor {
    pub(crate) fn held(dir: &Path, keys: Arc<IntegrityKeys>) -> Self {
        VaultAnchor {
            dir: dir.to_path_buf(),
            keys: KeySource::Held(keys),
        }
    }

    pub(crate) fn following(vault: &Arc<Vault>) -> Self {
        VaultAnchor {
            dir: vault.dir().to_path_buf(),
            keys: KeySource::Following(Arc::downgrade(vault)),
        }
    }

    fn keys(&self) -> Option<Arc<IntegrityKeys>> {
        match &self.keys {
            KeySource::Held(keys) => Some(Arc::clone(keys)),
            KeySource::Following(vault) => vault.upgrade()?.integrity_keys().ok(),
        }
    }
}

impl AuditAnchor for VaultAnchor {
    fn read(&self) -> Result<Option<Anchor>, Error> {
        let keys = self.keys().ok_or(Error::Locked)?;
        Ok(VaultConfig::read_verified(&self.dir, &keys)?.audit_anchor)
    }

    fn write(&self, anchor: &Anchor) -> Result<(), Error> {
        let Some(keys) = self.keys() else {
            // Locked: the key that MACs vault.json is gone. The first checkpoint after
            // unlock writes the anchor.
            log::info!(
                "audit anchor at seq {} not written while the vault is locked",
                anchor.seq
            );
            return Ok(());
        };
        VaultConfig::update(&self.dir, &keys, |config| {
            config.audit_anchor = Some(anchor.clone());
            Ok(())
        })
        .map(drop)
    }
}
