//! Tiered mode's intermediate keys: one per epoch, wrapped by the root KEKs, held in locked
//! memory while the vault is unlocked. DEKs are wrapped by the current epoch's key in
//! software, so slow hardware is touched only to open an epoch, not per secret.
//!
//! Every DEK wrap is counted against the epoch's limit before it happens: a process leases a
//! block of wraps by raising `wraps_reserved` in `vault.json` (under the vault lock), and a
//! crash only loses the unused rest of its block. So an epoch key never wraps more than its
//! policy allows, across processes and crashes.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use envelope::{Context, Dek, KekId, KekProvider, SoftwareKek};

use super::integrity::IntegrityKeys;
use super::ledger_epochs::{open_ledger_epoch, reserve_shared};
use super::root::RootSet;
use crate::Error;
use crate::config::{ConfigVersion, EpochPolicy, EpochRecord, VaultConfig, encode};
use crate::store::EpochLedger;
use crate::store::now_ms;

/// How often a process with a lease looks for epochs started or retired by others. A
/// process wraps under an epoch at most this long after a newer one started, so retirement
/// waits a little longer than this before it counts what still uses an old epoch.
pub(crate) const CONFIG_RECHECK: Duration = Duration::from_secs(1);

/// The kind of epoch stanzas; their label is the vault id and their version the epoch.
pub(crate) const EPOCH_KIND: &str = "epoch";

/// The AAD of an epoch key's own envelope.
pub(super) fn epoch_context(number: u32) -> Context<'static> {
    Context::new("keyring", "epoch", u64::from(number))
}

pub(crate) fn epoch_kek_id(vault_id: &str, number: u32) -> Result<KekId, Error> {
    Ok(KekId::new(EPOCH_KIND, vault_id, number)?)
}

/// Opens an epoch's key with the root KEKs.
pub(crate) fn open_epoch(
    vault_id: &str,
    record: &EpochRecord,
    root: &RootSet,
) -> Result<Arc<SoftwareKek>, Error> {
    let key = envelope::open(
        &record.key_bytes()?,
        &epoch_context(record.number),
        root.unwrap_set(),
    )?;
    Ok(Arc::new(SoftwareKek::new(
        epoch_kek_id(vault_id, record.number)?,
        Dek::from_slice(key.expose_secret())?,
    )))
}

/// A new epoch's record and key, sealed under every root KEK.
pub(crate) fn new_epoch(
    vault_id: &str,
    number: u32,
    wraps_reserved: u64,
    root: &RootSet,
) -> Result<(EpochRecord, Arc<SoftwareKek>), Error> {
    let key = Dek::generate()?;
    let sealed = envelope::seal(
        key.expose_secret(),
        &epoch_context(number),
        root.wrap_set()?,
    )?;
    let record = EpochRecord {
        number,
        created_at_ms: now_ms(),
        wraps_reserved,
        key: encode(&sealed),
        mac: String::new(),
    };
    Ok((
        record,
        Arc::new(SoftwareKek::new(epoch_kek_id(vault_id, number)?, key)),
    ))
}

/// Epoch 1 of a new vault (nothing wrapped under it yet).
pub(crate) fn new_epoch_for_init(
    vault_id: &str,
    root: &RootSet,
) -> Result<(EpochRecord, Arc<SoftwareKek>), Error> {
    new_epoch(vault_id, 1, 0, root)
}

/// Re-seals an epoch key's envelope under the current root KEKs (after `kek add`/`remove`).
pub(crate) fn reseal_epoch(record: &mut EpochRecord, root: &RootSet) -> Result<(), Error> {
    let sealed = envelope::rewrap(
        &record.key_bytes()?,
        &epoch_context(record.number),
        root.unwrap_set(),
        root.wrap_set()?,
    )?;
    record.key = encode(&sealed.envelope);
    Ok(())
}

/// The open epoch keys of an unlocked tiered vault and this process's lease of wraps.
#[derive(Debug, Default)]
pub(crate) struct Epochs {
    open: BTreeMap<u32, Arc<SoftwareKek>>,
    /// The epoch this process wraps under, and when it closes by age. An `Instant`, so
    /// that a wrap reads the clock once for this and for `checked_at`.
    current: Option<(u32, Instant)>,
    lease_left: u64,
    /// The configuration as this process last checked its lease against it, and when.
    checked: Option<ConfigVersion>,
    checked_at: Option<Instant>,
    /// Everything that unwraps epoch stanzas, newest first, shared with readers.
    unwrap_set: Arc<[Arc<dyn KekProvider>]>,
    /// Whether a renewal ahead of exhaustion is under way (see [`Epochs::begin_renewal`]).
    renewing: bool,
    /// When epochs close (pinned in `vault.json`).
    policy: EpochPolicy,
}

