//! Tiered mode: epochs of intermediate keys, rotation, rewrap onto the newest epoch,
//! retirement with min_decryption_version, and epoch limits across processes.

mod common;

use std::collections::BTreeMap;

use common::{all_stanzas, epoch_of, kek, stored_stanzas, tiered, value};
use vault::{EpochPolicy, Error, InitOptions, RewrapOptions, Vault};

fn secret(n: usize) -> Vec<u8> {
    format!("secret number {n}").into_bytes()
}

/// How many stored versions each epoch wraps.
fn per_epoch(dir: &std::path::Path) -> BTreeMap<u32, usize> {
    let mut counts = BTreeMap::new();
    for (scope, key, version, stanzas) in all_stanzas(dir) {
        assert_eq!(stanzas.len(), 1, "{scope} {key} v{version}: {stanzas:?}");
        *counts.entry(epoch_of(&stanzas[0])).or_default() += 1;
    }
    counts
}

// 4. Epochs, rotation, rewrap and retirement.

#[test]
fn rotate_rewrap_and_retire_an_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = kek("a");
    let vault = Vault::init_with(dir.path(), &tiered(), vec![a.clone()]).expect("init");
    assert_eq!(vault.status().expect("status").epochs, vec![1]);
    for n in 0..10 {
        vault
            .set("global", &format!("k{n}"), &secret(n))
            .expect("set");
    }
    for n in 0..10 {
        let stanzas = stored_stanzas(dir.path(), "global", &format!("k{n}"));
        assert_eq!(stanzas.len(), 1, "{stanzas:?}");
        assert_eq!(epoch_of(&stanzas[0]), 1);
    }
    assert_eq!(vault.rotate().expect("rotate"), 2);
    for n in 10..15 {
        vault
            .set("global", &format!("k{n}"), &secret(n))
            .expect("set");
    }
    // Only the new secrets are on epoch 2 so far.
    assert_eq!(per_epoch(dir.path()), BTreeMap::from([(1, 10), (2, 5)]));

    // Epoch 1 still protects ten secrets: it cannot be retired yet.
    let err = vault
        .set_min_decryption_version(2)
        .expect_err("epoch 1 in use");
    match &err {
        Error::StillInUse { count, .. } => assert_eq!(*count, 10),
        other => panic!("expected StillInUse, got {other:?}"),
    }
    let config = Vault::read_config(dir.path()).expect("config");
    assert_eq!(config.min_decryption_version, 1);
    assert_eq!(
        config.epochs.iter().map(|e| e.number).collect::<Vec<_>>(),
        vec![1, 2]
    );
    // Nothing newer than the newest epoch.
    assert!(matches!(
        vault.set_min_decryption_version(3),
        Err(Error::Unsupported(_))
    ));

    let report = vault
        .rewrap(RewrapOptions::default(), &mut |_| {})
        .expect("rewrap");
    assert_eq!(report.progress.rewrapped, 10, "{report:?}");
    assert_eq!(report.progress.examined, 15, "{report:?}");
    assert_eq!(per_epoch(dir.path()), BTreeMap::from([(2, 15)]));

    vault.set_min_decryption_version(2).expect("retire epoch 1");
    let config = Vault::read_config(dir.path()).expect("config");
    assert_eq!(config.min_decryption_version, 2);
    assert!(
        config.epochs.iter().all(|e| e.number >= 2),
        "{:?}",
        config.epochs
    );
    assert_eq!(vault.status().expect("status").epochs, vec![2]);
    for n in 0..15 {
        assert_eq!(value(&vault, "global", &format!("k{n}")), secret(n));
    }
    // And from disk.
    drop(vault);
    let vault = Vault::open(dir.path(), None, vec![a]).expect("reopen");
    assert_eq!(vault.status().expect("status").epochs, vec![2]);
    for n in 0..15 {
        assert_eq!(value(&vault, "global", &format!("k{n}")), secret(n));
    }
    vault
        .set("global", "later", b"l")
        .expect("set after retirement");
    assert_eq!(
        epoch_of(&stored_stanzas(dir.path(), "global", "later")[0]),
        2
    );
}

// 5. Epoch limits.

