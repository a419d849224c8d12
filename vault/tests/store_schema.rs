//! The SQLite store's schema: version 3 keeps each key's head as a row of `secrets` at
//! version 0; a version 2 store (heads in their own table, `key_heads`) is migrated when a
//! vault opens it, in one transaction, and a newer one is refused.

mod common;

use std::path::Path;

use common::{kek, tiered, value};
use rusqlite::Connection;
use vault::{Error, Kek, Vault};

/// The tables of a version 2 store, as version 2 created them.
const SCHEMA_2: &str = "
CREATE TABLE secrets (
    scope      TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    envelope   BLOB    NOT NULL,
    written_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key, version)
) WITHOUT ROWID;
CREATE TABLE key_heads (
    scope           TEXT    NOT NULL,
    key             TEXT    NOT NULL,
    latest          INTEGER NOT NULL,
    deleted_through INTEGER NOT NULL,
    tag             BLOB    NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
";

/// Version 2's get: the head and the version it names (or `?3`).
const GET_2: &str = "SELECT h.latest, h.deleted_through, s.envelope
     FROM key_heads h
     LEFT JOIN secrets s ON s.scope = h.scope AND s.key = h.key
         AND s.version = COALESCE(?3, h.latest)
     WHERE h.scope = ?1 AND h.key = ?2";

/// What the vault holds: `a` with three versions, `b` with two, deleted, `c` with two,
/// deleted, then written again (version 3), and `d` in another scope.
fn filled(dir: &Path) -> Vec<Kek> {
    let keks = vec![kek("root")];
    let vault = Vault::init_with(dir, &tiered(), keks.clone()).expect("init");
    for n in 1..=3 {
        vault
            .set("global", "a", format!("a{n}").as_bytes())
            .expect("set a");
    }
    for n in 1..=2 {
        vault
            .set("global", "b", format!("b{n}").as_bytes())
            .expect("set b");
        vault
            .set("global", "c", format!("c{n}").as_bytes())
            .expect("set c");
    }
    vault.delete("global", "b").expect("delete b");
    vault.delete("global", "c").expect("delete c");
    vault.set("global", "c", b"c3").expect("set c again");
    vault.set("principal:alice", "d", b"d1").expect("set d");
    keks
}

/// Rewrites the store of `dir` as the version 2 store of the same versions and heads (the
/// heads' tags do not depend on where they are kept).
fn make_schema_2(dir: &Path) {
    let db = db(dir);
    db.execute_batch(&format!(
        "BEGIN;
         ALTER TABLE secrets RENAME TO v3;
         {SCHEMA_2}
         INSERT INTO secrets SELECT scope, key, version, envelope, written_at FROM v3
             WHERE version > 0;
         INSERT INTO key_heads SELECT scope, key, latest, deleted_through, tag FROM v3
             WHERE version = 0;
         DROP TABLE v3;
         PRAGMA user_version = 2;
         COMMIT;"
    ))
    .expect("schema 2");
}

fn db(dir: &Path) -> Connection {
    Connection::open(dir.join("secrets.db")).expect("open secrets.db")
}

fn user_version(db: &Connection) -> i64 {
    db.pragma_query_value(None, "user_version", |row| row.get(0))
        .expect("user_version")
}

fn has_table(db: &Connection, name: &str) -> bool {
    db.query_row(
        "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [name],
        |row| row.get::<_, i64>(0),
    )
    .expect("schema")
        == 1
}

fn column_count(db: &Connection, table: &str) -> i64 {
    db.query_row(
        "SELECT COUNT(*) FROM pragma_table_info(?1)",
        [table],
        |row| row.get(0),
    )
    .expect("table info")
}

fn expect_not_found(vault: &Vault, key: &str, version: Option<u64>) {
    match vault.get("global", key, version) {
        Err(Error::NotFound { .. }) => {}
        Err(e) => panic!("{key} {version:?}: {e}"),
        Ok(_) => panic!("{key} {version:?} was found"),
    }
}

/// Every version and head of [`filled`], read through the vault.
fn check_contents(vault: &Vault) {
    for n in 1..=3u64 {
        let got = vault.get("global", "a", Some(n)).expect("a");
        assert_eq!(got.expose_secret(), format!("a{n}").as_bytes());
    }
    assert_eq!(value(vault, "global", "a"), b"a3");
    expect_not_found(vault, "b", None);
    expect_not_found(vault, "b", Some(1));
    expect_not_found(vault, "b", Some(2));
    assert_eq!(value(vault, "global", "c"), b"c3");
    expect_not_found(vault, "c", Some(2));
    expect_not_found(vault, "c", Some(4));
    assert_eq!(value(vault, "principal:alice", "d"), b"d1");
    let listed: Vec<(String, u64, u64)> = vault
        .list(None)
        .expect("list")
        .into_iter()
        .map(|s| (s.key, s.version, s.versions))
        .collect();
    assert_eq!(
        listed,
        [("a".into(), 3, 3), ("c".into(), 3, 1), ("d".into(), 1, 1)]
    );
}

#[test]
fn a_version_2_store_is_migrated_at_open_with_every_version_and_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keks = filled(dir.path());
    make_schema_2(dir.path());
    {
        let db = db(dir.path());
        assert_eq!(user_version(&db), 2);
        assert_eq!(column_count(&db, "secrets"), 5);
    }

    let vault = Vault::open(dir.path(), None, keks).expect("open migrates");
    let db = db(dir.path());
    assert_eq!(user_version(&db), 3);
    assert!(!has_table(&db, "key_heads"), "the heads moved into secrets");
    check_contents(&vault);
    // The heads came along: deleted versions stay gone, and writes continue after them.
    assert_eq!(vault.set("global", "b", b"b3").expect("set b"), 3);
    assert_eq!(vault.set("global", "c", b"c4").expect("set c"), 4);
    expect_not_found(&vault, "b", Some(2));
}

