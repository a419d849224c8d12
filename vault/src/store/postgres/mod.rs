//! The PostgreSQL store: the same table and contract as the SQLite store, in a database that
//! several vaultd replicas share. Where it is comes from `store.json` in the vault directory
//! ([`StoreLocation`]).
//!
//! The store trait is blocking (the SQLite store blocks its caller on the disk), and the
//! PostgreSQL client is asynchronous: the store owns a small tokio runtime whose thread
//! drives the connections' sockets, and each call waits for its future on the calling
//! thread. So a caller on any thread, inside another runtime or not, can use it, and the
//! sealer a write calls runs on the caller's thread, as with SQLite.
//!
//! Concurrency: every write transaction first takes a transaction-scoped advisory lock on
//! its key, so the head it reads is the newest and two first writes of a key cannot race;
//! a get is one statement (one snapshot). Connections come from a pool that checks a
//! connection before handing it out again (`RecyclingMethod::Verified`), so a database
//! restart costs the calls in flight, not the store.

mod audit;
mod epochs;
mod follow;
mod lease;
mod location;
mod schema;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime,
};

pub use location::{DEFAULT_MAX_STALENESS, PASSWORD_ENV, STORE_LOCATION_FILE, StoreLocation};
use schema::*;

use super::heads::{self, HeadAuth, KeyHead};
use super::{
    BatchSealer, ChangeFeed, ListPosition, Replacement, ScanPosition, Sealer, SecretInfo,
    SecretStore, StoreKind, StoredVersion, not_found, now_ms,
};
use crate::Error;

/// How long a call waits for a free connection, or for a new one to connect, before failing.
const CONNECTION_WAIT: Duration = Duration::from_secs(10);

/// A batch of more keys than this locks out every other write instead of locking its keys
/// one by one (see `LOCK_ALL_WRITES_SQL`).
const MAX_KEY_LOCKS: usize = 64;

/// How long opening waits for the change listener to be listening.
const LISTEN_WAIT: Duration = Duration::from_secs(2);

/// Versioned envelopes in a PostgreSQL database.
pub struct PostgresStore {
    /// Drives the connections; `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    /// The database's URL (without a password), for messages.
    label: PathBuf,
    /// How to make a connection of its own (the change listener's).
    connect: Connect,
    /// The followed change log, once a cache asked for it (see `follow.rs`).
    feed: OnceLock<Result<Arc<ChangeFeed>, String>>,
    /// How stale a cache on this store may be, at most.
    max_staleness: Duration,
    /// Whether the follower listens for NOTIFYs (else it polls only).
    notify: bool,
    /// The leader lease, as this replica holds it or not.
    lease: Arc<lease::Lease>,
    /// Whether this replica takes part in the election (a daemon does; commands do not).
    campaigning: OnceLock<()>,
    /// The connections this replica's audit chain is appended on (see `audit.rs`).
    audit_pools: OnceLock<audit::AuditPools>,
}

/// The settings of a connection, and its TLS.
#[derive(Clone)]
struct Connect {
    config: tokio_postgres::Config,
    tls: Option<rustls::ClientConfig>,
}

