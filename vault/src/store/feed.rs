//! What a store shared by several processes tells each of them about the others' writes, so
//! that a cache can serve values and still never be staler than a bound.
//!
//! A follower (the store's own task) polls the store's change log and hands the changed
//! names here, with the moment its poll's snapshot was taken; the cache takes them before
//! every lookup. Every change committed before that moment has been applied to the cache
//! once the names are taken, so a value served while the newest poll is younger than
//! `max_staleness` misses only changes younger than that. Without a recent poll the cache
//! is bypassed; after a failed poll it is flushed, since what happened meanwhile is unknown.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The changes a follower saw that the cache has not yet taken.
#[derive(Debug)]
pub struct ChangeFeed {
    max_staleness: Duration,
    state: Mutex<FeedState>,
}

#[derive(Debug, Default)]
struct FeedState {
    /// Names changed since the cache last took them.
    changed: Vec<(String, String)>,
    /// Whether the cache must drop everything (a poll failed, or saw too many changes).
    flush: bool,
    /// When the snapshot of the newest successful poll was taken.
    fresh_as_of: Option<Instant>,
}

/// What the cache takes before a lookup.
#[derive(Debug)]
pub(crate) struct FeedUpdate {
    pub(crate) changed: Vec<(String, String)>,
    pub(crate) flush: bool,
    /// Whether the cache may serve: a poll younger than `max_staleness` was applied.
    pub(crate) fresh: bool,
}

impl ChangeFeed {
    /// A feed whose cache serves only while a poll younger than `max_staleness` applied.
    pub fn new(max_staleness: Duration) -> Self {
        ChangeFeed {
            max_staleness,
            state: Mutex::new(FeedState::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, FeedState> {
        // Each change is a push or an assignment: a panicking holder leaves it whole.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A poll whose snapshot was taken at `snapshot` found `changed` (everything committed
    /// since the previous poll's snapshot, and perhaps some names again).
    pub fn polled(&self, snapshot: Instant, changed: impl IntoIterator<Item = (String, String)>) {
        let mut state = self.state();
        state.changed.extend(changed);
        state.fresh_as_of = Some(snapshot);
    }

    /// A poll at `snapshot` found more changes than are worth naming: the cache starts over.
    pub fn overflowed(&self, snapshot: Instant) {
        let mut state = self.state();
        state.changed.clear();
        state.flush = true;
        state.fresh_as_of = Some(snapshot);
    }

    /// A poll failed: the cache is flushed before it serves again.
    pub fn failed(&self) {
        self.state().flush = true;
    }

    /// Takes what the cache must apply before its next lookup.
    pub(crate) fn take(&self) -> FeedUpdate {
        let mut state = self.state();
        let fresh = state
            .fresh_as_of
            .is_some_and(|at| at.elapsed() <= self.max_staleness);
        FeedUpdate {
            changed: std::mem::take(&mut state.changed),
            flush: std::mem::take(&mut state.flush),
            fresh,
        }
    }
}
