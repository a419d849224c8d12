//! Every store kind passes the store suite, with the default in-memory KEK and with a KEK
//! built by the registry (a file KEK) under a runner.

use std::cell::Cell;
use std::path::Path;

use kek_providers::KekEnv;

compliance::store_suite!(sqlite, vault::StoreKind::Sqlite, durable);
compliance::store_suite!(memory, vault::StoreKind::Memory, ephemeral);

thread_local! {
    /// Set while `in_test_env` runs a test body.
    static IN_TEST_ENV: Cell<bool> = const { Cell::new(false) };
}

/// A runner, as a KEK that needs an environment around each test would give: the KEK maker
/// below refuses to run outside it, so the suite's `run:` argument is exercised.
fn in_test_env(body: impl FnOnce()) {
    IN_TEST_ENV.with(|flag| flag.set(true));
    body();
    IN_TEST_ENV.with(|flag| flag.set(false));
}

/// A file KEK in the vault directory (where the test cleans it up), built through the
/// registry as `vaultctl init` builds it, so the vault pins its canonical URI.
fn file_kek(vault_dir: &Path) -> vault::Kek {
    assert!(
        IN_TEST_ENV.with(Cell::get),
        "the suite built its KEK outside its runner"
    );
    let key = vault_dir.join("root.kek");
    let built = kek_providers::create(&format!("file:{}", key.display()), &KekEnv { vault_dir })
        .expect("create the file KEK");
    assert!(built.uri.starts_with("file:"), "{}", built.uri);
    vault::Kek {
        uri: built.uri,
        provider: built.provider,
    }
}

compliance::store_suite!(sqlite_file_kek, vault::StoreKind::Sqlite, durable,
    kek: file_kek,
    run: in_test_env,
);
compliance::store_suite!(memory_file_kek, vault::StoreKind::Memory, ephemeral,
    kek: file_kek,
    run: in_test_env,
);

/// A database of its own on the test process's PostgreSQL server, named in the vault
/// directory's `store.json` before the vault is created.
#[derive(Debug)]
struct PostgresHome(test_support::postgres::PgDatabase);

impl compliance::store_suite::StoreHome for PostgresHome {
    /// The database's table files and the server's WAL, once a checkpoint has written every
    /// committed change into the table files as well as the WAL.
    fn files_at_rest(&self) -> Vec<std::path::PathBuf> {
        self.0.psql("CHECKPOINT");
        let oid = self
            .0
            .psql("SELECT oid FROM pg_database WHERE datname = current_database()");
        let data = self.0.data_dir();
        let mut files = compliance::store_suite::files_below(&data.join("base").join(oid.trim()));
        files.extend(compliance::store_suite::files_below(&data.join("pg_wal")));
        files
    }
}

fn postgres_home(vault_dir: &Path) -> Box<dyn compliance::store_suite::StoreHome> {
    let db = test_support::postgres::database("compliance postgres")
        .expect("the runner checked that PostgreSQL is installed");
    vault::StoreLocation::new(db.url())
        .and_then(|location| location.write(vault_dir))
        .expect("store.json");
    Box::new(PostgresHome(db))
}

/// Runs the body where PostgreSQL is installed; else skips, by the project's skip rule.
fn with_postgres(body: impl FnOnce()) {
    if test_support::postgres::available("compliance postgres") {
        body();
    }
}

compliance::store_suite!(postgres, vault::StoreKind::Postgres, durable,
    run: with_postgres,
    home: postgres_home,
);
