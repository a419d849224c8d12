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