#[test]
fn epochs_close_after_max_wraps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = InitOptions {
        epoch_policy: EpochPolicy {
            max_wraps: 5,
            max_age_secs: 3600,
        },
        ..tiered()
    };
    let a = kek("a");
    let vault = Vault::init_with(dir.path(), &options, vec![a.clone()]).expect("init");
    vault.set_epoch_lease(2);
    for n in 0..12 {
        vault
            .set("global", &format!("k{n}"), &secret(n))
            .expect("set");
    }
    let config = Vault::read_config(dir.path()).expect("config");
    assert!(config.epochs.len() >= 3, "{:?}", config.epochs);
    for epoch in &config.epochs {
        assert!(epoch.wraps_reserved <= 5, "{epoch:?}");
    }
    for (epoch, count) in per_epoch(dir.path()) {
        assert!(count <= 5, "epoch {epoch} wraps {count}");
    }
    for n in 0..12 {
        assert_eq!(value(&vault, "global", &format!("k{n}")), secret(n));
    }
    drop(vault);
    let vault = Vault::open(dir.path(), None, vec![a]).expect("reopen");
    for n in 0..12 {
        assert_eq!(value(&vault, "global", &format!("k{n}")), secret(n));
    }
}

#[test]
fn two_processes_never_exceed_max_wraps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = InitOptions {
        epoch_policy: EpochPolicy {
            max_wraps: 5,
            max_age_secs: 3600,
        },
        ..tiered()
    };
    let a = kek("a");
    let first = Vault::init_with(dir.path(), &options, vec![a.clone()]).expect("init");
    let second = Vault::open(dir.path(), None, vec![a.clone()]).expect("open");
    first.set_epoch_lease(2);
    second.set_epoch_lease(3);
    let writers = [&first, &second];
    for n in 0..30 {
        // Irregular interleaving: two by one process, then one by the other.
        let writer = writers[(n / 2 + n % 3) % 2];
        writer
            .set("global", &format!("k{n}"), &secret(n))
            .expect("set");
    }
    let config = Vault::read_config(dir.path()).expect("config");
    assert!(config.epochs.len() >= 6, "{:?}", config.epochs);
    for epoch in &config.epochs {
        assert!(epoch.wraps_reserved <= 5, "{epoch:?}");
    }
    for (epoch, count) in per_epoch(dir.path()) {
        assert!(count <= 5, "epoch {epoch} wraps {count}");
    }
    let third = Vault::open(dir.path(), None, vec![a]).expect("open");
    for n in 0..30 {
        let key = format!("k{n}");
        assert_eq!(value(&third, "global", &key), secret(n));
        // Each process reads what the other wrote, under epochs it did not start.
        assert_eq!(value(&first, "global", &key), secret(n));
        assert_eq!(value(&second, "global", &key), secret(n));
    }
}

/// As a daemon runs them: writes where no device may be used when the lease allows it, else
/// where it may (which renews), and the lease renewed ahead whenever it runs low. Renewals
/// ahead, by two processes, never take an epoch past its limit, and lose nothing.
#[test]
fn renewing_the_lease_ahead_never_exceeds_max_wraps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = InitOptions {
        epoch_policy: EpochPolicy {
            max_wraps: 7,
            max_age_secs: 3600,
        },
        ..tiered()
    };
    let a = kek("a");
    let first = Vault::init_with(dir.path(), &options, vec![a.clone()]).expect("init");
    let second = Vault::open(dir.path(), None, vec![a.clone()]).expect("open");
    first.set_epoch_lease(4);
    second.set_epoch_lease(3);
    let writers = [&first, &second];
    let mut in_memory = 0;
    for n in 0..60 {
        let writer = writers[(n / 3 + n % 2) % 2];
        let (key, value) = (format!("k{n}"), secret(n));
        match writer.without_devices(|v| v.set("global", &key, &value)) {
            Some(written) => {
                written.expect("set in memory");
                in_memory += 1;
            }
            None => {
                writer.set("global", &key, &value).expect("set");
            }
        }
        if writer.epoch_lease_low() {
            writer.renew_epoch_lease().expect("renew ahead");
        }
    }
    assert!(in_memory > 30, "{in_memory} of 60 written in memory");
    let config = Vault::read_config(dir.path()).expect("config");
    for epoch in &config.epochs {
        assert!(epoch.wraps_reserved <= 7, "{epoch:?}");
    }
    for (epoch, count) in per_epoch(dir.path()) {
        assert!(count <= 7, "epoch {epoch} wraps {count}");
    }
    let third = Vault::open(dir.path(), None, vec![a]).expect("open");
    for n in 0..60 {
        assert_eq!(value(&third, "global", &format!("k{n}")), secret(n));
    }
}

