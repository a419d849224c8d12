//! The SQLite store's side files: a process that only reads leaves `-wal` and `-shm` for
//! the next reader instead of creating and deleting them each time, and once every writer
//! has closed, `secrets.db` alone holds every committed write.

use std::path::Path;
use std::sync::Arc;

use envelope::{KekProvider, SoftwareKek};
use vault::{Kek, StoreKind, Vault};

fn kek() -> Kek {
    let provider: Arc<dyn KekProvider> = Arc::new(SoftwareKek::random("a").expect("kek"));
    Kek {
        uri: "memory:a".into(),
        provider,
    }
}

fn wal(dir: &Path) -> bool {
    dir.join("secrets.db-wal").exists()
}

fn get(dir: &Path, kek: &Kek, key: &str) -> Vec<u8> {
    let vault = Vault::open(dir, None, vec![kek.clone()]).expect("open");
    let value = vault.get("global", key, None).expect("get");
    value.expose_secret().to_vec()
}

#[test]
fn a_closed_writer_leaves_every_write_in_the_database_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault_dir = dir.path().join("v");
    let kek = kek();
    let vault = Vault::init(&vault_dir, StoreKind::Sqlite, vec![kek.clone()]).expect("init");
    vault.set("global", "k", b"one").expect("set");
    vault.set("global", "k", b"two").expect("set");
    drop(vault);
    assert!(
        !wal(&vault_dir),
        "a writer's close checkpoints and removes the WAL"
    );
    // Only the database file and the configuration: the WAL is not needed.
    let copy = dir.path().join("copy");
    std::fs::create_dir(&copy).expect("mkdir");
    for file in ["vault.json", "secrets.db"] {
        std::fs::copy(vault_dir.join(file), copy.join(file)).expect("copy");
    }
    assert_eq!(get(&copy, &kek, "k"), b"two");
}

#[test]
fn readers_keep_the_side_files_and_a_later_writer_still_removes_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault_dir = dir.path().join("v");
    let kek = kek();
    let vault = Vault::init(&vault_dir, StoreKind::Sqlite, vec![kek.clone()]).expect("init");
    vault.set("global", "k", b"one").expect("set");
    drop(vault);
    assert!(!wal(&vault_dir));
    for _ in 0..2 {
        assert_eq!(get(&vault_dir, &kek, "k"), b"one");
        assert!(wal(&vault_dir), "a reader leaves the WAL for the next one");
    }
    let vault = Vault::open(&vault_dir, None, vec![kek.clone()]).expect("open");
    vault.set("global", "k", b"two").expect("set");
    drop(vault);
    assert!(
        !wal(&vault_dir),
        "a writer's close checkpoints and removes the WAL"
    );
    assert_eq!(get(&vault_dir, &kek, "k"), b"two");
}