impl Connect {
    /// A pool of up to `size` connections, each with `options` (server settings for its
    /// session, as `-c name=value`), checked by `recycling` before reuse.
    fn pool(
        &self,
        size: usize,
        recycling: RecyclingMethod,
        options: Option<&str>,
    ) -> Result<Pool, Error> {
        let mut config = self.config.clone();
        if let Some(options) = options {
            config.options(options);
        }
        let manager_config = ManagerConfig {
            recycling_method: recycling,
        };
        let manager = match &self.tls {
            Some(tls) => Manager::from_config(
                config,
                tokio_postgres_rustls::MakeRustlsConnect::new(tls.clone()),
                manager_config,
            ),
            None => Manager::from_config(config, tokio_postgres::NoTls, manager_config),
        };
        Pool::builder(manager)
            .max_size(size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECTION_WAIT))
            .create_timeout(Some(CONNECTION_WAIT))
            .recycle_timeout(Some(CONNECTION_WAIT))
            .build()
            .map_err(|e| Error::Store {
                what: "setting up the connection pool",
                reason: e.to_string(),
            })
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.label)
            .finish_non_exhaustive()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if self.campaigning.get().is_some() {
            // Another replica takes over at once instead of after the lease's expiry.
            let release = self.lease.release(&self.pool);
            self.block(async { tokio::time::timeout(LISTEN_WAIT, release).await })
                .ok();
        }
        // Not `drop`: dropping a runtime waits for its threads, which a caller inside another
        // runtime (vaultd) must not do.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl PostgresStore {
    /// Opens the store that `store.json` in the vault directory `dir` names, creating its
    /// schema if the database has none.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        Self::open_at(&StoreLocation::read(dir)?)
    }

    /// Opens the store at `location`.
    pub fn open_at(location: &StoreLocation) -> Result<Self, Error> {
        let connector = location.connector()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("vault-postgres")
            .enable_all()
            .build()
            .map_err(Error::io(String::from(
                "starting the PostgreSQL client's thread",
            )))?;
        let connect = Connect {
            config: connector.config,
            tls: connector.tls,
        };
        // Verified: a connection is checked before it is handed out again, so a database
        // restart costs the calls in flight, not the store.
        let pool = connect.pool(connector.pool_size, RecyclingMethod::Verified, None)?;
        let store = PostgresStore {
            runtime: Some(runtime),
            pool,
            label: connector.label,
            connect,
            feed: OnceLock::new(),
            max_staleness: connector.max_staleness,
            notify: connector.notify,
            lease: Arc::new(lease::Lease::new(connector.lease_ttl)),
            campaigning: OnceLock::new(),
            audit_pools: OnceLock::new(),
        };
        store.block(async {
            let mut client = store.client().await?;
            migrate(&mut client, &store.label).await
        })?;
        Ok(store)
    }

    /// Waits for `future` on this thread, with the store's runtime as the context its
    /// sockets and timers register with.
    fn block<F: Future>(&self, future: F) -> F::Output {
        let _context = self.runtime.as_ref().map(|r| r.enter());
        futures_executor::block_on(future)
    }

    /// Starts following the change log: the horizon is read now, before the caller caches
    /// anything; the polls and the NOTIFY listener run on the store's runtime.
    fn start_following(&self) -> Result<Arc<ChangeFeed>, Error> {
        let runtime = self.runtime.as_ref().ok_or(Error::Locked)?;
        let feed = Arc::new(ChangeFeed::new(self.max_staleness));
        let wake = Arc::new(tokio::sync::Notify::new());
        if self.notify {
            // Listening before the first poll, so that no write after it goes unannounced;
            // a listener that cannot connect yet only makes changes wait for a poll.
            let (ready, listening) = tokio::sync::oneshot::channel();
            runtime.spawn(follow::listen(
                self.connect.clone(),
                Arc::clone(&wake),
                ready,
            ));
            self.block(async { tokio::time::timeout(LISTEN_WAIT, listening).await })
                .ok();
        }
        let follower = self.block(follow::Follower::start(
            self.pool.clone(),
            Arc::clone(&feed),
            wake,
            Arc::clone(&self.lease),
        ))?;
        runtime.spawn(follower.run());
        Ok(feed)
    }

    /// This replica's name in the leader lease (`host:pid:random`).
    pub fn replica_name(&self) -> &str {
        &self.lease.me
    }

    /// Prunes change-log rows older than `keep` if this replica leads, fenced by its lease
    /// (the leader does this by itself every minute); `None` when it does not lead, else the
    /// rows deleted (none if the lease was lost before the statement ran).
    pub fn prune_change_log(&self, keep: Duration) -> Result<Option<u64>, Error> {
        self.block(follow::prune(&self.pool, &self.lease, keep))
    }

    async fn client(&self) -> Result<Object, Error> {
        self.pool.get().await.map_err(pool_error)
    }

    /// The checked head of `scope`/`key` in `tx`; `None` if the key has none and no rows.
    async fn head(
        &self,
        tx: &impl GenericClient,
        auth: &dyn HeadAuth,
        scope: &str,
        key: &str,
    ) -> Result<Option<KeyHead>, Error> {
        let read = Error::pg("reading the version counter");
        let stmt = tx.prepare_cached(HEAD_SQL).await.map_err(read)?;
        let stored = tx
            .query_opt(&stmt, &[&scope, &key])
            .await
            .and_then(|row| {
                row.map(|row| {
                    Ok((
                        KeyHead::from_stored(row.try_get(0)?, row.try_get(1)?),
                        row.try_get::<_, Option<Vec<u8>>>(2)?.unwrap_or_default(),
                    ))
                })
                .transpose()
            })
            .map_err(read)?;
        if stored.is_none() && self.has_rows(tx, scope, key).await? {
            return Err(heads::rows_without_head(&self.label, scope, key));
        }
        heads::checked(&self.label, auth, scope, key, stored)
    }

    async fn has_rows(
        &self,
        client: &impl GenericClient,
        scope: &str,
        key: &str,
    ) -> Result<bool, Error> {
        let read = Error::pg("reading the secret");
        let stmt = client.prepare_cached(HAS_ROWS_SQL).await.map_err(read)?;
        client
            .query_one(&stmt, &[&scope, &key])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(read)
    }

    /// Takes the write lock of each (scope, key), in order, for the rest of `tx`.
    async fn lock_keys(
        &self,
        tx: &impl GenericClient,
        names: &[(&str, &str)],
    ) -> Result<(), Error> {
        let lock = Error::pg("locking the secret for a write");
        if names.len() > MAX_KEY_LOCKS {
            tx.execute(LOCK_ALL_WRITES_SQL, &[&WRITES_LOCK])
                .await
                .map_err(lock)?;
            return Ok(());
        }
        let stmt = tx.prepare_cached(LOCK_KEY_SQL).await.map_err(lock)?;
        // Sorted: two batches that share keys take their locks in the same order, so they
        // wait for each other instead of deadlocking.
        let mut sorted = names.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        for (scope, key) in sorted {
            tx.execute(&stmt, &[&scope, &key, &WRITES_LOCK])
                .await
                .map_err(lock)?;
        }
        Ok(())
    }

    /// Adds the next version of `scope`/`key` in the write transaction `tx`, which holds the
    /// key's lock.
    async fn add_version(
        &self,
        tx: &impl GenericClient,
        auth: &dyn HeadAuth,
        scope: &str,
        key: &str,
        expected: Option<u64>,
        seal: &mut Sealer<'_>,
    ) -> Result<u64, Error> {
        let head = self.head(tx, auth, scope, key).await?.unwrap_or_default();
        heads::check_expected(scope, key, &head, expected)?;
        let version = head.latest + 1;
        let envelope = seal(version)?;
        let write = Error::pg("writing the secret");
        let stmt = tx.prepare_cached(INSERT_SQL).await.map_err(write)?;
        tx.execute(
            &stmt,
            &[&scope, &key, &(version as i64), &envelope, &now_ms()],
        )
        .await
        .map_err(write)?;
        let head = KeyHead {
            latest: version,
            ..head
        };
        write_head(tx, auth, scope, key, &head).await?;
        log_change(tx, scope, key).await?;
        Ok(version)
    }
}

