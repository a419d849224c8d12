//! Rewrap: moves every stored envelope onto the current keys without re-encrypting payloads
//! (format v2 envelopes; a v1 envelope is re-sealed once). Online, idempotent, resumable.
//!
//! Versions are walked in (scope, key, version) order and replaced in batches, each batch one
//! compare-and-swap transaction; after each batch the position is saved in `rewrap.json`. A
//! batch's new envelopes are made (on every core) before its transaction and while the batch
//! before it is written, so a run costs the same per version at any store size. A run that is
//! killed resumes from the saved position (a batch made but not written is made again); a
//! run against other target keys starts over. Either way an envelope already on the target keys is left alone, so a rerun
//! never does harm, and writes that arrive meanwhile are sealed under the current keys anyway.

use std::path::Path;

use envelope::Context;
use serde::{Deserialize, Serialize};

use crate::admin::stanza_ids;
use crate::config::{VaultConfig, WrapMode, synced_temp_file};
use crate::keyring::{EPOCH_KIND, Keyring, reseal_epoch};
use crate::store::{Replacement, ScanPosition, StoredVersion};
use crate::{Error, Vault, in_memory};

/// Where a run's position is saved.
const PROGRESS_FILE: &str = "rewrap.json";
/// Fewer stale versions than this per thread are rewrapped on the calling thread alone: a
/// thread costs more than that many rewraps.
const MIN_PER_THREAD: usize = 64;

/// How to run a rewrap.
#[derive(Debug, Clone, Copy)]
pub struct RewrapOptions {
    /// Count what would change, write nothing.
    pub dry_run: bool,
    /// Versions per transaction (and per saved position): large enough that the fsyncs of
    /// the commit and of the position are a small part of a batch, small enough that a
    /// batch's envelopes, held three times (read, new, compared), stay a few MB.
    pub batch: usize,
}

impl Default for RewrapOptions {
    fn default() -> Self {
        RewrapOptions {
            dry_run: false,
            batch: 8192,
        }
    }
}

/// Where a run is, for progress bars.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RewrapProgress {
    /// Versions looked at, this run and the runs it resumed.
    pub examined: u64,
    /// Versions in the store when the run started.
    pub total: u64,
    /// Versions rewrapped (or, in a dry run, that would be).
    pub rewrapped: u64,
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RewrapReport {
    /// The final counts.
    pub progress: RewrapProgress,
    /// v1 envelopes that had to be re-encrypted under a fresh DEK.
    pub reencrypted: u64,
    /// Epoch keys wrapped again under the current root KEKs.
    pub epochs_resealed: u64,
    /// Whether the run continued a killed one.
    pub resumed: bool,
}

/// A batch whose new envelopes are made, waiting for its write.
struct Made {
    batch: Vec<Replacement>,
    /// The position after its last version.
    after: ScanPosition,
    /// The counts once it is written.
    counts: RewrapProgress,
}

/// The saved position of a run.
#[derive(Debug, Serialize, Deserialize)]
struct SavedProgress {
    target: String,
    after: Option<ScanPosition>,
    examined: u64,
    rewrapped: u64,
}

