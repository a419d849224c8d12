//! Audit across replicas: on a store that several daemons share (PostgreSQL), each daemon's
//! audit log is copied, record for record, into a chain of its own in the database, and the
//! leader checkpoints every chain's head, so that one command verifies what every replica
//! recorded and names a deleted record, a cut tail or a dropped chain.
//!
//! # Chains
//! A daemon starts a chain when it opens its audit log, named by its replica name
//! (`host:pid:random`, one per process). The chain holds the records the daemon writes from
//! then on, the very lines of its log file (same seq, `prev` and MAC under the audit key),
//! inserted in the statement that moves the chain's head row, in the batch that makes them
//! durable: a record is acknowledged (and the change it announces may happen) only once the
//! database holds it. The head row names the chain's start (the log's seq and MAC before its
//! first record), its newest record, and a tag under the audit key over both, so a head moved
//! back by someone without the key is caught, and records deleted from the start are too.
//!
//! # Checkpoints
//! Every checkpoint interval the leader (of the store's leader lease) adds a checkpoint
//! holding the head of every chain that moved since one last named it, the previous
//! checkpoint's MAC, its lease term, and a MAC under the audit key over all of it; the insert
//! is fenced by the lease. A chain a checkpoint named that is gone, or ends before the head
//! named, was cut after the fact, even if its head row was rewritten or deleted with it.
//!
//! # What it does not catch
//! As with the file: records after the last checkpoint of a chain whose records and head row
//! were both rolled back to an older state (by someone who kept the older head row), and
//! anything forged by whoever holds the audit key.

mod checkpoints;
mod verify;

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ring::hmac;

pub use verify::{ChainReport, ReplicaDefect, ReplicasReport, verify_replicas};

use super::AuditKey;
use super::key::{mac_hex, mac_matches};
use super::mirror::{AuditMirror, MirroredRecord};
use crate::store::{AuditChains, ChainHead, now_ms};
use crate::{Error, Vault};

/// Domain separation of a chain head's tag.
const HEAD_DOMAIN: &[u8] = b"vault audit chain head v1\n";

/// The first wait before an append the database did not take is tried again; it doubles up
/// to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// How often a store that stays away is reported again.
const REPORT_EVERY: Duration = Duration::from_secs(30);

/// This daemon's chain in the shared store: an [`AuditMirror`] for its audit log, and the
/// thread that checkpoints every chain while this daemon leads.
pub struct ReplicaChain {
    vault: Arc<Vault>,
    key: hmac::Key,
    /// The head as this daemon last wrote it; `None` until [`AuditMirror::start`].
    head: Mutex<Option<ChainHead>>,
    stop: Arc<Stop>,
    checkpoint_interval: Duration,
    checkpointer: Mutex<Option<JoinHandle<()>>>,
}

/// Tells the checkpoint thread and a waiting append to stop.
#[derive(Default)]
struct Stop {
    /// 1: appends stop waiting for the store; 2: the checkpoint thread stops too.
    level: Mutex<u8>,
    changed: Condvar,
}

impl Stop {
    fn level(&self) -> MutexGuard<'_, u8> {
        self.level.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn raise(&self, level: u8) {
        let mut current = self.level();
        *current = (*current).max(level);
        self.changed.notify_all();
    }

    /// Waits `wait` unless the level reaches `level` first: whether it did.
    fn wait(&self, wait: Duration, level: u8) -> bool {
        let current = self.level();
        let (current, _) = self
            .changed
            .wait_timeout_while(current, wait, |current| *current < level)
            .unwrap_or_else(PoisonError::into_inner);
        *current >= level
    }
}

impl std::fmt::Debug for ReplicaChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let head = self.lock_head();
        f.debug_struct("ReplicaChain")
            .field("chain", &head.as_ref().map(|h| &h.chain))
            .field("seq", &head.as_ref().map(|h| h.seq))
            .finish_non_exhaustive()
    }
}

impl ReplicaChain {
    /// The chain of this daemon in `vault`'s store, checkpointed (while this daemon leads)
    /// every `checkpoint_interval`; `None` when the store keeps no audit chains (it is not
    /// shared).
    pub fn new(
        vault: &Arc<Vault>,
        key: &AuditKey,
        checkpoint_interval: Duration,
    ) -> Result<Option<Arc<Self>>, Error> {
        if vault.store.audit_chains().is_none() {
            return Ok(None);
        }
        let chain = Arc::new(ReplicaChain {
            vault: Arc::clone(vault),
            key: key.hmac(),
            head: Mutex::new(None),
            stop: Arc::new(Stop::default()),
            checkpoint_interval: checkpoint_interval.max(Duration::from_millis(100)),
            checkpointer: Mutex::new(None),
        });
        chain.start_checkpointer()?;
        Ok(Some(chain))
    }

    fn chains(&self) -> Result<&dyn AuditChains, Error> {
        self.vault.store.audit_chains().ok_or_else(|| {
            Error::Unsupported("this vault's store keeps no replica audit chains".into())
        })
    }

    fn lock_head(&self) -> MutexGuard<'_, Option<ChainHead>> {
        self.head.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// This daemon's chain's name, once started.
    pub fn chain(&self) -> Option<String> {
        self.lock_head().as_ref().map(|h| h.chain.clone())
    }

