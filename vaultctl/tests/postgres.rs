//! `vaultctl init --store postgres` and the commands on a PostgreSQL vault, against a real
//! server (test_support::postgres). The URL carries no password (one in it is refused); the
//! password comes from a file; a database that holds another vault's secrets is refused.

mod common;

use common::{Sandbox, assert_fails_with, stdout};
use test_support::postgres;

const TEST: &str = "vaultctl postgres";

#[test]
fn a_postgres_vault_is_made_and_used_like_any_other() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let sb = Sandbox::new();
    let kek = format!("file:{}", sb.path("keys/kek.key").display());
    let password = sb.path("pg.pass");
    std::fs::write(&password, format!("{}\n", postgres::TEST_PASSWORD)).expect("password file");
    let url = db
        .password_url()
        .replace(&format!(":{}@", postgres::TEST_PASSWORD), "@");
    let out = sb.ok(
        &[
            "init",
            "--store",
            "postgres",
            "--store-url",
            &url,
            "--store-password-file",
            password.to_str().expect("utf-8"),
            "--kek",
            &kek,
        ],
        b"",
    );
    assert!(stdout(&out).contains("store: postgres"), "{}", stdout(&out));
    assert!(stdout(&out).contains("mode: direct"), "{}", stdout(&out));
    let location = std::fs::read_to_string(sb.vault_dir().join("store.json")).expect("store.json");
    assert!(!location.contains(postgres::TEST_PASSWORD), "{location}");

    sb.ok(&["set", "global", "db.password"], b"s3cret");
    sb.ok(&["set", "principal:bob", "token"], b"t0ken");
    assert_eq!(
        sb.ok(&["get", "global", "db.password"], b"").stdout,
        b"s3cret"
    );
    sb.ok(&["set", "global", "db.password", "--cas", "1"], b"second");
    assert_fails_with(
        &sb.run_with_input(&["set", "global", "db.password", "--cas", "1"], b"third"),
        "at version 2, not 1",
    );
    let listed = stdout(&sb.ok(&["list", "--page-size", "1"], b""));
    assert!(
        listed.contains("db.password") && listed.contains("token"),
        "{listed}"
    );
    // The rows are in the database, under the password role's rights.
    let rows = db.psql("SELECT count(*) FROM secrets WHERE version > 0");
    assert_eq!(rows.trim(), "3");
    let backup = sb.run(&["backup", sb.path("backup").to_str().expect("utf-8")]);
    assert_fails_with(&backup, "pg_dump");
}

#[test]
fn bad_locations_are_refused_with_what_to_do() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let sb = Sandbox::new();
    let kek = format!("file:{}", sb.path("keys/kek.key").display());
    let init = |extra: &[&str]| {
        let mut args = vec!["init", "--kek", kek.as_str()];
        args.extend_from_slice(extra);
        sb.run(&args)
    };
    let with_password = db.password_url();
    let out = init(&["--store", "postgres", "--store-url", &with_password]);
    assert_fails_with(&out, "holds a password");
    assert!(
        !common::stderr(&out).contains(postgres::TEST_PASSWORD),
        "the password is echoed"
    );
    let usage = |out: std::process::Output, needle: &str| {
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "a usage error: {err}");
        assert!(err.contains(needle), "{err}");
    };
    usage(init(&["--store", "postgres"]), "needs --store-url");
    usage(init(&["--store-url", db.url()]), "are for --store postgres");
    assert_fails_with(
        &init(&[
            "--store",
            "postgres",
            "--store-url",
            "postgres://vault@db.example.org/vault",
        ]),
        "set ca_file",
    );
    assert_fails_with(
        &init(&[
            "--store",
            "postgres",
            "--store-url",
            db.url(),
            "--mode",
            "tiered",
        ]),
        "use --mode direct",
    );
    // Nothing was left behind by the refusals: a correct init still works.
    sb.ok(
        &[
            "init",
            "--kek",
            &kek,
            "--store",
            "postgres",
            "--store-url",
            db.url(),
        ],
        b"",
    );
    sb.ok(&["set", "global", "k"], b"v");

    // Another vault on the same database is refused: its reads would all fail.
    let other = Sandbox::new();
    let other_kek = format!("file:{}", other.path("keys/kek.key").display());
    let out = other.run(&[
        "init",
        "--kek",
        &other_kek,
        "--store",
        "postgres",
        "--store-url",
        db.url(),
    ]);
    assert_fails_with(&out, "already holds another vault's secrets");
    assert!(!other.vault_dir().join("vault.json").exists());
    assert!(!other.vault_dir().join("store.json").exists());
}
