//! The writer: appends records with group commit on one writer thread (or on the caller's,
//! when the writer is idle), fsyncs them on a sync thread beside it, checkpoints the head at
//! most every `HEAD_INTERVAL`, and anchors it (and sends signed checkpoints to the sinks)
//! every checkpoint interval while records arrive, and when it closes.

use std::fs::{File, TryLockError};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::anchor::AuditAnchor;
use super::chain::Chain;
use super::checkpoint::CheckpointSink;
use super::head::{Head, write_head};
use super::opening::{
    check_current, create_new_log, finish_cut_rotation, new_log_event, open_or_create, refused,
    trim_torn_tail,
};
use super::writer::Tip;
use super::{AuditDefect, AuditEvent, AuditKey};
use crate::Error;
use crate::config::{parent_dir, sync_dir};
use crate::store::now_ms;

/// How long, at most, a record stays written and not fsynced while nobody waits for its
/// fsync (only reads were recorded): their fsyncs are then shared by this many milliseconds'
/// records instead of running back to back, which took a tenth of the daemon's processor
/// (and at 5 ms, 200 fsyncs a second still cost 15 % of the daemon's read throughput at 8
/// and 64 clients). Only a power loss or kernel crash in that window loses such a record;
/// it is in the file before its read is answered.
pub const UNWAITED_SYNC_DELAY: Duration = Duration::from_millis(25);
/// How often, at most, the head checkpoint is rewritten while records arrive.
pub const HEAD_INTERVAL: Duration = Duration::from_millis(50);
/// How often, by default, the head is anchored and signed checkpoints are sent while records
/// arrive. Records newer than the last anchor can be cut by someone who can write the log
/// and keeps an older head file (see the README); everything older is caught.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);

/// How an [`AuditLog`] is opened.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Where the anchor is kept (the vault's metadata for a daemon's log).
    pub anchor: Arc<dyn AuditAnchor>,
    /// Where signed checkpoints go besides the anchor.
    pub sinks: Vec<Arc<dyn CheckpointSink>>,
    /// How often the anchor is written and checkpoints are sent while records arrive.
    pub checkpoint_interval: Duration,
    /// Start a new log where the anchor says one was (`vaultd --new-audit-log`); refused if
    /// the log exists. Its first record says so.
    pub new_log: bool,
    /// Text added to the first record of a new log (with `new_log`): why it was started.
    pub new_log_note: Option<String>,
    /// The vault's id, named in signed checkpoints.
    pub vault_id: String,
    /// Rotate to a new segment once the current one holds this many bytes (checked when a
    /// batch arrives, so a segment ends with at most one batch more); 0: never by size.
    pub max_segment_bytes: u64,
    /// Where every record is copied too, in the batch that makes it durable (a store that
    /// replicas share: see [`super::replicas`]); a record is acknowledged once both hold it.
    pub mirror: Option<Arc<dyn super::AuditMirror>>,
}

impl AuditOptions {
    /// Defaults: no sinks, [`CHECKPOINT_INTERVAL`], no new log, no rotation by size.
    pub fn new(anchor: Arc<dyn AuditAnchor>, vault_id: &str) -> Self {
        AuditOptions {
            anchor,
            sinks: Vec::new(),
            checkpoint_interval: CHECKPOINT_INTERVAL,
            new_log: false,
            new_log_note: None,
            vault_id: vault_id.to_owned(),
            max_segment_bytes: 0,
            mirror: None,
        }
    }
}

/// What [`AuditLog::status`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditStatus {
    /// Why the log stopped taking records, if a write failed.
    pub failed: Option<String>,
    /// Records in the log that are durable (the newest durable seq).
    pub records: u64,
    /// Records queued and not yet durable.
    pub queued: u64,
    /// The seq the head checkpoint names.
    pub head_seq: u64,
    /// The seq last anchored in the vault's metadata.
    pub anchored_seq: u64,
    /// The last error of a checkpoint sink, if the last send failed.
    pub sink_error: Option<String>,
    /// The public key (hex) that verifies this log's signed checkpoints.
    pub checkpoint_public_key: String,
    /// The current segment's number (1 until the log is first rotated).
    pub segment: u64,
}

