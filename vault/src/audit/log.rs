//! The writer: appends records with group commit on one writer thread, checkpoints the head
//! at most every `HEAD_INTERVAL`, and anchors it (and sends signed checkpoints to the sinks)
//! every checkpoint interval while records arrive, and when it closes.

use std::fs::{File, OpenOptions, TryLockError};
use std::future::Future;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ring::digest;

use super::anchor::{Anchor, AuditAnchor};
use super::chain::{self, Chain, Macs, TornTail};
use super::checkpoint::{Checkpoint, CheckpointSink};
use super::head::{Head, head_path, read_head, write_head};
use super::record::{AuditRecord, hex};
use super::{AuditDefect, AuditEvent, AuditKey, Decision};
use crate::Error;
use crate::config::{parent_dir, sync_dir};
use crate::store::now_ms;

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
    /// The vault's id, named in signed checkpoints.
    pub vault_id: String,
}

impl AuditOptions {
    /// Defaults: no sinks, [`CHECKPOINT_INTERVAL`], no new log.
    pub fn new(anchor: Arc<dyn AuditAnchor>, vault_id: &str) -> Self {
        AuditOptions {
            anchor,
            sinks: Vec::new(),
            checkpoint_interval: CHECKPOINT_INTERVAL,
            new_log: false,
            vault_id: vault_id.to_owned(),
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
    /// The seq the head checkpoint names.
    pub head_seq: u64,
    /// The seq last anchored in the vault's metadata.
    pub anchored_seq: u64,
    /// The last error of a checkpoint sink, if the last send failed.
    pub sink_error: Option<String>,
    /// The public key (hex) that verifies this log's signed checkpoints.
    pub checkpoint_public_key: String,
}

/// An open audit log, appended to by any number of threads (share it in an `Arc`).
///
/// Opening verifies the whole log (MACs, chain, head, anchor) and holds an exclusive lock on
/// it (`flock`), so one process writes it at a time. One writer thread does the I/O: callers
/// enqueue a record and wait (blocking with [`AuditLog::append`], or as a future with
/// [`AuditLog::append_async`]) until the batch holding it is written and fsynced.
pub struct AuditLog {
    inner: Arc<Inner>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

struct Inner {
    path: PathBuf,
    /// Opened for appending; holds the exclusive lock.
    file: File,
    key: AuditKey,
    anchor: Arc<dyn AuditAnchor>,
    sinks: Vec<Arc<dyn CheckpointSink>>,
    checkpoint_interval: Duration,
    vault_id: String,
    public_key: String,
    state: Mutex<State>,
    /// Signalled when records are queued (or the log closes): wakes the writer.
    work: Condvar,
    /// Signalled when a batch is durable, a checkpoint is made, or the log fails.
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// The seq the next event gets.
    next_seq: u64,
    /// Events enqueued and not yet taken by the writer, with their seq and time. The writer
    /// chains, MACs and encodes them: that work stays off the callers' path and out of
    /// this lock.
    queued: Vec<(u64, i64, AuditEvent)>,
    /// Every record up to this seq is written and fsynced.
    durable_seq: u64,
    head_seq: u64,
    anchored_seq: u64,
    /// Futures waiting for a seq to become durable.
    wakers: Vec<(u64, Waker)>,
    /// A caller waits for an anchor of everything durable ([`AuditLog::checkpoint`]).
    checkpoint_wanted: bool,
    /// The log is closing: the writer drains the queue, checkpoints and stops.
    closing: bool,
    /// Why the log stopped taking appends, after a write failed.
    failed: Option<String>,
    sink_error: Option<String>,
}

/// What the writer thread carries from batch to batch.
struct Tip {
    /// The newest record's seq and MAC.
    seq: u64,
    mac: String,
    /// The first record's MAC (names the log in checkpoints).
    first_mac: Option<String>,
    /// SHA-256 of the log so far.
    digest: digest::Context,
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
    /// directory must exist. An existing log is verified first (see [`super::verify`]) and
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
        let check = || {
            chain::check(path, false, Macs::Keyed(&hmac), anchor.as_ref(), |_, _| {
                Ok(())
            })
        };
        let mut chain = check().map_err(refused)?;
        if let Some(torn) = chain.torn {
            trim_torn_tail(&file, path, torn)?;
            chain = check().map_err(refused)?;
        }
        let Chain {
            records,
            last_mac,
            first_mac,
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
        let public_key = key.checkpoint_public_key()?;
        let inner = Arc::new(Inner {
            path: path.to_path_buf(),
            file,
            key,
            anchor: options.anchor,
            sinks: options.sinks,
            checkpoint_interval: options.checkpoint_interval,
            vault_id: options.vault_id,
            public_key,
            state: Mutex::new(State {
                next_seq: records + 1,
                durable_seq: records,
                head_seq: records,
                anchored_seq: anchor.as_ref().map_or(0, |a| a.seq),
                ..State::default()
            }),
            work: Condvar::new(),
            changed: Condvar::new(),
        });
        let tip = Tip {
            seq: records,
            mac: last_mac,
            first_mac,
            digest,
        };
        let writer = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("audit-writer".into())
                .spawn(move || inner.run_writer(tip))
                .map_err(Error::io("starting the audit log writer"))?
        };
        let log = AuditLog {
            inner,
            writer: Mutex::new(Some(writer)),
        };
        if let Some(previous) = previous {
            log.append(&new_log_event(previous.as_ref()))?;
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
        let seq = self.inner.enqueue(event.clone())?;
        self.wait(|state| state.durable_seq >= seq)
    }

    /// Records `event`; the future resolves once it is written and fsynced. The record is
    /// queued by this call, whether the future is awaited or dropped. For async callers: no
    /// thread waits while the batch is written.
    pub fn append_async(&self, event: AuditEvent) -> Durable {
        Durable {
            inner: Arc::clone(&self.inner),
            seq: self.inner.enqueue(event),
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
            head_seq: state.head_seq,
            anchored_seq: state.anchored_seq,
            sink_error: state.sink_error.clone(),
            checkpoint_public_key: self.inner.public_key.clone(),
        }
    }

    /// Writes what is queued, checkpoints and anchors it, and stops the writer: later appends
    /// fail. Dropping the log does the same.
    pub fn close(&self) {
        self.inner.lock().closing = true;
        self.inner.work.notify_all();
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = writer {
            let _ = writer.join();
        }
    }

    fn wait(&self, done: impl Fn(&State) -> bool) -> Result<(), Error> {
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

/// Resolves when a record is durable (see [`AuditLog::append_async`]).
#[derive(Debug)]
pub struct Durable {
    inner: Arc<Inner>,
    seq: Result<u64, Error>,
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
        if state.durable_seq >= seq {
            return Poll::Ready(Ok(()));
        }
        if let Err(e) = self.inner.check_open(&state) {
            return Poll::Ready(Err(e));
        }
        state.wakers.push((seq, cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.close();
    }
}

impl Inner {
    /// Queues `event` as the next record; its seq.
    fn enqueue(&self, event: AuditEvent) -> Result<u64, Error> {
        let ts_ms = now_ms();
        let mut state = self.lock();
        self.check_open(&state)?;
        if state.closing {
            return Err(self.failed_error("the log is closed"));
        }
        let seq = state.next_seq;
        state.queued.push((seq, ts_ms, event));
        state.next_seq += 1;
        drop(state);
        self.work.notify_one();
        Ok(seq)
    }

    /// The writer thread: writes and fsyncs whatever is queued, tells the callers, now and
    /// then checkpoints the head and anchors it; on close, drains the queue and does both a
    /// last time.
    fn run_writer(&self, mut tip: Tip) {
        let guard = WriterGuard { log: self };
        let mut spare = Vec::new();
        let mut headed = Instant::now();
        let mut anchored = Instant::now();
        let (mut head_due, mut anchor_due) = (false, false);
        loop {
            let mut state = self.lock();
            while state.queued.is_empty() && !state.closing && state.failed.is_none() {
                if state.checkpoint_wanted {
                    state.checkpoint_wanted = false;
                    drop(state);
                    self.checkpoint_head(&tip, &mut head_due, &mut headed);
                    self.anchor(&tip, &mut anchor_due, &mut anchored, true);
                    state = self.lock();
                    continue;
                }
                // Idle with an old head: bring it up to date before sleeping.
                if head_due {
                    drop(state);
                    self.checkpoint_head(&tip, &mut head_due, &mut headed);
                    state = self.lock();
                    continue;
                }
                if anchor_due && anchored.elapsed() >= self.checkpoint_interval {
                    drop(state);
                    self.anchor(&tip, &mut anchor_due, &mut anchored, false);
                    state = self.lock();
                    continue;
                }
                state = if anchor_due {
                    let left = self.checkpoint_interval.saturating_sub(anchored.elapsed());
                    self.work
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                } else {
                    self.work
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner)
                };
            }
            if state.failed.is_some() || (state.closing && state.queued.is_empty()) {
                let failed = state.failed.is_some();
                drop(state);
                if !failed {
                    self.checkpoint_head(&tip, &mut head_due, &mut headed);
                    self.anchor(&tip, &mut anchor_due, &mut anchored, true);
                }
                self.changed.notify_all();
                guard.release();
                return;
            }
            let events = std::mem::replace(&mut state.queued, std::mem::take(&mut spare));
            drop(state);
            let key = self.key.hmac();
            let mut batch = Vec::with_capacity(events.len() * 512);
            let before = tip.mac.clone();
            let mut last_seq = tip.seq;
            for (seq, ts_ms, event) in &events {
                let (mac, line) = AuditRecord::encode(event, *seq, *ts_ms, &tip.mac, &key);
                let start = batch.len();
                batch.extend_from_slice(&line);
                batch.push(b'\n');
                tip.digest.update(&batch[start..]);
                if tip.first_mac.is_none() {
                    tip.first_mac = Some(mac.clone());
                }
                tip.mac = mac;
                last_seq = *seq;
            }

            let written = (&self.file)
                .write_all(&batch)
                .and_then(|()| self.file.sync_data())
                .map_err(Error::io(format!("appending to {}", self.path.display())));
            let mut state = self.lock();
            if let Err(e) = written {
                tip.mac = before;
                drop(self.fail(&mut state, &e));
                continue;
            }
            tip.seq = last_seq;
            state.durable_seq = last_seq;
            let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut state.wakers)
                .into_iter()
                .partition(|(seq, _)| *seq <= last_seq);
            state.wakers = waiting;
            drop(state);
            self.changed.notify_all();
            for (_, waker) in ready {
                waker.wake();
            }
            spare = events;
            spare.clear();
            head_due = true;
            anchor_due = true;
            if headed.elapsed() >= HEAD_INTERVAL {
                self.checkpoint_head(&tip, &mut head_due, &mut headed);
            }
            if anchored.elapsed() >= self.checkpoint_interval {
                self.anchor(&tip, &mut anchor_due, &mut anchored, false);
            }
        }
    }

    /// Replaces the head checkpoint if records came since the last; a failure closes the log
    /// for later appends (the records already acknowledged are durable in the log itself).
    fn checkpoint_head(&self, tip: &Tip, due: &mut bool, at: &mut Instant) {
        if !*due {
            return;
        }
        *due = false;
        *at = Instant::now();
        match write_head(&self.path, &Head::new(tip.seq, &tip.mac, &self.key.hmac())) {
            Ok(()) => {
                let mut state = self.lock();
                state.head_seq = tip.seq;
                drop(state);
                self.changed.notify_all();
            }
            Err(e) => {
                let mut state = self.lock();
                drop(self.fail(&mut state, &e));
            }
        }
    }

    /// Writes the anchor and sends a signed checkpoint to every sink, if records came since
    /// the last (or `always`). An anchor that cannot be written closes the log (as a head that
    /// cannot be); a sink that fails is logged and shown in the status.
    fn anchor(&self, tip: &Tip, due: &mut bool, at: &mut Instant, always: bool) {
        if !*due && !always {
            return;
        }
        *due = false;
        *at = Instant::now();
        if tip.seq > 0 {
            let anchor = Anchor {
                seq: tip.seq,
                mac: tip.mac.clone(),
            };
            if let Err(e) = self.anchor.write(&anchor) {
                let mut state = self.lock();
                drop(self.fail(&mut state, &e));
                return;
            }
            self.publish(tip);
        }
        let mut state = self.lock();
        state.anchored_seq = tip.seq;
        drop(state);
        self.changed.notify_all();
    }

    fn publish(&self, tip: &Tip) {
        if self.sinks.is_empty() {
            return;
        }
        let signed = self.key.signing_pair().map(|pair| {
            Checkpoint::sign(
                &pair,
                &self.vault_id,
                tip.first_mac.as_deref().unwrap_or_default(),
                tip.seq,
                &tip.mac,
                &hex(tip.digest.clone().finish().as_ref()),
                now_ms(),
            )
        });
        let mut error = None;
        match signed {
            Ok(checkpoint) => {
                for sink in &self.sinks {
                    if let Err(e) = sink.publish(&checkpoint) {
                        log::error!("audit checkpoint sink {sink:?}: {e}");
                        error = Some(format!("{sink:?}: {e}"));
                    }
                }
            }
            Err(e) => error = Some(e.to_string()),
        }
        self.lock().sink_error = error;
    }

    /// Closes the log for appends after `error`; wakes everyone waiting.
    fn fail(&self, state: &mut State, error: &Error) -> Error {
        log::error!("audit log {}: {error}", self.path.display());
        state.failed = Some(error.to_string());
        for (_, waker) in state.wakers.drain(..) {
            waker.wake();
        }
        self.changed.notify_all();
        self.failed_error(&error.to_string())
    }

    fn failed_error(&self, reason: &str) -> Error {
        Error::AuditFailed {
            path: self.path.clone(),
            reason: reason.to_owned(),
        }
    }

    fn check_open(&self, state: &State) -> Result<(), Error> {
        match &state.failed {
            Some(reason) => Err(self.failed_error(reason)),
            None => Ok(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent between statements that could panic; keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Held by the writer thread: if it panics, the log fails for everyone instead of leaving
/// them waiting for a batch that never comes.
struct WriterGuard<'a> {
    log: &'a Inner,
}

impl WriterGuard<'_> {
    /// The writer stopped on purpose: nothing to do on drop.
    fn release(self) {
        std::mem::forget(self);
    }
}

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.log.lock();
        let error = Error::Unsupported("the audit log writer panicked".into());
        drop(self.log.fail(&mut state, &error));
    }
}

/// The first record of a log started with `--new-audit-log`.
fn new_log_event(previous: Option<&Anchor>) -> AuditEvent {
    let reason = match previous {
        Some(a) => format!(
            "a new audit log was started (vaultd --new-audit-log) where the vault's anchor says the previous log held {} records (the last anchored one with mac {})",
            a.seq, a.mac
        ),
        None => "a new audit log was started (vaultd --new-audit-log); the vault had no anchor of an earlier one".to_owned(),
    };
    AuditEvent {
        principal: "vaultd".into(),
        op: "new-audit-log".into(),
        reason: Some(reason),
        ..AuditEvent::new(Decision::Allow, "OK")
    }
}

/// Opens `path` for appending, or creates it (0600, directory synced) if neither it exists nor
/// its head or the vault's anchor says records were written (then the log was deleted, and
/// that is reported).
fn open_or_create(path: &Path, key: &AuditKey, anchor: Option<&Anchor>) -> Result<File, Error> {
    let mut options = OpenOptions::new();
    options.read(true).append(true);
    match options.open(path) {
        Ok(file) => return Ok(file),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("opening {}", path.display()))(e)),
    }
    let hmac = key.hmac();
    let head = read_head(path, Macs::Keyed(&hmac)).map_err(refused)?;
    match (head, anchor) {
        (Some(head), _) if head.seq > 0 => {
            return Err(refused(Error::AuditDamaged {
                path: path.to_path_buf(),
                line: None,
                defect: AuditDefect::Truncated {
                    log_seq: 0,
                    head_seq: head.seq,
                },
            }));
        }
        (_, Some(anchor)) if anchor.seq > 0 => {
            return Err(Error::AuditMissing {
                path: path.to_path_buf(),
                anchor_seq: anchor.seq,
            });
        }
        _ => {}
    }
    let file = options
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(Error::io(format!("creating {}", path.display())))?;
    sync_dir(parent_dir(path))?;
    Ok(file)
}

/// Creates a new, empty log at `path` for `--new-audit-log`, removing a head checkpoint left
/// of a deleted one; refuses if a log exists.
fn create_new_log(path: &Path) -> Result<File, Error> {
    if path.exists() {
        return Err(Error::Unsupported(format!(
            "--new-audit-log starts a log only where there is none, and {} exists: start vaultd without --new-audit-log, or move it and {} aside first (keep them as evidence)",
            path.display(),
            head_path(path).display()
        )));
    }
    let head = head_path(path);
    match std::fs::remove_file(&head) {
        Ok(()) => log::warn!(
            "--new-audit-log: removed {}, the head checkpoint of a log that is gone",
            head.display()
        ),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("removing {}", head.display()))(e)),
    }
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(Error::io(format!("creating {}", path.display())))?;
    sync_dir(parent_dir(path))?;
    Ok(file)
}

