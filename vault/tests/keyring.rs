//! The keyring: any-of root KEKs, a threshold group with a recovery KEK, adding and
//! removing KEKs, and `check_kek`.

mod common;

use std::sync::Arc;

use common::{all_stanzas, direct, id, kek, stored_stanzas, tiered, value};
use envelope::{Dek, KekId, KekProvider, SoftwareKek};
use vault::{
    EpochPolicy, Error, InitOptions, Kek, KekCheck, RewrapOptions, StoreKind, Vault, WrapMode,
};

const KEYS: [&str; 3] = ["one", "two", "three"];

fn fill(vault: &Vault) {
    for key in KEYS {
        vault
            .set("global", key, format!("value of {key}").as_bytes())
            .expect("set");
    }
}

fn assert_all_open(vault: &Vault) {
    for key in KEYS {
        assert_eq!(
            value(vault, "global", key),
            format!("value of {key}").as_bytes()
        );
    }
}

fn rewrap(vault: &Vault) -> vault::RewrapReport {
    vault
        .rewrap(RewrapOptions::default(), &mut |_| {})
        .expect("rewrap")
}

// 1. Any-of root KEKs.

#[test]
fn direct_any_of_either_kek_reads_but_writes_need_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (kek("a"), kek("b"));
    let vault = Vault::init_with(dir.path(), &direct(), vec![a.clone(), b.clone()]).expect("init");
    fill(&vault);
    drop(vault);
    for (present, absent) in [(&a, &b), (&b, &a)] {
        let vault = Vault::open(dir.path(), None, vec![present.clone()]).expect("open with one");
        assert_all_open(&vault);
        let status = vault.status().expect("status");
        assert_eq!(status.missing_keks, vec![id(absent)]);
        assert_eq!(status.keks.len(), 1);
        assert_eq!(status.keks[0].id, id(present));
        let err = vault
            .set("global", "new", b"x")
            .expect_err("set without every root KEK");
        match &err {
            Error::IncompleteRoot { missing } => assert_eq!(missing, &id(absent)),
            other => panic!("expected IncompleteRoot, got {other:?}"),
        }
        assert!(err.to_string().contains(&id(absent)), "{err}");
        // The refused write stored nothing, and reads still work after it.
        assert!(matches!(
            vault.get("global", "new", None),
            Err(Error::NotFound { .. })
        ));
        assert_all_open(&vault);
        assert!(matches!(
            vault.seal_data("ctx", None, b"data"),
            Err(Error::IncompleteRoot { .. })
        ));
    }
    // Both together write again.
    let vault = Vault::open(dir.path(), None, vec![a, b]).expect("open with both");
    assert!(vault.status().expect("status").missing_keks.is_empty());
    vault.set("global", "new", b"x").expect("set with both");
}

#[test]
fn tiered_any_of_writes_on_the_leased_epoch_but_cannot_start_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (kek("a"), kek("b"));
    let options = InitOptions {
        epoch_policy: EpochPolicy {
            max_wraps: 6,
            max_age_secs: 3600,
        },
        ..tiered()
    };
    let vault = Vault::init_with(dir.path(), &options, vec![a.clone(), b.clone()]).expect("init");
    // Lease one wrap at a time, so that no process holds back wraps of epoch 1.
    vault.set_epoch_lease(1);
    fill(&vault);
    drop(vault);

    let vault = Vault::open(dir.path(), None, vec![a.clone()]).expect("open with a");
    vault.set_epoch_lease(1);
    assert_eq!(vault.status().expect("status").mode, WrapMode::Tiered);
    assert_eq!(vault.status().expect("status").missing_keks, vec![id(&b)]);
    assert_all_open(&vault);
    // Epoch 1 still has wraps left: writing needs no root KEK.
    vault.set("global", "four", b"4").expect("set with a only");
    assert_eq!(value(&vault, "global", "four"), b"4");
    let err = vault.rotate().expect_err("rotate without b");
    match &err {
        Error::IncompleteRoot { missing } => assert_eq!(missing, &id(&b)),
        other => panic!("expected IncompleteRoot, got {other:?}"),
    }
    assert_eq!(
        Vault::read_config(dir.path()).expect("config").epochs.len(),
        1
    );
    // Once epoch 1 is used up, a new epoch would need b too.
    let mut refused = None;
    for n in 0..10 {
        if let Err(e) = vault.set("global", &format!("more-{n}"), b"m") {
            refused = Some(e);
            break;
        }
    }
    let refused = refused.expect("the epoch closes within 6 wraps");
    assert!(
        matches!(refused, Error::IncompleteRoot { .. }),
        "{refused:?}"
    );
    let config = Vault::read_config(dir.path()).expect("config");
    assert_eq!(config.epochs.len(), 1);
    assert!(config.epochs[0].wraps_reserved <= 6);

    // b alone reads everything a wrote.
    drop(vault);
    let vault = Vault::open(dir.path(), None, vec![b.clone()]).expect("open with b");
    assert_all_open(&vault);
    assert_eq!(value(&vault, "global", "four"), b"4");
    // Both: rotation works.
    let vault = Vault::open(dir.path(), None, vec![a, b]).expect("open with both");
    assert_eq!(vault.rotate().expect("rotate"), 2);
    vault.set("global", "five", b"5").expect("set");
}

