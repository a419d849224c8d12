//! Rotation: the current segment is closed (kept as `<log>.<number>`) and the next one
//! starts with a record that chains to the closed one's last and says why.
//!
//! In the writer thread, with every record before the opening record's seq durable in the
//! closed segment:
//! 1. the head and the anchor are brought up to the closed segment's last record (and a
//!    checkpoint of it signed for the sinks);
//! 2. `<log>.next` is created holding the opening record, fsynced and locked;
//! 3. the current file gets its second name `<log>.<number>` (a hard link);
//! 4. `<log>.next` is renamed over `<log>` and the directory fsynced: the new segment is
//!    current;
//! 5. the head and the anchor move to the opening record.
//!
//! A crash before 4 leaves the old segment current: opening removes `<log>.next` and the
//! second name (see `opening::finish_cut_rotation`). A crash after 4 leaves the new segment
//! current with the head at the record before it, which opening accepts. A failure before 4
//! writes a record saying so in the old segment, which goes on; one after it closes the log.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ring::digest;

use super::log::{AuditLog, Inner};
use super::record::AuditRecord;
use super::segment::{failed_rotation_event, next_path, opening_event, segment_path};
use super::writer::{Tip, mirrored_record};
use crate::Error;
use crate::config::{parent_dir, sync_dir};
use crate::store::now_ms;

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The number of the segment closed.
    pub closed: u64,
    /// Where the closed segment is kept now (`<log>.<number>`).
    pub archive: PathBuf,
    /// The number of the new current segment.
    pub segment: u64,
    /// The seq of its first record, the one that opens it.
    pub first_seq: u64,
}

impl AuditLog {
    /// Closes the current segment and starts the next (see the module docs of
    /// `vault::audit`); `why` goes into the record that opens it. Returns once the new
    /// segment is current, with the head and the anchor at its first record. Records appended
    /// meanwhile go to one or the other, in seq order. Concurrent calls may share one
    /// rotation.
    pub fn rotate(&self, why: &str) -> Result<Rotated, Error> {
        let target = {
            let mut state = self.inner.lock();
            self.inner.check_open(&state)?;
            if state.closing {
                return Err(self.inner.failed_error("the log is closing"));
            }
            if state.rotate_wanted.is_none() {
                state.rotate_wanted = Some(why.to_owned());
            }
            state.rotations + 1
        };
        self.inner.work.notify_one();
        self.wait(|state| state.rotations >= target)?;
        let state = self.inner.lock();
        self.inner.check_open(&state)?;
        match &state.rotated {
            Some(Ok(rotated)) => Ok(rotated.clone()),
            Some(Err(reason)) => Err(Error::AuditRotation {
                path: self.inner.path.clone(),
                reason: reason.clone(),
            }),
            None => Err(self.inner.failed_error("the rotation did not run")),
        }
    }
}

