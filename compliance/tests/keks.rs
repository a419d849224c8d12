//! The KEK suite on every provider built by default: the file and passphrase KEKs, and the
//! in-memory `SoftwareKek` they are built on.

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
