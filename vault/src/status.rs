//! `status`: what a vault reports about itself (never a secret).

use std::path::PathBuf;

use envelope::{Assurance, Health};

use crate::config::{VaultConfig, WrapMode};
use crate::keyring::Keyring;
use crate::store::StoreKind;
use crate::{Error, Vault};

/// One KEK's line in [`Status`].
#[derive(Debug, Clone)]
pub struct KekStatus {
    /// `kind:label#vN`.
    pub id: String,
    /// The URI it was built from.
    pub uri: String,
    /// Whether it answers now.
    pub health: Health,
    /// What it assures.
    pub assurance: Assurance,
}

/// What `status` reports.
#[derive(Debug, Clone)]
pub struct Status {
    /// The vault directory.
    pub dir: PathBuf,
    /// The store kind.
    pub store: StoreKind,
    /// The wrap mode.
    pub mode: WrapMode,
    /// Whether the vault is locked.
    pub locked: bool,
    /// How many secrets are stored.
    pub secrets: u64,
    /// The KEKs this vault was unlocked with (none while locked).
    pub keks: Vec<KekStatus>,
    /// Pinned KEKs that were not given (reads work, wraps do not).
    pub missing_keks: Vec<String>,
    /// Open epochs (tiered mode).
    pub epochs: Vec<u32>,
    /// Envelopes of older epochs no longer open.
    pub min_decryption_version: u32,
    /// Values in the JIT cache.
    pub cached: usize,
    /// Lookups in the JIT cache since this vault was opened.
    pub cache_lookups: u64,
    /// Lookups that found a fresh value.
    pub cache_hits: u64,
    /// How much secret memory is locked.
    pub memory: envelope::memory::LockStatus,
}

impl Vault {
    /// The store, the secret count, each KEK's health, the epochs and memory locking.
    pub fn status(&self) -> Result<Status, Error> {
        let config = VaultConfig::read(&self.dir)?;
        let guard = self.read_keyring();
        let keks = guard
            .iter()
            .flat_map(|k| k.root.given())
            .map(|k| KekStatus {
                id: k.provider.id().to_string(),
                uri: k.uri.clone(),
                health: k.provider.health(),
                assurance: k.provider.assurance(),
            })
            .collect::<Vec<_>>();
        let missing_keks = config
            .all_keks()
            .filter(|p| !keks.iter().any(|k| k.id == p.id))
            .map(|p| p.id.clone())
            .collect();
        let epochs = guard
            .as_ref()
            .and_then(Keyring::epochs)
            .map(|e| e.numbers())
            .unwrap_or_default();
        let (cache_lookups, cache_hits) = self.cache.stats();
        Ok(Status {
            dir: self.dir.clone(),
            store: self.store.kind(),
            mode: self.mode,
            locked: guard.is_none(),
            secrets: self.store.count()?,
            keks,
            missing_keks,
            epochs,
            min_decryption_version: config.min_decryption_version,
            cached: self.cache.len(),
            cache_lookups,
            cache_hits,
            memory: envelope::memory::lock_status(),
        })
    }
}
