//! The keys of an unlocked vault: its root KEKs and, in tiered mode, its epoch keys.
//! Dropping a `Keyring` (lock) drops every key it holds; their memory is zeroized.

mod config_mac;
mod epochs;
mod integrity;
mod ledger_epochs;
mod root;
mod tagged;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use envelope::KekProvider;

pub(crate) use config_mac::{mac_config, verify_config};
pub(crate) use epochs::{
    CONFIG_RECHECK, EPOCH_KIND, Epochs, new_epoch, new_epoch_for_init, reseal_epoch, reserve,
};
pub(crate) use integrity::{
    IntegrityKeys, add_to_integrity_key, drop_from_integrity_key, new_integrity_key,
    open_integrity_key,
};
pub(crate) use ledger_epochs::{StanzaChange, new_ledger_epoch, restanza_ledger_epochs};
pub(crate) use root::{RootSet, check_canary, pin};

use crate::config::{VaultConfig, WrapMode};
use crate::store::EpochLedger;
use crate::{Error, Kek};

/// What seals one envelope: the root KEKs (direct) or the current epoch key (tiered).
pub(crate) enum SealKeks<'a> {
    Root(&'a [Arc<dyn KekProvider>]),
    Epoch([Arc<dyn KekProvider>; 1]),
}

impl SealKeks<'_> {
    pub(crate) fn as_slice(&self) -> &[Arc<dyn KekProvider>] {
        match self {
            SealKeks::Root(keks) => keks,
            SealKeks::Epoch(kek) => kek,
        }
    }
}

/// What opens envelopes: the root KEKs (direct) or the open epoch keys (tiered).
pub(crate) enum UnwrapKeks<'a> {
    Root(&'a [Arc<dyn KekProvider>]),
    Epochs(Arc<[Arc<dyn KekProvider>]>),
}