/// Wraps reserved for this process in `vault.json`: `granted` on epoch `number`, whose key
/// is `key` and which closes by age at `closes_at`.
pub(crate) struct Reservation {
    number: u32,
    granted: u64,
    key: Arc<SoftwareKek>,
    closes_at: Instant,
}

impl Reservation {
    pub(super) fn new(
        number: u32,
        granted: u64,
        key: Arc<SoftwareKek>,
        closes_at: Instant,
    ) -> Self {
        Reservation {
            number,
            granted,
            key,
            closes_at,
        }
    }
}

impl Epochs {
    /// Opens every epoch still allowed to decrypt.
    pub(crate) fn open_all(config: &VaultConfig, root: &RootSet) -> Result<Self, Error> {
        let mut epochs = Epochs {
            policy: config.epoch_policy,
            ..Epochs::default()
        };
        for record in config
            .epochs
            .iter()
            .filter(|e| e.number >= config.min_decryption_version)
        {
            epochs
                .open
                .insert(record.number, open_epoch(&config.id, record, root)?);
        }
        epochs.refresh_unwrap_set();
        Ok(epochs)
    }

    /// Opens the epochs in `config` that other processes started since these were opened;
    /// whether there were any.
    pub(crate) fn open_new(&mut self, config: &VaultConfig, root: &RootSet) -> Result<bool, Error> {
        let mut added = false;
        for record in config
            .epochs
            .iter()
            .filter(|e| e.number >= config.min_decryption_version)
        {
            if let Entry::Vacant(slot) = self.open.entry(record.number) {
                slot.insert(open_epoch(&config.id, record, root)?);
                added = true;
            }
        }
        if added {
            self.refresh_unwrap_set();
        }
        Ok(added)
    }

    /// Opens every epoch in a shared store's ledger still allowed to decrypt (oldest first,
    /// so that each can be opened with the one before it).
    pub(crate) fn open_all_shared(
        config: &VaultConfig,
        ledger: &dyn EpochLedger,
        root: &RootSet,
        keys: &IntegrityKeys,
    ) -> Result<Self, Error> {
        let mut epochs = Epochs {
            policy: config.epoch_policy,
            ..Epochs::default()
        };
        epochs.open_new_shared(
            config.min_decryption_version,
            ledger,
            root,
            keys,
            &config.id,
        )?;
        Ok(epochs)
    }

    /// Opens the epochs other replicas added to the ledger since; whether there were any.
    pub(crate) fn open_new_shared(
        &mut self,
        min: u32,
        ledger: &dyn EpochLedger,
        root: &RootSet,
        keys: &IntegrityKeys,
        vault_id: &str,
    ) -> Result<bool, Error> {
        let mut added = false;
        for epoch in ledger.epochs()?.iter().filter(|e| e.record.number >= min) {
            if !self.open.contains_key(&epoch.record.number) {
                let key = open_ledger_epoch(vault_id, epoch, root, keys, &self.open)?;
                self.open.insert(epoch.record.number, key);
                added = true;
            }
        }
        if added {
            self.refresh_unwrap_set();
        }
        Ok(added)
    }

    fn refresh_unwrap_set(&mut self) {
        self.unwrap_set = self
            .open
            .values()
            .rev()
            .map(|k| Arc::clone(k) as Arc<dyn KekProvider>)
            .collect();
    }

    /// What opens epoch-wrapped envelopes.
    pub(crate) fn unwrap_set(&self) -> Arc<[Arc<dyn KekProvider>]> {
        Arc::clone(&self.unwrap_set)
    }

    /// The key of epoch `number`, if this process holds it.
    pub(crate) fn key(&self, number: u32) -> Option<Arc<SoftwareKek>> {
        self.open.get(&number).cloned()
    }

    /// The numbers of the open epochs.
    pub(crate) fn numbers(&self) -> Vec<u32> {
        self.open.keys().copied().collect()
    }

