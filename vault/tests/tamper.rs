//! Someone who can write the vault directory but holds none of its KEKs: what they add or
//! change in `vault.json` or `secrets.db` is refused, with an error that names it.
//!
//! `PublicWrapKek` is a stand-in for a KEK that wraps without a secret (a YubiKey wraps with
//! its public key, a TPM seals for anyone who can send it commands): the test, as the
//! attacker, wraps with it directly. The real devices are attacked the same way in
//! tpm-tests and yubikey-tests.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{direct, kek, tiered};
use envelope::{Assurance, Context, Dek, Health, KekId, KekProvider, SoftwareKek, StanzaRef};
use serde_json::Value;
use vault::{Error, Kek, Vault};

/// A software KEK that declares it wraps without a secret, as a YubiKey or a TPM does.
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

fn config_json(dir: &Path) -> Value {
    let text = std::fs::read(dir.join(vault::CONFIG_FILE)).expect("read vault.json");
    serde_json::from_slice(&text).expect("vault.json is JSON")
}

fn write_config_json(dir: &Path, value: &Value) {
    let text = serde_json::to_vec_pretty(value).expect("serialize");
    std::fs::write(dir.join(vault::CONFIG_FILE), text).expect("write vault.json");
}

fn expect_tampered(result: Result<impl Sized, Error>, names: &str) -> String {
    match result {
        Err(e @ Error::Tampered { .. }) => {
            let text = e.to_string();
            assert!(text.contains(names), "{text:?} should name {names:?}");
            text
        }
        Err(e) => panic!("expected a tampering error naming {names:?}, got {e:?}"),
        Ok(_) => panic!("expected a tampering error naming {names:?}, got success"),
    }
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An epoch whose key the attacker chose, sealed under the vault's public-wrap root KEK
/// (which opens it) and appended to `vault.json`: refused by a running vault on its next
/// wrap and by a vault opening afresh, naming the epoch.
#[test]
fn an_appended_epoch_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = public_kek("card");
    let vault = Vault::init_with(dir.path(), &tiered(), vec![root.clone()]).expect("init");
    vault.set_epoch_lease(1);
    vault.set("global", "before", b"v").expect("set");

    let mut config = config_json(dir.path());
    let chosen = Dek::generate().expect("attacker's key");
    let sealed = envelope::seal(
        chosen.expose_secret(),
        &Context::new("keyring", "epoch", 2),
        &[Arc::clone(&root.provider)],
    )
    .expect("the attacker wraps for the public key");
    let mut epoch = config["epochs"][0].clone();
    epoch["number"] = 2.into();
    epoch["key"] = base64(&sealed).into();
    config["epochs"].as_array_mut().expect("epochs").push(epoch);
    write_config_json(dir.path(), &config);

    expect_tampered(vault.set("global", "after", b"v"), "epoch 2");
    drop(vault);
    expect_tampered(
        Vault::open(dir.path(), None, vec![root]).map(drop),
        "epoch 2",
    );
}

/// A KEK the attacker controls, pinned into `vault.json` with a canary for this vault's id:
/// the vault refuses to open, naming the KEK, whichever KEKs it is given.
#[test]
fn a_pinned_extra_kek_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let legit = kek("legit");
    Vault::init_with(dir.path(), &direct(), vec![legit.clone()]).expect("init");

    let evil = kek("evil");
    let mut config = config_json(dir.path());
    let vault_id = config["id"].as_str().expect("id").to_owned();
    let canary = envelope::seal(
        b"vault canary v1",
        &Context::new("vault", &format!("canary:{vault_id}"), 0),
        &[Arc::clone(&evil.provider)],
    )
    .expect("canary");
    let mut entry = config["keks"][0].clone();
    entry["uri"] = "file:/tmp/evil.key".into();
    entry["id"] = evil.provider.id().to_string().into();
    entry["canary"] = base64(&canary).into();
    config["keks"].as_array_mut().expect("keks").push(entry);
    write_config_json(dir.path(), &config);

    let named = evil.provider.id().to_string();
    expect_tampered(
        Vault::open(dir.path(), None, vec![legit.clone()]).map(drop),
        &named,
    );
    expect_tampered(
        Vault::open(dir.path(), None, vec![legit, evil]).map(drop),
        &named,
    );
}