impl Vault {
    /// Rewraps every stored envelope that is not on the current keys; `progress` is called
    /// after each batch.
    pub fn rewrap(
        &self,
        options: RewrapOptions,
        progress: &mut dyn FnMut(&RewrapProgress),
    ) -> Result<RewrapReport, Error> {
        self.with_keyring(|keyring| {
            let mut report = RewrapReport {
                epochs_resealed: self.reseal_stale_epochs(keyring, options.dry_run)?,
                ..RewrapReport::default()
            };
            let target = Target::current(self, keyring)?;
            // A lease taken before a rotation elsewhere would wrap onto an older epoch than
            // the target: start from the newest.
            self.end_lease(keyring);
            // Envelopes under epochs other processes started since unlock must open too.
            keyring.open_new_epochs(&self.dir, self.store.epoch_ledger())?;
            let mut saved = match read_progress(&self.dir) {
                Some(saved) if saved.target == target.name && !options.dry_run => {
                    report.resumed = true;
                    saved
                }
                _ => SavedProgress {
                    target: target.name.clone(),
                    after: None,
                    examined: 0,
                    rewrapped: 0,
                },
            };
            let mut counts = RewrapProgress {
                examined: saved.examined,
                total: self.store.count_versions()?,
                rewrapped: saved.rewrapped,
            };
            let batch_size = options.batch.max(1);
            // The wraps of a batch leased at once: a lease renewal (which writes vault.json)
            // at most once per batch, not every few dozen secrets.
            let lease = self.lease().max(batch_size as u64);
            // Inside `without_devices` the rule is this thread's: its work stays here.
            let beside = !in_memory::devices_ruled_out();
            // The scan runs one batch ahead of the saved position: a batch's new envelopes
            // are made while the batch before it is written.
            let mut after = saved.after.clone();
            let mut pending: Option<Made> = None;
            loop {
                let page = self.store.scan(after.as_ref(), batch_size)?;
                let Some(last) = page.last().map(StoredVersion::position) else {
                    break;
                };
                counts.examined += page.len() as u64;
                let mut stale = Vec::new();
                for version in page {
                    if !target.holds(&stanza_ids(&version.envelope)?) {
                        stale.push(version);
                    }
                }
                counts.rewrapped += stale.len() as u64;
                after = Some(last.clone());
                if options.dry_run {
                    progress(&counts);
                    continue;
                }
                let previous = pending.take();
                // The crypto before the write transaction, which only swaps envelopes that
                // are still the ones read.
                let (batch, reencrypted) = if beside {
                    std::thread::scope(|scope| {
                        let crypto = scope.spawn(|| self.rewrap_batch(keyring, lease, stale));
                        let written = previous
                            .map_or(Ok(()), |made| self.write_batch(made, &mut saved, progress));
                        // A panic while making envelopes is the same panic here.
                        let made = crypto
                            .join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                        written.and(made)
                    })?
                } else {
                    if let Some(made) = previous {
                        self.write_batch(made, &mut saved, progress)?;
                    }
                    self.rewrap_batch(keyring, lease, stale)?
                };
                report.reencrypted += reencrypted;
                pending = Some(Made {
                    batch,
                    after: last,
                    counts,
                });
            }
            if let Some(made) = pending {
                self.write_batch(made, &mut saved, progress)?;
            }
            if !options.dry_run {
                remove_progress(&self.dir)?;
            }
            counts.total = counts.total.max(counts.examined);
            report.progress = counts;
            Ok(report)
        })
    }

    /// Writes a made batch in one compare-and-swap transaction, then saves the position
    /// after it (so a crash resumes at most one batch early) and reports the counts.
    fn write_batch(
        &self,
        made: Made,
        saved: &mut SavedProgress,
        progress: &mut dyn FnMut(&RewrapProgress),
    ) -> Result<(), Error> {
        self.store.replace(&made.batch)?;
        for r in &made.batch {
            self.cache.invalidate(&r.scope, &r.key);
        }
        saved.after = Some(made.after);
        saved.examined = made.counts.examined;
        saved.rewrapped = made.counts.rewrapped;
        write_progress(&self.dir, saved)?;
        progress(&made.counts);
        Ok(())
    }

    /// The replacements of `stale` and how many were re-encrypted (v1), made on every core
    /// when the batch is large enough to be worth a thread.
    fn rewrap_batch(
        &self,
        keyring: &Keyring,
        lease: u64,
        stale: Vec<StoredVersion>,
    ) -> Result<(Vec<Replacement>, u64), Error> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Inside `without_devices` the rule is the calling thread's: its work stays there.
        let threads = if in_memory::devices_ruled_out() {
            1
        } else {
            cores.min(stale.len() / MIN_PER_THREAD).max(1)
        };
        let rewrap_all = |part: &[StoredVersion]| -> Result<Vec<(Replacement, bool)>, Error> {
            part.iter()
                .map(|version| self.rewrap_one(keyring, lease, version))
                .collect()
        };
        let made: Vec<(Replacement, bool)> = if threads == 1 {
            rewrap_all(&stale)?
        } else {
            let share = stale.len().div_ceil(threads);
            std::thread::scope(|scope| {
                let workers: Vec<_> = stale
                    .chunks(share)
                    .map(|part| scope.spawn(move || rewrap_all(part)))
                    .collect();
                let mut made = Vec::with_capacity(stale.len());
                for worker in workers {
                    // A panic in a worker is the same panic here.
                    let part = worker
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
                    made.extend(part);
                }
                Ok::<_, Error>(made)
            })?
        };
        let reencrypted = made.iter().filter(|(_, again)| *again).count() as u64;
        Ok((made.into_iter().map(|(r, _)| r).collect(), reencrypted))
    }

    /// The replacement of one stale version, and whether it was re-encrypted.
    fn rewrap_one(
        &self,
        keyring: &Keyring,
        lease: u64,
        version: &StoredVersion,
    ) -> Result<(Replacement, bool), Error> {
        let ctx = Context::new(&version.scope, &version.key, version.version);
        // One wrap of the epoch's budget per envelope, as for any seal.
        let keks = keyring.seal_keks(&self.dir, &self.id, lease, self.store.epoch_ledger())?;
        let new = envelope::rewrap(
            &version.envelope,
            &ctx,
            keyring.unwrap_keks()?.as_slice(),
            keks.as_slice(),
        )?;
        let replacement = Replacement {
            scope: version.scope.clone(),
            key: version.key.clone(),
            version: version.version,
            old: version.envelope.clone(),
            new: new.envelope,
        };
        Ok((replacement, new.reencrypted))
    }

    /// Wraps epoch keys whose envelopes are not exactly under the current root KEKs again.
    fn reseal_stale_epochs(&self, keyring: &Keyring, dry_run: bool) -> Result<u64, Error> {
        if self.mode != WrapMode::Tiered {
            return Ok(0);
        }
        let want = keyring.root.wrap_ids();
        let config = VaultConfig::read_verified(&self.dir, &keyring.integrity)?;
        let stale = |key: &[u8]| stanza_ids(key).map(|ids| ids != want);
        let mut count = 0;
        for record in &config.epochs {
            count += u64::from(stale(&record.key_bytes()?)?);
        }
        if count > 0 && !dry_run {
            VaultConfig::update(&self.dir, &keyring.integrity, |config| {
                for record in &mut config.epochs {
                    if stale(&record.key_bytes()?)? {
                        reseal_epoch(record, &keyring.root)?;
                    }
                }
                Ok(())
            })?;
        }
        Ok(count)
    }
}

