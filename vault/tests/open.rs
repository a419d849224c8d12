//! Creating and opening vaults: what is pinned is enforced, and every refusal says why.

use std::sync::Arc;

use envelope::{Dek, KekId, KekProvider, SoftwareKek};
use vault::{Error, Kek, StoreKind, Vault};

fn kek(label: &str) -> Kek {
    let provider: Arc<dyn KekProvider> = Arc::new(SoftwareKek::random(label).expect("kek"));
    Kek {
        uri: format!("memory:{label}"),
        provider,
    }
}

#[test]
fn a_missing_vault_says_how_to_create_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = Vault::open(&dir.path().join("nope"), None, vec![kek("a")]).expect_err("no vault");
    assert!(matches!(err, Error::NoVault { .. }));
    assert!(err.to_string().contains("vaultctl --vault"), "{err}");
}

#[test]
fn init_twice_is_refused_and_keeps_the_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = kek("a");
    let vault = Vault::init(dir.path(), StoreKind::Sqlite, vec![a.clone()]).expect("init");
    vault.set("global", "k", b"v").expect("set");
    let err = Vault::init(dir.path(), StoreKind::Sqlite, vec![kek("b")]).expect_err("second init");
    assert!(matches!(err, Error::AlreadyInitialised { .. }), "{err}");
    let vault = Vault::open(dir.path(), None, vec![a]).expect("open");
    assert_eq!(
        vault.get("global", "k", None).expect("get").expose_secret(),
        b"v"
    );
}

#[test]
fn the_store_kind_is_pinned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = kek("a");
    Vault::init(dir.path(), StoreKind::Sqlite, vec![a.clone()]).expect("init");
    let err =
        Vault::open(dir.path(), Some(StoreKind::Memory), vec![a.clone()]).expect_err("switch");
    assert!(matches!(err, Error::StoreKindMismatch { .. }), "{err}");
    assert!(err.to_string().contains("sqlite"), "{err}");
    Vault::open(dir.path(), Some(StoreKind::Sqlite), vec![a]).expect("same kind opens");
    assert!(matches!(
        "redis".parse::<StoreKind>(),
        Err(Error::UnknownStoreKind(_))
    ));
}

#[test]
fn a_kek_that_is_not_pinned_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    Vault::init(dir.path(), StoreKind::Sqlite, vec![kek("a")]).expect("init");
    let err = Vault::open(dir.path(), None, vec![kek("other")]).expect_err("wrong kek");
    assert!(matches!(err, Error::KekNotPinned { .. }), "{err}");
    assert!(
        err.to_string().contains("not one of this vault's KEKs"),
        "{err}"
    );
    assert!(matches!(
        Vault::open(dir.path(), None, vec![]),
        Err(Error::NoKek)
    ));
}

#[test]
fn a_kek_with_the_pinned_id_but_another_key_fails_the_canary() {
    let dir = tempfile::tempdir().expect("tempdir");
    Vault::init(dir.path(), StoreKind::Sqlite, vec![kek("a")]).expect("init");
    let impostor = SoftwareKek::new(
        KekId::new("memory", "a", 1).expect("id"),
        Dek::generate().expect("dek"),
    );
    let impostor = Kek {
        uri: "memory:a".into(),
        provider: Arc::new(impostor),
    };
    let err = Vault::open(dir.path(), None, vec![impostor]).expect_err("impostor");
    assert!(
        matches!(err, Error::Envelope(envelope::Error::StanzaRejected { .. })),
        "{err}"
    );
}

#[test]
fn any_one_of_several_keks_opens_the_vault() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (kek("a"), kek("b"));
    let vault =
        Vault::init(dir.path(), StoreKind::Sqlite, vec![a.clone(), b.clone()]).expect("init");
    vault.set("global", "k", b"v").expect("set");
    drop(vault);
    for only in [a, b] {
        let vault = Vault::open(dir.path(), None, vec![only]).expect("open with one");
        assert_eq!(
            vault.get("global", "k", None).expect("get").expose_secret(),
            b"v"
        );
    }
    let marker = Vault::read_config(dir.path()).expect("marker");
    assert_eq!(marker.keks.len(), 2);
    assert_eq!(marker.store, "sqlite");
}

