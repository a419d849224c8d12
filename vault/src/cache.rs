//! The JIT cache of opened secrets: a read within the TTL skips the store and the KEKs.
//!
//! Values live in locked, zeroizing memory (`SecretBytes`); an entry is dropped, and so
//! zeroized, when it expires, when its key is set or deleted, and on lock. Writes never go
//! through the cache. The TTL bounds how long a value changed by another process can be
//! served stale.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use envelope::SecretBytes;

use crate::store::ChangeFeed;

/// Default time an opened secret stays cached.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);
/// At most this many cached values; beyond it reads go to the store.
const MAX_ENTRIES: usize = 4096;

#[derive(Debug)]
struct Entry {
    /// The version the value is (a request for the latest is cached with its number).
    version: u64,
    value: SecretBytes,
    expires: Instant,
}

/// Cached values per (scope, key), per requested version (`None` = latest).
type Entries = HashMap<(String, String), HashMap<Option<u64>, Entry>>;

/// The entries, and how many times they were invalidated: a value read from the store
/// before an invalidation may be older than what the invalidating write stored, so it is
/// not cached after it.
#[derive(Debug, Default)]
struct Inner {
    entries: Entries,
    generation: u64,
}

#[derive(Debug)]
pub(crate) struct Cache {
    ttl: Duration,
    inner: Mutex<Inner>,
    /// Other processes' writes, on a store they share: applied before each lookup.
    feed: Option<Arc<ChangeFeed>>,
    /// Lookups since the cache was made, and how many found a fresh value: shows who
    /// consults the cache (a denied request must not).
    lookups: AtomicU64,
    hits: AtomicU64,
}

impl Cache {
    /// A cache keeping values for `ttl`; zero disables it. With a `feed`, it follows other
    /// processes' writes and serves only while the feed is fresh.
    pub(crate) fn new(ttl: Duration, feed: Option<Arc<ChangeFeed>>) -> Self {
        Cache {
            ttl,
            inner: Mutex::new(Inner::default()),
            feed,
            lookups: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Each change is one insert or remove: a panicking holder leaves the map whole.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Taken before reading a value from the store, and passed to `put` with it.
    pub(crate) fn generation(&self) -> u64 {
        self.inner().generation
    }

    /// A copy of the cached value and its version, if one is fresh.
    pub(crate) fn get(
        &self,
        scope: &str,
        key: &str,
        version: Option<u64>,
    ) -> Option<(u64, SecretBytes)> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        if self.ttl.is_zero() {
            return None;
        }
        let mut inner = self.inner();
        // Under the entries' lock: a lookup that took newer changes cannot serve before an
        // older batch another lookup took is applied.
        if let Some(feed) = &self.feed {
            let update = feed.take();
            if update.flush {
                inner.generation += 1;
                inner.entries.clear();
            }
            for name in update.changed {
                inner.generation += 1;
                inner.entries.remove(&name);
            }
            if !update.fresh {
                return None;
            }
        }
        let versions = inner.entries.get_mut(&(scope.to_owned(), key.to_owned()))?;
        let entry = versions.get(&version)?;
        if entry.expires <= Instant::now() {
            versions.remove(&version);
            return None;
        }
        let hit = (entry.version, entry.value.try_clone().ok()?);
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(hit)
    }

    /// Lookups so far, and how many hit.
    pub(crate) fn stats(&self) -> (u64, u64) {
        (
            self.lookups.load(Ordering::Relaxed),
            self.hits.load(Ordering::Relaxed),
        )
    }

    /// Caches a copy of `value`, read from the store after `generation` was taken, unless a
    /// write invalidated the cache since (the value may predate that write).
    pub(crate) fn put(
        &self,
        scope: &str,
        key: &str,
        version: Option<u64>,
        found: u64,
        value: &SecretBytes,
        generation: u64,
    ) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(copy) = value.try_clone() else { return };
        let now = Instant::now();
        let mut inner = self.inner();
        if inner.generation != generation {
            return;
        }
        let entries = &mut inner.entries;
        if count(entries) >= MAX_ENTRIES {
            for versions in entries.values_mut() {
                versions.retain(|_, e| e.expires > now);
            }
            entries.retain(|_, versions| !versions.is_empty());
            if count(entries) >= MAX_ENTRIES {
                return;
            }
        }
        entries
            .entry((scope.to_owned(), key.to_owned()))
            .or_default()
            .insert(
                version,
                Entry {
                    version: found,
                    value: copy,
                    expires: now + self.ttl,
                },
            );
    }

    /// Drops every cached version of `scope`/`key` (it was set or deleted).
    pub(crate) fn invalidate(&self, scope: &str, key: &str) {
        let mut inner = self.inner();
        inner.generation += 1;
        inner.entries.remove(&(scope.to_owned(), key.to_owned()));
    }

    /// Drops everything (lock).
    pub(crate) fn flush(&self) {
        let mut inner = self.inner();
        inner.generation += 1;
        inner.entries.clear();
    }

    /// How many values are cached (expired ones included until touched).
    pub(crate) fn len(&self) -> usize {
        count(&self.inner().entries)
    }
}

fn count(entries: &Entries) -> usize {
    entries.values().map(HashMap::len).sum()
}
