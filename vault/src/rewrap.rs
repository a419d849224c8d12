//! Rewrap: moves every stored envelope onto the current keys without re-encrypting payloads
//! (format v2 envelopes; a v1 envelope is re-sealed once). Online, idempotent, resumable.
//!
//! Versions are walked in (scope, key, version) order and replaced in batches, each batch one
//! compare-and-swap transaction; after each batch the position is saved in `rewrap.json`. A
//! run that is killed resumes from the saved position; a run against other target keys
//! starts over. Either way an envelope already on the target keys is left alone, so a rerun
//! never does harm, and writes that arrive meanwhile are sealed under the current keys anyway.

use std::path::Path;

use envelope::Context;
use serde::{Deserialize, Serialize};

use crate::admin::stanza_ids;
use crate::config::{VaultConfig, WrapMode, synced_temp_file};
use crate::keyring::{EPOCH_KIND, Keyring, reseal_epoch};
use crate::store::{Replacement, ScanPosition};
use crate::{Error, Vault};

/// Where a run's position is saved.
const PROGRESS_FILE: &str = "rewrap.json";

/// How to run a rewrap.
#[derive(Debug, Clone, Copy)]
pub struct RewrapOptions {
    /// Count what would change, write nothing.
    pub dry_run: bool,
    /// Versions per transaction.
    pub batch: usize,
}

impl Default for RewrapOptions {
    fn default() -> Self {
        RewrapOptions {
            dry_run: false,
            batch: 256,
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
            keyring.open_new_epochs(&self.dir)?;
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
            loop {
                let page = self
                    .store
                    .scan(saved.after.as_ref(), options.batch.max(1))?;
                let Some(last) = page.last() else { break };
                let mut batch = Vec::new();
                for version in &page {
                    counts.examined += 1;
                    if target.holds(&stanza_ids(&version.envelope)?) {
                        continue;
                    }
                    counts.rewrapped += 1;
                    if options.dry_run {
                        continue;
                    }
                    let ctx = Context::new(&version.scope, &version.key, version.version);
                    let keks = keyring.seal_keks(&self.dir, &self.id, self.lease())?;
                    let new = envelope::rewrap(
                        &version.envelope,
                        &ctx,
                        keyring.unwrap_keks()?.as_slice(),
                        keks.as_slice(),
                    )?;
                    report.reencrypted += u64::from(new.reencrypted);
                    batch.push(Replacement {
                        scope: version.scope.clone(),
                        key: version.key.clone(),
                        version: version.version,
                        old: version.envelope.clone(),
                        new: new.envelope,
                    });
                }
                saved.after = Some(last.position());
                if !options.dry_run {
                    self.store.replace(&batch)?;
                    for r in &batch {
                        self.cache.invalidate(&r.scope, &r.key);
                    }
                    saved.examined = counts.examined;
                    saved.rewrapped = counts.rewrapped;
                    write_progress(&self.dir, &saved)?;
                }
                progress(&counts);
            }
            if !options.dry_run {
                remove_progress(&self.dir)?;
            }
            counts.total = counts.total.max(counts.examined);
            report.progress = counts;
            Ok(report)
        })
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
