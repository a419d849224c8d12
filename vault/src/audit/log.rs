//! The writer: appends records with group commit on one writer thread, and checkpoints the
//! head at most every `HEAD_INTERVAL`.

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

use super::AuditEvent;
use super::chain::{self, Chain, TornTail};
use super::record::AuditRecord;
use crate::Error;
use crate::config::{parent_dir, sync_dir};
use crate::store::now_ms;

/// An open audit log, appended to by any number of threads (share it in an `Arc`).
///
/// Opening verifies the whole log and holds an exclusive lock on it (`flock`), so one process
/// writes it at a time. One writer thread does the I/O: callers enqueue a record and wait
/// (blocking with [`AuditLog::append`], or as a future with [`AuditLog::append_async`]) until
/// the batch holding it is written and fsynced. The head checkpoint is replaced at most every
/// [`HEAD_INTERVAL`], so the fsync of a batch is the only disk wait on the hot path.
pub struct AuditLog {
    inner: Arc<Inner>,
    writer: Option<JoinHandle<()>>,
}

/// How often, at most, the head checkpoint is rewritten while records arrive. Dropping
/// records newer than the last checkpoint (at most this old when the writer is busy) is not
/// detected by `verify`; everything older is.
pub const HEAD_INTERVAL: Duration = Duration::from_millis(50);

