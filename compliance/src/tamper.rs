//! What someone who can write a vault directory but holds none of its KEKs' secrets can do
//! with a KEK that wraps without one (a YubiKey's public key, a TPM that seals for anyone who
//! can send it commands): seal a value or an epoch key of their choosing for it, and put it
//! into `secrets.db` or `vault.json`. The hardware tests use these against the real devices;
//! the vault must refuse what they plant.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use envelope::{Context, Dek, KekProvider};

/// Replaces the envelope of `scope`/`key` version `version` in the vault's SQLite store with
/// one the attacker sealed for that very context under `kek` (as the KEK's provider makes
/// stanzas, without anything of the vault's own).
pub fn plant_secret(
    vault_dir: &Path,
    kek: &Arc<dyn KekProvider>,
    (scope, key, version): (&str, &str, u64),
    value: &[u8],
) {
    let planted = envelope::seal(
        value,
        &Context::new(scope, key, version),
        &[Arc::clone(kek)],
    )
    .expect("the attacker seals for the KEK");
    let db = rusqlite::Connection::open(vault_dir.join("secrets.db")).expect("open the store");
    let changed = db
        .execute(
            "UPDATE secrets SET envelope = ?1 WHERE scope = ?2 AND key = ?3 AND version = ?4",
            rusqlite::params![planted, scope, key, version as i64],
        )
        .expect("plant the envelope");
    assert_eq!(changed, 1, "{scope} {key} version {version} is stored");
}

/// Appends to `vault.json` an epoch whose key the attacker chose, sealed under `kek`; returns
/// its number.
pub fn append_epoch(vault_dir: &Path, kek: &Arc<dyn KekProvider>) -> u64 {
    let path = vault_dir.join("vault.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read vault.json")).expect("JSON");
    let epochs = config["epochs"]
        .as_array_mut()
        .expect("a tiered vault's epochs");
    let last = epochs.last().expect("an epoch").clone();
    let number = last["number"].as_u64().expect("a number") + 1;
    let chosen = Dek::generate().expect("the attacker's epoch key");
    let sealed = envelope::seal(
        chosen.expose_secret(),
        &Context::new("keyring", "epoch", number),
        &[Arc::clone(kek)],
    )
    .expect("the attacker seals for the KEK");
    let mut epoch = last;
    epoch["number"] = number.into();
    epoch["wraps_reserved"] = 0.into();
    epoch["key"] = base64::engine::general_purpose::STANDARD
        .encode(sealed)
        .into();
    epochs.push(epoch);
    std::fs::write(&path, serde_json::to_vec_pretty(&config).expect("JSON")).expect("write");
    number
}
