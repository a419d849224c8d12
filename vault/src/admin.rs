//! Keyring administration: checking, adding and removing root KEKs, starting epochs and
//! retiring old ones. Every change of the configuration happens under the vault lock.

use std::path::Path;

use envelope::{EnvelopeRef, Health};

use crate::config::{VaultConfig, WrapMode};
use crate::keyring::{
    CONFIG_RECHECK, EPOCH_KIND, Keyring, RootSet, StanzaChange, add_to_integrity_key, check_canary,
    drop_from_integrity_key, pin, reseal_epoch, restanza_ledger_epochs,
};
use crate::store::{StoredVersion, now_ms};
use crate::{Error, Kek, Vault};

/// Versions read per page when scanning the whole store.
const SCAN_PAGE: usize = 512;

/// What `kek check` found for one KEK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KekCheck {
    /// The KEK opened its canary.
    Ok,
    /// The KEK's device or service cannot be reached.
    Unreachable(String),
    /// The KEK was reached but could not open its canary, or could not be built.
    Failed(String),
}

impl Vault {
    /// Checks one KEK against the canary pinned for it (works locked or unlocked).
    pub fn check_kek(&self, kek: &Kek) -> KekCheck {
        Vault::check_kek_in(&self.dir, kek)
    }

    /// Checks one KEK against the canary pinned for it in the vault in `dir`, without
    /// opening the vault (so it works when no KEK does).
    pub fn check_kek_in(dir: &Path, kek: &Kek) -> KekCheck {
        let config = match VaultConfig::read(dir) {
            Ok(config) => config,
            Err(e) => return KekCheck::Failed(e.to_string()),
        };
        let id = kek.provider.id().to_string();
        let Some(pinned) = config.all_keks().find(|p| p.id == id) else {
            return KekCheck::Failed(format!("{id} is not one of this vault's KEKs"));
        };
        if let Health::Unreachable(why) = kek.provider.health() {
            return KekCheck::Unreachable(why);
        }
        match check_canary(pinned, &kek.provider, &config.id) {
            Ok(()) => KekCheck::Ok,
            Err(e) => KekCheck::Failed(e.to_string()),
        }
    }

    /// Adds a root KEK. Tiered: every epoch key is wrapped under it at once (all root KEKs
    /// must be present). Direct: new secrets get its stanza; `rewrap` adds it to old ones.
    pub fn add_kek(&self, kek: Kek) -> Result<(), Error> {
        let mut guard = self.write_keyring();
        let keyring = guard.take().ok_or(Error::Locked)?;
        let keys = std::sync::Arc::clone(&keyring.integrity);
        let result = VaultConfig::update(&self.dir, &keys, |config| {
            let id = kek.provider.id().to_string();
            if config.all_keks().any(|p| p.id == id) {
                return Err(Error::KekExists { id });
            }
            config.keks.push(pin(&kek, &config.id)?);
            config.integrity_key = add_to_integrity_key(
                &config.id,
                &config.integrity_key_bytes()?,
                &keyring.root,
                &kek.provider,
            )?;
            let mut given = keyring.root.given().to_vec();
            given.push(kek.clone());
            let root = RootSet::build(config, given)?.with_integrity(&keys);
            match self.shared_epochs(config) {
                Some(ledger) => {
                    let change = StanzaChange::Add {
                        root: &keyring.root,
                        kek: &kek.provider,
                    };
                    restanza_ledger_epochs(ledger, &config.id, &keys, &change)?;
                }
                None => reseal_epochs(config, &root)?,
            }
            Ok(root)
        });
        finish_root_change(&mut guard, keyring, result)
    }