struct Inner {
    path: PathBuf,
    /// Opened for appending; holds the exclusive lock.
    file: File,
    state: Mutex<State>,
    /// Signalled when records are queued (or the log closes): wakes the writer.
    work: Condvar,
    /// Signalled when a batch is durable or the log fails: wakes blocking callers.
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// The seq the next event gets.
    next_seq: u64,
    /// The hash of the newest record the writer made (what the next one chains to).
    last_hash: String,
    /// Events enqueued and not yet taken by the writer, with their seq and time. The writer
    /// chains, hashes and encodes them: that work stays off the callers' path and out of
    /// this lock.
    queued: Vec<(u64, i64, AuditEvent)>,
    /// Every record up to this seq is written and fsynced.
    durable_seq: u64,
    /// Futures waiting for a seq to become durable.
    wakers: Vec<(u64, Waker)>,
    /// The log is being dropped: the writer drains the queue and stops.
    closing: bool,
    /// Why the log stopped taking appends, after a write failed.
    failed: Option<String>,
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
    /// Opens the audit log at `path`, creating it (mode 0600) and its head checkpoint if the
    /// log does not exist; its directory must. An existing log is verified first (see
    /// [`super::verify`]) and refused with [`Error::AuditRefused`] if it does not verify; a log
    /// that runs ahead of its head (a crash before the checkpoint) is re-checkpointed.
    ///
    /// The one repair: an incomplete last line (no newline; a batch write cut short by a crash,
    /// never acknowledged) is trimmed, the file fsynced and a warning logged, if every record
    /// before it verifies; then the log is verified again.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let file = open_or_create(path)?;
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
        let mut chain = chain::check(path, false).map_err(refused)?;
        if let Some(torn) = chain.torn {
            trim_torn_tail(&file, path, torn)?;
            chain = chain::check(path, false).map_err(refused)?;
        }
        let Chain {
            records,
            last_hash,
            head,
            torn,
        } = chain;
        if let Some(torn) = torn {
            // Trimmed, yet still there: nothing else writes the log, so this cannot happen.
            return Err(refused(Error::AuditDamaged {
                path: path.to_path_buf(),
                line: Some(torn.line),
                defect: super::AuditDefect::TornTail { bytes: torn.bytes },
            }));
        }
        if head.as_ref().is_none_or(|h| h.seq < records) {
            chain::write_head(path, records, &last_hash)?;
            sync_dir(parent_dir(path))?;
        }
        let inner = Arc::new(Inner {
            path: path.to_path_buf(),
            file,
            state: Mutex::new(State {
                next_seq: records + 1,
                last_hash,
                durable_seq: records,
                ..State::default()
            }),
            work: Condvar::new(),
            changed: Condvar::new(),
        });
        let writer = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("audit-writer".into())
                .spawn(move || inner.run_writer())
                .map_err(Error::io("starting the audit log writer"))?
        };
        Ok(AuditLog {
            inner,
            writer: Some(writer),
        })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Records `event` and returns once it is written and fsynced (with the records of
    /// other callers queued at the same time: one write and one fsync per batch).
    pub fn append(&self, event: &AuditEvent) -> Result<(), Error> {
        let seq = self.inner.enqueue(event.clone())?;
        let mut state = self.inner.lock();
        loop {
            if state.durable_seq >= seq {
                return Ok(());
            }
            self.inner.check_open(&state)?;
            state = self
                .inner
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Records `event`; the future resolves once it is written and fsynced. For async
    /// callers: no thread waits while the batch is written.
    pub fn append_async(&self, event: AuditEvent) -> Durable {
        Durable {
            inner: Arc::clone(&self.inner),
            seq: self.inner.enqueue(event),
        }
    }
}

/// Resolves when a record is durable (see [`AuditLog::append_async`]).
#[derive(Debug)]
pub struct Durable {
    inner: Arc<Inner>,
    seq: Result<u64, Error>,
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
        self.inner.lock().closing = true;
        self.inner.work.notify_all();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Inner {
    /// Queues `event` as the next record; its seq.
    fn enqueue(&self, event: AuditEvent) -> Result<u64, Error> {
        let ts_ms = now_ms();
        let mut state = self.lock();
        self.check_open(&state)?;
        let seq = state.next_seq;
        state.queued.push((seq, ts_ms, event));
        state.next_seq += 1;
        drop(state);
        self.work.notify_one();
        Ok(seq)
    }

    /// The writer thread: writes and fsyncs whatever is queued, tells the callers, and now and
    /// then checkpoints the head; on close, drains the queue and checkpoints a last time.
    fn run_writer(&self) {
        let guard = WriterGuard { log: self };
        let mut spare = Vec::new();
        let mut checkpointed = Instant::now();
        let mut unchecked: Option<(u64, String)> = None;
        loop {
            let mut state = self.lock();
            while state.queued.is_empty() && !state.closing && state.failed.is_none() {
                // Idle with an old checkpoint: bring it up to date before sleeping.
                if let Some((seq, hash)) = unchecked.take() {
                    drop(state);
                    self.checkpoint(seq, &hash);
                    checkpointed = Instant::now();
                    state = self.lock();
                    continue;
                }
                state = self
                    .work
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if state.failed.is_some() || (state.closing && state.queued.is_empty()) {
                drop(state);
                if let Some((seq, hash)) = unchecked.take() {
                    self.checkpoint(seq, &hash);
                }
                guard.release();
                return;
            }
            let events = std::mem::replace(&mut state.queued, std::mem::take(&mut spare));
            let mut last_hash = std::mem::take(&mut state.last_hash);
            drop(state);
            let mut batch = Vec::with_capacity(events.len() * 400);
            let mut last_seq = 0;
            for (seq, ts_ms, event) in &events {
                let record = AuditRecord::new(event, *seq, *ts_ms, &last_hash);
                batch.extend_from_slice(&record.to_line());
                batch.push(b'\n');
                last_hash = record.hash;
                last_seq = *seq;
            }

            let written = (&self.file)
                .write_all(&batch)
                .and_then(|()| self.file.sync_data())
                .map_err(Error::io(format!("appending to {}", self.path.display())));
            let mut state = self.lock();
            if let Err(e) = written {
                drop(self.fail(&mut state, &e));
                continue;
            }
            state.durable_seq = last_seq;
            state.last_hash.clone_from(&last_hash);
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
            unchecked = Some((last_seq, last_hash));
            if checkpointed.elapsed() >= HEAD_INTERVAL
                && let Some((seq, hash)) = unchecked.take()
            {
                self.checkpoint(seq, &hash);
                checkpointed = Instant::now();
            }
        }
    }

    /// Replaces the head checkpoint; a failure closes the log for later appends (the records
    /// already acknowledged are durable in the log itself).
    fn checkpoint(&self, seq: u64, hash: &str) {
        if let Err(e) = chain::write_head(&self.path, seq, hash) {
            let mut state = self.lock();
            drop(self.fail(&mut state, &e));
        }
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

/// Opens `path` for appending, or creates it (0600, directory synced) if neither it exists nor
/// its head says records were written (then the log was deleted, and that is reported).
fn open_or_create(path: &Path) -> Result<File, Error> {
    let mut options = OpenOptions::new();
    options.read(true).append(true);
    match options.open(path) {
        Ok(file) => return Ok(file),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("opening {}", path.display()))(e)),
    }
    if let Some(head) = chain::read_head(path).map_err(refused)?
        && head.seq > 0
    {
        return Err(refused(Error::AuditDamaged {
            path: path.to_path_buf(),
            line: None,
            defect: super::AuditDefect::Truncated {
                log_seq: 0,
                head_seq: head.seq,
            },
        }));
    }
    let file = options
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
        Error::AuditDamaged { path, line, defect } => Error::AuditRefused { path, line, defect },
        other => other,
    }
}