// 2. Threshold.

#[test]
fn threshold_two_of_three_with_a_recovery_kek() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (kek("a"), kek("b"), kek("c"));
    let options = InitOptions {
        threshold: Some(2),
        ..InitOptions::new(StoreKind::Sqlite)
    };
    let vault = Vault::init_with(dir.path(), &options, vec![a.clone(), b.clone(), c.clone()])
        .expect("init");
    let config = Vault::read_config(dir.path()).expect("config");
    assert_eq!(config.mode, WrapMode::Tiered, "a threshold picks tiered");
    assert!(config.keks.is_empty());
    assert_eq!(config.threshold.as_ref().expect("threshold").m, 2);
    fill(&vault);
    drop(vault);

    for pair in [[&a, &b], [&a, &c], [&b, &c], [&c, &a]] {
        let vault = Vault::open(dir.path(), None, pair.map(Kek::clone).to_vec())
            .unwrap_or_else(|e| panic!("open with {} and {}: {e}", id(pair[0]), id(pair[1])));
        assert_all_open(&vault);
    }
    for single in [&a, &b, &c] {
        let err = Vault::open(dir.path(), None, vec![single.clone()]).expect_err("one of three");
        assert!(err.to_string().contains("1 more"), "{err}");
    }

    // A recovery KEK needs every member present to wrap the epoch keys for it.
    let d = kek("d");
    let two = Vault::open(dir.path(), None, vec![a.clone(), b.clone()]).expect("open");
    let err = two.add_kek(d.clone()).expect_err("add with c absent");
    assert!(matches!(err, Error::IncompleteRoot { .. }), "{err:?}");
    assert!(
        Vault::read_config(dir.path())
            .expect("config")
            .keks
            .is_empty()
    );
    assert_all_open(&two);
    drop(two);

    let all = Vault::open(dir.path(), None, vec![a.clone(), b.clone(), c.clone()]).expect("open");
    all.add_kek(d.clone()).expect("add recovery kek");
    let config = Vault::read_config(dir.path()).expect("config");
    assert_eq!(config.keks.len(), 1);
    assert_eq!(config.keks[0].id, id(&d));
    all.set("global", "after", b"written after d").expect("set");
    drop(all);

    let recovery = Vault::open(dir.path(), None, vec![d.clone()]).expect("d alone opens");
    assert_all_open(&recovery);
    assert_eq!(value(&recovery, "global", "after"), b"written after d");
    let missing = recovery.status().expect("status").missing_keks;
    assert_eq!(missing.len(), 3, "{missing:?}");
    // Members still open it too.
    let members = Vault::open(dir.path(), None, vec![b, c]).expect("two members");
    assert_eq!(value(&members, "global", "after"), b"written after d");
}

// 3. Adding and removing KEKs (direct mode).

#[test]
fn an_added_kek_covers_old_secrets_after_rewrap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (kek("a"), kek("b"), kek("c"));
    let vault = Vault::init_with(dir.path(), &direct(), vec![a.clone(), b.clone()]).expect("init");
    fill(&vault);
    vault.add_kek(c.clone()).expect("add c");
    // Old envelopes do not have c yet: c alone cannot open them.
    let only_c = Vault::open(dir.path(), None, vec![c.clone()]).expect("c is pinned");
    assert!(only_c.get("global", "one", None).is_err());
    // New ones do.
    vault.set("global", "new", b"n").expect("set");
    assert!(stored_stanzas(dir.path(), "global", "new").contains(&id(&c)));
    drop(only_c);

    let report = rewrap(&vault);
    assert_eq!(report.progress.rewrapped, 3);
    for (scope, key, version, stanzas) in all_stanzas(dir.path()) {
        assert!(
            stanzas.contains(&id(&c)),
            "{scope} {key} v{version}: {stanzas:?}"
        );
    }
    let only_c = Vault::open(dir.path(), None, vec![c]).expect("open with c");
    assert_all_open(&only_c);
    assert_eq!(value(&only_c, "global", "new"), b"n");
    // A second rewrap has nothing to do.
    assert_eq!(rewrap(&vault).progress.rewrapped, 0);
}

