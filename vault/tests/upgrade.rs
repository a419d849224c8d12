//! `upgrade`: a format 2 vault (no integrity key, canaries not bound to the vault id, no
//! version counters, untagged stanzas) becomes a format 3 vault that opens with the same
//! KEKs and the same secrets, and from then on refuses what format 2 let through.
//!
//! The format 2 vault is made the way that format was: `vault.json` without the fields
//! format 3 added, canaries sealed for the context `vault`/`canary`/0, envelopes sealed by the
//! KEKs as the providers make them, and the store's schema version 1.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{direct, kek, tiered};
use envelope::{Assurance, Context, Dek, Health, KekId, KekProvider, SoftwareKek, StanzaRef};
use serde_json::Value;
use vault::{Error, Kek, Vault};

/// Stand-in for a KEK that wraps without a secret (as a YubiKey or a TPM does).
#[derive(Debug)]
struct PublicWrapKek(SoftwareKek);

impl KekProvider for PublicWrapKek {
    fn id(&self) -> &KekId {
        self.0.id()
    }
    fn wrap(&self, dek: &Dek, aad: &[u8]) -> Result<Vec<u8>, envelope::Error> {
        self.0.wrap(dek, aad)
    }
    fn unwrap(&self, stanza: &StanzaRef<'_>, aad: &[u8]) -> Option<Result<Dek, envelope::Error>> {
        self.0.unwrap(stanza, aad)
    }
    fn health(&self) -> Health {
        Health::Ok
    }
    fn assurance(&self) -> Assurance {
        Assurance::default()
    }
    fn wraps_without_secret(&self) -> bool {
        true
    }
}

fn public_kek(label: &str) -> Kek {
    Kek {
        uri: format!("memory:{label}"),
        provider: Arc::new(PublicWrapKek(SoftwareKek::random(label).expect("kek"))),
    }
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Turns the fresh vault in `dir` into what format 2 wrote, with `secrets` stored in it as
/// format 2 stored them (sealed by `keks` as they are, version 1 each).
fn make_format_2(dir: &Path, keks: &[Kek], secrets: &[(&str, &[u8])]) {
    let path = dir.join(vault::CONFIG_FILE);
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    let object = config.as_object_mut().expect("object");
    object.insert("format".into(), 2.into());
    object.remove("integrity_key");
    object.remove("mac");
    let providers: Vec<Arc<dyn KekProvider>> =
        keks.iter().map(|k| Arc::clone(&k.provider)).collect();
    for entry in object["keks"].as_array_mut().expect("keks") {
        let entry = entry.as_object_mut().expect("entry");
        entry.remove("mac");
        let id = entry["id"].as_str().expect("id").to_owned();
        let kek = keks
            .iter()
            .find(|k| k.provider.id().to_string() == id)
            .expect("kek");
        let canary = envelope::seal(
            b"vault canary v1",
            &Context::new("vault", "canary", 0),
            &[Arc::clone(&kek.provider)],
        )
        .expect("canary");
        entry.insert("canary".into(), base64(&canary).into());
    }
    for epoch in object["epochs"].as_array_mut().expect("epochs") {
        let epoch = epoch.as_object_mut().expect("epoch");
        epoch.remove("mac");
        let number = epoch["number"].as_u64().expect("number");
        let key = Dek::generate().expect("epoch key");
        let sealed = envelope::seal(
            key.expose_secret(),
            &Context::new("keyring", "epoch", number),
            &providers,
        )
        .expect("seal");
        epoch.insert("key".into(), base64(&sealed).into());
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&config).expect("json")).expect("write");

    let db = rusqlite::Connection::open(dir.join("secrets.db")).expect("db");
    // Schema 1: the versions only, no counters.
    db.execute_batch(
        "DROP TABLE secrets;
         CREATE TABLE secrets (
             scope TEXT NOT NULL, key TEXT NOT NULL, version INTEGER NOT NULL,
             envelope BLOB NOT NULL, written_at INTEGER NOT NULL,
             PRIMARY KEY (scope, key, version)
         ) WITHOUT ROWID;
         PRAGMA user_version = 1;",
    )
    .expect("schema 1");
    for (key, value) in secrets {
        let sealed =
            envelope::seal(value, &Context::new("global", key, 1), &providers).expect("seal");
        db.execute(
            "INSERT INTO secrets (scope, key, version, envelope, written_at) VALUES ('global', ?1, 1, ?2, 0)",
            rusqlite::params![key, sealed],
        )
        .expect("insert");
    }
}