/// The keys envelopes must end up under.
struct Target {
    /// Names the target in the saved progress: a changed target restarts the walk.
    name: String,
    mode: WrapMode,
    /// Direct: the root KEK ids. Tiered: `epoch:<vault id>#v`.
    ids: Vec<String>,
    /// Tiered: envelopes under this epoch or a newer one are current.
    min_epoch: u32,
}

impl Target {
    fn current(vault: &Vault, keyring: &Keyring) -> Result<Self, Error> {
        Ok(match vault.mode {
            WrapMode::Direct => {
                let ids = keyring.root.wrap_set().map(|_| keyring.root.wrap_ids())?;
                Target {
                    name: format!("direct:{}", ids.join(",")),
                    mode: WrapMode::Direct,
                    ids,
                    min_epoch: 0,
                }
            }
            WrapMode::Tiered => {
                let newest = VaultConfig::read_verified(&vault.dir, &keyring.integrity)?
                    .epochs
                    .last()
                    .map_or(1, |e| e.number);
                Target {
                    name: format!("tiered:{newest}"),
                    mode: WrapMode::Tiered,
                    ids: vec![format!("{EPOCH_KIND}:{}#v", vault.id)],
                    min_epoch: newest,
                }
            }
        })
    }

    /// Whether an envelope with these stanzas is already on the target keys.
    fn holds(&self, stanzas: &[String]) -> bool {
        match self.mode {
            WrapMode::Direct => stanzas == self.ids.as_slice(),
            WrapMode::Tiered => match stanzas {
                [only] => only
                    .strip_prefix(self.ids[0].as_str())
                    .and_then(|v| v.parse::<u32>().ok())
                    .is_some_and(|v| v >= self.min_epoch),
                _ => false,
            },
        }
    }
}

fn read_progress(dir: &Path) -> Option<SavedProgress> {
    let text = std::fs::read_to_string(dir.join(PROGRESS_FILE)).ok()?;
    // A damaged progress file only costs a walk from the start.
    serde_json::from_str(&text).ok()
}

/// Replaces the progress file atomically (a crash leaves the old or the new position; an
/// old one only means re-examining versions that are already done).
fn write_progress(dir: &Path, saved: &SavedProgress) -> Result<(), Error> {
    let text = serde_json::to_vec(saved).map_err(|e| Error::Store {
        what: "saving rewrap progress",
        reason: e.to_string(),
    })?;
    let temp = synced_temp_file(dir, &text)?;
    temp.persist(dir.join(PROGRESS_FILE))
        .map_err(|e| Error::io("saving rewrap progress")(e.error))?;
    Ok(())
}

fn remove_progress(dir: &Path) -> Result<(), Error> {
    match std::fs::remove_file(dir.join(PROGRESS_FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io("removing the rewrap progress file")(e))
        }
        _ => Ok(()),
    }
}
