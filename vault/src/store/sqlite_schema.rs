//! The store's schema, and the migration of older stores to it at open.
//!
//! Version 3 keeps each key's head (its version counter, see `heads.rs`) as a row of the
//! `secrets` table at the reserved version 0, right before the key's versions in the primary
//! key. A get seeks the head and then the version it names: the second seek walks the pages
//! the first one just read, so a get costs one cold descent of one B-tree. Version 2 kept the
//! heads in their own table (`key_heads`), and a get paid two cold descents through two
//! B-trees: with a million secrets, twice the cache and TLB misses of one.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::Error;

/// The schema version this build writes (`PRAGMA user_version`). 2 added the per-key
/// version counters (`key_heads`); 3 moved them into `secrets`, at version 0.
pub(crate) const SCHEMA_VERSION: i64 = 3;

/// A fresh store. A version row has `latest`, `deleted_through` and `tag` NULL; the head row
/// (version 0) has an empty `envelope`, and `written_at` is when the head was last written.
/// The three head columns are last and nullable so that a version 1 or 2 table gains them
/// with `ALTER TABLE ... ADD COLUMN`, which rewrites nothing.
const SCHEMA: &str = "
CREATE TABLE secrets (
    scope           TEXT    NOT NULL,
    key             TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    envelope        BLOB    NOT NULL,
    written_at      INTEGER NOT NULL,
    latest          INTEGER,
    deleted_through INTEGER,
    tag             BLOB,
    PRIMARY KEY (scope, key, version)
) WITHOUT ROWID;
";

/// The head columns a version 1 or 2 `secrets` table lacks.
const HEAD_COLUMNS: &str = "
ALTER TABLE secrets ADD COLUMN latest INTEGER;
ALTER TABLE secrets ADD COLUMN deleted_through INTEGER;
ALTER TABLE secrets ADD COLUMN tag BLOB;
";

/// Version 2's heads become head rows. REPLACE: a row at version 0 was never the vault's
/// (versions start at 1), so the head takes its place.
const MOVE_HEADS: &str = "
INSERT OR REPLACE INTO secrets
    (scope, key, version, envelope, written_at, latest, deleted_through, tag)
    SELECT scope, key, 0, x'', 0, latest, deleted_through, tag FROM key_heads;
DROP TABLE key_heads;
";

/// Brings the store behind `conn` to [`SCHEMA_VERSION`] from `found`, in one transaction:
/// a crash or an error leaves the store as it was, and the next open migrates again. A
/// newer schema is the caller's to refuse.
pub(crate) fn migrate(conn: &mut Connection, found: i64) -> Result<(), Error> {
    if found >= SCHEMA_VERSION {
        return Ok(());
    }
    // IMMEDIATE: another process opening the same old store waits, then finds it migrated.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(Error::store("starting the schema migration"))?;
    let now: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(Error::store("reading the schema version"))?;
    if now < SCHEMA_VERSION {
        migrate_in(&tx)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(Error::store("writing the schema version"))?;
    }
    // Dropped uncommitted (an error above) rolls the whole migration back.
    tx.commit()
        .map_err(Error::store("committing the schema migration"))
}

fn migrate_in(tx: &Connection) -> Result<(), Error> {
    if !has_table(tx, "secrets")? {
        return tx
            .execute_batch(SCHEMA)
            .map_err(Error::store("creating the schema"));
    }
    if !has_column(tx, "secrets", "tag")? {
        tx.execute_batch(HEAD_COLUMNS)
            .map_err(Error::store("adding the head columns"))?;
    }
    if has_table(tx, "key_heads")? {
        tx.execute_batch(MOVE_HEADS)
            .map_err(Error::store("moving the version counters"))?;
    }
    Ok(())
}

fn has_table(conn: &Connection, name: &str) -> Result<bool, Error> {
    conn.query_row(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [name],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
    .map_err(Error::store("reading the schema"))
}

fn has_column(conn: &Connection, table: &str, column: &str) -> Result<bool, Error> {
    conn.query_row(
        "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
    .map_err(Error::store("reading the schema"))
}