#[test]
fn removing_a_kek_waits_until_no_secret_depends_on_it_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (kek("a"), kek("b"));
    let vault = Vault::init_with(dir.path(), &direct(), vec![a.clone()]).expect("init");
    fill(&vault);
    vault.add_kek(b.clone()).expect("add b");
    let err = vault
        .remove_kek(&id(&a))
        .expect_err("secrets are wrapped only for a");
    match &err {
        Error::StillInUse { count, what } => {
            assert_eq!(*count, 3);
            assert_eq!(what, &id(&a));
        }
        other => panic!("expected StillInUse, got {other:?}"),
    }
    // The refusal changed nothing.
    let config = Vault::read_config(dir.path()).expect("config");
    assert_eq!(config.keks.len(), 2);
    assert_all_open(&vault);

    rewrap(&vault);
    vault.remove_kek(&id(&a)).expect("remove a after rewrap");
    let config = Vault::read_config(dir.path()).expect("config");
    assert_eq!(
        config.keks.iter().map(|k| &k.id).collect::<Vec<_>>(),
        vec![&id(&b)]
    );
    // The vault keeps working with b, and wraps for b alone now.
    assert_all_open(&vault);
    vault.set("global", "after", b"x").expect("set");
    assert_eq!(stored_stanzas(dir.path(), "global", "after"), vec![id(&b)]);
    drop(vault);

    let err = Vault::open(dir.path(), None, vec![a]).expect_err("a is no longer pinned");
    assert!(matches!(err, Error::KekNotPinned { .. }), "{err:?}");
    let vault = Vault::open(dir.path(), None, vec![b]).expect("b opens");
    assert_all_open(&vault);
}

#[test]
fn a_kek_whose_secrets_another_pinned_kek_also_opens_can_be_removed() {
    // Secrets wrapped for a and c; the vault is opened with a and b (c is pinned but not
    // here). Removing a leaves c, which opens every secret: nothing depends on a alone.
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (kek("a"), kek("b"), kek("c"));
    let vault = Vault::init_with(dir.path(), &direct(), vec![a.clone(), c.clone()]).expect("init");
    fill(&vault);
    vault.add_kek(b.clone()).expect("add b");
    drop(vault);
    let vault = Vault::open(dir.path(), None, vec![a.clone(), b.clone()]).expect("open");
    vault
        .remove_kek(&id(&a))
        .expect("c still opens every secret");
    drop(vault);
    let vault = Vault::open(dir.path(), None, vec![c]).expect("c opens");
    assert_all_open(&vault);
}

#[test]
fn removing_the_last_working_kek_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = kek("a");
    let vault = Vault::init_with(dir.path(), &direct(), vec![a.clone()]).expect("init");
    fill(&vault);
    let err = vault.remove_kek(&id(&a)).expect_err("only kek");
    assert!(matches!(err, Error::LastKek { .. }), "{err:?}");

    // Two pinned, but only a is here: removing a would leave nothing working.
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (kek("a"), kek("b"));
    Vault::init_with(dir.path(), &direct(), vec![a.clone(), b.clone()]).expect("init");
    let vault = Vault::open(dir.path(), None, vec![a.clone()]).expect("open with a");
    let err = vault.remove_kek(&id(&a)).expect_err("last working kek");
    match &err {
        Error::LastKek { id: removed } => assert_eq!(removed, &id(&a)),
        other => panic!("expected LastKek, got {other:?}"),
    }
    assert_eq!(
        Vault::read_config(dir.path()).expect("config").keks.len(),
        2
    );
    // The vault is still usable for reads after the refusal.
    assert!(!vault.is_locked());
    // Removing the absent one is fine: a works.
    vault.remove_kek(&id(&b)).expect("remove b");
    vault.set("global", "k", b"v").expect("a alone wraps now");
}