    /// Forgets epochs below `min` (retired); their keys are zeroized when dropped.
    pub(crate) fn retire_below(&mut self, min: u32) {
        self.open.retain(|n, _| *n >= min);
        if self.current.is_some_and(|(n, _)| n < min) {
            self.current = None;
            self.lease_left = 0;
        }
        self.refresh_unwrap_set();
    }

    /// Ends this process's lease, so the next wrap starts or joins the newest epoch.
    pub(crate) fn end_lease(&mut self) {
        self.current = None;
        self.lease_left = 0;
    }

    /// The key to wrap one DEK under, counted against its epoch's limit.
    pub(crate) fn wrap_key(
        &mut self,
        dir: &Path,
        vault_id: &str,
        root: &RootSet,
        keys: &IntegrityKeys,
        lease: u64,
        ledger: Option<&dyn EpochLedger>,
    ) -> Result<Arc<SoftwareKek>, Error> {
        let now = Instant::now();
        // At most once per CONFIG_RECHECK: a wrap is sub-microsecond, a stat is not.
        if self.current.is_some()
            && self
                .checked_at
                .is_none_or(|t| now.saturating_duration_since(t) >= CONFIG_RECHECK)
        {
            match ledger {
                Some(ledger) => self.follow_ledger(ledger)?,
                None => self.follow_config(dir, keys)?,
            }
            self.checked_at = Some(now);
        }
        let fresh = match self.current {
            Some((_, closes_at)) => self.lease_left > 0 && now < closes_at,
            None => false,
        };
        if !fresh {
            // Renewing writes vault.json, and may open or start an epoch with the root KEKs.
            crate::in_memory::device_allowed()?;
            let reserved = match ledger {
                Some(ledger) => reserve_shared(
                    ledger,
                    vault_id,
                    root,
                    keys,
                    &self.policy,
                    lease.max(1),
                    &self.open,
                )?,
                None => reserve(dir, vault_id, root, keys, lease.max(1), &self.open)?,
            };
            self.install(reserved);
            // Renewal just read the configuration under the vault lock.
            self.checked = None;
            self.checked_at = Some(Instant::now());
        }
        // Never below zero: a wrap beyond the lease would break the epoch's limit.
        self.lease_left = self.lease_left.checked_sub(1).ok_or(Error::Locked)?;
        let (number, _) = self.current.ok_or(Error::Locked)?;
        self.open.get(&number).cloned().ok_or(Error::Locked)
    }

    /// Ends the lease if, since this process last looked, another one started a newer epoch
    /// (`rotate`) or retired the leased one (`set_min_decryption_version`): a key wrapped
    /// under a retired epoch could never be opened again, and rotation is meant to move new
    /// secrets to the new epoch. Costs one `stat` while the configuration is unchanged.
    fn follow_config(&mut self, dir: &Path, keys: &IntegrityKeys) -> Result<(), Error> {
        if let Some(checked) = &self.checked
            && checked.is_current(dir)?
        {
            return Ok(());
        }
        // Held before reading: if the file changes in between, the next wrap reads it again.
        let version = ConfigVersion::current(dir)?;
        let config = VaultConfig::read_verified(dir, keys)?;
        if self
            .open
            .keys()
            .next()
            .is_some_and(|&n| n < config.min_decryption_version)
        {
            self.retire_below(config.min_decryption_version);
        }
        let newest = config.epochs.last().map(|e| e.number);
        if self.current.is_some_and(|(n, _)| Some(n) != newest) {
            self.end_lease();
        }
        self.checked = Some(version);
        Ok(())
    }

    /// Ends the lease if another replica started a newer epoch in the ledger (rotation or an
    /// exhausted budget): new secrets move to the newest epoch.
    fn follow_ledger(&mut self, ledger: &dyn EpochLedger) -> Result<(), Error> {
        let newest = ledger.newest_epoch()?;
        if self
            .current
            .is_some_and(|(n, _)| newest.is_some_and(|newest| newest > n))
        {
            self.end_lease();
        }
        Ok(())
    }

    /// The epoch policy.
    pub(crate) fn policy(&self) -> EpochPolicy {
        self.policy
    }

