//! The query plans of the store's statements: every statement that serves one key, one
//! scope or one page of a scan must seek in a primary key, never walk a table, or its cost
//! grows with the number of secrets.

use rusqlite::Connection;

use super::*;

/// The `detail` column of `EXPLAIN QUERY PLAN sql`.
fn plan(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .expect("explain");
    // Unbound parameters are NULL: the plan does not depend on their values.
    let mut rows = stmt.raw_query();
    let mut details = Vec::new();
    while let Some(row) = rows.next().expect("plan row") {
        details.push(row.get::<_, String>(3).expect("detail"));
    }
    details
}

/// Steps that walk a whole table (`SCAN secrets`, `SCAN s`, `SCAN h`) or sort into a
/// temporary B-tree instead of reading in key order. (`SCAN CONSTANT ROW` is the one row
/// of a `SELECT` without a table.)
fn walks(details: &[String]) -> Vec<&String> {
    details
        .iter()
        .filter(|d| {
            (d.starts_with("SCAN ") && *d != "SCAN CONSTANT ROW") || d.contains("TEMP B-TREE")
        })
        .collect()
}

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path()).expect("open");
    (dir, store)
}

#[test]
fn statements_of_one_key_or_one_page_seek_in_a_primary_key() {
    let (_dir, store) = store();
    let conn = store.conn();
    let list_in_scope = list_sql(true);
    let count_in_scope = count_in_scope_sql();
    // INSERT_SQL and WRITE_HEAD_SQL have no plan: an insert by primary key reads nothing.
    assert!(plan(&conn, INSERT_SQL).is_empty() && plan(&conn, WRITE_HEAD_SQL).is_empty());
    // A get: the head row, then the version it names, each sought by the whole primary key
    // of the one table (the second seek walks the pages the first read).
    let get = plan(&conn, GET_SQL);
    assert_eq!(get.len(), 2, "{get:?}");
    assert!(
        get.iter().all(|d| d.starts_with("SEARCH")
            && d.contains("USING PRIMARY KEY (scope=? AND key=? AND version=?)")),
        "{get:?}"
    );
    for sql in [
        GET_SQL,
        HEAD_SQL,
        HAS_ROWS_SQL,
        SCAN_AFTER_SQL,
        REPLACE_SQL,
        DELETE_SQL,
        &list_in_scope,
        &count_in_scope,
    ] {
        let details = plan(&conn, sql);
        assert!(!details.is_empty(), "no plan for {sql}");
        assert!(
            walks(&details).is_empty(),
            "{sql}\nwalks a table: {details:?}"
        );
    }
}

#[test]
fn the_count_of_a_scope_reads_its_range_and_seeks_each_keys_versions() {
    let (_dir, store) = store();
    let conn = store.conn();
    // A List's total for one scope: the scope's rows (a range of the primary key, not a
    // walk of the store), and for each head one seek of its live versions.
    let count = plan(&conn, &count_in_scope_sql());
    assert!(walks(&count).is_empty(), "{count:?}");
    assert!(
        count
            .iter()
            .any(|d| d == "SEARCH h USING PRIMARY KEY (scope=?)"),
        "{count:?}"
    );
    assert!(
        count
            .iter()
            .any(|d| d.starts_with("SEARCH s USING PRIMARY KEY (scope=? AND key=?")),
        "{count:?}"
    );
}

#[test]
fn whole_store_statements_read_in_key_order_and_seek_the_heads() {
    let (_dir, store) = store();
    let conn = store.conn();
    // The first page of a scan walks secrets in primary-key order and stops at the limit.
    assert_eq!(plan(&conn, SCAN_FIRST_SQL), ["SCAN secrets"]);
    // A page of the listing of every scope seeks to its first key and walks on in key
    // order (no sort), seeking each head.
    let list = plan(&conn, &list_sql(false));
    assert!(walks(&list).is_empty(), "{list:?}");
    assert!(
        list.iter()
            .any(|d| d == "SEARCH s USING PRIMARY KEY ((scope,key)>(?,?))"),
        "{list:?}"
    );
    assert!(
        list.iter()
            .any(|d| d.starts_with("SEARCH h USING PRIMARY KEY")),
        "{list:?}"
    );
    // Keys without a head, and the count of live keys: one walk, each key's head (or its
    // versions) sought, no temporary B-tree.
    for sql in [ORPHANS_SQL, &count_sql()] {
        let details = plan(&conn, sql);
        assert_eq!(walks(&details).len(), 1, "{sql}\n{details:?}");
        assert!(
            details
                .iter()
                .any(|d| d.starts_with("SEARCH") && d.contains("USING PRIMARY KEY")),
            "{sql}\n{details:?}"
        );
    }
}

#[test]
fn the_check_sees_a_scan_page_that_walks_from_the_start() {
    let (_dir, store) = store();
    let conn = store.conn();
    // One statement for the first and later pages: SQLite can no longer seek.
    let one_statement = "SELECT scope, key, version, envelope FROM secrets
         WHERE ?1 IS NULL OR (scope, key, version) > (?1, ?2, ?3)
         ORDER BY scope, key, version LIMIT ?4";
    assert_eq!(walks(&plan(&conn, one_statement)), ["SCAN secrets"]);
}