/// Records that `scope`/`key` changed, in the write's transaction, and wakes the followers
/// when it commits.
async fn log_change(tx: &impl GenericClient, scope: &str, key: &str) -> Result<(), Error> {
    let log = Error::pg("recording the change");
    let stmt = tx.prepare_cached(LOG_CHANGE_SQL).await.map_err(log)?;
    tx.execute(&stmt, &[&scope, &key, &now_ms()])
        .await
        .map_err(log)?;
    // Several in one transaction are delivered once.
    let stmt = tx.prepare_cached(NOTIFY_SQL).await.map_err(log)?;
    tx.execute(&stmt, &[]).await.map_err(log)?;
    Ok(())
}

async fn write_head(
    tx: &impl GenericClient,
    auth: &dyn HeadAuth,
    scope: &str,
    key: &str,
    head: &KeyHead,
) -> Result<(), Error> {
    let write = Error::pg("writing the version counter");
    let stmt = tx.prepare_cached(WRITE_HEAD_SQL).await.map_err(write)?;
    let tag = auth.tag(scope, key, head);
    tx.execute(
        &stmt,
        &[
            &scope,
            &key,
            &(head.latest as i64),
            &(head.deleted_through as i64),
            &tag,
            &now_ms(),
        ],
    )
    .await
    .map_err(write)?;
    Ok(())
}

