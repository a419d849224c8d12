//! The in-memory store: the same contract as SQLite, gone with the process. Its version
//! counters are not tagged: nothing but this process can write its memory.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use super::heads::{self, HeadAuth, KeyHead};
use super::{
    BatchSealer, ListPosition, Replacement, ScanPosition, Sealer, SecretInfo, SecretStore,
    StoreKind, StoredVersion, not_found, now_ms,
};
use crate::Error;

#[derive(Debug)]
struct Version {
    version: u64,
    envelope: Vec<u8>,
    written_at: i64,
}

/// Keeps envelopes in a map guarded by a mutex.
#[derive(Debug, Default)]
pub struct MemoryStore {
    secrets: Mutex<BTreeMap<(String, String), Vec<Version>>>,
    /// Every key's counter, kept after a delete.
    heads: Mutex<BTreeMap<(String, String), KeyHead>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn secrets(&self) -> MutexGuard<'_, BTreeMap<(String, String), Vec<Version>>> {
        // A panic while holding the lock cannot leave a half-written entry (each change is
        // one push or remove), so a poisoned map is still consistent.
        self.secrets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each change is one insert or field update: a poisoned map is still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn info(scope: &str, key: &str, versions: &[Version]) -> Option<SecretInfo> {
    let (first, last) = (versions.first()?, versions.last()?);
    Some(SecretInfo {
        scope: scope.to_owned(),
        key: key.to_owned(),
        version: last.version,
        versions: versions.len() as u64,
        created_at: first.written_at,
        updated_at: last.written_at,
    })
}

impl SecretStore for MemoryStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Memory
    }

    fn set(
        &self,
        scope: &str,
        key: &str,
        expected: Option<u64>,
        _auth: &dyn HeadAuth,
        seal: &mut Sealer<'_>,
    ) -> Result<u64, Error> {
        let mut secrets = self.secrets();
        let mut heads = lock(&self.heads);
        let name = (scope.to_owned(), key.to_owned());
        let head = heads.get(&name).copied().unwrap_or_default();
        heads::check_expected(scope, key, &head, expected)?;
        let version = head.latest + 1;
        let envelope = seal(version)?;
        secrets.entry(name.clone()).or_default().push(Version {
            version,
            envelope,
            written_at: now_ms(),
        });
        heads.insert(
            name,
            KeyHead {
                latest: version,
                ..head
            },
        );
        Ok(version)
    }

    fn set_many(
        &self,
        names: &[(&str, &str)],
        _auth: &dyn HeadAuth,
        seal: &mut BatchSealer<'_>,
    ) -> Result<Vec<u64>, Error> {
        let mut secrets = self.secrets();
        let mut heads = lock(&self.heads);
        // Every envelope is made before anything changes: a failed seal changes nothing.
        let mut latest: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut made = Vec::with_capacity(names.len());
        for (n, (scope, key)) in names.iter().enumerate() {
            let name = ((*scope).to_owned(), (*key).to_owned());
            let newest = match latest.get(&name) {
                Some(v) => *v,
                None => heads.get(&name).map_or(0, |h| h.latest),
            };
            let version = newest + 1;
            made.push((name.clone(), version, seal(n, version)?));
            latest.insert(name, version);
        }
        let written_at = now_ms();
        let mut versions = Vec::with_capacity(made.len());
        for (name, version, envelope) in made {
            secrets.entry(name.clone()).or_default().push(Version {
                version,
                envelope,
                written_at,
            });
            heads.entry(name).or_default().latest = version;
            versions.push(version);
        }
        Ok(versions)
    }

    fn get(
        &self,
        scope: &str,
        key: &str,
        version: Option<u64>,
        _auth: &dyn HeadAuth,
    ) -> Result<(u64, Vec<u8>), Error> {
        let secrets = self.secrets();
        let versions = secrets
            .get(&(scope.to_owned(), key.to_owned()))
            .ok_or_else(|| not_found(scope, key, version))?;
        let found = match version {
            None => versions.last(),
            Some(wanted) => versions.iter().find(|v| v.version == wanted),
        };
        found
            .map(|v| (v.version, v.envelope.clone()))
            .ok_or_else(|| not_found(scope, key, version))
    }

    fn delete(&self, scope: &str, key: &str, _auth: &dyn HeadAuth) -> Result<(), Error> {
        let name = (scope.to_owned(), key.to_owned());
        self.secrets()
            .remove(&name)
            .ok_or_else(|| not_found(scope, key, None))?;
        if let Some(head) = lock(&self.heads).get_mut(&name) {
            head.deleted_through = head.latest;
        }
        Ok(())
    }

    fn adopt_heads(&self, _auth: &dyn HeadAuth) -> Result<u64, Error> {
        Ok(0)
    }

    fn list(
        &self,
        scope: Option<&str>,
        after: Option<&ListPosition>,
        limit: usize,
    ) -> Result<Vec<SecretInfo>, Error> {
        Ok(self
            .secrets()
            .iter()
            .filter(|((s, k), _)| {
                after.is_none_or(|a| (s.as_str(), k.as_str()) > (a.scope.as_str(), a.key.as_str()))
            })
            .filter(|((s, _), _)| scope.is_none_or(|wanted| wanted == s))
            .filter_map(|((s, k), versions)| info(s, k, versions))
            .take(limit)
            .collect())
    }

    fn count(&self) -> Result<u64, Error> {
        Ok(self.secrets().len() as u64)
    }

    fn count_in(&self, scope: Option<&str>) -> Result<u64, Error> {
        let secrets = self.secrets();
        let live = |versions: &Vec<Version>| !versions.is_empty();
        Ok(match scope {
            None => secrets.values().filter(|v| live(v)).count(),
            // The scope's keys are one range of the map.
            Some(scope) => secrets
                .range((scope.to_owned(), String::new())..)
                .take_while(|((s, _), _)| s == scope)
                .filter(|(_, v)| live(v))
                .count(),
        } as u64)
    }

    fn count_versions(&self) -> Result<u64, Error> {
        Ok(self.secrets().values().map(|v| v.len() as u64).sum())
    }

    fn scan(
        &self,
        after: Option<&ScanPosition>,
        limit: usize,
    ) -> Result<Vec<StoredVersion>, Error> {
        let secrets = self.secrets();
        let found = secrets
            .iter()
            .flat_map(|((scope, key), versions)| versions.iter().map(move |v| (scope, key, v)))
            .filter(|(scope, key, v)| {
                after.is_none_or(|a| {
                    (scope.as_str(), key.as_str(), v.version)
                        > (a.scope.as_str(), a.key.as_str(), a.version)
                })
            })
            .take(limit)
            .map(|(scope, key, v)| StoredVersion {
                scope: scope.clone(),
                key: key.clone(),
                version: v.version,
                envelope: v.envelope.clone(),
            })
            .collect();
        Ok(found)
    }

    fn replace(&self, batch: &[Replacement]) -> Result<usize, Error> {
        let mut secrets = self.secrets();
        let mut replaced = 0;
        for r in batch {
            let stored = secrets
                .get_mut(&(r.scope.clone(), r.key.clone()))
                .and_then(|versions| versions.iter_mut().find(|v| v.version == r.version));
            if let Some(v) = stored.filter(|v| v.envelope == r.old) {
                v.envelope = r.new.clone();
                replaced += 1;
            }
        }
        Ok(replaced)
    }
}