#[test]
fn unknown_and_duplicate_keks_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (kek("a"), kek("b"));
    let vault = Vault::init_with(dir.path(), &direct(), vec![a.clone(), b.clone()]).expect("init");
    let err = vault.remove_kek("memory:nobody#v1").expect_err("unknown");
    match &err {
        Error::KekNotFound { id: asked, pinned } => {
            assert_eq!(asked, "memory:nobody#v1");
            assert!(
                pinned.contains(&id(&a)) && pinned.contains(&id(&b)),
                "{pinned}"
            );
        }
        other => panic!("expected KekNotFound, got {other:?}"),
    }
    let err = vault.add_kek(a.clone()).expect_err("already pinned");
    assert!(matches!(err, Error::KekExists { .. }), "{err:?}");
    // The same id with another key is the same pinned id: refused too.
    let twin: Arc<dyn KekProvider> = Arc::new(SoftwareKek::new(
        KekId::new("memory", "b", 1).expect("id"),
        Dek::generate().expect("dek"),
    ));
    let err = vault
        .add_kek(Kek {
            uri: "memory:b".into(),
            provider: twin,
        })
        .expect_err("same id");
    assert!(matches!(err, Error::KekExists { .. }), "{err:?}");
    assert_eq!(
        Vault::read_config(dir.path()).expect("config").keks.len(),
        2
    );
    // Still fully usable after the refusals.
    vault.set("global", "k", b"v").expect("set");
}

#[test]
fn rewrap_leaves_envelopes_alone_whatever_order_the_keks_are_given_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (kek("a"), kek("b"));
    let vault = Vault::init_with(dir.path(), &direct(), vec![a.clone(), b.clone()]).expect("init");
    fill(&vault);
    drop(vault);
    let before = all_stanzas(dir.path());
    let vault = Vault::open(dir.path(), None, vec![b, a]).expect("open in the other order");
    let report = rewrap(&vault);
    assert_eq!(report.progress.rewrapped, 0, "{report:?}");
    assert_eq!(all_stanzas(dir.path()), before);

    // Tiered: the epoch keys are not wrapped again either.
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (kek("a"), kek("b"));
    let vault = Vault::init_with(dir.path(), &tiered(), vec![a.clone(), b.clone()]).expect("init");
    fill(&vault);
    drop(vault);
    let config = Vault::read_config(dir.path()).expect("config");
    let vault = Vault::open(dir.path(), None, vec![b, a]).expect("open in the other order");
    let report = rewrap(&vault);
    assert_eq!(report.epochs_resealed, 0, "{report:?}");
    assert_eq!(report.progress.rewrapped, 0, "{report:?}");
    assert_eq!(
        Vault::read_config(dir.path()).expect("config").epochs,
        config.epochs
    );
}

// 9. kek check.

#[test]
fn check_kek_tells_the_pinned_kek_from_an_impostor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = kek("a");
    let vault = Vault::init_with(dir.path(), &direct(), vec![a.clone()]).expect("init");
    assert_eq!(vault.check_kek(&a), KekCheck::Ok);
    let impostor = Kek {
        uri: "memory:a".into(),
        provider: Arc::new(SoftwareKek::new(
            KekId::new("memory", "a", 1).expect("id"),
            Dek::generate().expect("dek"),
        )),
    };
    assert_eq!(id(&impostor), id(&a));
    assert!(
        matches!(vault.check_kek(&impostor), KekCheck::Failed(_)),
        "{:?}",
        vault.check_kek(&impostor)
    );
    match vault.check_kek(&kek("stranger")) {
        KekCheck::Failed(why) => assert!(why.contains("not one of"), "{why}"),
        other => panic!("expected Failed, got {other:?}"),
    }
    // It works while locked too, and opening with the impostor is refused.
    vault.lock().expect("lock");
    assert_eq!(vault.check_kek(&a), KekCheck::Ok);
    assert!(matches!(vault.check_kek(&impostor), KekCheck::Failed(_)));
    assert!(Vault::open(dir.path(), None, vec![impostor]).is_err());
}

