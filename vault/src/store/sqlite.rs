//! The embedded default store: SQLite in WAL mode, one durable transaction per write.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::heads::{self, HeadAuth, KeyHead};
use super::sqlite_schema::{self as schema, SCHEMA_VERSION};
use super::{
    BatchSealer, ListPosition, Replacement, ScanPosition, Sealer, SecretInfo, SecretStore,
    StoreKind, StoredVersion, not_found, now_ms,
};
use crate::Error;

/// The store file inside the vault directory.
pub const STORE_FILE: &str = "secrets.db";
/// How long a write waits for another process's write before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The versions a head says exist (`h` the head, `s` the version row).
const LIVE: &str = "s.version > h.deleted_through AND s.version <= h.latest";

/// How much of the file a connection maps (`PRAGMA mmap_size`): all of it, up to SQLite's
/// build limit (2 GiB, which it clamps to). Reads of mapped pages are memory reads of the
/// OS page cache, shared by every process that opens the file (vaultd, `vaultctl` in local
/// mode), instead of a `pread` into a private copy per connection: with a million secrets
/// a get no longer pays a system call per B-tree level. The map is read-only (SQLite writes
/// through `write` as before), so `synchronous=FULL`, WAL and `secure_delete` behave as
/// without it; pages still in the WAL are read from the WAL. What changes: an I/O error
/// while reading a mapped page (a failing disk, or the file truncated by something other
/// than SQLite) ends the process with SIGBUS instead of returning an error. A crash leaves
/// the file as any crash does (old or new), so the store stays readable.
const MMAP_SIZE: i64 = 1 << 31;
/// The private page cache of a connection, in KiB (`PRAGMA cache_size` takes negative
/// numbers as KiB): holds the pages a write transaction changes and pages read from the
/// WAL (which are not mapped). Allocated as used, so a small vault costs what it did.
const CACHE_KIB: i64 = 32 << 10;

/// The page size of a new store (`PRAGMA page_size`; a store that has pages keeps its own).
/// 16 KiB rather than SQLite's 4 KiB: the B-tree of a million secrets is a level shallower,
/// so a get's descent misses the CPU caches and the TLB on fewer pages. Measured with the
/// store benchmark in alternating runs: get p50 at 1,000,000 secrets 1.44 and 1.48 times the
/// p50 at 1,000, against 1.56 and 1.56 with 4 KiB pages.
const NEW_PAGE_SIZE: i64 = 16 << 10;

/// The head and the version a get reads, in one statement (one consistent snapshot). The
/// head row (version 0) and the key's versions are neighbours in the primary key: the seek
/// of the version walks the pages the seek of the head just read.
pub(crate) const GET_SQL: &str = "SELECT h.latest, h.deleted_through, h.tag, s.envelope
     FROM secrets h
     LEFT JOIN secrets s ON s.scope = h.scope AND s.key = h.key
         AND s.version = COALESCE(?3, h.latest) AND s.version > 0
     WHERE h.scope = ?1 AND h.key = ?2 AND h.version = 0";
/// A key's head inside a write.
pub(crate) const HEAD_SQL: &str = "SELECT latest, deleted_through, tag FROM secrets
     WHERE scope = ?1 AND key = ?2 AND version = 0";
/// Whether a key has version rows (only asked when it has no head).
pub(crate) const HAS_ROWS_SQL: &str =
    "SELECT EXISTS (SELECT 1 FROM secrets WHERE scope = ?1 AND key = ?2 AND version > 0)";
/// The first page of a scan (versions only, never a head).
pub(crate) const SCAN_FIRST_SQL: &str = "SELECT scope, key, version, envelope FROM secrets
     WHERE version > 0 ORDER BY scope, key, version LIMIT ?1";
/// A later page: a seek to the position in the primary key, so each page costs the same
/// however far the scan has gone (one statement with `?1 IS NULL OR ...` walks from the start).
pub(crate) const SCAN_AFTER_SQL: &str = "SELECT scope, key, version, envelope FROM secrets
     WHERE (scope, key, version) > (?1, ?2, ?3) AND version > 0
     ORDER BY scope, key, version LIMIT ?4";