    /// Whether this process should lease more wraps ahead of need: it has no lease yet, or
    /// less than a quarter of a `lease` left, and no renewal is under way.
    pub(crate) fn lease_running_low(&self, lease: u64) -> bool {
        !self.renewing && (self.current.is_none() || self.lease_left < lease.div_ceil(4))
    }

    /// Starts a renewal ahead of exhaustion when the lease runs low and none is under way:
    /// the epoch keys held, for [`reserve`], which runs without the epochs' lock so that
    /// wraps go on meanwhile; [`Epochs::end_renewal`] adds the block it granted.
    pub(crate) fn begin_renewal(&mut self, lease: u64) -> Option<BTreeMap<u32, Arc<SoftwareKek>>> {
        if !self.lease_running_low(lease) {
            return None;
        }
        self.renewing = true;
        Some(self.open.clone())
    }

    /// Ends a renewal begun by [`Epochs::begin_renewal`] with what [`reserve`] gave.
    pub(crate) fn end_renewal(
        &mut self,
        reserved: Result<Reservation, Error>,
    ) -> Result<(), Error> {
        self.renewing = false;
        self.install(reserved?);
        Ok(())
    }

    /// Takes `reserved` into this process's lease: more wraps on the current epoch, or a
    /// lease on a newer one. A block on an older epoch than the current one (a renewal that
    /// raced a newer one) is not used: its wraps stay reserved, never wrapped.
    fn install(&mut self, reserved: Reservation) {
        let Reservation {
            number,
            granted,
            key,
            closes_at,
        } = reserved;
        self.open.entry(number).or_insert(key);
        match self.current {
            Some((current, _)) if current > number => {}
            Some((current, _)) if current == number => {
                self.current = Some((number, closes_at));
                self.lease_left += granted;
            }
            _ => {
                self.current = Some((number, closes_at));
                self.lease_left = granted;
            }
        }
        self.refresh_unwrap_set();
    }
}

/// Reserves `lease` wraps on the newest epoch in `vault.json` (under the vault lock), or
/// starts a new epoch if it is closed; `open` are the epoch keys this process holds, so that
/// only an epoch another process started is opened with the root KEKs.
pub(crate) fn reserve(
    dir: &Path,
    vault_id: &str,
    root: &RootSet,
    keys: &IntegrityKeys,
    lease: u64,
    open: &BTreeMap<u32, Arc<SoftwareKek>>,
) -> Result<Reservation, Error> {
    let (config, (number, granted, new_key)) = VaultConfig::update(dir, keys, |config| {
        let now = now_ms();
        let policy = config.epoch_policy;
        if let Some(last) = config
            .epochs
            .last_mut()
            .filter(|e| !e.is_closed(&policy, now))
        {
            let granted = lease.min(policy.max_wraps - last.wraps_reserved);
            last.wraps_reserved += granted;
            return Ok((last.number, granted, None));
        }
        let number = config.epochs.last().map_or(1, |e| e.number + 1);
        let granted = lease.min(policy.max_wraps).max(1);
        let (record, key) = new_epoch(vault_id, number, granted, root)?;
        config.epochs.push(record);
        Ok((number, granted, Some(key)))
    })?;
    let key = match new_key {
        Some(key) => key,
        None => match open.get(&number) {
            Some(key) => Arc::clone(key),
            // Another process started this epoch: open it with the root KEKs.
            None => {
                let record = config
                    .epochs
                    .iter()
                    .find(|e| e.number == number)
                    .ok_or(Error::Locked)?;
                open_epoch(vault_id, record, root)?
            }
        },
    };
    let created = config
        .epochs
        .iter()
        .find(|e| e.number == number)
        .map_or_else(now_ms, |e| e.created_at_ms);
    Ok(Reservation {
        number,
        granted,
        key,
        closes_at: closes_at(created, &config.epoch_policy),
    })
}

/// When an epoch created at `created_at_ms` (Unix milliseconds) closes by age, on this
/// process's monotonic clock.
pub(super) fn closes_at(created_at_ms: i64, policy: &EpochPolicy) -> Instant {
    let max_age_ms = i64::try_from(policy.max_age_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let left_ms = created_at_ms
        .saturating_add(max_age_ms)
        .saturating_sub(now_ms())
        .max(0);
    let now = Instant::now();
    now.checked_add(Duration::from_millis(left_ms.unsigned_abs()))
        .unwrap_or(now + Duration::from_secs(365 * 24 * 3600))
}