#[test]
fn a_migration_that_fails_half_way_leaves_the_version_2_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keks = filled(dir.path());
    make_schema_2(dir.path());
    // The migration adds the head columns, then stops when it moves the first head.
    db(dir.path())
        .execute_batch(
            "CREATE TRIGGER stop BEFORE INSERT ON secrets WHEN NEW.version = 0
             BEGIN SELECT RAISE(ABORT, 'stopped'); END;",
        )
        .expect("trigger");
    let err = Vault::open(dir.path(), None, keks.clone())
        .map(drop)
        .expect_err("the migration fails");
    assert!(err.to_string().contains("version counters"), "{err}");

    // Still version 2, whole: no head column added, every head and live version readable
    // with version 2's statements.
    let db = db(dir.path());
    assert_eq!(user_version(&db), 2);
    assert_eq!(column_count(&db, "secrets"), 5);
    let live = |key: &str, version: Option<i64>| -> (i64, i64, Option<Vec<u8>>) {
        db.query_row(GET_2, rusqlite::params!["global", key, version], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .expect("version 2 get")
    };
    for n in 1..=3 {
        assert!(live("a", Some(n)).2.is_some(), "a {n}");
    }
    assert_eq!(live("a", None).0, 3);
    assert_eq!(live("b", None), (2, 2, None));
    let (latest, deleted_through, envelope) = live("c", None);
    assert_eq!((latest, deleted_through), (3, 2));
    assert!(envelope.is_some());

    // Once nothing stops it, the next open migrates.
    db.execute_batch("DROP TRIGGER stop").expect("drop trigger");
    let vault = Vault::open(dir.path(), None, keks).expect("open migrates");
    check_contents(&vault);
}

#[test]
fn a_new_store_has_16_kib_pages_and_an_old_one_keeps_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    filled(dir.path());
    let page_size = |dir: &Path| -> i64 {
        db(dir)
            .pragma_query_value(None, "page_size", |row| row.get(0))
            .expect("page_size")
    };
    assert_eq!(page_size(dir.path()), 16 << 10);
    // A store made with 4 KiB pages (as version 2 made them) keeps them when migrated.
    let old = tempfile::tempdir().expect("tempdir");
    {
        let db = db(old.path());
        db.pragma_update(None, "page_size", 4096)
            .expect("page_size");
        db.execute_batch(&format!("{SCHEMA_2} PRAGMA user_version = 2;"))
            .expect("schema 2");
    }
    let store = vault::SqliteStore::open(old.path()).expect("open the old store");
    drop(store);
    assert_eq!(page_size(old.path()), 4096);
    assert_eq!(user_version(&db(old.path())), 3);
}

#[test]
fn a_store_of_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keks = filled(dir.path());
    db(dir.path())
        .pragma_update(None, "user_version", 4)
        .expect("user_version");
    match Vault::open(dir.path(), None, keks).map(drop) {
        Err(Error::StoreFormat {
            found, supported, ..
        }) => assert_eq!((found, supported), (4, 3)),
        other => panic!("expected a StoreFormat error, got {other:?}"),
    }
}