fn value(vault: &Vault, key: &str) -> Vec<u8> {
    vault
        .get("global", key, None)
        .unwrap_or_else(|e| panic!("get {key}: {e}"))
        .expose_secret()
        .to_vec()
}

#[test]
fn a_direct_vault_with_a_public_wrap_kek_is_upgraded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keks = vec![public_kek("card"), kek("recovery")];
    drop(Vault::init_with(dir.path(), &direct(), keks.clone()).expect("init"));
    make_format_2(dir.path(), &keks, &[("a", b"alpha"), ("b", b"beta")]);

    let err = Vault::open(dir.path(), None, keks.clone())
        .map(drop)
        .expect_err("format 2");
    assert!(matches!(err, Error::FormatUpgrade { .. }), "{err:?}");
    assert!(err.to_string().contains("vaultctl upgrade"), "{err}");
    let uris = vault::legacy_kek_uris(dir.path()).expect("uris");
    assert_eq!(uris, vec!["memory:card", "memory:recovery"]);

    let missing = vault::upgrade(dir.path(), vec![keks[0].clone()]).expect_err("all KEKs");
    assert!(
        matches!(missing, Error::IncompleteRoot { .. }),
        "{missing:?}"
    );

    let report = vault::upgrade(dir.path(), keks.clone()).expect("upgrade");
    assert_eq!((report.counters, report.tagged), (2, 2));
    assert!(!dir.path().join("vault.json.upgrade").exists());
    let again = vault::upgrade(dir.path(), keks.clone()).expect_err("already upgraded");
    assert!(again.to_string().contains("nothing to upgrade"), "{again}");

    for only in [&keks[0], &keks[1]] {
        let vault = Vault::open(dir.path(), None, vec![only.clone()]).expect("opens");
        assert_eq!(value(&vault, "a"), b"alpha");
        assert_eq!(value(&vault, "b"), b"beta");
    }
    let vault = Vault::open(dir.path(), None, keks.clone()).expect("opens");
    assert_eq!(vault.set("global", "a", b"alpha 2").expect("set"), 2);
    vault.delete("global", "b").expect("delete");
    assert_eq!(vault.set("global", "b", b"beta again").expect("set"), 2);

    // An untagged stanza, as format 2 wrote them, is no longer accepted.
    let planted = envelope::seal(
        b"planted",
        &Context::new("global", "a", 2),
        &[Arc::clone(&keks[0].provider)],
    )
    .expect("seal");
    let db = rusqlite::Connection::open(dir.path().join("secrets.db")).expect("db");
    db.execute(
        "UPDATE secrets SET envelope = ?1 WHERE key = 'a' AND version = 2",
        [&planted],
    )
    .expect("plant");
    let vault = Vault::open(dir.path(), None, vec![keks[0].clone()]).expect("opens");
    assert!(vault.get("global", "a", None).is_err());
}

#[test]
fn a_tiered_vault_is_upgraded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keks = vec![public_kek("tpm")];
    drop(Vault::init_with(dir.path(), &tiered(), keks.clone()).expect("init"));
    make_format_2(dir.path(), &keks, &[]);
    let report = vault::upgrade(dir.path(), keks.clone()).expect("upgrade");
    assert_eq!((report.epochs, report.tagged), (1, 0));
    let vault = Vault::open(dir.path(), None, keks).expect("opens");
    vault.set("global", "k", b"v").expect("set");
    assert_eq!(value(&vault, "k"), b"v");
}
