//! Epoch records kept by a store that replicas share, instead of in each replica's
//! `vault.json` (tiered mode on PostgreSQL): every replica must know every epoch key, and
//! every epoch's wrap budget must hold across all of them.

use std::ops::Range;

use crate::Error;
use crate::config::EpochRecord;

/// One epoch as the store keeps it.
#[derive(Debug, Clone)]
pub struct LedgerEpoch {
    /// The record as it was created: its key sealed under the root KEKs, its MAC under the
    /// integrity key. `wraps_reserved` is 0 here (it is what the MAC covers); the live count
    /// is `wraps_leased`.
    pub record: EpochRecord,
    /// The epoch's key sealed under the previous epoch's key, so that a replica holding that
    /// one adopts this epoch without asking its root KEKs (a device).
    pub upgrade: Option<Vec<u8>>,
    /// Wraps leased so far, by every replica.
    pub wraps_leased: u64,
}

/// Where a shared store keeps the epochs.
pub trait EpochLedger: Send + Sync {
    /// Every epoch, oldest first.
    fn epochs(&self) -> Result<Vec<LedgerEpoch>, Error>;

    /// The newest epoch's number, if there is one (cheap: asked once a second per writer).
    fn newest_epoch(&self) -> Result<Option<u32>, Error>;

    /// Adds `epoch` (with `wraps_leased` already leased to its maker) unless an epoch with its
    /// number exists: whether it was added. Of replicas starting the same epoch, one does.
    fn add_epoch(&self, epoch: &LedgerEpoch) -> Result<bool, Error>;

    /// Leases `n` wraps of epoch `number` if they fit in `budget`, in one atomic update:
    /// the range of wrap numbers granted, `None` if they do not fit. Ranges never overlap,
    /// across replicas and crashes.
    fn lease_wraps(&self, number: u32, n: u64, budget: u64) -> Result<Option<Range<u64>>, Error>;

    /// Replaces epoch `number`'s record (a root KEK's stanza added to or removed from its
    /// sealed key) if the stored one is still the record whose MAC is `old_mac`: whether it
    /// was (another replica changed it meanwhile if not).
    fn replace_record(
        &self,
        number: u32,
        old_mac: &str,
        record: &EpochRecord,
    ) -> Result<bool, Error>;
}