#[test]
fn a_process_reads_secrets_under_an_epoch_another_one_started() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = kek("a");
    let daemon = Vault::init_with(dir.path(), &tiered(), vec![a.clone()]).expect("init");
    daemon.set("global", "old", b"o").expect("set");
    let admin = Vault::open(dir.path(), None, vec![a.clone()]).expect("open");
    assert_eq!(admin.rotate().expect("rotate"), 2);
    admin.set("global", "new", b"n").expect("set");
    assert_eq!(epoch_of(&stored_stanzas(dir.path(), "global", "new")[0]), 2);
    // The daemon opened its keys before epoch 2 existed.
    assert_eq!(value(&daemon, "global", "new"), b"n");
    assert_eq!(value(&daemon, "global", "old"), b"o");
    let sealed = admin.seal_data("ctx", None, b"transit").expect("seal");
    assert_eq!(
        daemon
            .open_data("ctx", None, &sealed)
            .expect("open_data")
            .expose_secret(),
        b"transit"
    );
    // Rewrap in the daemon moves envelopes of an epoch it never opened (2) onto the newest.
    assert_eq!(admin.rotate().expect("rotate"), 3);
    admin.set("global", "newer", b"3").expect("set");
    let report = daemon
        .rewrap(RewrapOptions::default(), &mut |_| {})
        .expect("rewrap");
    assert_eq!(report.progress.rewrapped, 2, "{report:?}");
    assert_eq!(per_epoch(dir.path()), BTreeMap::from([(3, 3)]));
    for (key, v) in [("old", b"o"), ("new", b"n"), ("newer", b"3")] {
        assert_eq!(value(&admin, "global", key), v);
    }
}

#[test]
fn a_lease_on_an_epoch_rotated_elsewhere_is_given_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = kek("a");
    let daemon = Vault::init_with(dir.path(), &tiered(), vec![a.clone()]).expect("init");
    // The daemon leases 64 wraps of epoch 1 and uses one.
    daemon.set("global", "first", b"1").expect("set");
    let admin = Vault::open(dir.path(), None, vec![a.clone()]).expect("open");
    assert_eq!(admin.rotate().expect("rotate"), 2);
    // New secrets go to the new epoch in every process, once it has looked again (a process
    // looks for new epochs once a second, not on every wrap).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    daemon.set("global", "second", b"2").expect("set");
    assert_eq!(
        epoch_of(&stored_stanzas(dir.path(), "global", "second")[0]),
        2
    );
    let sealed = daemon.seal_data("ctx", None, b"t").expect("seal");
    assert_eq!(common::stanza_ids(&sealed).len(), 1);
    assert_eq!(epoch_of(&common::stanza_ids(&sealed)[0]), 2);
}

#[test]
fn a_lease_on_an_epoch_retired_elsewhere_is_not_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = kek("a");
    let daemon = Vault::init_with(dir.path(), &tiered(), vec![a.clone()]).expect("init");
    // The daemon leases 64 wraps of epoch 1 and uses one.
    daemon.set("global", "first", b"1").expect("set");
    let admin = Vault::open(dir.path(), None, vec![a.clone()]).expect("open");
    assert_eq!(admin.rotate().expect("rotate"), 2);
    admin
        .rewrap(RewrapOptions::default(), &mut |_| {})
        .expect("rewrap");
    admin.set_min_decryption_version(2).expect("retire epoch 1");
    // Epoch 1's key is gone from disk: nothing may be wrapped under it any more.
    daemon.set("global", "second", b"2").expect("set");
    assert_eq!(
        epoch_of(&stored_stanzas(dir.path(), "global", "second")[0]),
        2
    );
    // And the daemon dropped the retired key.
    assert_eq!(daemon.status().expect("status").epochs, vec![2]);
    drop(daemon);
    let fresh = Vault::open(dir.path(), None, vec![a]).expect("open");
    for (key, v) in [("first", b"1"), ("second", b"2")] {
        assert_eq!(value(&fresh, "global", key), v);
    }
}
