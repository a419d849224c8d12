//! The writer thread of an [`super::AuditLog`]: group-committed batches (written here, or by
//! a caller who finds this thread idle; fsynced by the sync thread), the head checkpoint at
//! most every `HEAD_INTERVAL`, rotations, and the anchor and signed checkpoints every
//! checkpoint interval while records arrive and when the log closes. A head or anchor only
//! ever names durable records: each fsyncs first.

use std::io::Write;
use std::sync::{MutexGuard, PoisonError, TryLockError};
use std::task::Waker;
use std::time::Instant;

use ring::digest;

use super::anchor::Anchor;
use super::checkpoint::Checkpoint;
use super::head::{Head, write_head};
use super::log::{HEAD_INTERVAL, Inner};
use super::record::{AuditRecord, hex};
use super::sync::FailOnPanic;
use super::{AuditEvent, MirroredRecord};
use crate::Error;
use crate::store::now_ms;

/// What the writer thread carries from batch to batch.
pub(super) struct Tip {
    /// The newest record's seq and MAC.
    pub(super) seq: u64,
    pub(super) mac: String,
    /// The first record's MAC (names the log in checkpoints).
    pub(super) first_mac: Option<String>,
    /// SHA-256 of the current segment so far.
    pub(super) digest: digest::Context,
    /// The current segment's number and length.
    pub(super) segment: u64,
    pub(super) segment_bytes: u64,
}

