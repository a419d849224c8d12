//! The KEK suite on every provider built by default: the file and passphrase KEKs, the
//! in-memory `SoftwareKek` they are built on, and a 2-of-3 threshold KEK over such KEKs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use envelope::{Dek, KekProvider, SoftwareKek};
use kek_providers::KekEnv;

fn create(uri: &str, dir: &Path) -> Arc<dyn KekProvider> {
    kek_providers::create(uri, &KekEnv { vault_dir: dir })
        .expect("create")
        .provider
}

fn open(uri: &str, dir: &Path) -> Arc<dyn KekProvider> {
    kek_providers::open(uri, &KekEnv { vault_dir: dir })
        .expect("open")
        .provider
}

fn file_uri(dir: &Path, name: &str) -> String {
    format!("file:{}", dir.join(name).display())
}

compliance::kek_suite!(file_kek,
    create: |dir: &Path| create(&file_uri(dir, "keys/kek.key"), dir),
    reopen: |dir: &Path| open(&file_uri(dir, "keys/kek.key"), dir),
    other: |dir: &Path| create(&file_uri(dir, "keys/other.key"), dir),
    secrets: |dir: &Path| vec![std::fs::read(dir.join("keys/kek.key")).expect("key file")],
);

/// Passphrases come from files in the test's directory (not env vars: tests share the
/// process environment), with the smallest Argon2 costs so the suite stays fast.
fn passphrase_uri(dir: &Path, label: &str, passphrase: &str) -> String {
    let file = dir.join(format!("{label}.pass"));
    if !file.exists() {
        std::fs::write(&file, passphrase).expect("passphrase file");
    }
    format!(
        "passphrase:file={};m=8192;t=1;p=1;label={label}",
        file.display()
    )
}

const PASSPHRASE: &str = "compliance suite passphrase 7a9c";

compliance::kek_suite!(passphrase_kek,
    create: |dir: &Path| create(&passphrase_uri(dir, "main", PASSPHRASE), dir),
    reopen: |dir: &Path| open(&passphrase_uri(dir, "main", PASSPHRASE), dir),
    other: |dir: &Path| create(&passphrase_uri(dir, "other", "another passphrase 51e0"), dir),
    secrets: |_: &Path| vec![PASSPHRASE.as_bytes().to_vec()],
);

/// The memory KEK's keys by test directory, so `reopen` can build a second instance with
/// the same key.
static MEMORY_KEYS: Mutex<BTreeMap<PathBuf, Dek>> = Mutex::new(BTreeMap::new());

fn memory_kek(dir: &Path) -> Arc<dyn KekProvider> {
    let keys = MEMORY_KEYS.lock().expect("lock");
    let key = keys.get(dir).expect("created").try_clone().expect("clone");
    let id = envelope::KekId::new("memory", "suite", 1).expect("id");
    Arc::new(SoftwareKek::new(id, key))
}

compliance::kek_suite!(memory_kek,
    create: |dir: &Path| {
        let key = Dek::generate().expect("key");
        MEMORY_KEYS.lock().expect("lock").insert(dir.to_path_buf(), key);
        memory_kek(dir)
    },
    reopen: memory_kek,
    other: |_: &Path| -> Arc<dyn KekProvider> {
        Arc::new(SoftwareKek::random("other").expect("kek"))
    },
    secrets: |dir: &Path| {
        let keys = MEMORY_KEYS.lock().expect("lock");
        vec![keys.get(dir).expect("created").expose_secret().to_vec()]
    },
);

/// The threshold KEK's member keys by test directory, so `reopen` can build the same
/// members again.
static THRESHOLD_KEYS: Mutex<BTreeMap<PathBuf, Vec<Dek>>> = Mutex::new(BTreeMap::new());

/// A 2-of-3 threshold KEK over in-memory members `<prefix>-0..2` with `keys`.
fn threshold_kek(prefix: &str, keys: &[Dek]) -> Arc<dyn KekProvider> {
    let members: Vec<Arc<dyn KekProvider>> = keys
        .iter()
        .enumerate()
        .map(|(k, key)| {
            let id = envelope::KekId::new("memory", &format!("{prefix}-{k}"), 1).expect("id");
            Arc::new(SoftwareKek::new(id, key.try_clone().expect("clone"))) as _
        })
        .collect();
    let ids = members.iter().map(|m| m.id().clone()).collect();
    Arc::new(kek_providers::ThresholdKek::new(2, ids, members).expect("threshold KEK"))
}

fn stored_threshold_kek(dir: &Path) -> Arc<dyn KekProvider> {
    let keys = THRESHOLD_KEYS.lock().expect("lock");
    threshold_kek("share", keys.get(dir).expect("created"))
}

fn fresh_keys() -> Vec<Dek> {
    (0..3).map(|_| Dek::generate().expect("key")).collect()
}

compliance::kek_suite!(threshold_kek,
    create: |dir: &Path| {
        THRESHOLD_KEYS.lock().expect("lock").insert(dir.to_path_buf(), fresh_keys());
        stored_threshold_kek(dir)
    },
    reopen: stored_threshold_kek,
    other: |_: &Path| threshold_kek("other", &fresh_keys()),
    secrets: |dir: &Path| {
        let keys = THRESHOLD_KEYS.lock().expect("lock");
        let keys = keys.get(dir).expect("created");
        keys.iter().map(|k| k.expose_secret().to_vec()).collect()
    },
);

thread_local! {
    /// Set while `in_test_env` runs a test body.
    static IN_TEST_ENV: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A runner, as a provider that needs an environment around each test would give: the
/// fixture below refuses to run outside it, so the suite's `run:` argument is exercised.
fn in_test_env(body: impl FnOnce()) {
    IN_TEST_ENV.with(|flag| flag.set(true));
    body();
    IN_TEST_ENV.with(|flag| flag.set(false));
}

fn inside_runner(dir: &Path) -> &Path {
    assert!(
        IN_TEST_ENV.with(std::cell::Cell::get),
        "the suite called the fixture outside its runner"
    );
    dir
}

compliance::kek_suite!(file_kek_with_runner,
    create: |dir: &Path| create(&file_uri(inside_runner(dir), "keys/kek.key"), dir),
    reopen: |dir: &Path| open(&file_uri(inside_runner(dir), "keys/kek.key"), dir),
    other: |dir: &Path| create(&file_uri(inside_runner(dir), "keys/other.key"), dir),
    secrets: |dir: &Path| {
        vec![std::fs::read(inside_runner(dir).join("keys/kek.key")).expect("key file")]
    },
    run: in_test_env,
);