/// The attacker pins their KEK *and* replaces the integrity key with one of their own,
/// sealed under their KEK only: the vault's own KEK has no stanza in it, so the KEKs do not
/// agree on the integrity key and the vault refuses to open before it trusts anything else.
#[test]
fn a_replaced_integrity_key_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let legit = kek("legit");
    Vault::init_with(dir.path(), &direct(), vec![legit.clone()]).expect("init");
    let evil = kek("evil");
    let mut config = config_json(dir.path());
    let vault_id = config["id"].as_str().expect("id").to_owned();
    let canary = envelope::seal(
        b"vault canary v1",
        &Context::new("vault", &format!("canary:{vault_id}"), 0),
        &[Arc::clone(&evil.provider)],
    )
    .expect("canary");
    let mut entry = config["keks"][0].clone();
    entry["id"] = evil.provider.id().to_string().into();
    entry["canary"] = base64(&canary).into();
    config["keks"].as_array_mut().expect("keks").push(entry);
    let theirs = Dek::generate().expect("their integrity key");
    let sealed = envelope::seal(
        theirs.expose_secret(),
        &Context::new("keyring", &format!("integrity:{vault_id}"), 0),
        &[Arc::clone(&evil.provider)],
    )
    .expect("seal");
    config["integrity_key"] = base64(&sealed).into();
    write_config_json(dir.path(), &config);

    expect_tampered(
        Vault::open(dir.path(), None, vec![legit, evil]).map(drop),
        "integrity key was replaced",
    );
}

/// A canary copied from another vault that uses the same KEK does not open here: canaries
/// name their vault.
#[test]
fn a_canary_from_another_vault_does_not_open() {
    let (a, b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let shared = kek("shared");
    Vault::init_with(a.path(), &direct(), vec![shared.clone()]).expect("init a");
    Vault::init_with(b.path(), &direct(), vec![shared.clone()]).expect("init b");
    let mut config = config_json(a.path());
    config["keks"][0]["canary"] = config_json(b.path())["keks"][0]["canary"].clone();
    write_config_json(a.path(), &config);
    let err = Vault::open(a.path(), None, vec![shared])
        .map(drop)
        .expect_err("refused");
    assert!(
        matches!(err, Error::Envelope(envelope::Error::StanzaRejected { .. })),
        "{err:?}"
    );
}

/// Editing a setting (here: unlocking a locked vault by flipping its flag) is refused.
#[test]
fn an_edited_setting_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = kek("a");
    let vault = Vault::init_with(dir.path(), &direct(), vec![a.clone()]).expect("init");
    vault.lock().expect("lock");
    drop(vault);
    let mut config = config_json(dir.path());
    config["locked"] = false.into();
    write_config_json(dir.path(), &config);
    expect_tampered(Vault::open(dir.path(), None, vec![a]).map(drop), "settings");
}

fn sql(dir: &Path, statement: &str, params: impl rusqlite::Params) {
    let conn = rusqlite::Connection::open(dir.join("secrets.db")).expect("open the store");
    conn.execute(statement, params)
        .expect("attacker's statement");
}

fn envelope_of(dir: &Path, key: &str, version: i64) -> Vec<u8> {
    let conn = rusqlite::Connection::open(dir.join("secrets.db")).expect("open the store");
    conn.query_row(
        "SELECT envelope FROM secrets WHERE scope = 'global' AND key = ?1 AND version = ?2",
        rusqlite::params![key, version],
        |row| row.get(0),
    )
    .expect("envelope")
}