impl Inner {
    /// The writer thread: writes and fsyncs whatever is queued, tells the callers, now and
    /// then checkpoints the head and anchors it; on close, drains the queue and does both a
    /// last time.
    pub(super) fn run_writer(&self) {
        let guard = FailOnPanic {
            log: self,
            what: "the audit log writer panicked",
        };
        let mut spare = Vec::new();
        let mut headed = Instant::now();
        let mut anchored = Instant::now();
        let (mut head_due, mut anchor_due) = (false, false);
        // The newest record `head_due` and `anchor_due` account for; callers who write
        // records themselves leave newer ones behind.
        let mut seen_seq = self.lock().written_seq;
        loop {
            let mut state = self.lock();
            while state.queued.is_empty()
                && state.rotate_wanted.is_none()
                && !state.closing
                && state.failed.is_none()
            {
                if state.written_seq > seen_seq {
                    seen_seq = state.written_seq;
                    (head_due, anchor_due) = (true, true);
                }
                if state.checkpoint_wanted {
                    state.checkpoint_wanted = false;
                    drop(state);
                    let tip = self.lock_tip();
                    self.checkpoint_head(&tip, &mut head_due, &mut headed);
                    self.anchor(&tip, &mut anchor_due, &mut anchored, true);
                    drop(tip);
                    state = self.lock();
                    continue;
                }
                // Idle with an old head: bring it up to date once HEAD_INTERVAL has passed
                // since the last one. Not at once: under steady load the queue is empty
                // between nearly every two batches, and a head (a file written, synced
                // and renamed) after each would cost more than the batches.
                let head_left = HEAD_INTERVAL.saturating_sub(headed.elapsed());
                if head_due && head_left.is_zero() {
                    drop(state);
                    self.checkpoint_head(&self.lock_tip(), &mut head_due, &mut headed);
                    state = self.lock();
                    continue;
                }
                let anchor_left = self.checkpoint_interval.saturating_sub(anchored.elapsed());
                if anchor_due && anchor_left.is_zero() {
                    drop(state);
                    self.anchor(&self.lock_tip(), &mut anchor_due, &mut anchored, false);
                    state = self.lock();
                    continue;
                }
                let wake_in = [(head_due, head_left), (anchor_due, anchor_left)]
                    .into_iter()
                    .filter_map(|(due, left)| due.then_some(left))
                    .min();
                state.writer_idle = true;
                state.writer_head_due = head_due;
                state = match wake_in {
                    Some(left) => {
                        self.work
                            .wait_timeout(state, left)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0
                    }
                    None => self
                        .work
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner),
                };
                state.writer_idle = false;
            }
            if state.failed.is_some() || (state.closing && state.queued.is_empty()) {
                let failed = state.failed.is_some();
                drop(state);
                if !failed {
                    // After any caller still writing what it took off the queue.
                    let tip = self.lock_tip();
                    if tip.seq > seen_seq {
                        (head_due, anchor_due) = (true, true);
                    }
                    self.checkpoint_head(&tip, &mut head_due, &mut headed);
                    self.anchor(&tip, &mut anchor_due, &mut anchored, true);
                }
                self.lock().sync_stop = true;
                self.sync_work.notify_all();
                self.changed.notify_all();
                guard.release();
                return;
            }
            drop(state);
            let mut tip = self.lock_tip();
            let mut state = self.lock();
            // A rotation asked for, or due by size, takes the seq after the records queued
            // now: they go to the closing segment, later ones to the next.
            let size_due =
                self.max_segment_bytes > 0 && tip.segment_bytes >= self.max_segment_bytes;
            let rotation = state.rotate_wanted.take().or_else(|| {
                size_due.then(|| {
                    format!(
                        "the segment reached {} bytes ([audit] max_segment_bytes = {})",
                        tip.segment_bytes, self.max_segment_bytes
                    )
                })
            });
            let rotation = rotation.map(|why| {
                let seq = state.next_seq;
                state.next_seq += 1;
                (seq, why)
            });
            let events = std::mem::replace(&mut state.queued, std::mem::take(&mut spare));
            drop(state);
            if tip.seq > seen_seq {
                seen_seq = tip.seq;
                (head_due, anchor_due) = (true, true);
            }
            if !events.is_empty() {
                if !self.write_batch(&mut tip, &events) {
                    continue;
                }
                spare = events;
                spare.clear();
                seen_seq = tip.seq;
                head_due = true;
                anchor_due = true;
            }
            if let Some((seq, why)) = rotation {
                let rotated = self.rotate_segment(&mut tip, seq, &why);
                seen_seq = tip.seq;
                drop(tip);
                let mut state = self.lock();
                state.rotated = Some(rotated.map_err(|e| e.to_string()));
                state.rotations += 1;
                drop(state);
                self.changed.notify_all();
                (head_due, anchor_due) = (false, false);
                (headed, anchored) = (Instant::now(), Instant::now());
                continue;
            }
            if headed.elapsed() >= HEAD_INTERVAL {
                self.checkpoint_head(&tip, &mut head_due, &mut headed);
            }
            if anchored.elapsed() >= self.checkpoint_interval {
                self.anchor(&tip, &mut anchor_due, &mut anchored, false);
            }
        }
    }

    /// Called for a record queued while the writer thread was idle: writes the queue on this
    /// thread instead of waking the writer (which would then wake this caller). Another thread
    /// holding the tip is writing: it looks at the queue again once it is done, so the record
    /// is written either way. The writer thread is still woken for what only it does: a head
    /// it has no deadline for yet, a rotation (asked for, or of a full segment), closing.
    pub(super) fn write_queued_or_wake(&self) {
        /// Batches one caller writes for others before it leaves the rest to the writer.
        const ROUNDS: usize = 4;
        for _ in 0..ROUNDS {
            let mut tip = match self.tip.try_lock() {
                Ok(tip) => tip,
                Err(TryLockError::WouldBlock) => return,
                Err(TryLockError::Poisoned(_)) => break,
            };
            let mut state = self.lock();
            if state.failed.is_some() {
                return;
            }
            // A full segment is rotated before the records that come after it, by the writer.
            let full = self.max_segment_bytes > 0 && tip.segment_bytes >= self.max_segment_bytes;
            if state.closing || state.rotate_wanted.is_some() || full {
                break;
            }
            let events = std::mem::take(&mut state.queued);
            drop(state);
            if events.is_empty() {
                return;
            }
            let guard = FailOnPanic {
                log: self,
                what: "writing audit records panicked",
            };
            let written = self.write_batch(&mut tip, &events);
            guard.release();
            if !written {
                return;
            }
            drop(tip);
            // Records queued while this thread wrote, by callers who found the tip taken.
            let state = self.lock();
            let head_unplanned = state.writer_idle && !state.writer_head_due;
            if state.queued.is_empty() || !state.writer_idle {
                drop(state);
                if head_unplanned {
                    self.work.notify_one();
                }
                return;
            }
        }
        self.work.notify_one();
    }

    fn lock_tip(&self) -> MutexGuard<'_, Tip> {
        self.tip.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `events` as one batch to the current segment, tells the callers that wait only
    /// for that and hands the fsync to the sync thread; `false` if the write failed (the log
    /// is closed for appends then).
    fn write_batch(&self, tip: &mut Tip, events: &[(u64, i64, AuditEvent, bool)]) -> bool {
        let key = self.key.hmac();
        let mut batch = Vec::with_capacity(events.len() * 512);
        let before = (tip.mac.clone(), tip.digest.clone(), tip.first_mac.clone());
        let mut last_seq = tip.seq;
        let mut mirrored = Vec::new();
        for (seq, ts_ms, event, fsync) in events {
            let (mac, line) = AuditRecord::encode(event, *seq, *ts_ms, &tip.mac, &key);
            if self.mirror.is_some() {
                mirrored.push(mirrored_record(*seq, &mac, &line, *fsync));
            }
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
        let written = {
            let file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
            (&*file)
                .write_all(&batch)
                .map_err(Error::io(format!("appending to {}", self.path.display())))
        };
        if let Err(e) = written {
            (tip.mac, tip.digest, tip.first_mac) = before;
            let mut state = self.lock();
            drop(self.fail(&mut state, &e));
            return false;
        }
        tip.seq = last_seq;
        tip.segment_bytes += u64::try_from(batch.len()).unwrap_or(u64::MAX);
        if !self.mirror(&mirrored) {
            return false;
        }
        self.written(last_seq);
        true
    }

    /// Copies `records` (written to the file) to the mirror, if there is one; `false` if that
    /// failed (the log is closed for appends then: the records are in the file, never
    /// acknowledged).
    pub(super) fn mirror(&self, records: &[MirroredRecord]) -> bool {
        let Some(mirror) = &self.mirror else {
            return true;
        };
        match mirror.append(records) {
            Ok(()) => true,
            Err(e) => {
                let mut state = self.lock();
                drop(self.fail(&mut state, &e));
                false
            }
        }
    }

    /// Fsyncs the current segment unless everything up to `tip` is durable already (the sync
    /// thread may be behind); `false` if that failed (the log is closed for appends then).
    fn make_durable(&self, tip: &Tip) -> bool {
        if self.lock().durable_seq >= tip.seq {
            return true;
        }
        let synced = self
            .file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sync_data()
            .map_err(Error::io(format!("fsyncing {}", self.path.display())));
        match synced {
            Ok(()) => {
                self.mark_durable(tip.seq);
                true
            }
            Err(e) => {
                let mut state = self.lock();
                drop(self.fail(&mut state, &e));
                false
            }
        }
    }

    /// Every record up to `seq` is durable, in segment `segment` (written by a rotation,
    /// which fsyncs itself): tells their callers.
    pub(super) fn durable(&self, seq: u64, segment: u64) {
        self.lock().segment = segment;
        self.mark_durable(seq);
    }

    /// Every record up to `seq` is written and fsynced: tells their callers.
    pub(super) fn mark_durable(&self, seq: u64) {
        let mut state = self.lock();
        state.durable_seq = state.durable_seq.max(seq);
        state.written_seq = state.written_seq.max(seq);
        if state.durable_seq >= state.written_seq {
            state.unsynced_since = None;
        }
        let mut ready = take_ready(&mut state.wakers, seq);
        ready.append(&mut take_ready(&mut state.written_wakers, seq));
        drop(state);
        self.changed.notify_all();
        for waker in ready {
            waker.wake();
        }
    }

    /// Every record up to `seq` is written to the file, not yet fsynced: tells the callers
    /// that wait only for that, and the sync thread.
    fn written(&self, seq: u64) {
        let mut state = self.lock();
        state.written_seq = seq;
        // The sync thread needs waking only for the first unsynced record (it then waits
        // out UNWAITED_SYNC_DELAY with a timeout and takes whatever was written meanwhile)
        // or for a caller waiting on an fsync; a wake per batch cost a context switch each.
        let first_unsynced = state.unsynced_since.is_none();
        state.unsynced_since.get_or_insert_with(Instant::now);
        let waited = state.fsync_waiters > 0 || !state.wakers.is_empty();
        let ready = take_ready(&mut state.written_wakers, seq);
        drop(state);
        if first_unsynced || waited {
            self.sync_work.notify_one();
        }
        for waker in ready {
            waker.wake();
        }
    }

    /// Replaces the head checkpoint with `tip` now.
    pub(super) fn write_head_now(&self, tip: &Tip) {
        self.checkpoint_head(tip, &mut true, &mut Instant::now());
    }

    /// Replaces the head checkpoint if records came since the last; a failure closes the log
    /// for later appends (the records already acknowledged are durable in the log itself).
    fn checkpoint_head(&self, tip: &Tip, due: &mut bool, at: &mut Instant) {
        if !*due {
            return;
        }
        *due = false;
        *at = Instant::now();
        if !self.make_durable(tip) {
            return;
        }
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
    pub(super) fn anchor(&self, tip: &Tip, due: &mut bool, at: &mut Instant, always: bool) {
        if !*due && !always {
            return;
        }
        *due = false;
        *at = Instant::now();
        if !self.make_durable(tip) {
            return;
        }
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
}

/// A record as the mirror takes it; `line` is its canonical line, with or without its
/// newline.
pub(super) fn mirrored_record(seq: u64, mac: &str, line: &[u8], fsync: bool) -> MirroredRecord {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    MirroredRecord {
        seq,
        mac: mac.to_owned(),
        // Serde's JSON: UTF-8 by construction.
        line: String::from_utf8_lossy(line).into_owned(),
        fsync,
    }
}

/// Removes from `wakers` those waiting for `seq` or an earlier one.
fn take_ready(wakers: &mut Vec<(u64, Waker)>, seq: u64) -> Vec<Waker> {
    let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(wakers)
        .into_iter()
        .partition(|(s, _)| *s <= seq);
    *wakers = waiting;
    ready.into_iter().map(|(_, waker)| waker).collect()
}
