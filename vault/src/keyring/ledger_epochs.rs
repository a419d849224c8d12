//! Tiered mode on a store replicas share: the epochs live in the store's ledger, not in each
//! replica's `vault.json`. Each record is MACed as it was created (its wrap count is the
//! ledger's, leased in one atomic update per block), and each new epoch's key is also sealed
//! under the previous epoch's key, so a replica that holds that one adopts the new epoch
//! without a device call.

use std::collections::BTreeMap;
use std::sync::Arc;

use envelope::{Dek, KekProvider, SoftwareKek};

use super::config_mac::{mac_epoch, verify_epoch};
use super::epochs::{Reservation, closes_at, epoch_context, epoch_kek_id, open_epoch};
use super::integrity::IntegrityKeys;
use super::root::RootSet;
use crate::Error;
use crate::config::{EpochPolicy, EpochRecord, encode};
use crate::store::{EpochLedger, LedgerEpoch, now_ms};

/// How often a replica tries to start or lease an epoch before giving up: each retry follows
/// another replica's start of the same epoch, which the next attempt leases from.
const ATTEMPTS: usize = 4;

/// The record of `epoch`, checked against its MAC, with the ledger's wrap count.
pub(crate) fn checked_record(
    vault_id: &str,
    epoch: &LedgerEpoch,
    keys: &IntegrityKeys,
) -> Result<EpochRecord, Error> {
    verify_epoch(vault_id, &epoch.record, keys)?;
    Ok(EpochRecord {
        wraps_reserved: epoch.wraps_leased,
        ..epoch.record.clone()
    })
}

/// Opens `epoch`'s key: with the previous epoch's key when this replica holds it and the
/// ledger has the upgrade copy, else with the root KEKs.
pub(crate) fn open_ledger_epoch(
    vault_id: &str,
    epoch: &LedgerEpoch,
    root: &RootSet,
    keys: &IntegrityKeys,
    open: &BTreeMap<u32, Arc<SoftwareKek>>,
) -> Result<Arc<SoftwareKek>, Error> {
    let record = checked_record(vault_id, epoch, keys)?;
    let previous = record.number.checked_sub(1).and_then(|n| open.get(&n));
    if let (Some(upgrade), Some(previous)) = (&epoch.upgrade, previous) {
        let previous: [Arc<dyn KekProvider>; 1] = [Arc::clone(previous) as Arc<dyn KekProvider>];
        if let Ok(key) = envelope::open(upgrade, &epoch_context(record.number), &previous) {
            return Ok(Arc::new(SoftwareKek::new(
                epoch_kek_id(vault_id, record.number)?,
                Dek::from_slice(key.expose_secret())?,
            )));
        }
    }
    open_epoch(vault_id, &record, root)
}

/// A new epoch `number` for the ledger: its key sealed under the root KEKs (the record,
/// MACed) and under `previous`, the epoch before it (the upgrade copy), with `leased` wraps
/// already leased to its maker.
pub(crate) fn new_ledger_epoch(
    vault_id: &str,
    number: u32,
    root: &RootSet,
    keys: &IntegrityKeys,
    previous: Option<&Arc<SoftwareKek>>,
    leased: u64,
) -> Result<(LedgerEpoch, Arc<SoftwareKek>), Error> {
    let key = Dek::generate()?;
    let ctx = epoch_context(number);
    let sealed = envelope::seal(key.expose_secret(), &ctx, root.wrap_set()?)?;
    let upgrade = previous
        .map(|previous| {
            let previous: [Arc<dyn KekProvider>; 1] =
                [Arc::clone(previous) as Arc<dyn KekProvider>];
            envelope::seal(key.expose_secret(), &ctx, &previous)
        })
        .transpose()?;
    let mut record = EpochRecord {
        number,
        created_at_ms: now_ms(),
        wraps_reserved: 0,
        key: encode(&sealed),
        mac: String::new(),
    };
    mac_epoch(vault_id, &mut record, keys);
    let epoch = LedgerEpoch {
        record,
        upgrade,
        wraps_leased: leased,
    };
    Ok((
        epoch,
        Arc::new(SoftwareKek::new(epoch_kek_id(vault_id, number)?, key)),
    ))
}