/// One compare-and-swap of a rewrap batch.
pub(crate) const REPLACE_SQL: &str = "UPDATE secrets SET envelope = ?5
     WHERE scope = ?1 AND key = ?2 AND version = ?3 AND version > 0 AND envelope = ?4";
/// A new version.
pub(crate) const INSERT_SQL: &str =
    "INSERT OR REPLACE INTO secrets (scope, key, version, envelope, written_at)
     VALUES (?1, ?2, ?3, ?4, ?5)";
/// A key's new head: the row at version 0.
pub(crate) const WRITE_HEAD_SQL: &str = "INSERT OR REPLACE INTO secrets
     (scope, key, version, envelope, written_at, latest, deleted_through, tag)
     VALUES (?1, ?2, 0, x'', ?6, ?3, ?4, ?5)";
/// Every version of a key, on delete (the head stays).
pub(crate) const DELETE_SQL: &str =
    "DELETE FROM secrets WHERE scope = ?1 AND key = ?2 AND version > 0";
/// Keys with versions but no head (stores made before heads).
pub(crate) const ORPHANS_SQL: &str = "SELECT s.scope, s.key, MAX(s.version) FROM secrets s
     WHERE s.version > 0 AND NOT EXISTS (SELECT 1 FROM secrets h
         WHERE h.scope = s.scope AND h.key = s.key AND h.version = 0)
     GROUP BY s.scope, s.key";

/// One page of the metadata `list` returns: of every secret (`None`) or of one scope, which
/// is a range of the primary key rather than a walk of every secret. ?1 is the scope (unused
/// without one), ?2 and ?3 the scope and key the page starts after, ?4 the page size: the
/// walk seeks to the page's first key and stops after its last.
pub(crate) fn list_sql(in_scope: bool) -> String {
    let filter = if in_scope { "s.scope = ?1 AND " } else { "" };
    format!(
        "SELECT s.scope, s.key, MAX(s.version), COUNT(*), MIN(s.written_at), MAX(s.written_at)
         FROM secrets s JOIN secrets h ON h.scope = s.scope AND h.key = s.key AND h.version = 0
         WHERE {filter}(s.scope, s.key) > (?2, ?3) AND s.version > 0 AND {LIVE}
         GROUP BY s.scope, s.key ORDER BY s.scope, s.key LIMIT ?4"
    )
}

/// How many keys have a live version: every head row, each seeking its versions.
pub(crate) fn count_sql() -> String {
    format!(
        "SELECT COUNT(*) FROM secrets h WHERE h.version = 0 AND EXISTS
         (SELECT 1 FROM secrets s WHERE s.scope = h.scope AND s.key = h.key
             AND s.version > 0 AND {LIVE})"
    )
}

/// How many keys of one scope (?1) have a live version: the scope's head rows, a range of
/// the primary key, each seeking its versions (the count of every scope is [`count_sql`]).
pub(crate) fn count_in_scope_sql() -> String {
    format!(
        "SELECT COUNT(*) FROM secrets h WHERE h.scope = ?1 AND h.version = 0 AND EXISTS
         (SELECT 1 FROM secrets s WHERE s.scope = h.scope AND s.key = h.key
             AND s.version > 0 AND {LIVE})"
    )
}

/// Sizes the map and the private cache of `conn` (see [`MMAP_SIZE`], [`CACHE_KIB`]).
fn size_caches(conn: &Connection) -> Result<(), Error> {
    // mmap_size answers with the size it took: read it, or the statement is left pending.
    conn.pragma_update_and_check(None, "mmap_size", MMAP_SIZE, |_| Ok(()))
        .map_err(Error::store("mapping the database"))?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)
        .map_err(Error::store("sizing the page cache"))
}

/// Versioned envelopes in `secrets.db`. One connection per store, shared behind a mutex;
/// other processes are serialised by SQLite's locks (`BEGIN IMMEDIATE` + busy timeout).
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Whether this connection created or migrated the schema (`total_changes` does not
    /// count it).
    created_schema: bool,
}