impl UnwrapKeks<'_> {
    pub(crate) fn as_slice(&self) -> &[Arc<dyn KekProvider>] {
        match self {
            UnwrapKeks::Root(keks) => keks,
            UnwrapKeks::Epochs(keks) => keks,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Keyring {
    pub(crate) root: RootSet,
    epochs: Option<Mutex<Epochs>>,
    pub(crate) integrity: Arc<IntegrityKeys>,
}

/// Checks `keks` against the configuration `config` (as read, not yet trusted), opens the
/// integrity key with them and verifies `config` with it. Returns the root KEKs (tagging
/// where needed) and the integrity keys; nothing of `config` is used before it verified but
/// the pinned KEKs' canaries and the sealed integrity key, which authenticate themselves.
/// A KEK's canary is checked only when it does not open the integrity key, which proves the
/// same when it does (see `RootSet::build_deferred`): one device call per KEK, not two.
pub(crate) fn open_root(
    config: &VaultConfig,
    keks: Vec<Kek>,
) -> Result<(RootSet, Arc<IntegrityKeys>), Error> {
    let mut root = RootSet::build_deferred(config, keks)?;
    let integrity = open_integrity_key(&config.id, &config.integrity_key_bytes()?, &mut root)?;
    if let Err(e) = verify_config(config, &integrity) {
        return Err(root.refused_by_canaries(&config.id).unwrap_or(e));
    }
    Ok((root.with_integrity(&integrity), integrity))
}

impl Keyring {
    /// Checks `keks` against the configuration, verifies it and, in tiered mode, opens the
    /// epoch keys.
    pub(crate) fn unlock(
        config: &VaultConfig,
        keks: Vec<Kek>,
        ledger: Option<&dyn EpochLedger>,
    ) -> Result<Self, Error> {
        let (root, integrity) = open_root(config, keks)?;
        Self::assemble(config, root, integrity, ledger)
    }

    /// The keyring of a verified `config` with these root KEKs and integrity keys.
    /// With a `ledger` (a store replicas share), the epochs are the ledger's.
    pub(crate) fn assemble(
        config: &VaultConfig,
        root: RootSet,
        integrity: Arc<IntegrityKeys>,
        ledger: Option<&dyn EpochLedger>,
    ) -> Result<Self, Error> {
        let epochs = match (config.mode, ledger) {
            (WrapMode::Tiered, None) => Some(Mutex::new(Epochs::open_all(config, &root)?)),
            (WrapMode::Tiered, Some(ledger)) => Some(Mutex::new(Epochs::open_all_shared(
                config, ledger, &root, &integrity,
            )?)),
            (WrapMode::Direct, _) => None,
        };
        Ok(Keyring {
            root,
            epochs,
            integrity,
        })
    }

    /// The same epochs under a new root set (after `kek add` or `remove`).
    pub(crate) fn with_root(self, root: RootSet) -> Self {
        Keyring {
            root: root.with_integrity(&self.integrity),
            epochs: self.epochs,
            integrity: self.integrity,
        }
    }

    /// The epoch state (tiered mode only).
    pub(crate) fn epochs(&self) -> Option<MutexGuard<'_, Epochs>> {
        self.epochs
            .as_ref()
            .map(|e| e.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The KEKs to seal one envelope with; in tiered mode this counts one wrap.
    pub(crate) fn seal_keks(
        &self,
        dir: &Path,
        vault_id: &str,
        lease: u64,
        ledger: Option<&dyn EpochLedger>,
    ) -> Result<SealKeks<'_>, Error> {
        match self.epochs() {
            None => {
                self.root.usable_here()?;
                Ok(SealKeks::Root(self.root.wrap_set()?))
            }
            Some(mut epochs) => {
                let key =
                    epochs.wrap_key(dir, vault_id, &self.root, &self.integrity, lease, ledger)?;
                Ok(SealKeks::Epoch([key as Arc<dyn KekProvider>]))
            }
        }
    }

    /// Whether the epoch lease should be renewed ahead of need (tiered mode; see
    /// [`Epochs::lease_running_low`]).
    pub(crate) fn lease_running_low(&self, lease: u64) -> bool {
        self.epochs().is_some_and(|e| e.lease_running_low(lease))
    }

    /// Leases another block of wraps while the current one still lasts (tiered mode), so
    /// that sealing never waits for a renewal: `vault.json` is updated (and an epoch
    /// started, if the current one closed) without holding the epochs, which go on wrapping
    /// meanwhile; the block is added when it is granted. Does nothing if the lease is not
    /// low or another renewal is under way (see [`Epochs::begin_renewal`]).
    pub(crate) fn renew_lease_ahead(
        &self,
        dir: &Path,
        vault_id: &str,
        lease: u64,
        ledger: Option<&dyn EpochLedger>,
    ) -> Result<(), Error> {
        let Some((open, policy)) = self
            .epochs()
            .and_then(|mut e| e.begin_renewal(lease).map(|open| (open, e.policy())))
        else {
            return Ok(());
        };
        let reserved = match ledger {
            Some(ledger) => ledger_epochs::reserve_shared(
                ledger,
                vault_id,
                &self.root,
                &self.integrity,
                &policy,
                lease.max(1),
                &open,
            ),
            None => reserve(
                dir,
                vault_id,
                &self.root,
                &self.integrity,
                lease.max(1),
                &open,
            ),
        };
        self.epochs().ok_or(Error::Locked)?.end_renewal(reserved)
    }

    /// Opens the epochs other processes started since unlock (tiered mode); whether there
    /// were any.
    pub(crate) fn open_new_epochs(
        &self,
        dir: &Path,
        ledger: Option<&dyn EpochLedger>,
    ) -> Result<bool, Error> {
        if self.epochs.is_some() {
            // Opening an epoch unwraps its key with the root KEKs.
            self.root.usable_here()?;
        }
        let Some(mut epochs) = self.epochs() else {
            return Ok(false);
        };
        let config = VaultConfig::read_verified(dir, &self.integrity)?;
        match ledger {
            Some(ledger) => epochs.open_new_shared(
                config.min_decryption_version,
                ledger,
                &self.root,
                &self.integrity,
                &config.id,
            ),
            None => epochs.open_new(&config, &self.root),
        }
    }

    /// Starts the next epoch in a shared store's ledger (`rotate`): its number.
    pub(crate) fn rotate_shared(
        &self,
        ledger: &dyn EpochLedger,
        vault_id: &str,
    ) -> Result<u32, Error> {
        let epochs = self.epochs().ok_or(Error::Locked)?;
        for _ in 0..4 {
            let newest = ledger.newest_epoch()?;
            let number = newest.map_or(1, |n| n + 1);
            let previous = newest.and_then(|n| epochs.key(n));
            let (epoch, _) = ledger_epochs::new_ledger_epoch(
                vault_id,
                number,
                &self.root,
                &self.integrity,
                previous.as_ref(),
                0,
            )?;
            if ledger.add_epoch(&epoch)? {
                return Ok(number);
            }
        }
        Err(Error::Store {
            what: "starting an epoch",
            reason: "other replicas kept starting epochs; try again".into(),
        })
    }

    /// The KEKs that open stored envelopes.
    pub(crate) fn unwrap_keks(&self) -> Result<UnwrapKeks<'_>, Error> {
        match self.epochs() {
            None => {
                self.root.usable_here()?;
                Ok(UnwrapKeks::Root(self.root.unwrap_set()))
            }
            Some(epochs) => Ok(UnwrapKeks::Epochs(epochs.unwrap_set())),
        }
    }
}