    /// Removes a root KEK. Refuses when no other KEK works now, and, in direct mode, when
    /// stored secrets are still wrapped only for it.
    pub fn remove_kek(&self, id: &str) -> Result<(), Error> {
        let mut guard = self.write_keyring();
        let keyring = guard.take().ok_or(Error::Locked)?;
        let keys = std::sync::Arc::clone(&keyring.integrity);
        let result = VaultConfig::update(&self.dir, &keys, |config| {
            let pinned: Vec<String> = config.all_keks().map(|p| p.id.clone()).collect();
            if !config.keks.iter().any(|p| p.id == id) {
                return Err(if pinned.iter().any(|p| p == id) {
                    Error::Unsupported(format!(
                        "{id} is a member of the threshold group; members cannot be removed one by one"
                    ))
                } else {
                    Error::KekNotFound {
                        id: id.to_owned(),
                        pinned: pinned.join(", "),
                    }
                });
            }
            config.keks.retain(|p| p.id != id);
            let given: Vec<Kek> = keyring
                .root
                .given()
                .iter()
                .filter(|k| k.provider.id().to_string() != id)
                .cloned()
                .collect();
            let last = || Error::LastKek { id: id.to_owned() };
            if config.all_keks().next().is_none() || given.is_empty() {
                return Err(last());
            }
            let root = RootSet::build(config, given).map_err(|_| last())?;
            if config.threshold.is_some() && config.keks.is_empty() && !threshold_opens(&root) {
                return Err(last());
            }
            config.integrity_key = drop_from_integrity_key(&config.integrity_key_bytes()?, id)?;
            let root = root.with_integrity(&keys);
            match config.mode {
                WrapMode::Tiered => match self.shared_epochs(config) {
                    Some(ledger) => restanza_ledger_epochs(
                        ledger,
                        &config.id,
                        &keys,
                        &StanzaChange::Remove(id),
                    )?,
                    None => reseal_epochs(config, &root)?,
                },
                WrapMode::Direct => {
                    // Every KEK still pinned counts, here or not: an envelope one of them
                    // opens does not depend on the removed KEK alone.
                    let mut remaining: Vec<String> =
                        config.keks.iter().map(|p| p.id.clone()).collect();
                    remaining.extend(root.wrap_ids());
                    let orphans = self
                        .count_versions(|stanzas| !stanzas.iter().any(|s| remaining.contains(s)))?;
                    if orphans > 0 {
                        return Err(Error::StillInUse {
                            count: orphans,
                            what: id.to_owned(),
                        });
                    }
                }
            }
            Ok(root)
        });
        finish_root_change(&mut guard, keyring, result)
    }

    /// Starts a new epoch (tiered mode): new secrets are wrapped under a new intermediate
    /// key; `rewrap` moves old ones. Returns the new epoch's number.
    pub fn rotate(&self) -> Result<u32, Error> {
        if self.mode != WrapMode::Tiered {
            return Err(Error::Unsupported(
                "a direct-mode vault has no epochs; rotate a root KEK with `kek add NEW`, `rewrap`, `kek remove OLD`".into(),
            ));
        }
        self.with_keyring(|keyring| {
            if let Some(ledger) = self.store.epoch_ledger() {
                let number = keyring.rotate_shared(ledger, &self.id)?;
                self.end_lease(keyring);
                return Ok(number);
            }
            let (_, number) = VaultConfig::update(&self.dir, &keyring.integrity, |config| {
                let number = config.epochs.last().map_or(1, |e| e.number + 1);
                let (record, _) = crate::keyring::new_epoch(&config.id, number, 0, &keyring.root)?;
                config.epochs.push(record);
                Ok(number)
            })?;
            self.end_lease(keyring);
            Ok(number)
        })
    }

    /// Retires every epoch below `version`: their keys are deleted, and envelopes under
    /// them no longer open. Refuses while stored secrets still use them.
    pub fn set_min_decryption_version(&self, version: u32) -> Result<(), Error> {
        self.refuse_with_shared_epochs("retiring epochs")?;
        if self.mode != WrapMode::Tiered {
            return Err(Error::Unsupported(
                "a direct-mode vault has no key versions to retire; remove an old root KEK with `kek remove`".into(),
            ));
        }
        self.with_keyring(|keyring| {
            let config = VaultConfig::read_verified(&self.dir, &keyring.integrity)?;
            let newest = config.epochs.last().map_or(1, |e| e.number);
            if version > newest {
                return Err(Error::Unsupported(format!(
                    "the newest epoch is {newest}; min_decryption_version cannot be {version}"
                )));
            }
            wait_out_old_leases(&config, version);
            let label = format!("{EPOCH_KIND}:{}#v", self.id);
            let old = self.count_versions(|stanzas| {
                stanzas.iter().any(|s| {
                    s.strip_prefix(&label)
                        .and_then(|v| v.parse::<u32>().ok())
                        .is_some_and(|v| v < version)
                })
            })?;
            if old > 0 {
                return Err(Error::StillInUse {
                    count: old,
                    what: format!("epochs below {version}"),
                });
            }
            VaultConfig::update(&self.dir, &keyring.integrity, |config| {
                config.min_decryption_version = config.min_decryption_version.max(version);
                let min = config.min_decryption_version;
                config.epochs.retain(|e| e.number >= min);
                Ok(())
            })?;
            if let Some(mut epochs) = keyring.epochs() {
                epochs.retire_below(version);
            }
            Ok(())
        })
    }

