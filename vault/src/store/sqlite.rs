//! The embedded default store: SQLite in WAL mode, one durable transaction per write.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{
    Replacement, ScanPosition, Sealer, SecretInfo, SecretStore, StoreKind, StoredVersion,
    not_found, now_ms,
};
use crate::Error;

/// The store file inside the vault directory.
pub const STORE_FILE: &str = "secrets.db";
/// The schema version this build writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;
/// How long a write waits for another process's write before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS secrets (
    scope      TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    envelope   BLOB    NOT NULL,
    written_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key, version)
) WITHOUT ROWID;
";

/// Versioned envelopes in `secrets.db`. One connection per store, shared behind a mutex;
/// other processes are serialised by SQLite's locks (`BEGIN IMMEDIATE` + busy timeout).
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
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
        let conn = Connection::open(&path).map_err(Error::store("opening the database"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(Error::store("setting the busy timeout"))?;
        // WAL: readers do not block the writer. synchronous=FULL: a commit is on disk
        // (the WAL is fsynced) before `set` returns.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(Error::store("enabling WAL"))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(Error::store("setting synchronous=FULL"))?;
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(Error::store("enabling secure_delete"))?;
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
        if found < SCHEMA_VERSION {
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))
            .map_err(Error::store("creating the schema"))?;
        }
        Ok(Self {
            path,
            conn: Mutex::new(conn),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // Every change is one SQLite transaction, rolled back if unfinished, so the
        // connection is consistent even if a holder panicked.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SecretStore for SqliteStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Sqlite
    }

    fn set(&self, scope: &str, key: &str, seal: &mut Sealer<'_>) -> Result<u64, Error> {
        let mut conn = self.conn();
        // IMMEDIATE takes the write lock now, so the version read below cannot be taken by
        // another process before we insert it.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::store("starting a write"))?;
        let latest: Option<i64> = tx
            .query_row(
                "SELECT MAX(version) FROM secrets WHERE scope = ?1 AND key = ?2",
                params![scope, key],
                |row| row.get(0),
            )
            .map_err(Error::store("reading the latest version"))?;
        let version = latest.map_or(1, |v| v as u64 + 1);
        let envelope = seal(version)?;
        tx.execute(
            "INSERT INTO secrets (scope, key, version, envelope, written_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![scope, key, version as i64, envelope, now_ms()],
        )
        .map_err(Error::store("writing the secret"))?;
        tx.commit().map_err(Error::store("committing the secret"))?;
        Ok(version)
    }

    fn get(&self, scope: &str, key: &str, version: Option<u64>) -> Result<(u64, Vec<u8>), Error> {
        let conn = self.conn();
        let row = match version {
            None => conn.query_row(
                "SELECT version, envelope FROM secrets WHERE scope = ?1 AND key = ?2
                 ORDER BY version DESC LIMIT 1",
                params![scope, key],
                |row| Ok((row.get::<_, i64>(0)?, row.get(1)?)),
            ),
            Some(v) => conn.query_row(
                "SELECT version, envelope FROM secrets WHERE scope = ?1 AND key = ?2 AND version = ?3",
                params![scope, key, i64::try_from(v).unwrap_or(i64::MAX)],
                |row| Ok((row.get::<_, i64>(0)?, row.get(1)?)),
            ),
        };
        row.optional()
            .map_err(Error::store("reading the secret"))?
            .map(|(v, envelope)| (v as u64, envelope))
            .ok_or_else(|| not_found(scope, key, version))
    }

    fn delete(&self, scope: &str, key: &str) -> Result<(), Error> {
        let deleted = self
            .conn()
            .execute(
                "DELETE FROM secrets WHERE scope = ?1 AND key = ?2",
                params![scope, key],
            )
            .map_err(Error::store("deleting the secret"))?;
        if deleted == 0 {
            return Err(not_found(scope, key, None));
        }
        Ok(())
    }

    fn list(&self, scope: Option<&str>) -> Result<Vec<SecretInfo>, Error> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT scope, key, MAX(version), COUNT(*), MIN(written_at), MAX(written_at)
                 FROM secrets WHERE ?1 IS NULL OR scope = ?1
                 GROUP BY scope, key ORDER BY scope, key",
            )
            .map_err(Error::store("listing secrets"))?;
        let rows = stmt
            .query_map(params![scope], |row| {
                Ok(SecretInfo {
                    scope: row.get(0)?,
                    key: row.get(1)?,
                    version: row.get::<_, i64>(2)? as u64,
                    versions: row.get::<_, i64>(3)? as u64,
                    created_at: row.get(4)?,
                    updated_at: row.get(5)?,
                })
            })
            .map_err(Error::store("listing secrets"))?;
        rows.collect::<Result<_, _>>()
            .map_err(Error::store("listing secrets"))
    }

    fn count(&self) -> Result<u64, Error> {
        self.conn()
            .query_row(
                "SELECT COUNT(*) FROM (SELECT 1 FROM secrets GROUP BY scope, key)",
                [],
                |row| row.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(Error::store("counting secrets"))
    }

    fn count_versions(&self) -> Result<u64, Error> {
        self.conn()
            .query_row("SELECT COUNT(*) FROM secrets", [], |row| {
                row.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(Error::store("counting versions"))
    }

    fn scan(
        &self,
        after: Option<&ScanPosition>,
        limit: usize,
    ) -> Result<Vec<StoredVersion>, Error> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT scope, key, version, envelope FROM secrets
                 WHERE ?1 IS NULL OR (scope, key, version) > (?1, ?2, ?3)
                 ORDER BY scope, key, version LIMIT ?4",
            )
            .map_err(Error::store("scanning secrets"))?;
        let (scope, key, version) = match after {
            Some(a) => (
                Some(a.scope.as_str()),
                Some(a.key.as_str()),
                Some(a.version as i64),
            ),
            None => (None, None, None),
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![scope, key, version, limit], |row| {
                Ok(StoredVersion {
                    scope: row.get(0)?,
                    key: row.get(1)?,
                    version: row.get::<_, i64>(2)? as u64,
                    envelope: row.get(3)?,
                })
            })
            .map_err(Error::store("scanning secrets"))?;
        rows.collect::<Result<_, _>>()
            .map_err(Error::store("scanning secrets"))
    }

    fn replace(&self, batch: &[Replacement]) -> Result<usize, Error> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::store("starting a rewrap batch"))?;
        let mut replaced = 0;
        {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE secrets SET envelope = ?5
                     WHERE scope = ?1 AND key = ?2 AND version = ?3 AND envelope = ?4",
                )
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
