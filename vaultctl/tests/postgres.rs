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
            "--mode",
            "tiered",
        ],
        b"",
    );
    assert!(stdout(&out).contains("store: postgres"), "{}", stdout(&out));
    assert!(stdout(&out).contains("mode: tiered"), "{}", stdout(&out));
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

/// Turns TLS on for `server` with a certificate for 127.0.0.1 from a new CA in `pki_dir`,
/// and rejects connections of the test role to `db` that do not use it.
fn require_tls(server: &postgres::PgServer, db: &postgres::PgDatabase, pki_dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let pki = pki::PkiDir::new(pki_dir);
    pki.create(&["127.0.0.1".to_owned()])
        .expect("a CA and a server certificate");
    let data = server.data_dir();
    for (from, to) in [
        (pki.server_cert(), "server.crt"),
        (pki.server_key(), "server.key"),
    ] {
        let to = data.join(to);
        std::fs::copy(from, &to).expect("copy into the data directory");
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        // The server runs as `postgres` (the tests run as root) and must own its key.
        let owned = std::process::Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&to)
            .status()
            .expect("chown");
        assert!(owned.success() || !is_root(), "chown failed");
    }
    let hba = data.join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).expect("pg_hba.conf");
    let reject = format!(
        "hostnossl {} {} 127.0.0.1/32 reject\n",
        db.name(),
        postgres::TEST_ROLE
    );
    std::fs::write(&hba, reject + &rules).expect("pg_hba.conf");
    db.psql("ALTER SYSTEM SET ssl = on");
    db.psql("SELECT pg_reload_conf()");
    // The reload is asynchronous: wait until the server answers over TLS.
    let start = std::time::Instant::now();
    while db.psql("SHOW ssl").trim() != "on" {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "TLS did not come on"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn tls_to_the_database_is_verified_against_the_given_ca() {
    let Some(server) = postgres::PgServer::start(TEST) else {
        return;
    };
    let db = server.database();
    let sb = Sandbox::new();
    require_tls(&server, &db, &sb.path("db-pki"));
    let kek = format!("file:{}", sb.path("keys/kek.key").display());
    let init = |sb: &Sandbox, ca: Option<&std::path::Path>| {
        let mut args = vec![
            "init",
            "--kek",
            kek.as_str(),
            "--store",
            "postgres",
            "--store-url",
            db.url(),
        ];
        let ca = ca.map(|p| p.display().to_string());
        if let Some(ca) = &ca {
            args.extend(["--store-ca", ca.as_str()]);
        }
        sb.run(&args)
    };

    // Without TLS the server turns the vault away; with another CA the server is not trusted.
    assert_fails_with(&init(&sb, None), "no encryption");
    let other = Sandbox::new();
    pki::PkiDir::new(other.path("pki"))
        .create(&["127.0.0.1".to_owned()])
        .expect("another CA");
    assert_fails_with(&init(&sb, Some(&other.path("pki/ca.pem"))), "certificate");
    assert!(
        !sb.vault_dir().join("store.json").exists(),
        "a refused init leaves nothing"
    );

    let out = init(&sb, Some(&sb.path("db-pki/ca.pem")));
    common::assert_success(&out, &["init"]);
    sb.ok(&["set", "global", "over-tls"], b"value");
    assert_eq!(sb.ok(&["get", "global", "over-tls"], b"").stdout, b"value");
}