#[test]
fn check_kek_covers_threshold_members_and_tiered_vaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (kek("a"), kek("b"), kek("c"));
    let options = InitOptions {
        threshold: Some(2),
        ..tiered()
    };
    let vault = Vault::init_with(dir.path(), &options, vec![a.clone(), b.clone(), c.clone()])
        .expect("init");
    for member in [&a, &b, &c] {
        assert_eq!(vault.check_kek(member), KekCheck::Ok);
    }
    let impostor = Kek {
        uri: "memory:b".into(),
        provider: Arc::new(SoftwareKek::new(
            KekId::new("memory", "b", 1).expect("id"),
            Dek::generate().expect("dek"),
        )),
    };
    assert!(matches!(vault.check_kek(&impostor), KekCheck::Failed(_)));
}

#[test]
fn tiered_kek_remove_reseals_the_epoch_keys_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (kek("a"), kek("b"));
    let vault = Vault::init_with(dir.path(), &tiered(), vec![a.clone(), b.clone()]).expect("init");
    fill(&vault);
    vault.remove_kek(&id(&a)).expect("remove a");
    // No rewrap needed: the secrets are under the epoch key, which b alone now wraps.
    for epoch in Vault::read_config(dir.path()).expect("config").epochs {
        let key = epoch.key_bytes().expect("key");
        assert_eq!(common::stanza_ids(&key), vec![id(&b)]);
    }
    assert_all_open(&vault);
    vault.set("global", "after", b"x").expect("set");
    drop(vault);
    assert!(matches!(
        Vault::open(dir.path(), None, vec![a]),
        Err(Error::KekNotPinned { .. })
    ));
    let vault = Vault::open(dir.path(), None, vec![b]).expect("b opens");
    assert_all_open(&vault);
    assert_eq!(value(&vault, "global", "after"), b"x");
}

#[test]
fn threshold_members_are_not_removed_one_by_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, c) = (kek("a"), kek("b"), kek("c"));
    let options = InitOptions {
        threshold: Some(2),
        ..InitOptions::new(StoreKind::Sqlite)
    };
    let vault = Vault::init_with(dir.path(), &options, vec![a.clone(), b, c]).expect("init");
    let err = vault.remove_kek(&id(&a)).expect_err("member");
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
    assert!(err.to_string().contains("threshold"), "{err}");
    assert_eq!(
        Vault::read_config(dir.path())
            .expect("config")
            .threshold
            .expect("threshold")
            .members
            .len(),
        3
    );
    vault.set("global", "k", b"v").expect("still usable");
}

#[test]
fn a_kek_given_twice_counts_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (kek("a"), kek("b"));
    Vault::init_with(dir.path(), &direct(), vec![a.clone(), b.clone()]).expect("init");
    let vault = Vault::open(dir.path(), None, vec![a.clone(), b.clone(), a.clone()]).expect("open");
    vault.set("global", "k", b"v").expect("set");
    assert_eq!(
        stored_stanzas(dir.path(), "global", "k"),
        vec![id(&a), id(&b)]
    );
    assert_eq!(vault.status().expect("status").keks.len(), 2);
    let report = rewrap(&vault);
    assert_eq!(report.progress.rewrapped, 0, "{report:?}");
    drop(vault);
    // A copy with the same id but another key fails its canary: alone it opens nothing,
    // next to a good KEK it is left out and never used.
    let impostor = Kek {
        uri: "memory:a".into(),
        provider: Arc::new(SoftwareKek::new(
            KekId::new("memory", "a", 1).expect("id"),
            Dek::generate().expect("dek"),
        )),
    };
    assert!(Vault::open(dir.path(), None, vec![impostor.clone()]).is_err());
    let vault = Vault::open(dir.path(), None, vec![impostor, b.clone()]).expect("open with b");
    let value = vault.get("global", "k", None).expect("read through b");
    assert_eq!(value.expose_secret(), b"v");
    let err = vault.set("global", "k", b"w").expect_err("a is missing");
    assert!(err.to_string().contains(&id(&a)), "{err}");
    drop(vault);

    // A threshold member given twice is one member.
    let dir = tempfile::tempdir().expect("tempdir");
    let c = kek("c");
    let options = InitOptions {
        threshold: Some(2),
        ..InitOptions::new(StoreKind::Sqlite)
    };
    Vault::init_with(dir.path(), &options, vec![a.clone(), b.clone(), c]).expect("init");
    let err = Vault::open(dir.path(), None, vec![a.clone(), a.clone()]).expect_err("one member");
    assert!(err.to_string().contains("1 more"), "{err}");
    Vault::open(dir.path(), None, vec![a.clone(), b, a]).expect("two members");
}