/// A connection the pool could not hand out, with the database's own reason when it gave one.
fn pool_error(e: deadpool_postgres::PoolError) -> Error {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Backend(e) => Error::pg("connecting to the database")(e),
        PoolError::Timeout(_) => Error::Store {
            what: "connecting to the database",
            reason: "no connection within 10 s: every pooled one is busy, or the database does not answer".into(),
        },
        other => Error::Store {
            what: "connecting to the database",
            reason: other.to_string(),
        },
    }
}

fn count(row: &tokio_postgres::Row) -> Result<u64, tokio_postgres::Error> {
    row.try_get::<_, i64>(0).map(|n| n.max(0) as u64)
}

impl SecretStore for PostgresStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Postgres
    }

    fn set(
        &self,
        scope: &str,
        key: &str,
        expected: Option<u64>,
        auth: &dyn HeadAuth,
        seal: &mut Sealer<'_>,
    ) -> Result<u64, Error> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client
                .transaction()
                .await
                .map_err(Error::pg("starting a write"))?;
            self.lock_keys(&tx, &[(scope, key)]).await?;
            let version = self
                .add_version(&tx, auth, scope, key, expected, seal)
                .await?;
            tx.commit()
                .await
                .map_err(Error::pg("committing the secret"))?;
            Ok(version)
        })
    }

    fn set_many(
        &self,
        names: &[(&str, &str)],
        auth: &dyn HeadAuth,
        seal: &mut BatchSealer<'_>,
    ) -> Result<Vec<u64>, Error> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client
                .transaction()
                .await
                .map_err(Error::pg("starting a write"))?;
            self.lock_keys(&tx, names).await?;
            let mut versions = Vec::with_capacity(names.len());
            for (n, (scope, key)) in names.iter().enumerate() {
                let version = self
                    .add_version(&tx, auth, scope, key, None, &mut |v| seal(n, v))
                    .await?;
                versions.push(version);
            }
            tx.commit()
                .await
                .map_err(Error::pg("committing the secrets"))?;
            Ok(versions)
        })
    }

    fn get(
        &self,
        scope: &str,
        key: &str,
        version: Option<u64>,
        auth: &dyn HeadAuth,
    ) -> Result<(u64, Vec<u8>), Error> {
        self.block(async {
            let client = self.client().await?;
            let read = Error::pg("reading the secret");
            let stmt = client.prepare_cached(GET_SQL).await.map_err(read)?;
            let wanted = version.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
            let row = client
                .query_opt(&stmt, &[&scope, &key, &wanted])
                .await
                .and_then(|row| {
                    row.map(|row| {
                        Ok((
                            KeyHead::from_stored(row.try_get(0)?, row.try_get(1)?),
                            row.try_get::<_, Option<Vec<u8>>>(2)?.unwrap_or_default(),
                            row.try_get::<_, Option<Vec<u8>>>(3)?,
                        ))
                    })
                    .transpose()
                })
                .map_err(read)?;
            let Some((head, tag, envelope)) = row else {
                return Err(if self.has_rows(&client, scope, key).await? {
                    heads::rows_without_head(&self.label, scope, key)
                } else {
                    not_found(scope, key, version)
                });
            };
            let head = heads::checked(&self.label, auth, scope, key, Some((head, tag)))?
                .unwrap_or_default();
            let found =
                heads::resolve_read(&self.label, scope, key, &head, version, envelope.is_some())?;
            Ok((found, envelope.unwrap_or_default()))
        })
    }

    fn delete(&self, scope: &str, key: &str, auth: &dyn HeadAuth) -> Result<(), Error> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client
                .transaction()
                .await
                .map_err(Error::pg("starting a delete"))?;
            self.lock_keys(&tx, &[(scope, key)]).await?;
            let head = match self.head(&tx, auth, scope, key).await? {
                Some(head) if !head.is_empty() => head,
                _ => return Err(not_found(scope, key, None)),
            };
            let delete = Error::pg("deleting the secret");
            let stmt = tx.prepare_cached(DELETE_SQL).await.map_err(delete)?;
            tx.execute(&stmt, &[&scope, &key]).await.map_err(delete)?;
            let head = KeyHead {
                deleted_through: head.latest,
                ..head
            };
            write_head(&tx, auth, scope, key, &head).await?;
            log_change(&tx, scope, key).await?;
            tx.commit()
                .await
                .map_err(Error::pg("committing the delete"))
        })
    }

    fn adopt_heads(&self, auth: &dyn HeadAuth) -> Result<u64, Error> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client
                .transaction()
                .await
                .map_err(Error::pg("starting a write"))?;
            let find = Error::pg("finding keys without a counter");
            // Writers take row locks, which this mode waits for and then keeps out.
            tx.batch_execute("LOCK TABLE secrets IN SHARE ROW EXCLUSIVE MODE")
                .await
                .map_err(find)?;
            let orphans = tx.query(ORPHANS_SQL, &[]).await.map_err(find)?;
            for row in &orphans {
                let (scope, key, latest): (String, String, i64) = (
                    row.try_get(0).map_err(find)?,
                    row.try_get(1).map_err(find)?,
                    row.try_get(2).map_err(find)?,
                );
                let head = KeyHead {
                    latest: latest as u64,
                    deleted_through: 0,
                };
                write_head(&tx, auth, &scope, &key, &head).await?;
            }
            tx.commit()
                .await
                .map_err(Error::pg("committing the counters"))?;
            Ok(orphans.len() as u64)
        })
    }

    fn list(
        &self,
        scope: Option<&str>,
        after: Option<&ListPosition>,
        limit: usize,
    ) -> Result<Vec<SecretInfo>, Error> {
        self.block(async {
            let client = self.client().await?;
            let list = Error::pg("listing secrets");
            let stmt = client
                .prepare_cached(&list_sql(scope.is_some()))
                .await
                .map_err(list)?;
            let (after_scope, after_key) = match after {
                Some(position) => (position.scope.as_str(), position.key.as_str()),
                None => ("", ""),
            };
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = match scope {
                Some(scope) => {
                    client
                        .query(&stmt, &[&scope, &after_scope, &after_key, &limit])
                        .await
                }
                None => {
                    client
                        .query(&stmt, &[&after_scope, &after_key, &limit])
                        .await
                }
            }
            .map_err(list)?;
            rows.iter()
                .map(|row| {
                    Ok(SecretInfo {
                        scope: row.try_get(0)?,
                        key: row.try_get(1)?,
                        version: row.try_get::<_, i64>(2)? as u64,
                        versions: row.try_get::<_, i64>(3)? as u64,
                        created_at: row.try_get(4)?,
                        updated_at: row.try_get(5)?,
                    })
                })
                .collect::<Result<_, tokio_postgres::Error>>()
                .map_err(list)
        })
    }

    fn count(&self) -> Result<u64, Error> {
        self.block(async {
            let client = self.client().await?;
            client
                .query_one(&count_sql(), &[])
                .await
                .and_then(|row| count(&row))
                .map_err(Error::pg("counting secrets"))
        })
    }

    fn count_in(&self, scope: Option<&str>) -> Result<u64, Error> {
        let Some(scope) = scope else {
            return self.count();
        };
        self.block(async {
            let client = self.client().await?;
            let counting = Error::pg("counting secrets");
            let stmt = client
                .prepare_cached(&count_in_scope_sql())
                .await
                .map_err(counting)?;
            client
                .query_one(&stmt, &[&scope])
                .await
                .and_then(|row| count(&row))
                .map_err(counting)
        })
    }

    fn count_versions(&self) -> Result<u64, Error> {
        self.block(async {
            let client = self.client().await?;
            client
                .query_one(COUNT_VERSIONS_SQL, &[])
                .await
                .and_then(|row| count(&row))
                .map_err(Error::pg("counting versions"))
        })
    }

    fn scan(
        &self,
        after: Option<&ScanPosition>,
        limit: usize,
    ) -> Result<Vec<StoredVersion>, Error> {
        self.block(async {
            let client = self.client().await?;
            let scan = Error::pg("scanning secrets");
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = match after {
                None => {
                    let stmt = client.prepare_cached(SCAN_FIRST_SQL).await.map_err(scan)?;
                    client.query(&stmt, &[&limit]).await
                }
                Some(a) => {
                    let stmt = client.prepare_cached(SCAN_AFTER_SQL).await.map_err(scan)?;
                    let at = i64::try_from(a.version).unwrap_or(i64::MAX);
                    client.query(&stmt, &[&a.scope, &a.key, &at, &limit]).await
                }
            }
            .map_err(scan)?;
            rows.iter()
                .map(|row| {
                    Ok(StoredVersion {
                        scope: row.try_get(0)?,
                        key: row.try_get(1)?,
                        version: row.try_get::<_, i64>(2)? as u64,
                        envelope: row.try_get(3)?,
                    })
                })
                .collect::<Result<_, tokio_postgres::Error>>()
                .map_err(scan)
        })
    }

    fn replace(&self, batch: &[Replacement]) -> Result<usize, Error> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client
                .transaction()
                .await
                .map_err(Error::pg("starting a rewrap batch"))?;
            let rewrap = Error::pg("rewrapping");
            let stmt = tx.prepare_cached(REPLACE_SQL).await.map_err(rewrap)?;
            let mut replaced = 0;
            for r in batch {
                let version = r.version as i64;
                replaced += tx
                    .execute(&stmt, &[&r.scope, &r.key, &version, &r.old, &r.new])
                    .await
                    .map_err(rewrap)?;
            }
            tx.commit()
                .await
                .map_err(Error::pg("committing a rewrap batch"))?;
            Ok(replaced as usize)
        })
    }

    fn join_leader_election(&self) -> Result<(), Error> {
        let runtime = self.runtime.as_ref().ok_or(Error::Locked)?;
        self.campaigning.get_or_init(|| {
            runtime.spawn(lease::campaign(Arc::clone(&self.lease), self.pool.clone()));
        });
        Ok(())
    }

    fn leads(&self) -> Option<bool> {
        Some(self.lease.term().is_some())
    }

    fn epoch_ledger(&self) -> Option<&dyn super::EpochLedger> {
        Some(self)
    }

    fn audit_chains(&self) -> Option<&dyn super::AuditChains> {
        Some(self)
    }

    fn change_feed(&self) -> Option<Arc<ChangeFeed>> {
        let feed = self
            .feed
            .get_or_init(|| self.start_following().map_err(|e| e.to_string()));
        match feed {
            Ok(feed) => Some(Arc::clone(feed)),
            Err(e) => {
                // A cache without a feed could serve other replicas' overwritten values.
                log::warn!("cannot follow the store's change log ({e}): values are not cached");
                Some(Arc::new(ChangeFeed::new(Duration::ZERO)))
            }
        }
    }
}
