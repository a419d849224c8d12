//! The writer: appends records with group commit and checkpoints the head after each batch.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use super::AuditEvent;
use super::chain::{self, Chain, TornTail};
use super::record::AuditRecord;
use crate::Error;

/// An open audit log, appended to by any number of threads (share it in an `Arc`).
///
/// Opening verifies the whole log and holds an exclusive lock on it (`flock`), so one process
/// writes it at a time.
pub struct AuditLog {
    path: PathBuf,
    /// Opened for appending; holds the exclusive lock.
    file: File,
    state: Mutex<State>,
    /// Signalled when a batch is durable, or when the writer role is free.
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// The seq the next event gets.
    next_seq: u64,
    /// The hash of the newest record enqueued (what the next one chains to).
    last_hash: String,
    /// Lines enqueued and not yet taken by a writer, each ending in a newline.
    queued: Vec<u8>,
    /// Every record up to this seq is written and fsynced.
    durable_seq: u64,
    /// A caller is writing a batch (or the head after it).
    writing: bool,
    /// Why the log stopped taking appends, after a write failed.
    failed: Option<String>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("AuditLog")
            .field("path", &self.path)
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
            sync_dir(path)?;
        }
        Ok(AuditLog {
            path: path.to_path_buf(),
            file,
            state: Mutex::new(State {
                next_seq: records + 1,
                last_hash,
                durable_seq: records,
                ..State::default()
            }),
            changed: Condvar::new(),
        })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records `event` and returns once it is written and fsynced (with the records of
    /// other callers queued at the same time: one write and one fsync per batch).
    pub fn append(&self, event: &AuditEvent) -> Result<(), Error> {
        let mut state = self.lock();
        self.check_open(&state)?;
        let seq = state.next_seq;
        let record = AuditRecord::new(event, seq, now_ms(), &state.last_hash);
        state.queued.extend_from_slice(&record.to_line());
        state.queued.push(b'\n');
        state.next_seq += 1;
        state.last_hash = record.hash;
        loop {
            if state.durable_seq >= seq {
                return Ok(());
            }
            self.check_open(&state)?;
            if !state.writing {
                // Our record is still queued (a taken batch is durable before `writing`
                // clears): write everything queued, ours included.
                state = self.write_queued(state)?;
                continue;
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Takes the writer role: writes and fsyncs every queued record, wakes their callers,
    /// then checkpoints the head. Others enqueue meanwhile; the next batch waits for this one.
    fn write_queued<'a>(
        &'a self,
        mut state: MutexGuard<'a, State>,
    ) -> Result<MutexGuard<'a, State>, Error> {
        state.writing = true;
        let batch = std::mem::take(&mut state.queued);
        let last_seq = state.next_seq - 1;
        let last_hash = state.last_hash.clone();
        drop(state);
        let role = WriterRole { log: self };

        let written = (&self.file)
            .write_all(&batch)
            .and_then(|()| self.file.sync_data())
            .map_err(Error::io(format!("appending to {}", self.path.display())));
        let mut state = self.lock();
        if let Err(e) = written {
            role.release();
            return Err(self.fail(&mut state, &e));
        }
        state.durable_seq = last_seq;
        if state.queued.capacity() == 0 {
            // Keep the batch's allocation for the next one.
            let mut spare = batch;
            spare.clear();
            state.queued = spare;
        }
        self.changed.notify_all();
        drop(state);

        let checkpointed = chain::write_head(&self.path, last_seq, &last_hash);
        let mut state = self.lock();
        role.release();
        match checkpointed {
            // The batch is durable and its callers told so; only later appends fail.
            Err(e) => drop(self.fail(&mut state, &e)),
            Ok(()) => state.writing = false,
        }
        self.changed.notify_all();
        Ok(state)
    }

    /// Closes the log for appends after `error`; wakes everyone waiting.
    fn fail(&self, state: &mut State, error: &Error) -> Error {
        log::error!("audit log {}: {error}", self.path.display());
        state.failed = Some(error.to_string());
        state.writing = false;
        self.changed.notify_all();
        Error::AuditFailed {
            path: self.path.clone(),
            reason: error.to_string(),
        }
    }

    fn check_open(&self, state: &State) -> Result<(), Error> {
        match &state.failed {
            Some(reason) => Err(Error::AuditFailed {
                path: self.path.clone(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent between statements that could panic; keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The writer role while a batch is written: if the writer panics, the log fails for
/// everyone instead of leaving them waiting for a batch that never comes.
struct WriterRole<'a> {
    log: &'a AuditLog,
}

impl WriterRole<'_> {
    /// The batch is done (written, or failed and reported): nothing to do on drop.
    fn release(self) {
        std::mem::forget(self);
    }
}

impl Drop for WriterRole<'_> {
    fn drop(&mut self) {
        let mut state = self.log.lock();
        let error = Error::Unsupported("a thread panicked while writing a batch".into());
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
    sync_dir(path)?;
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

/// Syncs the directory of `path`, so a created or renamed entry survives a crash.
fn sync_dir(path: &Path) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(format!("syncing {}", dir.display())))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