/// An open audit log, appended to by any number of threads (share it in an `Arc`).
///
/// Opening verifies the current segment (MACs, chain, head, anchor; not the closed segments,
/// which [`super::verify`] checks) and holds an exclusive lock on it (`flock`), so one process
/// writes it at a time. One writer thread writes batches (unless it is idle: then the caller
/// writes the queue itself, sparing two thread hand-offs) and one sync thread fsyncs them,
/// each fsync covering whatever was written before it began: callers enqueue a record and
/// wait (blocking with [`AuditLog::append`], or as a future with
/// [`AuditLog::append_async`]) until the batch holding it is written and fsynced, or only
/// until it is written ([`AuditLog::append_written`]).
pub struct AuditLog {
    pub(super) inner: Arc<Inner>,
    /// The writer and sync threads, joined on close.
    threads: Mutex<Vec<JoinHandle<()>>>,
}

pub(super) struct Inner {
    pub(super) path: PathBuf,
    /// The current segment, opened for appending; holds the exclusive lock. Replaced by a
    /// rotation.
    pub(super) file: Mutex<File>,
    pub(super) max_segment_bytes: u64,
    pub(super) key: AuditKey,
    pub(super) anchor: Arc<dyn AuditAnchor>,
    pub(super) sinks: Vec<Arc<dyn CheckpointSink>>,
    pub(super) checkpoint_interval: Duration,
    pub(super) vault_id: String,
    pub(super) public_key: String,
    pub(super) mirror: Option<Arc<dyn super::AuditMirror>>,
    /// The chain's tip. Whoever holds it may take records off the queue and write them: the
    /// writer thread, or a caller who found the writer idle (which spares the caller two
    /// thread hand-offs: waking the writer, and being woken by it). Taken before `state`
    /// when both are held.
    pub(super) tip: Mutex<Tip>,
    pub(super) state: Mutex<State>,
    /// Signalled when records are queued (or the log closes): wakes the writer.
    pub(super) work: Condvar,
    /// Signalled when records are written (or the writer stops): wakes the sync thread.
    pub(super) sync_work: Condvar,
    /// Signalled when a batch is durable, a checkpoint is made, or the log fails.
    pub(super) changed: Condvar,
}

