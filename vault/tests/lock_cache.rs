//! Locking and unlocking, and the JIT cache of opened secrets.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{direct, kek, tiered, value};
use vault::{Error, InitOptions, Vault, WrapMode};

// 6. Lock and unlock.

fn lock_and_unlock(options: &InitOptions) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (kek("a"), kek("b"));
    let vault = Vault::init_with(dir.path(), options, vec![a.clone(), b.clone()]).expect("init");
    vault.set("global", "k", b"v").expect("set");
    let sealed = vault.seal_data("ctx", None, b"data").expect("seal");
    assert_eq!(value(&vault, "global", "k"), b"v");
    assert_eq!(vault.status().expect("status").cached, 1);

    vault.lock().expect("lock");
    assert!(vault.is_locked());
    assert!(Vault::read_config(dir.path()).expect("config").locked);
    let status = vault.status().expect("status works locked");
    assert!(status.locked);
    assert_eq!(status.cached, 0);
    assert!(status.keks.is_empty());
    assert!(status.epochs.is_empty());
    assert!(matches!(vault.get("global", "k", None), Err(Error::Locked)));
    assert!(matches!(vault.set("global", "k", b"w"), Err(Error::Locked)));
    assert!(matches!(vault.list(None), Err(Error::Locked)));
    assert!(matches!(
        vault.seal_data("ctx", None, b"x"),
        Err(Error::Locked)
    ));
    assert!(matches!(
        vault.open_data("ctx", None, &sealed),
        Err(Error::Locked)
    ));
    assert!(matches!(vault.delete("global", "k"), Err(Error::Locked)));
    assert!(matches!(
        vault.rewrap(Default::default(), &mut |_| {}),
        Err(Error::Locked)
    ));

    // Another process opens it locked, with the right KEK; a wrong KEK is still refused.
    let other = Vault::open(dir.path(), None, vec![b.clone()]).expect("open locked");
    assert!(other.is_locked());
    assert!(other.status().expect("status").locked);
    assert!(matches!(other.get("global", "k", None), Err(Error::Locked)));
    assert!(matches!(
        Vault::open(dir.path(), None, vec![kek("stranger")]),
        Err(Error::KekNotPinned { .. })
    ));

    // A KEK that is not pinned does not unlock, and the vault stays locked.
    let err = vault
        .unlock(vec![kek("stranger")])
        .expect_err("unpinned kek");
    assert!(matches!(err, Error::KekNotPinned { .. }), "{err:?}");
    assert!(vault.is_locked());
    assert!(Vault::read_config(dir.path()).expect("config").locked);
    assert!(matches!(vault.get("global", "k", None), Err(Error::Locked)));
    // Nor does an impostor with a pinned id.
    let impostor = kek("a");
    assert!(vault.unlock(vec![impostor]).is_err());
    assert!(vault.is_locked());
    assert!(Vault::read_config(dir.path()).expect("config").locked);

    vault.unlock(vec![a.clone()]).expect("unlock");
    assert!(!vault.is_locked());
    assert!(!Vault::read_config(dir.path()).expect("config").locked);
    assert!(!vault.status().expect("status").locked);
    assert_eq!(value(&vault, "global", "k"), b"v");
    assert_eq!(
        vault
            .open_data("ctx", None, &sealed)
            .expect("open_data")
            .expose_secret(),
        b"data"
    );
    assert_eq!(vault.list(None).expect("list").len(), 1);
    // Unlocked with a alone: direct writes need b too; tiered ones lease epoch 1.
    match options.mode {
        Some(WrapMode::Direct) => assert!(matches!(
            vault.set("global", "k2", b"w"),
            Err(Error::IncompleteRoot { .. })
        )),
        _ => {
            vault.set("global", "k2", b"w").expect("tiered set with a");
            assert_eq!(value(&vault, "global", "k2"), b"w");
        }
    }
    vault
        .unlock(vec![a.clone(), b.clone()])
        .expect("unlock with both");
    vault.set("global", "k", b"w").expect("set");
    assert_eq!(value(&vault, "global", "k"), b"w");

    // The other process, opened while locked, unlocks by itself.
    other.unlock(vec![b]).expect("unlock other");
    assert_eq!(value(&other, "global", "k"), b"w");
    // And a process opened now is unlocked.
    let fresh = Vault::open(dir.path(), None, vec![a]).expect("open");
    assert!(!fresh.is_locked());
    assert_eq!(value(&fresh, "global", "k"), b"w");
}

#[test]
fn lock_and_unlock_direct() {
    lock_and_unlock(&direct());
}

#[test]
fn lock_and_unlock_tiered() {
    lock_and_unlock(&tiered());
}

// 7. The JIT cache.