impl Inner {
    /// Rotates in the writer thread: every record up to `tip.seq` is durable, and `seq` is
    /// reserved for the new segment's opening record.
    pub(super) fn rotate_segment(
        &self,
        tip: &mut Tip,
        seq: u64,
        why: &str,
    ) -> Result<Rotated, Error> {
        self.write_head_now(tip);
        self.anchor(tip, &mut true, &mut Instant::now(), true);
        self.check_open(&self.lock())?;
        let closed = tip.segment;
        let number = closed + 1;
        let archive = segment_path(&self.path, closed);
        let next = next_path(&self.path);
        let event = opening_event(number, &archive, tip.seq, &tip.mac, why);
        let (mac, mut line) =
            AuditRecord::encode(&event, seq, now_ms(), &tip.mac, &self.key.hmac());
        line.push(b'\n');
        let file = match prepare_next(&self.path, &next, &archive, &line) {
            Ok(file) => file,
            Err(e) => return Err(self.rotation_failed(tip, seq, e)),
        };
        if let Err(e) = std::fs::rename(&next, &self.path) {
            let _ = std::fs::remove_file(&archive);
            let _ = std::fs::remove_file(&next);
            let e = Error::io(format!(
                "renaming {} to {}",
                next.display(),
                self.path.display()
            ))(e);
            return Err(self.rotation_failed(tip, seq, e));
        }
        // The new segment is current: from here, a failure closes the log.
        if let Err(e) = sync_dir(parent_dir(&self.path)) {
            let mut state = self.lock();
            return Err(self.fail(&mut state, &e));
        }
        *self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = file;
        if !self.mirror(&[mirrored_record(seq, &mac, &line, true)]) {
            return Err(self.failed_error("copying the new segment's first record failed"));
        }
        let mut segment_digest = digest::Context::new(&digest::SHA256);
        segment_digest.update(&line);
        *tip = Tip {
            seq,
            mac: mac.clone(),
            first_mac: Some(mac),
            digest: segment_digest,
            segment: number,
            segment_bytes: u64::try_from(line.len()).unwrap_or(u64::MAX),
        };
        self.durable(seq, number);
        self.write_head_now(tip);
        self.anchor(tip, &mut true, &mut Instant::now(), true);
        self.check_open(&self.lock())?;
        log::info!(
            "audit log {}: segment {closed} closed as {}; segment {number} begins at seq {seq} ({why})",
            self.path.display(),
            archive.display()
        );
        Ok(Rotated {
            closed,
            archive,
            segment: number,
            first_seq: seq,
        })
    }

    /// A rotation failed before the new segment took over: the reserved `seq` is written in
    /// the old segment as a record saying so (the chain has no gap), and `error` returned.
    fn rotation_failed(&self, tip: &mut Tip, seq: u64, error: Error) -> Error {
        log::error!("audit log {}: {error}", self.path.display());
        let event = failed_rotation_event(&error);
        let (mac, mut line) =
            AuditRecord::encode(&event, seq, now_ms(), &tip.mac, &self.key.hmac());
        line.push(b'\n');
        let written = {
            let file = self
                .file
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (&*file).write_all(&line).and_then(|()| file.sync_data())
        };
        match written {
            Ok(()) => {
                if !self.mirror(&[mirrored_record(seq, &mac, &line, true)]) {
                    return error;
                }
                tip.digest.update(&line);
                tip.seq = seq;
                tip.mac = mac;
                tip.segment_bytes += u64::try_from(line.len()).unwrap_or(u64::MAX);
                self.durable(seq, tip.segment);
                self.write_head_now(tip);
            }
            Err(e) => {
                let e = Error::io(format!("appending to {}", self.path.display()))(e);
                let mut state = self.lock();
                drop(self.fail(&mut state, &e));
            }
        }
        error
    }
}

/// Creates `next` holding `line` (fsynced, locked, 0600) and gives the current segment at
/// `log` its closed name `archive`; undoes both on failure.
fn prepare_next(log: &Path, next: &Path, archive: &Path, line: &[u8]) -> Result<File, Error> {
    match std::fs::remove_file(next) {
        Ok(()) => log::warn!("removed {}, left by a rotation cut short", next.display()),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("removing {}", next.display()))(e)),
    }
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .mode(0o600)
        .open(next)
        .map_err(Error::io(format!("creating {}", next.display())))?;
    let prepared = (&file)
        .write_all(line)
        .and_then(|()| file.sync_data())
        .map_err(Error::io(format!("writing {}", next.display())))
        .and_then(|()| {
            file.try_lock()
                .map_err(|e| Error::Unsupported(format!("locking {}: {e}", next.display())))
        })
        .and_then(|()| {
            std::fs::hard_link(log, archive).map_err(|e| {
                if e.kind() == ErrorKind::AlreadyExists {
                    Error::Unsupported(format!(
                        "{} exists already, so the current segment cannot be closed under that name: move it away (it is not a segment this log closed)",
                        archive.display()
                    ))
                } else {
                    Error::io(format!("linking {} as {}", log.display(), archive.display()))(e)
                }
            })
        });
    match prepared {
        Ok(()) => Ok(file),
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(next);
            Err(e)
        }
    }
}
