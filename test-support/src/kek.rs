//! What the KEK providers' own tests (`softhsm-tests`, `tpm-tests`) share: wrapping and
//! unwrapping with a provider directly, the vault's KEKs through the registry, and what a
//! vault directory holds. Only with the `kek` feature.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use envelope::{Dek, EnvelopeRef, KekProvider, StanzaRef};
use kek_providers::KekEnv;
use vault::{InitOptions, StoreKind, Vault, WrapMode};

/// The AAD every wrap and unwrap here binds.
pub const AAD: &[u8] = b"test-support provider aad";

/// `body` as a stanza of `kek`'s own.
pub fn stanza<'a>(kek: &'a dyn KekProvider, body: &'a [u8]) -> StanzaRef<'a> {
    StanzaRef {
        kind: kek.id().kind(),
        label: kek.id().label(),
        version: kek.id().version(),
        body,
    }
}

/// Unwraps `body` (a stanza body of `kek`'s, bound to [`AAD`]).
#[track_caller]
pub fn unwrap(kek: &dyn KekProvider, body: &[u8]) -> Result<Dek, envelope::Error> {
    kek.unwrap(&stanza(kek, body), AAD)
        .expect("the KEK claims its own stanza")
}

/// Wraps a new DEK; returns it and the stanza body.
#[track_caller]
pub fn wrap(kek: &dyn KekProvider) -> (Dek, Vec<u8>) {
    let dek = Dek::generate().expect("a DEK");
    let body = kek
        .wrap(&dek, AAD)
        .unwrap_or_else(|e| panic!("wrap with {}: {e}", kek.id()));
    (dek, body)
}

/// Unwraps `body`, which must give `dek`.
#[track_caller]
pub fn assert_unwraps(kek: &dyn KekProvider, body: &[u8], dek: &Dek, what: &str) {
    let back = unwrap(kek, body).unwrap_or_else(|e| panic!("{what}: unwrap: {e}"));
    assert_eq!(back.expose_secret(), dek.expose_secret(), "{what}");
}

/// Wraps a new DEK and unwraps it again; both must work.
#[track_caller]
pub fn round_trip(kek: &dyn KekProvider) {
    let (dek, body) = wrap(kek);
    assert_unwraps(kek, &body, &dek, "round trip");
}

/// `threads` threads each wrap and unwrap `rounds` DEKs on one KEK; each calls
/// `before_round(kek, thread, round)` first (e.g. to log the KEK out while the others are
/// mid-call).
pub fn concurrent_round_trips<K: KekProvider + Send + Sync>(
    kek: &Arc<K>,
    threads: u32,
    rounds: u32,
    before_round: impl Fn(&K, u32, u32) + Sync,
) {
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let kek = Arc::clone(kek);
            let before_round = &before_round;
            scope.spawn(move || {
                for round in 0..rounds {
                    before_round(&kek, thread, round);
                    let aad = [thread.to_be_bytes(), round.to_be_bytes()].concat();
                    let dek = Dek::generate().expect("a DEK");
                    let body = kek
                        .wrap(&dek, &aad)
                        .unwrap_or_else(|e| panic!("wrap {thread}/{round}: {e}"));
                    let back = kek
                        .unwrap(&stanza(&*kek, &body), &aad)
                        .expect("its own stanza")
                        .unwrap_or_else(|e| panic!("unwrap {thread}/{round}: {e}"));
                    assert_eq!(back.expose_secret(), dek.expose_secret());
                }
            });
        }
    });
}

/// The reason of a KEK call that failed (not a rejected stanza), checking that the KEK with
/// id `id` failed.
#[track_caller]
pub fn kek_failure<T>(result: Result<T, envelope::Error>, id: &str) -> String {
    match result {
        Err(envelope::Error::Kek { kek, reason }) => {
            assert_eq!(kek, id);
            reason
        }
        Err(other) => panic!("expected a KEK failure of {id}, got {other:?}"),
        Ok(_) => panic!("expected a KEK failure of {id}, the call worked"),
    }
}

