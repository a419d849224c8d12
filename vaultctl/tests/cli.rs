//! The real vaultctl binary in local mode: the happy paths.

mod common;

use common::{Sandbox, assert_fails_with, stdout};
use compliance::files_below;

#[test]
fn default_init_stores_and_reads_back_a_secret() {
    let sb = Sandbox::new();
    let out = sb.ok(&["init"], b"");
    assert!(stdout(&out).contains("store: sqlite"), "{}", stdout(&out));
    let keys = files_below(&sb.path("config/vault/keys"));
    assert_eq!(keys.len(), 1, "one default key file outside the vault dir");
    sb.ok(&["set", "global", "db-password"], b"hunter2-\x00-binary");
    let got = sb.ok(&["get", "global", "db-password"], b"");
    assert_eq!(got.stdout, b"hunter2-\x00-binary");
}

#[test]
fn versions_list_and_delete() {
    let sb = Sandbox::new();
    sb.init_file_kek();
    let v1 = sb.ok(&["set", "principal:alice", "token"], b"one");
    assert!(stdout(&v1).contains("version 1"));
    let v2 = sb.ok(&["set", "principal:alice", "token"], b"two");
    assert!(stdout(&v2).contains("version 2"));
    sb.ok(&["set", "skill:deploy", "key"], b"three");
    assert_eq!(
        sb.ok(&["get", "principal:alice", "token"], b"").stdout,
        b"two"
    );
    assert_eq!(
        sb.ok(&["get", "principal:alice", "token", "--version", "1"], b"")
            .stdout,
        b"one"
    );

    let listed = stdout(&sb.ok(&["list", "--format", "json"], b""));
    let rows: serde_json::Value = serde_json::from_str(&listed).expect("json");
    let rows = rows.as_array().expect("array");
    assert_eq!(rows.len(), 2);
    let alice = rows
        .iter()
        .find(|r| r["scope"] == "principal:alice")
        .expect("alice");
    assert_eq!(alice["key"], "token");
    assert_eq!(alice["version"], 2);
    assert!(
        !listed.contains("two") && !listed.contains("three"),
        "list never shows values"
    );
    let scoped = stdout(&sb.ok(&["list", "skill:deploy"], b""));
    assert!(scoped.contains("skill:deploy") && !scoped.contains("alice"));
    // The table ends with how many secrets it shows; --count prints that number alone.
    assert_eq!(scoped.lines().last(), Some("1 secret"), "{scoped}");
    let table = stdout(&sb.ok(&["list", "--page-size", "1"], b""));
    assert_eq!(table.lines().count(), 4, "{table}");
    assert_eq!(table.lines().last(), Some("2 secrets"), "{table}");
    assert_eq!(stdout(&sb.ok(&["list", "--count"], b"")), "2\n");
    assert_eq!(
        stdout(&sb.ok(&["list", "skill:none", "--count", "--format", "json"], b"")),
        "{\"total_count\":0}\n"
    );

    sb.ok(&["delete", "principal:alice", "token"], b"");
    assert_fails_with(&sb.run(&["get", "principal:alice", "token"]), "not found");
    assert_fails_with(
        &sb.run(&["delete", "principal:alice", "token"]),
        "not found",
    );
}

#[test]
fn set_from_file() {
    let sb = Sandbox::new();
    sb.init_file_kek();
    let value_file = sb.path("value.bin");
    std::fs::write(&value_file, b"from a file\n").expect("write");
    let path = value_file.display().to_string();
    sb.ok(
        &["set", "channel:slack:ops", "webhook", "--from-file", &path],
        b"",
    );
    assert_eq!(
        sb.ok(&["get", "channel:slack:ops", "webhook"], b"").stdout,
        b"from a file\n"
    );
}

#[test]
fn seal_and_open_caller_data_binary_and_json() {
    let sb = Sandbox::new();
    sb.init_file_kek();
    let sealed = sb.ok(&["seal", "--context", "backups"], b"caller data");
    assert!(sealed.stdout.starts_with(b"VLTE"));
    let opened = sb.ok(&["open", "--context", "backups"], &sealed.stdout);
    assert_eq!(opened.stdout, b"caller data");

    let json = sb.ok(&["seal", "--format", "json"], b"json data");
    assert!(stdout(&json).contains("\"format\": \"vault-envelope\""));
    assert_eq!(sb.ok(&["open"], &json.stdout).stdout, b"json data");

    let out_file = sb.path("sealed.bin");
    let out = out_file.display().to_string();
    sb.ok(&["seal", "--out", &out], b"to a file");
    assert_eq!(sb.ok(&["open", "--in", &out], b"").stdout, b"to a file");
    assert_fails_with(
        &sb.run_with_input(&["open", "--context", "other"], &sealed.stdout),
        "",
    );
}

#[test]
fn status_reports_store_kek_and_count() {
    let sb = Sandbox::new();
    sb.init_file_kek();
    sb.ok(&["set", "global", "a"], b"x");
    let status = stdout(&sb.ok(&["status"], b""));
    assert!(status.contains("store:   sqlite"), "{status}");
    assert!(status.contains("secrets: 1"), "{status}");
    assert!(
        status.contains("kek:     file:") && status.contains("health ok"),
        "{status}"
    );
}

#[test]
fn memory_store_kind_is_pinned() {
    let sb = Sandbox::new();
    let uri = format!("file:{}", sb.path("k.key").display());
    sb.ok(&["init", "--store", "memory", "--kek", &uri], b"");
    let status = stdout(&sb.ok(&["status"], b""));
    assert!(status.contains("store:   memory"), "{status}");
}