/// Reserves `lease` wraps on the newest epoch in the ledger, or starts the next epoch if the
/// newest is closed (by age, or because the block no longer fits in its budget). Of replicas
/// starting the same epoch one adds it; the others lease from it.
pub(crate) fn reserve_shared(
    ledger: &dyn EpochLedger,
    vault_id: &str,
    root: &RootSet,
    keys: &IntegrityKeys,
    policy: &EpochPolicy,
    lease: u64,
    open: &BTreeMap<u32, Arc<SoftwareKek>>,
) -> Result<Reservation, Error> {
    let n = lease.clamp(1, policy.max_wraps.max(1));
    for _ in 0..ATTEMPTS {
        let epochs = ledger.epochs()?;
        let newest = epochs.last();
        if let Some(epoch) = newest
            // The record as created counts no wraps (the ledger's count is checked by the
            // lease below), so this is the epoch's age.
            && !epoch.record.is_closed(policy, now_ms())
            && ledger
                .lease_wraps(epoch.record.number, n, policy.max_wraps)?
                .is_some()
        {
            let key = match open.get(&epoch.record.number) {
                Some(key) => Arc::clone(key),
                None => open_ledger_epoch(vault_id, epoch, root, keys, open)?,
            };
            return Ok(reservation(
                epoch.record.number,
                n,
                key,
                &epoch.record,
                policy,
            ));
        }
        let number = newest.map_or(1, |e| e.record.number + 1);
        // The previous epoch's key seals the upgrade copy, through which replicas whose root
        // KEKs this one does not hold (each node's own) adopt the new epoch: opened here if
        // another replica started it and this one has not opened it yet.
        let previous = match newest {
            Some(e) => match open.get(&e.record.number) {
                Some(key) => Some(Arc::clone(key)),
                None => open_ledger_epoch(vault_id, e, root, keys, open).ok(),
            },
            None => None,
        };
        let (epoch, key) = new_ledger_epoch(vault_id, number, root, keys, previous.as_ref(), n)?;
        if ledger.add_epoch(&epoch)? {
            return Ok(reservation(number, n, key, &epoch.record, policy));
        }
        // Another replica started `number` first: lease from it.
    }
    Err(Error::Store {
        what: "leasing epoch wraps",
        reason: "other replicas kept starting epochs; try again".into(),
    })
}

fn reservation(
    number: u32,
    granted: u64,
    key: Arc<SoftwareKek>,
    record: &EpochRecord,
    policy: &EpochPolicy,
) -> Reservation {
    Reservation::new(
        number,
        granted,
        key,
        closes_at(record.created_at_ms, policy),
    )
}

/// A root KEK change that every epoch in the ledger takes.
pub(crate) enum StanzaChange<'a> {
    /// A stanza for `kek` is added, made with the root KEKs of `root` (which open the key).
    Add {
        root: &'a RootSet,
        kek: &'a Arc<dyn KekProvider>,
    },
    /// The stanza of the KEK with this id is removed.
    Remove(&'a str),
}

/// Applies `change` to the sealed key of every epoch in `ledger`, keeping every other stanza
/// as it is: those of KEKs that other replicas pinned (each node's TPM) stay, so replicas can
/// add and remove their own KEKs independently. The keys themselves do not change, so running
/// replicas are not affected. Records are replaced by compare-and-set on their MAC; one that
/// another replica changed meanwhile is read again.
pub(crate) fn restanza_ledger_epochs(
    ledger: &dyn EpochLedger,
    vault_id: &str,
    keys: &IntegrityKeys,
    change: &StanzaChange<'_>,
) -> Result<(), Error> {
    for epoch in ledger.epochs()? {
        let number = epoch.record.number;
        let mut record = epoch.record;
        for attempt in 0.. {
            verify_epoch(vault_id, &record, keys)?;
            let sealed = record.key_bytes()?;
            let resealed = match change {
                StanzaChange::Add { root, kek } => {
                    let extra = envelope::rewrap(
                        &sealed,
                        &epoch_context(number),
                        root.unwrap_set(),
                        &[Arc::clone(kek)],
                    )?;
                    envelope::restanza(&sealed, |_| true, Some(&extra.envelope))?
                }
                StanzaChange::Remove(id) => {
                    envelope::restanza(&sealed, |s| s.describe() != *id, None).map_err(
                        |e| match e {
                            envelope::Error::NoKek => Error::LastKek {
                                id: (*id).to_owned(),
                            },
                            e => e.into(),
                        },
                    )?
                }
            };
            if resealed == sealed {
                break;
            }
            let mut new = EpochRecord {
                key: encode(&resealed),
                mac: String::new(),
                ..record.clone()
            };
            mac_epoch(vault_id, &mut new, keys);
            if ledger.replace_record(number, &record.mac, &new)? {
                break;
            }
            if attempt + 1 >= ATTEMPTS {
                return Err(Error::Store {
                    what: "rewriting the epochs' sealed keys",
                    reason: "other replicas kept changing them; try again".into(),
                });
            }
            record = ledger
                .epochs()?
                .into_iter()
                .find(|e| e.record.number == number)
                .map(|e| e.record)
                .ok_or_else(|| Error::Store {
                    what: "rewriting the epochs' sealed keys",
                    reason: format!("epoch {number} disappeared from the database"),
                })?;
        }
    }
    Ok(())
}