#[test]
fn the_cache_serves_repeated_reads_and_forgets_on_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = kek("a");
    let vault = Vault::init_with(dir.path(), &direct(), vec![a.clone()]).expect("init");
    vault.set("global", "k", b"one").expect("set");
    vault.set("global", "other", b"x").expect("set");
    assert_eq!(vault.status().expect("status").cached, 0);
    assert_eq!(value(&vault, "global", "k"), b"one");
    assert_eq!(vault.status().expect("status").cached, 1);
    assert_eq!(value(&vault, "global", "k"), b"one");
    assert_eq!(vault.status().expect("status").cached, 1);
    assert_eq!(value(&vault, "global", "other"), b"x");
    assert_eq!(vault.status().expect("status").cached, 2);

    // The second read came from the cache: another process's change is not seen yet.
    let writer = Vault::open(dir.path(), None, vec![a]).expect("open");
    writer.set("global", "k", b"two").expect("set elsewhere");
    assert_eq!(value(&vault, "global", "k"), b"one");

    // A set through this vault drops the cached value.
    vault.set("global", "k", b"three").expect("set");
    assert_eq!(vault.status().expect("status").cached, 1);
    assert_eq!(value(&vault, "global", "k"), b"three");
    // So does a delete.
    vault.delete("global", "other").expect("delete");
    assert!(matches!(
        vault.get("global", "other", None),
        Err(Error::NotFound { .. })
    ));

    // Versions are cached apart from the latest.
    assert_eq!(
        vault
            .get("global", "k", Some(1))
            .expect("v1")
            .expose_secret(),
        b"one"
    );
    assert_eq!(
        vault
            .get("global", "k", Some(2))
            .expect("v2")
            .expose_secret(),
        b"two"
    );
    assert_eq!(value(&vault, "global", "k"), b"three");
}

#[test]
fn cached_values_expire_after_the_ttl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = kek("a");
    let mut vault = Vault::init_with(dir.path(), &direct(), vec![a.clone()]).expect("init");
    vault.set_cache_ttl(Duration::from_millis(50));
    let writer = Vault::open(dir.path(), None, vec![a]).expect("open");

    // Within the TTL the cached value is served. The check is skipped on a machine so
    // slow that the write below took most of the TTL: then the value is simply fresh.
    let mut checked_within = false;
    for round in 0..5 {
        // A key per round: a value cached in a round that skipped the check is not seen.
        let key = format!("k{round}");
        let old = format!("old {round}");
        let new = format!("new {round}");
        writer.set("global", &key, old.as_bytes()).expect("set");
        assert_eq!(value(&vault, "global", &key), old.as_bytes());
        let filled = Instant::now();
        writer
            .set("global", &key, new.as_bytes())
            .expect("set elsewhere");
        let within = value(&vault, "global", &key);
        if filled.elapsed() < Duration::from_millis(45) {
            assert_eq!(within, old.as_bytes(), "served from the cache");
            checked_within = true;
        }
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            value(&vault, "global", &key),
            new.as_bytes(),
            "after the TTL"
        );
        if checked_within {
            break;
        }
    }
    assert!(checked_within, "every write took most of the 50 ms TTL");
}

#[test]
fn a_zero_ttl_caches_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = kek("a");
    let mut vault = Vault::init_with(dir.path(), &direct(), vec![a.clone()]).expect("init");
    vault.set_cache_ttl(Duration::ZERO);
    vault.set("global", "k", b"old").expect("set");
    assert_eq!(value(&vault, "global", "k"), b"old");
    assert_eq!(value(&vault, "global", "k"), b"old");
    assert_eq!(vault.status().expect("status").cached, 0);
    let writer = Vault::open(dir.path(), None, vec![a]).expect("open");
    writer.set("global", "k", b"new").expect("set elsewhere");
    assert_eq!(value(&vault, "global", "k"), b"new");
    assert_eq!(vault.status().expect("status").cached, 0);
}

#[test]
fn lock_drops_cached_values_and_unlock_reads_fresh_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = kek("a");
    let vault = Vault::init_with(dir.path(), &direct(), vec![a.clone()]).expect("init");
    vault.set("global", "k", b"old").expect("set");
    assert_eq!(value(&vault, "global", "k"), b"old");
    assert_eq!(vault.status().expect("status").cached, 1);
    vault.lock().expect("lock");
    assert_eq!(vault.status().expect("status").cached, 0);
    let other = Vault::open(dir.path(), None, vec![a.clone()]).expect("open locked");
    other.unlock(vec![a.clone()]).expect("unlock other");
    other.set("global", "k", b"new").expect("set");
    vault.unlock(vec![a]).expect("unlock");
    assert_eq!(value(&vault, "global", "k"), b"new");
}

#[test]
fn a_read_racing_a_set_does_not_cache_the_old_value() {
    // Readers hammer the key while this thread writes and reads back: a reader that read
    // the old envelope before a set must not cache it after the set invalidated the cache,
    // or the writer's next read returns the old value for the whole TTL.
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = Vault::init_with(dir.path(), &direct(), vec![kek("a")]).expect("init");
    vault.set("global", "k", b"0").expect("set");
    let stop = AtomicBool::new(false);
    let mut stale = Vec::new();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    vault.get("global", "k", None).expect("get");
                }
            });
        }
        for i in 1..300 {
            let written = i.to_string();
            vault.set("global", "k", written.as_bytes()).expect("set");
            let read = value(&vault, "global", "k");
            if read != written.as_bytes() {
                stale.push((written, String::from_utf8_lossy(&read).into_owned()));
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert!(stale.is_empty(), "(written, read back): {stale:?}");
}