    /// Adds a checkpoint now if this daemon leads and a chain moved since the last one: its
    /// number, or `None` if there was nothing to do (or another replica leads).
    pub fn checkpoint_now(&self) -> Result<Option<u64>, Error> {
        checkpoints::checkpoint(self.chains()?, &self.key)
    }

    fn start_checkpointer(self: &Arc<Self>) -> Result<(), Error> {
        let weak = Arc::downgrade(self);
        let (stop, interval) = (Arc::clone(&self.stop), self.checkpoint_interval);
        let thread = std::thread::Builder::new()
            .name("audit-checkpoints".into())
            .spawn(move || checkpoints::run(&weak, &stop, interval))
            .map_err(Error::io("starting the audit checkpoint thread"))?;
        *self
            .checkpointer
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(thread);
        Ok(())
    }
}

impl AuditMirror for ReplicaChain {
    fn start(&self, seq: u64, mac: &str) -> Result<(), Error> {
        let chains = self.chains()?;
        let mut head = ChainHead {
            chain: chains.replica_name().to_owned(),
            started_ms: now_ms(),
            start_seq: seq,
            start_mac: mac.to_owned(),
            seq,
            mac: mac.to_owned(),
            tag: String::new(),
        };
        head.tag = head_tag(&self.key, &head);
        chains.create_chain(&head)?;
        log::info!(
            "audit: this replica's records also go to chain {} in the database",
            head.chain
        );
        *self.lock_head() = Some(head);
        Ok(())
    }

    fn append(&self, records: &[MirroredRecord]) -> Result<(), Error> {
        let Some(last) = records.last() else {
            return Ok(());
        };
        let chains = self.chains()?;
        let mut current = self.lock_head();
        let head = current
            .as_ref()
            .ok_or_else(|| Error::Unsupported("the replica audit chain was not started".into()))?;
        let mut next = ChainHead {
            seq: last.seq,
            mac: last.mac.clone(),
            tag: String::new(),
            ..head.clone()
        };
        next.tag = head_tag(&self.key, &next);
        let rows: Vec<(u64, &str)> = records.iter().map(|r| (r.seq, r.line.as_str())).collect();
        let flushed = records.iter().any(|r| r.fsync);
        let (mut delay, mut away_since, mut reported) = (RETRY_FIRST, None, None::<Instant>);
        loop {
            let failed = match chains.append_chain(&head.chain, head.seq, &rows, &next, flushed) {
                Ok(true) => break,
                Ok(false) => None,
                Err(e) => Some(e),
            };
            // Not appended, or no answer: the head row tells whether an earlier attempt of
            // this append committed, or someone else moved the chain.
            match chains.chain_head(&head.chain) {
                Ok(Some(found)) if found == next => break,
                Ok(Some(found)) if found == *head => {}
                Ok(Some(found)) => {
                    return Err(moved(&head.chain, &format!("moved to seq {}", found.seq)));
                }
                Ok(None) => return Err(moved(&head.chain, "deleted")),
                Err(_) => {}
            }
            let reason = failed.map_or_else(
                || "the chain's head did not move".to_owned(),
                |e| e.to_string(),
            );
            if *self.stop.level() >= 1 {
                return Err(Error::Store {
                    what: "copying audit records to the database",
                    reason: format!("{reason} (given up: the audit log is closing)"),
                });
            }
            if reported.is_none_or(|at: Instant| at.elapsed() >= REPORT_EVERY) {
                log::error!(
                    "audit chain {}: the database did not take {} record(s) ({reason}); requests wait until it does",
                    head.chain,
                    rows.len()
                );
                reported = Some(Instant::now());
            }
            away_since.get_or_insert_with(Instant::now);
            self.stop.wait(delay, 1);
            delay = (delay * 2).min(RETRY_MAX);
        }
        if let Some(since) = away_since {
            log::warn!(
                "audit chain {}: the database took the records again after {:.1} s",
                head.chain,
                since.elapsed().as_secs_f64()
            );
        }
        *current = Some(next);
        Ok(())
    }

    fn closing(&self) {
        self.stop.raise(1);
    }

    fn close(&self) {
        // The last records are in: checkpoint them if this daemon leads, before it lets the
        // lease go.
        if let Err(e) = self.checkpoint_now() {
            log::warn!("audit: the last checkpoint of the replica chains failed: {e}");
        }
        self.stop.raise(2);
        let thread = self
            .checkpointer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// An append found this daemon's chain changed by someone else: the audit log closes.
fn moved(chain: &str, how: &str) -> Error {
    Error::Store {
        what: "copying audit records to the database",
        reason: format!(
            "this replica's audit chain {chain} was {how} in the database by someone else; run `vaultctl audit verify`"
        ),
    }
}

/// What a chain head's tag covers: everything but the tag.
fn head_body(head: &ChainHead) -> Vec<u8> {
    serde_json::to_vec(&(
        &head.chain,
        head.started_ms,
        head.start_seq,
        &head.start_mac,
        head.seq,
        &head.mac,
    ))
    .expect("a chain head serializes")
}

/// The tag of a chain's head row under the audit key.
fn head_tag(key: &hmac::Key, head: &ChainHead) -> String {
    mac_hex(key, &[HEAD_DOMAIN, &head_body(head)])
}

/// Whether a chain's head row carries its own tag under the audit key.
fn head_verifies(key: &hmac::Key, head: &ChainHead) -> bool {
    mac_matches(key, &[HEAD_DOMAIN, &head_body(head)], &head.tag)
}