impl Drop for SqliteStore {
    /// A connection that changed nothing (a `vaultctl get`, one process per read) closes
    /// without the checkpoint SQLite runs when the last connection closes, and so leaves the
    /// `-wal` and `-shm` files in place instead of deleting them, for the next reader to open
    /// rather than create again. Durability is untouched: every commit is in the WAL (fsynced)
    /// or already in the database, and the next opener reads the WAL as always; a connection
    /// that wrote still checkpoints and deletes them on close, so that once every writer has
    /// closed, `secrets.db` alone holds every committed write, as before.
    fn drop(&mut self) {
        let conn = self.conn.get_mut().unwrap_or_else(|p| p.into_inner());
        if !self.created_schema && conn.total_changes() == 0 {
            // If SQLite refuses, the close checkpoints as it always did.
            let _ = conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true);
        }
    }
}

impl SqliteStore {
    /// Opens (creating if absent) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(STORE_FILE);
        // Create the file 0600 ourselves: SQLite would use the umask, and its -wal and -shm
        // files copy the database file's mode.
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(Error::io(format!("creating {}", path.display())))?;
        let mut conn = Connection::open(&path).map_err(Error::store("opening the database"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(Error::store("setting the busy timeout"))?;
        // Before journal_mode: the first statement that writes the file fixes its page size.
        conn.pragma_update(None, "page_size", NEW_PAGE_SIZE)
            .map_err(Error::store("setting the page size"))?;
        // WAL: readers do not block the writer. synchronous=FULL: a commit is on disk
        // (the WAL is fsynced) before `set` returns.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(Error::store("enabling WAL"))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(Error::store("setting synchronous=FULL"))?;
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(Error::store("enabling secure_delete"))?;
        size_caches(&conn)?;
        let found: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(Error::store("reading the schema version"))?;
        if found > SCHEMA_VERSION {
            return Err(Error::StoreFormat {
                path,
                found,
                supported: SCHEMA_VERSION,
            });
        }
        // A migration (or a new store's schema) writes, which `total_changes` does not count.
        let created_schema = found < SCHEMA_VERSION;
        schema::migrate(&mut conn, found)?;
        Ok(Self {
            path,
            conn: Mutex::new(conn),
            created_schema,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The checked head of `scope`/`key` in `tx`; `None` if the key has none and no rows.
    fn head(
        &self,
        tx: &Connection,
        auth: &dyn HeadAuth,
        scope: &str,
        key: &str,
    ) -> Result<Option<KeyHead>, Error> {
        let stored = tx
            .prepare_cached(HEAD_SQL)
            .and_then(|mut stmt| {
                stmt.query_row(params![scope, key], |row| {
                    Ok((
                        KeyHead::from_stored(row.get(0)?, row.get(1)?),
                        row.get::<_, Option<Vec<u8>>>(2)?.unwrap_or_default(),
                    ))
                })
                .optional()
            })
            .map_err(Error::store("reading the version counter"))?;
        if stored.is_none() && has_rows(tx, scope, key)? {
            return Err(heads::rows_without_head(&self.path, scope, key));
        }
        heads::checked(&self.path, auth, scope, key, stored)
    }

    /// Adds the next version of `scope`/`key` in the write transaction `tx`.
    fn add_version(
        &self,
        tx: &Connection,
        auth: &dyn HeadAuth,
        scope: &str,
        key: &str,
        expected: Option<u64>,
        seal: &mut Sealer<'_>,
    ) -> Result<u64, Error> {
        let head = self.head(tx, auth, scope, key)?.unwrap_or_default();
        heads::check_expected(scope, key, &head, expected)?;
        let version = head.latest + 1;
        let envelope = seal(version)?;
        // REPLACE: a row someone put at this version before the vault wrote it is not ours.
        tx.prepare_cached(INSERT_SQL)
            .and_then(|mut stmt| {
                stmt.execute(params![scope, key, version as i64, envelope, now_ms()])
            })
            .map_err(Error::store("writing the secret"))?;
        let head = KeyHead {
            latest: version,
            ..head
        };
        write_head(tx, auth, scope, key, &head)?;
        Ok(version)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // Every change is one SQLite transaction, rolled back if unfinished, so the
        // connection is consistent even if a holder panicked.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn has_rows(conn: &Connection, scope: &str, key: &str) -> Result<bool, Error> {
    conn.prepare_cached(HAS_ROWS_SQL)
        .and_then(|mut stmt| stmt.query_row(params![scope, key], |row| row.get(0)))
        .map_err(Error::store("reading the secret"))
}

fn write_head(
    tx: &Connection,
    auth: &dyn HeadAuth,
    scope: &str,
    key: &str,
    head: &KeyHead,
) -> Result<(), Error> {
    tx.prepare_cached(WRITE_HEAD_SQL)
        .and_then(|mut stmt| {
            stmt.execute(params![
                scope,
                key,
                head.latest as i64,
                head.deleted_through as i64,
                auth.tag(scope, key, head),
                now_ms()
            ])
        })
        .map_err(Error::store("writing the version counter"))?;
    Ok(())
}

impl SecretStore for SqliteStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Sqlite
    }

    fn set(
        &self,
        scope: &str,
        key: &str,
        expected: Option<u64>,
        auth: &dyn HeadAuth,
        seal: &mut Sealer<'_>,
    ) -> Result<u64, Error> {
        let mut conn = self.conn();
        // IMMEDIATE takes the write lock now, so the version read below cannot be taken by
        // another process before we insert it.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::store("starting a write"))?;
        let version = self.add_version(&tx, auth, scope, key, expected, seal)?;
        tx.commit().map_err(Error::store("committing the secret"))?;
        Ok(version)
    }

    fn set_many(
        &self,
        names: &[(&str, &str)],
        auth: &dyn HeadAuth,
        seal: &mut BatchSealer<'_>,
    ) -> Result<Vec<u64>, Error> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::store("starting a write"))?;
        let mut versions = Vec::with_capacity(names.len());
        for (n, (scope, key)) in names.iter().enumerate() {
            let version = self.add_version(&tx, auth, scope, key, None, &mut |v| seal(n, v))?;
            versions.push(version);
        }
        tx.commit()
            .map_err(Error::store("committing the secrets"))?;
        Ok(versions)
    }

    fn get(
        &self,
        scope: &str,
        key: &str,
        version: Option<u64>,
        auth: &dyn HeadAuth,
    ) -> Result<(u64, Vec<u8>), Error> {
        let conn = self.conn();
        // One statement: the head and the row it points at, read at the same moment.
        let row = conn
            .prepare_cached(GET_SQL)
            .and_then(|mut stmt| {
                stmt.query_row(
                    params![
                        scope,
                        key,
                        version.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
                    ],
                    |row| {
                        Ok((
                            KeyHead::from_stored(row.get(0)?, row.get(1)?),
                            row.get::<_, Option<Vec<u8>>>(2)?.unwrap_or_default(),
                            row.get::<_, Option<Vec<u8>>>(3)?,
                        ))
                    },
                )
                .optional()
            })
            .map_err(Error::store("reading the secret"))?;
        let Some((head, tag, envelope)) = row else {
            return Err(if has_rows(&conn, scope, key)? {
                heads::rows_without_head(&self.path, scope, key)
            } else {
                not_found(scope, key, version)
            });
        };
        let head =
            heads::checked(&self.path, auth, scope, key, Some((head, tag)))?.unwrap_or_default();
        let found =
            heads::resolve_read(&self.path, scope, key, &head, version, envelope.is_some())?;
        Ok((found, envelope.unwrap_or_default()))
    }

    fn delete(&self, scope: &str, key: &str, auth: &dyn HeadAuth) -> Result<(), Error> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::store("starting a delete"))?;
        let head = match self.head(&tx, auth, scope, key)? {
            Some(head) if !head.is_empty() => head,
            _ => return Err(not_found(scope, key, None)),
        };
        tx.prepare_cached(DELETE_SQL)
            .and_then(|mut stmt| stmt.execute(params![scope, key]))
            .map_err(Error::store("deleting the secret"))?;
        let head = KeyHead {
            deleted_through: head.latest,
            ..head
        };
        write_head(&tx, auth, scope, key, &head)?;
        tx.commit().map_err(Error::store("committing the delete"))?;
        Ok(())
    }

    fn adopt_heads(&self, auth: &dyn HeadAuth) -> Result<u64, Error> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::store("starting a write"))?;
        let orphans: Vec<(String, String, i64)> = {
            let mut stmt = tx
                .prepare(ORPHANS_SQL)
                .map_err(Error::store("finding keys without a counter"))?;
            stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .and_then(|rows| rows.collect::<Result<_, _>>())
                .map_err(Error::store("finding keys without a counter"))?
        };
        for (scope, key, latest) in &orphans {
            let head = KeyHead {
                latest: *latest as u64,
                deleted_through: 0,
            };
            write_head(&tx, auth, scope, key, &head)?;
        }
        tx.commit()
            .map_err(Error::store("committing the counters"))?;
        Ok(orphans.len() as u64)
    }

    fn list(
        &self,
        scope: Option<&str>,
        after: Option<&ListPosition>,
        limit: usize,
    ) -> Result<Vec<SecretInfo>, Error> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&list_sql(scope.is_some()))
            .map_err(Error::store("listing secrets"))?;
        let info = |row: &rusqlite::Row<'_>| {
            Ok(SecretInfo {
                scope: row.get(0)?,
                key: row.get(1)?,
                version: row.get::<_, i64>(2)? as u64,
                versions: row.get::<_, i64>(3)? as u64,
                created_at: row.get(4)?,
                updated_at: row.get(5)?,
            })
        };
        // From the first key: every scope and key sorts after ("", "").
        let (after_scope, after_key) = match after {
            Some(position) => (position.scope.as_str(), position.key.as_str()),
            None => ("", ""),
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        stmt.query_map(params![scope, after_scope, after_key, limit], info)
            .map_err(Error::store("listing secrets"))?
            .collect::<Result<_, _>>()
            .map_err(Error::store("listing secrets"))
    }

    fn count(&self) -> Result<u64, Error> {
        self.conn()
            .query_row(&count_sql(), [], |row| row.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(Error::store("counting secrets"))
    }

    fn count_in(&self, scope: Option<&str>) -> Result<u64, Error> {
        let Some(scope) = scope else {
            return self.count();
        };
        self.conn()
            .prepare_cached(&count_in_scope_sql())
            .and_then(|mut stmt| stmt.query_row(params![scope], |row| row.get::<_, i64>(0)))
            .map(|n| n as u64)
            .map_err(Error::store("counting secrets"))
    }

    fn count_versions(&self) -> Result<u64, Error> {
        self.conn()
            .query_row(
                "SELECT COUNT(*) FROM secrets WHERE version > 0",
                [],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(Error::store("counting versions"))
    }

    fn scan(
        &self,
        after: Option<&ScanPosition>,
        limit: usize,
    ) -> Result<Vec<StoredVersion>, Error> {
        let conn = self.conn();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let version = |row: &rusqlite::Row<'_>| {
            Ok(StoredVersion {
                scope: row.get(0)?,
                key: row.get(1)?,
                version: row.get::<_, i64>(2)? as u64,
                envelope: row.get(3)?,
            })
        };
        let found = match after {
            None => conn.prepare_cached(SCAN_FIRST_SQL).and_then(|mut stmt| {
                stmt.query_map(params![limit], version)?
                    .collect::<Result<_, _>>()
            }),
            Some(a) => conn.prepare_cached(SCAN_AFTER_SQL).and_then(|mut stmt| {
                let at = i64::try_from(a.version).unwrap_or(i64::MAX);
                stmt.query_map(params![a.scope, a.key, at, limit], version)?
                    .collect::<Result<_, _>>()
            }),
        };
        found.map_err(Error::store("scanning secrets"))
    }

    fn replace(&self, batch: &[Replacement]) -> Result<usize, Error> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::store("starting a rewrap batch"))?;
        let mut replaced = 0;
        {
            let mut stmt = tx
                .prepare_cached(REPLACE_SQL)
                .map_err(Error::store("rewrapping"))?;
            for r in batch {
                replaced += stmt
                    .execute(params![r.scope, r.key, r.version as i64, r.old, r.new])
                    .map_err(Error::store("rewrapping"))?;
            }
        }
        tx.commit()
            .map_err(Error::store("committing a rewrap batch"))?;
        Ok(replaced)
    }
}

#[cfg(test)]
#[path = "sqlite_plans.rs"]
mod plans;
