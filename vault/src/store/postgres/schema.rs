//! The PostgreSQL store's schema, its statements, and its creation at open.
//!
//! The table mirrors the SQLite store's schema 3: each key's head (its version counter, see
//! `heads.rs`) is the row at the reserved version 0, beside the key's versions in the
//! primary key. Names sort bytewise (`COLLATE "C"`), as in SQLite, so listing and scan
//! positions mean the same on both stores whatever the database's locale.
//!
//! The schema is versioned in `vault_schema`. It is created (and later migrated) under a
//! transaction-scoped advisory lock, so replicas starting together wait for each other
//! instead of racing on `CREATE TABLE`; a migration crate would add a dependency and still
//! need that lock, for one table.

use crate::Error;

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = 2;

/// The advisory lock key the schema is created under ("vault" in ASCII).
const SCHEMA_LOCK: i64 = 0x0076_6175_6c74;

const SCHEMA: &str = r#"
CREATE TABLE secrets (
    scope           text COLLATE "C" NOT NULL,
    key             text COLLATE "C" NOT NULL,
    version         bigint NOT NULL,
    envelope        bytea  NOT NULL,
    written_at      bigint NOT NULL,
    latest          bigint,
    deleted_through bigint,
    tag             bytea,
    PRIMARY KEY (scope, key, version)
);
CREATE TABLE changes (
    seq   bigserial PRIMARY KEY,
    xid   bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    scope text COLLATE "C" NOT NULL,
    key   text COLLATE "C" NOT NULL,
    at    bigint NOT NULL
);
CREATE INDEX changes_by_xid ON changes (xid);
CREATE INDEX changes_by_time ON changes (at);
CREATE TABLE epochs (
    number       integer PRIMARY KEY,
    record       text   NOT NULL,
    upgrade      bytea,
    wraps_leased bigint NOT NULL
);
CREATE SEQUENCE leader_terms;
CREATE TABLE leader_lease (
    name       text PRIMARY KEY,
    holder     text NOT NULL,
    term       bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
"#;

/// Version 2: the replicas' audit chains (see `audit.rs`). Records and checkpoints are only
/// ever inserted, so the role vaultd connects as needs no UPDATE or DELETE on them; a
/// chain's head row is the one row updated.
const SCHEMA_2: &str = r#"
CREATE TABLE audit_chains (
    chain      text COLLATE "C" PRIMARY KEY,
    started_ms bigint NOT NULL,
    start_seq  bigint NOT NULL,
    start_mac  text   NOT NULL,
    seq        bigint NOT NULL,
    mac        text   NOT NULL,
    tag        text   NOT NULL
);
CREATE TABLE audit_records (
    chain text COLLATE "C" NOT NULL,
    seq   bigint NOT NULL,
    line  text   NOT NULL,
    PRIMARY KEY (chain, seq)
);
CREATE TABLE audit_checkpoints (
    number bigint PRIMARY KEY,
    ts_ms  bigint NOT NULL,
    term   bigint NOT NULL,
    prev   text   NOT NULL,
    mac    text   NOT NULL
);
CREATE TABLE audit_checkpoint_heads (
    number bigint NOT NULL,
    chain  text COLLATE "C" NOT NULL,
    seq    bigint NOT NULL,
    mac    text   NOT NULL,
    PRIMARY KEY (number, chain)
);
CREATE INDEX audit_checkpoint_heads_by_chain ON audit_checkpoint_heads (chain, seq);
"#;

/// The channel writers notify and followers listen on.
pub(super) const CHANGES_CHANNEL: &str = "vault_changes";
/// A change, in the transaction of the write it records (`changes` is the change log that
/// replicas follow to keep their caches: see `follow.rs`).
pub(super) const LOG_CHANGE_SQL: &str = "INSERT INTO changes (scope, key, at) VALUES ($1, $2, $3)";
/// A wake-up for the followers, sent when the write commits (never if it rolls back).
pub(super) const NOTIFY_SQL: &str = "SELECT pg_notify('vault_changes', '')";
/// The oldest transaction still running when a follower's snapshot was taken: every
/// transaction below it had ended, so its changes are in that snapshot or an earlier one.
pub(super) const HORIZON_SQL: &str = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint";
/// The changes of transactions at or above a follower's previous horizon (some seen before).
pub(super) const CHANGES_SINCE_SQL: &str =
    "SELECT seq, xid, scope, key FROM changes WHERE xid >= $1 LIMIT $2";
/// Changes older than every follower's need (in milliseconds since the epoch), pruned by
/// the leader: fenced, so a replica whose lease ended (or whose row was deleted) deletes
/// nothing.
pub(super) const PRUNE_CHANGES_SQL: &str = "DELETE FROM changes WHERE at < $1 AND EXISTS
     (SELECT 1 FROM leader_lease WHERE name = 'leader' AND holder = $2 AND term = $3
         AND expires_at > now())";
/// Takes the leader lease if nobody holds it or its holder let it expire, with a new term
/// (from a sequence: terms only grow, even if the row is deleted). Database clock only.
pub(super) const ACQUIRE_LEASE_SQL: &str =
    "INSERT INTO leader_lease (name, holder, term, expires_at)
     VALUES ('leader', $1, nextval('leader_terms'), now() + $2::bigint * interval '1 millisecond')
     ON CONFLICT (name) DO UPDATE
         SET holder = EXCLUDED.holder, term = EXCLUDED.term, expires_at = EXCLUDED.expires_at
         WHERE leader_lease.expires_at <= now()
     RETURNING term";
/// Extends the lease this replica holds; never creates or takes one (a row deleted or taken
/// over answers nothing, and the holder stops leading).
pub(super) const RENEW_LEASE_SQL: &str = "UPDATE leader_lease
     SET expires_at = now() + $3::bigint * interval '1 millisecond'
     WHERE name = 'leader' AND holder = $1 AND term = $2 AND expires_at > now()
     RETURNING term";
/// Gives the lease up at shutdown, so another replica need not wait for it to expire.
pub(super) const RELEASE_LEASE_SQL: &str =
    "DELETE FROM leader_lease WHERE name = 'leader' AND holder = $1 AND term = $2";

/// The versions a head says exist (`h` the head, `s` the version row).
const LIVE: &str = "s.version > h.deleted_through AND s.version <= h.latest";

/// The advisory lock every write holds shared and a large batch holds alone ("writes").
pub(super) const WRITES_LOCK: i64 = 0x7772_6974_6573;
/// Serialises the writes of one key, across connections and replicas, until the transaction
/// ends: the head read after it is the newest, and two first writes of a key cannot both
/// insert its head. The shared lock on [`WRITES_LOCK`] lets a large batch keep every write
/// out instead.
pub(super) const LOCK_KEY_SQL: &str = "SELECT pg_advisory_xact_lock_shared($3),
     pg_advisory_xact_lock(hashtextextended($1 || chr(10) || $2, 0))";
/// A large batch's lock: one entry in the server's lock table instead of one per key (the
/// table holds a few thousand at default settings), keeping all other writes out until the
/// batch commits.
pub(super) const LOCK_ALL_WRITES_SQL: &str = "SELECT pg_advisory_xact_lock($1)";
/// The head and the version a get reads, in one statement (one snapshot).
pub(super) const GET_SQL: &str = "SELECT h.latest, h.deleted_through, h.tag, s.envelope
     FROM secrets h
     LEFT JOIN secrets s ON s.scope = h.scope AND s.key = h.key
         AND s.version = COALESCE($3, h.latest) AND s.version > 0
     WHERE h.scope = $1 AND h.key = $2 AND h.version = 0";
/// A key's head inside a write.
pub(super) const HEAD_SQL: &str = "SELECT latest, deleted_through, tag FROM secrets
     WHERE scope = $1 AND key = $2 AND version = 0";
/// Whether a key has version rows (only asked when it has no head).
pub(super) const HAS_ROWS_SQL: &str =
    "SELECT EXISTS (SELECT 1 FROM secrets WHERE scope = $1 AND key = $2 AND version > 0)";
/// A new version; a row someone put at this version before the vault wrote it is replaced.
pub(super) const INSERT_SQL: &str =
    "INSERT INTO secrets (scope, key, version, envelope, written_at) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (scope, key, version) DO UPDATE
         SET envelope = EXCLUDED.envelope, written_at = EXCLUDED.written_at,
             latest = NULL, deleted_through = NULL, tag = NULL";
/// A key's new head: the row at version 0.
pub(super) const WRITE_HEAD_SQL: &str = "INSERT INTO secrets
     (scope, key, version, envelope, written_at, latest, deleted_through, tag)
     VALUES ($1, $2, 0, '', $6, $3, $4, $5)
     ON CONFLICT (scope, key, version) DO UPDATE
         SET written_at = EXCLUDED.written_at, latest = EXCLUDED.latest,
             deleted_through = EXCLUDED.deleted_through, tag = EXCLUDED.tag";
/// Every version of a key, on delete (the head stays).
pub(super) const DELETE_SQL: &str =
    "DELETE FROM secrets WHERE scope = $1 AND key = $2 AND version > 0";
/// Keys with versions but no head.
pub(super) const ORPHANS_SQL: &str = "SELECT s.scope, s.key, MAX(s.version) FROM secrets s
     WHERE s.version > 0 AND NOT EXISTS (SELECT 1 FROM secrets h
         WHERE h.scope = s.scope AND h.key = s.key AND h.version = 0)
     GROUP BY s.scope, s.key";
/// The first page of a scan (versions only).
pub(super) const SCAN_FIRST_SQL: &str = "SELECT scope, key, version, envelope FROM secrets
     WHERE version > 0 ORDER BY scope, key, version LIMIT $1";
/// A later page: a seek to the position in the primary key.
pub(super) const SCAN_AFTER_SQL: &str = "SELECT scope, key, version, envelope FROM secrets
     WHERE (scope, key, version) > ($1, $2, $3) AND version > 0
     ORDER BY scope, key, version LIMIT $4";
/// One compare-and-swap of a rewrap batch.
pub(super) const REPLACE_SQL: &str = "UPDATE secrets SET envelope = $5
     WHERE scope = $1 AND key = $2 AND version = $3 AND version > 0 AND envelope = $4";
/// How many versions are stored.
pub(super) const COUNT_VERSIONS_SQL: &str = "SELECT COUNT(*) FROM secrets WHERE version > 0";

/// One page of `list`: of every secret, or of one scope (`$1`); the page starts after the
/// scope and key that follow, and holds at most the last parameter's number of secrets.
pub(super) fn list_sql(in_scope: bool) -> String {
    let (filter, after, limit) = if in_scope {
        ("s.scope = $1 AND ", "($2, $3)", "$4")
    } else {
        ("", "($1, $2)", "$3")
    };
    format!(
        "SELECT s.scope, s.key, MAX(s.version), COUNT(*), MIN(s.written_at), MAX(s.written_at)
         FROM secrets s JOIN secrets h ON h.scope = s.scope AND h.key = s.key AND h.version = 0
         WHERE {filter}(s.scope, s.key) > {after} AND s.version > 0 AND {LIVE}
         GROUP BY s.scope, s.key ORDER BY s.scope, s.key LIMIT {limit}"
    )
}

/// How many keys have a live version.
pub(super) fn count_sql() -> String {
    format!(
        "SELECT COUNT(*) FROM secrets h WHERE h.version = 0 AND EXISTS
         (SELECT 1 FROM secrets s WHERE s.scope = h.scope AND s.key = h.key
             AND s.version > 0 AND {LIVE})"
    )
}

/// How many keys of one scope (`$1`) have a live version: the count of [`count_sql`] over
/// the scope's range of the primary key.
pub(super) fn count_in_scope_sql() -> String {
    format!(
        "SELECT COUNT(*) FROM secrets h WHERE h.scope = $1 AND h.version = 0 AND EXISTS
         (SELECT 1 FROM secrets s WHERE s.scope = h.scope AND s.key = h.key
             AND s.version > 0 AND {LIVE})"
    )
}

/// Creates the schema if the database has none, or adds what a version 1 schema lacks, in one
/// transaction; refuses a newer one.
pub(super) async fn migrate(
    client: &mut tokio_postgres::Client,
    label: &std::path::Path,
) -> Result<(), Error> {
    let tx = client
        .transaction()
        .await
        .map_err(Error::pg("starting the schema check"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await
        .map_err(Error::pg("locking the schema"))?;
    // Asked first, not `CREATE TABLE IF NOT EXISTS`: that needs the right to create tables
    // even when the table exists, which the replicas' role should not have.
    let exists: bool = tx
        .query_one("SELECT to_regclass('vault_schema') IS NOT NULL", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(Error::pg("looking for the schema version table"))?;
    if !exists {
        tx.batch_execute("CREATE TABLE vault_schema (version bigint NOT NULL)")
            .await
            .map_err(Error::pg("creating the schema version table"))?;
    }
    let found: Option<i64> = tx
        .query_one("SELECT MAX(version) FROM vault_schema", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(Error::pg("reading the schema version"))?;
    match found {
        Some(found) if found > SCHEMA_VERSION => {
            return Err(Error::StoreFormat {
                path: label.to_path_buf(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        Some(SCHEMA_VERSION) => {}
        found => {
            if found.is_none() {
                tx.batch_execute(SCHEMA)
                    .await
                    .map_err(Error::pg("creating the schema"))?;
            }
            tx.batch_execute(SCHEMA_2)
                .await
                .map_err(Error::pg("adding the audit tables (schema 2)"))?;
            tx.execute(
                "INSERT INTO vault_schema (version) VALUES ($1)",
                &[&SCHEMA_VERSION],
            )
            .await
            .map_err(Error::pg("writing the schema version"))?;
        }
    }
    tx.commit()
        .await
        .map_err(Error::pg("committing the schema"))
}