    /// The ledger of a tiered vault whose epochs a shared store keeps (PostgreSQL).
    fn shared_epochs(&self, config: &VaultConfig) -> Option<&dyn crate::store::EpochLedger> {
        (config.mode == WrapMode::Tiered)
            .then(|| self.store.epoch_ledger())
            .flatten()
    }

    /// Refuses `what` on a tiered vault whose epochs a shared store keeps: retiring epochs
    /// would have to reach every replica at once (each holds the open keys, and may hold a
    /// lease on an old epoch), which is not built yet.
    fn refuse_with_shared_epochs(&self, what: &str) -> Result<(), Error> {
        if self.mode == WrapMode::Tiered && self.store.epoch_ledger().is_some() {
            return Err(Error::Unsupported(format!(
                "{what} on a tiered vault whose epochs PostgreSQL keeps for every replica is not supported yet"
            )));
        }
        Ok(())
    }

    /// Counts stored versions whose stanza ids satisfy `matches`.
    pub(crate) fn count_versions(
        &self,
        mut matches: impl FnMut(&[String]) -> bool,
    ) -> Result<u64, Error> {
        let mut count = 0;
        self.scan_all(|version| {
            if matches(&stanza_ids(&version.envelope)?) {
                count += 1;
            }
            Ok(())
        })?;
        Ok(count)
    }

    /// Calls `visit` for every stored version.
    fn scan_all(
        &self,
        mut visit: impl FnMut(&StoredVersion) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut after = None;
        loop {
            let page = self.store.scan(after.as_ref(), SCAN_PAGE)?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.position());
            page.iter().try_for_each(&mut visit)?;
        }
    }
}

/// Waits until every process has had time to leave the epochs below `version` (they look
/// for newer epochs every `CONFIG_RECHECK`), so that counting what still uses them cannot
/// miss a wrap that lands just after the count.
fn wait_out_old_leases(config: &VaultConfig, version: u32) {
    let Some(first_kept) = config.epochs.iter().find(|e| e.number >= version) else {
        return;
    };
    let margin = i64::try_from(2 * CONFIG_RECHECK.as_millis()).unwrap_or(i64::MAX);
    let wait_ms = first_kept
        .created_at_ms
        .saturating_add(margin)
        .saturating_sub(now_ms());
    if wait_ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(wait_ms.unsigned_abs()));
    }
}

/// The stanza ids of an envelope, `kind:label#vN`.
pub(crate) fn stanza_ids(envelope: &[u8]) -> Result<Vec<String>, Error> {
    Ok(EnvelopeRef::parse(envelope)?
        .stanzas()
        .map(|s| s.describe())
        .collect())
}

/// Whether the threshold group of `root` can still open anything (enough members present).
fn threshold_opens(root: &RootSet) -> bool {
    root.unwrap_set()
        .iter()
        .any(|p| matches!(p.health(), Health::Ok) && p.id().kind() == "threshold")
}

/// Wraps every kept epoch key under the root KEKs of `root`.
fn reseal_epochs(config: &mut VaultConfig, root: &RootSet) -> Result<(), Error> {
    if config.mode == WrapMode::Tiered {
        for record in &mut config.epochs {
            reseal_epoch(record, root)?;
        }
    }
    Ok(())
}

/// Installs the keyring with its new root set, or puts the old one back on error.
fn finish_root_change(
    guard: &mut Option<Keyring>,
    keyring: Keyring,
    result: Result<(VaultConfig, RootSet), Error>,
) -> Result<(), Error> {
    match result {
        Ok((_, root)) => {
            *guard = Some(keyring.with_root(root));
            Ok(())
        }
        Err(e) => {
            *guard = Some(keyring);
            Err(e)
        }
    }
}