#[derive(Default)]
pub(super) struct State {
    /// The seq the next event gets.
    pub(super) next_seq: u64,
    /// Events enqueued and not yet taken by the writer, with their seq and time, and whether
    /// their caller waits for the fsync. The writer chains, MACs and encodes them: that work
    /// stays off the callers' path and out of this lock.
    pub(super) queued: Vec<(u64, i64, AuditEvent, bool)>,
    /// Every record up to this seq is written and fsynced.
    pub(super) durable_seq: u64,
    /// Every record up to this seq is written to the file (in the page cache: it outlives
    /// the process, not a power loss, until `durable_seq` reaches it).
    pub(super) written_seq: u64,
    pub(super) head_seq: u64,
    pub(super) anchored_seq: u64,
    /// The writer thread waits for work (and must be woken for a record queued now, unless
    /// the caller writes it itself); when it is busy it finds queued records itself before
    /// it waits again.
    pub(super) writer_idle: bool,
    /// The idle writer thread waits with a deadline for the head checkpoint: a caller who
    /// writes records itself need not wake it for their head.
    pub(super) writer_head_due: bool,
    /// Futures waiting for a seq to become durable.
    pub(super) wakers: Vec<(u64, Waker)>,
    /// Threads waiting in [`AuditLog::append`] for their record to become durable.
    pub(super) fsync_waiters: usize,
    /// When the oldest record written and not yet fsynced was written.
    pub(super) unsynced_since: Option<Instant>,
    /// Futures waiting for a seq to be written.
    pub(super) written_wakers: Vec<(u64, Waker)>,
    /// A caller waits for an anchor of everything durable ([`AuditLog::checkpoint`]).
    pub(super) checkpoint_wanted: bool,
    /// The log is closing: the writer drains the queue, checkpoints and stops.
    pub(super) closing: bool,
    /// The writer stopped (everything it wrote is durable): so does the sync thread.
    pub(super) sync_stop: bool,
    /// Why the log stopped taking appends, after a write failed.
    pub(super) failed: Option<String>,
    pub(super) sink_error: Option<String>,
    /// The current segment's number.
    pub(super) segment: u64,
    /// A rotation asked for ([`AuditLog::rotate`]), and why.
    pub(super) rotate_wanted: Option<String>,
    /// Rotations done (asked for or by size), and what the last one did.
    pub(super) rotations: u64,
    pub(super) rotated: Option<Result<super::Rotated, String>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("AuditLog")
            .field("path", &self.inner.path)
            .field("durable_seq", &state.durable_seq)
            .field("next_seq", &state.next_seq)
            .field("failed", &state.failed)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens the audit log at `path` with its `key`, creating it (mode 0600) and its head
    /// checkpoint if neither the log, its head nor the anchor says records were written; its
    /// directory must exist. An existing log's current segment is verified first (as
    /// [`super::verify`] does, without the closed segments before it, which are not read) and
    /// refused with [`Error::AuditRefused`] if it does not verify or does not reach the
    /// anchor; a missing log the anchor says held records is [`Error::AuditMissing`], unless
    /// `options.new_log`. A log that runs ahead of its head (a crash before the checkpoint)
    /// is re-checkpointed.
    ///
    /// The one repair: an incomplete last line (no newline; a batch write cut short by a crash,
    /// never acknowledged) is trimmed, the file fsynced and a warning logged, if every record
    /// before it verifies; then the log is verified again.
    pub fn open(path: &Path, key: AuditKey, options: AuditOptions) -> Result<Self, Error> {
        let anchor = options.anchor.read()?;
        let previous = options.new_log.then(|| anchor.clone());
        let file = if options.new_log {
            create_new_log(path)?
        } else {
            open_or_create(path, &key, anchor.as_ref())?
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::AuditInUse {
                    path: path.to_path_buf(),
                });
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::io(format!("locking {}", path.display()))(e));
            }
        }
        let anchor = if options.new_log { None } else { anchor };
        let hmac = key.hmac();
        // Only the current segment is read: the closed ones are `verify`'s.
        let check = || check_current(path, &hmac, anchor.as_ref()).map_err(refused);
        let mut chain = check()?;
        if let Some(torn) = chain.torn {
            trim_torn_tail(&file, path, torn)?;
            chain = check()?;
        }
        finish_cut_rotation(path, chain.segment, &file)?;
        let Chain {
            records,
            last_mac,
            first_mac,
            segment,
            head,
            digest,
            torn,
        } = chain;
        if let Some(torn) = torn {
            // Trimmed, yet still there: nothing else writes the log, so this cannot happen.
            return Err(refused(Error::AuditDamaged {
                path: path.to_path_buf(),
                line: Some(torn.line),
                defect: AuditDefect::TornTail { bytes: torn.bytes },
            }));
        }
        if head.as_ref().is_none_or(|h| h.seq < records) {
            write_head(path, &Head::new(records, &last_mac, &hmac))?;
            sync_dir(parent_dir(path))?;
        }
        let segment_bytes = file
            .metadata()
            .map_err(Error::io(format!("reading the size of {}", path.display())))?
            .len();
        let public_key = key.checkpoint_public_key()?;
        if let Some(mirror) = &options.mirror {
            mirror.start(records, &last_mac)?;
        }
        let inner = Arc::new(Inner {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            max_segment_bytes: options.max_segment_bytes,
            key,
            anchor: options.anchor,
            sinks: options.sinks,
            checkpoint_interval: options.checkpoint_interval,
            vault_id: options.vault_id,
            public_key,
            mirror: options.mirror,
            tip: Mutex::new(Tip {
                seq: records,
                mac: last_mac,
                first_mac,
                digest,
                segment,
                segment_bytes,
            }),
            state: Mutex::new(State {
                next_seq: records + 1,
                durable_seq: records,
                written_seq: records,
                head_seq: records,
                anchored_seq: anchor.as_ref().map_or(0, |a| a.seq),
                segment,
                ..State::default()
            }),
            work: Condvar::new(),
            sync_work: Condvar::new(),
            changed: Condvar::new(),
        });
        // The sync thread first: the writer stops it when it stops itself.
        let syncer = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("audit-sync".into())
                .spawn(move || inner.run_syncer())
                .map_err(Error::io("starting the audit log sync thread"))?
        };
        let writer = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("audit-writer".into())
                .spawn(move || inner.run_writer())
        };
        let writer = match writer {
            Ok(writer) => writer,
            Err(e) => {
                inner.lock().sync_stop = true;
                inner.sync_work.notify_all();
                let _ = syncer.join();
                return Err(Error::io("starting the audit log writer")(e));
            }
        };
        let log = AuditLog {
            inner,
            threads: Mutex::new(vec![writer, syncer]),
        };
        if let Some(previous) = previous {
            log.append(&new_log_event(
                previous.as_ref(),
                options.new_log_note.as_deref(),
            ))?;
            log.checkpoint()?;
        }
        Ok(log)
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Records `event` and returns once it is written and fsynced (with the records of
    /// other callers queued at the same time: one write and one fsync per batch).
    pub fn append(&self, event: &AuditEvent) -> Result<(), Error> {
        let seq = self.inner.enqueue(event.clone(), true)?;
        self.inner.lock().fsync_waiters += 1;
        self.inner.sync_work.notify_one();
        let durable = self.wait(|state| state.durable_seq >= seq);
        self.inner.lock().fsync_waiters -= 1;
        durable
    }

    /// Records `event`; the future resolves once it is written and fsynced. The record is
    /// queued by this call, whether the future is awaited or dropped. For async callers: no
    /// thread waits while the batch is written.
    pub fn append_async(&self, event: AuditEvent) -> Durable {
        Durable {
            inner: Arc::clone(&self.inner),
            seq: self.inner.enqueue(event, true),
            until: Until::Fsynced,
        }
    }

    /// Records `event`; the future resolves once it is written to the file, before its batch
    /// is fsynced: it then outlives a crash or kill of this process, and the fsync follows at
    /// once, so only a power loss in between can lose it. For the records of calls that
    /// change nothing (a read's outcome), whose answer need not wait for the disk; a change
    /// waits for the fsync ([`AuditLog::append_async`]) before it takes effect.
    pub fn append_written(&self, event: AuditEvent) -> Durable {
        Durable {
            inner: Arc::clone(&self.inner),
            seq: self.inner.enqueue(event, false),
            until: Until::Written,
        }
    }

    /// Anchors everything durable now (and sends the signed checkpoint to the sinks), and
    /// returns once that is done.
    pub fn checkpoint(&self) -> Result<(), Error> {
        let target = {
            let mut state = self.inner.lock();
            self.inner.check_open(&state)?;
            state.checkpoint_wanted = true;
            state.next_seq - 1
        };
        self.inner.work.notify_one();
        self.wait(|state| state.anchored_seq >= target && state.head_seq >= target)
    }

    /// Verifies the log as [`super::verify`] does, with this log's key and anchor. Safe while
    /// records are appended.
    pub fn verify(&self) -> Result<super::VerifyReport, Error> {
        super::verify(
            &self.inner.path,
            &self.inner.key,
            self.inner.anchor.as_ref(),
        )
    }

    /// Where the log stands: records, head and anchor, and a failure if there was one.
    pub fn status(&self) -> AuditStatus {
        let state = self.inner.lock();
        AuditStatus {
            failed: state.failed.clone(),
            records: state.durable_seq,
            queued: state
                .next_seq
                .saturating_sub(1)
                .saturating_sub(state.durable_seq),
            head_seq: state.head_seq,
            anchored_seq: state.anchored_seq,
            sink_error: state.sink_error.clone(),
            checkpoint_public_key: self.inner.public_key.clone(),
            segment: state.segment,
        }
    }

    /// Writes what is queued, checkpoints and anchors it, and stops the threads: later appends
    /// fail. Dropping the log does the same.
    pub fn close(&self) {
        self.inner.lock().closing = true;
        self.inner.work.notify_all();
        if let Some(mirror) = &self.inner.mirror {
            mirror.closing();
        }
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        let joined = !threads.is_empty();
        for thread in threads {
            let _ = thread.join();
        }
        if let (true, Some(mirror)) = (joined, &self.inner.mirror) {
            mirror.close();
        }
    }

    pub(super) fn wait(&self, done: impl Fn(&State) -> bool) -> Result<(), Error> {
        let mut state = self.inner.lock();
        loop {
            if done(&state) {
                return Ok(());
            }
            self.inner.check_open(&state)?;
            if state.closing {
                return Err(self.inner.failed_error("the log is closing"));
            }
            state = self
                .inner
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Resolves when a record is durable, or written (see [`AuditLog::append_async`] and
/// [`AuditLog::append_written`]).
#[derive(Debug)]
pub struct Durable {
    inner: Arc<Inner>,
    seq: Result<u64, Error>,
    until: Until,
}

/// How far a [`Durable`] waits.
#[derive(Debug, Clone, Copy)]
enum Until {
    /// The record is in the file.
    Written,
    /// The record is in the file and fsynced.
    Fsynced,
}

impl Durable {
    /// The record's seq, if it was queued.
    pub fn seq(&self) -> Option<u64> {
        self.seq.as_ref().ok().copied()
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Future for Durable {
    type Output = Result<(), Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let seq = match &self.seq {
            Ok(seq) => *seq,
            Err(e) => return Poll::Ready(Err(self.inner.failed_error(&e.to_string()))),
        };
        let mut state = self.inner.lock();
        let reached = match self.until {
            Until::Written => state.written_seq,
            Until::Fsynced => state.durable_seq,
        };
        if reached >= seq {
            return Poll::Ready(Ok(()));
        }
        if let Err(e) = self.inner.check_open(&state) {
            return Poll::Ready(Err(e));
        }
        let waker = (seq, cx.waker().clone());
        match self.until {
            Until::Written => state.written_wakers.push(waker),
            Until::Fsynced => {
                state.wakers.push(waker);
                self.inner.sync_work.notify_one();
            }
        }
        Poll::Pending
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.close();
    }
}

impl Inner {
    /// Queues `event` as the next record (`fsync`: its caller will wait for the fsync); its
    /// seq.
    fn enqueue(&self, event: AuditEvent, fsync: bool) -> Result<u64, Error> {
        let ts_ms = now_ms();
        let mut state = self.lock();
        self.check_open(&state)?;
        if state.closing {
            return Err(self.failed_error("the log is closed"));
        }
        let seq = state.next_seq;
        state.queued.push((seq, ts_ms, event, fsync));
        state.next_seq += 1;
        let idle = state.writer_idle;
        drop(state);
        if idle {
            if self.mirror.is_some() {
                // A mirror's write waits for a database: on the writer thread, never on a
                // caller's (an async runtime's worker).
                self.work.notify_one();
            } else {
                self.write_queued_or_wake();
            }
        }
        Ok(seq)
    }

    /// Closes the log for appends after `error`; wakes everyone waiting.
    pub(super) fn fail(&self, state: &mut State, error: &Error) -> Error {
        log::error!("audit log {}: {error}", self.path.display());
        state.failed = Some(error.to_string());
        for (_, waker) in state.wakers.drain(..).chain(state.written_wakers.drain(..)) {
            waker.wake();
        }
        self.changed.notify_all();
        self.failed_error(&error.to_string())
    }

    pub(super) fn failed_error(&self, reason: &str) -> Error {
        Error::AuditFailed {
            path: self.path.clone(),
            reason: reason.to_owned(),
        }
    }

    pub(super) fn check_open(&self, state: &State) -> Result<(), Error> {
        match &state.failed {
            Some(reason) => Err(self.failed_error(reason)),
            None => Ok(()),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent between statements that could panic; keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
