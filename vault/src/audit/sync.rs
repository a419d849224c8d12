//! The sync thread of an [`super::AuditLog`]: fsyncs what the writer thread has written, as
//! soon as it is written, and tells the callers that wait for durability. Apart from the
//! writer so that records go on being written (and reads answered) while an fsync is in
//! flight: with one thread doing both, every record waited for the previous batch's fsync
//! before its own write.

use std::sync::PoisonError;
use std::time::Duration;

use super::log::{Inner, UNWAITED_SYNC_DELAY};
use crate::Error;

impl Inner {
    /// Runs until the writer stops it (`sync_stop`) or the log fails: fsyncs the current
    /// segment whenever records were written since the last fsync, and marks them durable.
    pub(super) fn run_syncer(&self) {
        let guard = FailOnPanic {
            log: self,
            what: "the audit log sync thread panicked",
        };
        loop {
            let target = {
                let mut state = self.lock();
                loop {
                    if state.failed.is_some() || state.sync_stop {
                        guard.release();
                        return;
                    }
                    if state.written_seq > state.durable_seq {
                        // Unless someone waits for it, an fsync may wait for later records
                        // to share it, for at most UNWAITED_SYNC_DELAY.
                        let waited = state.fsync_waiters > 0 || !state.wakers.is_empty();
                        let left = state.unsynced_since.map_or(Duration::ZERO, |since| {
                            UNWAITED_SYNC_DELAY.saturating_sub(since.elapsed())
                        });
                        if waited || left.is_zero() {
                            break state.written_seq;
                        }
                        state = self
                            .sync_work
                            .wait_timeout(state, left)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                        continue;
                    }
                    state = self
                        .sync_work
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            // A handle of its own, so that the writer appends meanwhile. Everything up to
            // `target` is in this file: a rotation makes the old segment durable before it
            // puts the new one in place.
            let synced = self
                .file
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .try_clone()
                .and_then(|file| file.sync_data());
            if let Err(e) = synced {
                let e = Error::io(format!("fsyncing {}", self.path.display()))(e);
                let mut state = self.lock();
                drop(self.fail(&mut state, &e));
                guard.release();
                return;
            }
            self.mark_durable(target);
        }
    }
}

/// Held by a thread of the log: if it panics, the log fails for everyone instead of leaving
/// them waiting for a write or an fsync that never comes.
pub(super) struct FailOnPanic<'a> {
    pub(super) log: &'a Inner,
    pub(super) what: &'static str,
}

impl FailOnPanic<'_> {
    /// The thread stopped on purpose: nothing to do on drop.
    pub(super) fn release(self) {
        std::mem::forget(self);
    }
}

impl Drop for FailOnPanic<'_> {
    fn drop(&mut self) {
        let mut state = self.log.lock();
        let error = Error::Unsupported(self.what.into());
        drop(self.log.fail(&mut state, &error));
    }
}
