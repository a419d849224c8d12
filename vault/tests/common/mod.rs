//! Helpers shared by the keyring integration tests: software KEKs, tiered init options,
//! and reading stanza ids straight from the SQLite store.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use envelope::{EnvelopeRef, KekProvider, SoftwareKek};
use vault::{InitOptions, Kek, StoreKind, Vault, WrapMode, open_store};

/// A software KEK `memory:<label>#v1` with a random key; clone it to reuse the same key.
pub fn kek(label: &str) -> Kek {
    let provider: Arc<dyn KekProvider> = Arc::new(SoftwareKek::random(label).expect("kek"));
    Kek {
        uri: format!("memory:{label}"),
        provider,
    }
}

/// The id of a KEK, `kind:label#vN`.
pub fn id(kek: &Kek) -> String {
    kek.provider.id().to_string()
}

/// SQLite store, tiered mode chosen explicitly (no software KEK picks it by itself).
pub fn tiered() -> InitOptions {
    InitOptions {
        mode: Some(WrapMode::Tiered),
        ..InitOptions::new(StoreKind::Sqlite)
    }
}

/// SQLite store, direct mode.
pub fn direct() -> InitOptions {
    InitOptions {
        mode: Some(WrapMode::Direct),
        ..InitOptions::new(StoreKind::Sqlite)
    }
}

/// The value of the latest version of `scope`/`key`.
pub fn value(vault: &Vault, scope: &str, key: &str) -> Vec<u8> {
    vault
        .get(scope, key, None)
        .unwrap_or_else(|e| panic!("get {scope} {key}: {e}"))
        .expose_secret()
        .to_vec()
}

/// The stanza ids of an envelope.
pub fn stanza_ids(envelope: &[u8]) -> Vec<String> {
    EnvelopeRef::parse(envelope)
        .expect("envelope parses")
        .stanzas()
        .map(|s| s.describe())
        .collect()
}

/// The stanza ids of the stored latest version of `scope`/`key`, read from the store itself.
pub fn stored_stanzas(dir: &Path, scope: &str, key: &str) -> Vec<String> {
    all_stanzas(dir)
        .into_iter()
        .filter(|(s, k, _, _)| s == scope && k == key)
        .max_by_key(|(_, _, version, _)| *version)
        .map(|(_, _, _, ids)| ids)
        .expect("stored")
}

/// Every stored version as (scope, key, version, stanza ids), in scan order.
pub fn all_stanzas(dir: &Path) -> Vec<(String, String, u64, Vec<String>)> {
    let store = open_store(StoreKind::Sqlite, dir).expect("store");
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store.scan(after.as_ref(), 100).expect("scan");
        let Some(last) = page.last() else { break };
        after = Some(last.position());
        for v in &page {
            out.push((
                v.scope.clone(),
                v.key.clone(),
                v.version,
                stanza_ids(&v.envelope),
            ));
        }
    }
    out
}

/// The epoch number of an epoch stanza id `epoch:<vault id>#vN`.
pub fn epoch_of(stanza: &str) -> u32 {
    assert!(
        stanza.starts_with("epoch:"),
        "not an epoch stanza: {stanza}"
    );
    stanza
        .rsplit_once("#v")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no version in {stanza}"))
}