/// A key deleted and created again, with an envelope of the deleted key copied back in:
/// the old version is refused, the new one stays current; the copy at the new version's
/// place does not open (its AAD names the old version).
#[test]
fn a_recreated_key_with_an_old_envelope_copied_in_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = kek("a");
    let mut vault = Vault::init_with(dir.path(), &direct(), vec![a]).expect("init");
    vault.set_cache_ttl(Duration::ZERO);
    assert_eq!(vault.set("global", "k", b"old").expect("set"), 1);
    let old = envelope_of(dir.path(), "k", 1);
    vault.delete("global", "k").expect("delete");
    assert_eq!(vault.set("global", "k", b"new").expect("set again"), 2);

    sql(
        dir.path(),
        "INSERT INTO secrets (scope, key, version, envelope, written_at) VALUES ('global', 'k', 1, ?1, 0)",
        [&old],
    );
    expect_tampered(
        vault.get("global", "k", Some(1)),
        "version 1 of global k was deleted",
    );
    assert_eq!(
        vault
            .get("global", "k", None)
            .expect("current")
            .expose_secret(),
        b"new"
    );

    sql(
        dir.path(),
        "UPDATE secrets SET envelope = ?1 WHERE scope = 'global' AND key = 'k' AND version = 2",
        [&old],
    );
    let err = vault
        .get("global", "k", None)
        .expect_err("an old envelope does not open as version 2");
    assert!(matches!(err, Error::Envelope(_)), "{err:?}");
}

/// Deleting a secret's newest version rolls nothing back: it is reported. So is editing the
/// version counter, and rows put in for a key the vault never wrote.
#[test]
fn rollbacks_and_edited_counters_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = kek("a");
    let mut vault = Vault::init_with(dir.path(), &direct(), vec![a]).expect("init");
    vault.set_cache_ttl(Duration::ZERO);
    for value in [b"1", b"2", b"3"] {
        vault.set("global", "k", value).expect("set");
    }
    vault.set("global", "other", b"x").expect("set");

    sql(
        dir.path(),
        "DELETE FROM secrets WHERE key = 'k' AND version = 3",
        [],
    );
    expect_tampered(
        vault.get("global", "k", None),
        "version 3 of global k is missing",
    );
    sql(
        dir.path(),
        "UPDATE secrets SET latest = 2 WHERE key = 'k' AND version = 0",
        [],
    );
    expect_tampered(
        vault.get("global", "k", None),
        "version counter of global k",
    );

    let planted = envelope_of(dir.path(), "other", 1);
    sql(
        dir.path(),
        "INSERT INTO secrets (scope, key, version, envelope, written_at) VALUES ('global', 'planted', 1, ?1, 0)",
        [&planted],
    );
    expect_tampered(vault.get("global", "planted", None), "no version counter");
    expect_tampered(vault.set("global", "planted", b"x"), "no version counter");
}

/// In direct mode with a public-wrap root KEK, an envelope the attacker sealed for the
/// secret's own context (a stanza the KEK opens) is refused without asking the KEK: it has
/// no tag of this vault.
#[test]
fn a_planted_stanza_for_a_public_wrap_kek_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = public_kek("card");
    let mut vault = Vault::init_with(dir.path(), &direct(), vec![root.clone()]).expect("init");
    vault.set_cache_ttl(Duration::ZERO);
    vault.set("global", "k", b"real").expect("set");
    let planted = envelope::seal(
        b"attacker's value",
        &Context::new("global", "k", 1),
        &[Arc::clone(&root.provider)],
    )
    .expect("the attacker wraps for the public key");
    sql(
        dir.path(),
        "UPDATE secrets SET envelope = ?1 WHERE key = 'k' AND version = 1",
        [&planted],
    );
    let err = vault.get("global", "k", None).expect_err("planted");
    assert!(
        matches!(err, Error::Envelope(envelope::Error::StanzaRejected { .. })),
        "{err:?}"
    );
    // What the vault itself seals still opens.
    vault.set("global", "k", b"again").expect("set");
    assert_eq!(
        vault.get("global", "k", None).expect("get").expose_secret(),
        b"again"
    );
}