#[test]
fn a_damaged_marker_is_reported_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = kek("a");
    Vault::init(dir.path(), StoreKind::Sqlite, vec![a.clone()]).expect("init");
    let marker = dir.path().join(vault::CONFIG_FILE);
    for text in ["", "{", "[]", "{\"format\": 3}", &"x".repeat(2 << 20)] {
        std::fs::write(&marker, text).expect("write");
        let err = Vault::open(dir.path(), None, vec![a.clone()]).expect_err("damaged");
        assert!(matches!(err, Error::Marker { .. }), "{text:.20}: {err}");
        assert!(err.to_string().contains("vault.json"), "{err}");
    }
}

#[test]
fn store_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let vault_dir = dir.path().join("v");
    let vault = Vault::init(&vault_dir, StoreKind::Sqlite, vec![kek("a")]).expect("init");
    vault.set("global", "k", b"v").expect("set");
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&vault_dir), 0o700);
    for entry in std::fs::read_dir(&vault_dir).expect("read_dir").flatten() {
        assert_eq!(
            mode(&entry.path()) & 0o077,
            0,
            "{} is readable by others",
            entry.path().display()
        );
    }
}

#[test]
fn transit_data_is_bound_to_its_context() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = Vault::init(dir.path(), StoreKind::Memory, vec![kek("a")]).expect("init");
    let sealed = vault.seal_data("billing", None, b"card").expect("seal");
    assert_eq!(
        vault
            .open_data("billing", None, &sealed)
            .expect("open")
            .expose_secret(),
        b"card"
    );
    let err = vault
        .open_data("other", None, &sealed)
        .expect_err("other context");
    // The stanza's AAD holds the context too, so the KEK already refuses it.
    assert!(
        matches!(
            err,
            Error::Envelope(envelope::Error::StanzaRejected { .. } | envelope::Error::Tampered)
        ),
        "{err}"
    );
}

#[test]
fn transit_data_bound_to_a_caller_opens_only_for_that_caller() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = Vault::init(dir.path(), StoreKind::Memory, vec![kek("a")]).expect("init");
    let sealed = vault
        .seal_data("backups", Some("alice"), b"alice's backup key")
        .expect("seal");
    let opened = vault
        .open_data("backups", Some("alice"), &sealed)
        .expect("alice opens");
    assert_eq!(opened.expose_secret(), b"alice's backup key");
    // Another caller, no caller, or the bound scope taken as a context: none opens it.
    for (context, caller) in [
        ("backups", Some("bob")),
        ("backups", None),
        ("backups", Some("alice2")),
        ("principal:alice", Some("backups")),
    ] {
        let err = vault
            .open_data(context, caller, &sealed)
            .expect_err("another caller");
        assert!(
            matches!(
                err,
                Error::Envelope(envelope::Error::StanzaRejected { .. } | envelope::Error::Tampered)
            ),
            "{context} {caller:?}: {err}"
        );
    }
    // Unbound data does not open as bound data either.
    let shared = vault.seal_data("backups", None, b"shared").expect("seal");
    assert!(vault.open_data("backups", Some("alice"), &shared).is_err());
    // Rewrap keeps the binding.
    let rewrapped = vault
        .rewrap_data("backups", Some("alice"), &sealed)
        .expect("alice rewraps");
    assert!(vault.rewrap_data("backups", Some("bob"), &sealed).is_err());
    assert_eq!(
        vault
            .open_data("backups", Some("alice"), &rewrapped)
            .expect("open")
            .expose_secret(),
        b"alice's backup key"
    );
    assert!(vault.open_data("backups", None, &rewrapped).is_err());
    // A binding is a principal id.
    for bad in ["", "a:b", ".hidden", "a b"] {
        let err = vault
            .seal_data("backups", Some(bad), b"x")
            .expect_err("not a principal id");
        assert!(matches!(err, Error::InvalidScope { .. }), "{bad:?}: {err}");
    }
}

#[test]
fn of_concurrent_inits_exactly_one_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let results: Vec<(Kek, Result<Vault, Error>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let dir = dir.path();
                s.spawn(move || {
                    let k = kek(&format!("k{i}"));
                    (k.clone(), Vault::init(dir, StoreKind::Sqlite, vec![k]))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let winners: Vec<&Kek> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(k, _)| k)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one init succeeds");
    for (_, r) in &results {
        if let Err(e) = r {
            assert!(matches!(e, Error::AlreadyInitialised { .. }), "{e}");
        }
    }
    let vault =
        Vault::open(dir.path(), None, vec![winners[0].clone()]).expect("the winner's KEK opens it");
    vault.set("global", "k", b"v").expect("set");
}