/// Drops `torn` (the log's incomplete last line) from `file`, the log at `path`, locked by us,
/// and fsyncs it. Only if the file still ends there: bytes after it would mean another writer.
fn trim_torn_tail(file: &File, path: &Path, torn: TornTail) -> Result<(), Error> {
    let len = file
        .metadata()
        .map_err(Error::io(format!("reading the size of {}", path.display())))?
        .len();
    if len != torn.offset.saturating_add(torn.bytes) {
        return Err(Error::AuditInUse {
            path: path.to_path_buf(),
        });
    }
    file.set_len(torn.offset)
        .and_then(|()| file.sync_all())
        .map_err(Error::io(format!(
            "trimming the incomplete last line of {}",
            path.display()
        )))?;
    log::warn!(
        "audit log {}: dropped {} byte(s) of an incomplete last line (line {}), a write cut short by a crash and never acknowledged",
        path.display(),
        torn.bytes,
        torn.line
    );
    Ok(())
}

fn refused(e: Error) -> Error {
    match e {
        Error::AuditDamaged {
            path,
            defect: AuditDefect::LogMissing { anchor_seq },
            ..
        } => Error::AuditMissing { path, anchor_seq },
        Error::AuditDamaged { path, line, defect } => Error::AuditRefused { path, line, defect },
        other => other,
    }
}