/// The KEK through the registry (`vaultctl init` does this), as the vault takes it.
#[track_caller]
pub fn registry_kek(uri: &str, vault_dir: &Path) -> vault::Kek {
    let built = kek_providers::create(uri, &KekEnv { vault_dir })
        .unwrap_or_else(|e| panic!("build {uri} through the registry: {e}"));
    vault::Kek {
        uri: built.uri,
        provider: built.provider,
    }
}

/// Init options of a vault in `mode` on the SQLite store.
pub fn options(mode: WrapMode) -> InitOptions {
    InitOptions {
        mode: Some(mode),
        ..InitOptions::new(StoreKind::Sqlite)
    }
}

/// Every file below `dir` with its bytes and modification time.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    compliance::state_files_below(dir)
        .into_iter()
        .map(|path| {
            let bytes = fs::read(&path).expect("read a vault file");
            let mtime = fs::metadata(&path)
                .and_then(|meta| meta.modified())
                .expect("mtime of a vault file");
            (path, (bytes, mtime))
        })
        .collect()
}

/// A direct-mode vault in `dir` on the KEK `uri` (through the registry) holds two secrets;
/// one bit of the first one's stanza body is flipped in the store, at `flip(body)`: then
/// `get` of it is `StanzaRejected` naming the KEK `kek_id`, and the untouched neighbour still
/// reads.
#[track_caller]
pub fn assert_tampered_stored_stanza_is_rejected(
    dir: &Path,
    uri: &str,
    kek_id: &str,
    flip: impl Fn(&[u8]) -> usize,
) {
    let vault = Vault::init_with(
        dir,
        &options(WrapMode::Direct),
        vec![registry_kek(uri, dir)],
    )
    .expect("init");
    vault
        .set("global", "target", b"tampered with")
        .expect("set");
    vault
        .set("global", "neighbour", b"left alone")
        .expect("set");
    drop(vault);

    let store = vault::open_store(StoreKind::Sqlite, dir).expect("open the store");
    // Read as an attacker reads the store: without the vault's keys.
    let stored = store.scan(None, 16).expect("scan the store");
    let target = stored
        .iter()
        .find(|v| v.key == "target")
        .expect("the target is stored");
    let (version, old) = (target.version, target.envelope.clone());
    let parsed = EnvelopeRef::parse(&old).expect("parse");
    assert_eq!(parsed.stanzas().count(), 1);
    let body = parsed.stanzas().next().expect("a stanza").body;
    // Where the body sits in the envelope's bytes.
    let start = body.as_ptr() as usize - old.as_ptr() as usize;
    let mut new = old.clone();
    new[start + flip(body)] ^= 0x10;
    let replaced = store
        .replace(&[vault::Replacement {
            scope: "global".into(),
            key: "target".into(),
            version,
            old,
            new,
        }])
        .expect("replace");
    assert_eq!(replaced, 1);
    drop(store);

    let mut vault = Vault::open(dir, None, vec![registry_kek(uri, dir)]).expect("open");
    vault.set_cache_ttl(Duration::ZERO);
    match vault.get("global", "target", None) {
        Err(vault::Error::Envelope(envelope::Error::StanzaRejected { kek })) => {
            assert_eq!(kek, kek_id);
        }
        other => panic!("expected StanzaRejected, got {other:?}"),
    }
    let neighbour = vault
        .get("global", "neighbour", None)
        .expect("the neighbour");
    assert_eq!(neighbour.expose_secret(), b"left alone");
}

#[cfg(test)]
mod tests {
    use envelope::SoftwareKek;

    use super::*;

    #[test]
    fn a_software_kek_round_trips_on_four_threads() {
        let kek = SoftwareKek::random("test-support").expect("a KEK");
        round_trip(&kek);
        let kek = Arc::new(kek);
        concurrent_round_trips(&kek, 4, 20, |_, _, _| {});
        let failed: Result<(), _> = Err(envelope::Error::Kek {
            kek: "file:x#v1".into(),
            reason: "gone".into(),
        });
        assert_eq!(kek_failure(failed, "file:x#v1"), "gone");
    }
}
