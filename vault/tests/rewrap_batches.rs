//! Rewrap batches large enough to be rewrapped on several threads while the batch before
//! them is written, and `set_many`, which fills vaults in one transaction.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use common::{all_stanzas, epoch_of, kek, tiered, value};
use vault::{Error, InitOptions, RewrapOptions, StoreKind, Vault};

/// Secrets, and versions per batch: several batches, each with enough stale versions for
/// more than one thread.
const SECRETS: usize = 700;
const BATCH: usize = 200;

fn key(n: usize) -> String {
    format!("k{n:04}")
}

fn secret(n: usize, version: u64) -> Vec<u8> {
    format!("secret {n} version {version}").into_bytes()
}

/// A tiered vault with `SECRETS` keys, every tenth with a second version, under epoch 1,
/// then rotated to epoch 2.
fn rotated_vault() -> (tempfile::TempDir, Vault) {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = Vault::init_with(dir.path(), &tiered(), vec![kek("a")]).expect("init");
    let keys: Vec<String> = (0..SECRETS).map(key).collect();
    let firsts: Vec<Vec<u8>> = (0..SECRETS).map(|n| secret(n, 1)).collect();
    let mut entries: Vec<(&str, &str, &[u8])> = keys
        .iter()
        .zip(&firsts)
        .map(|(k, v)| ("global", k.as_str(), v.as_slice()))
        .collect();
    let seconds: Vec<(usize, Vec<u8>)> = (0..SECRETS)
        .step_by(10)
        .map(|n| (n, secret(n, 2)))
        .collect();
    entries.extend(
        seconds
            .iter()
            .map(|(n, v)| ("global", keys[*n].as_str(), v.as_slice())),
    );
    let versions = vault.set_many(&entries).expect("set_many");
    assert_eq!(versions.len(), entries.len());
    assert!(versions[..SECRETS].iter().all(|v| *v == 1));
    assert!(versions[SECRETS..].iter().all(|v| *v == 2));
    assert_eq!(vault.rotate().expect("rotate"), 2);
    (dir, vault)
}

fn versions_stored() -> usize {
    SECRETS + SECRETS.div_ceil(10)
}

fn assert_every_version_opens(vault: &Vault) {
    for n in 0..SECRETS {
        let latest = if n % 10 == 0 { 2 } else { 1 };
        for version in 1..=latest {
            let got = vault
                .get("global", &key(n), Some(version))
                .unwrap_or_else(|e| panic!("{} v{version}: {e}", key(n)));
            assert_eq!(got.expose_secret(), secret(n, version).as_slice());
        }
        assert_eq!(value(vault, "global", &key(n)), secret(n, latest));
    }
}

fn options() -> RewrapOptions {
    RewrapOptions {
        dry_run: false,
        batch: BATCH,
    }
}

#[test]
fn a_rewrap_in_large_batches_moves_every_version_once() {
    let (dir, vault) = rotated_vault();
    let mut calls = Vec::new();
    let report = vault
        .rewrap(options(), &mut |p| calls.push(*p))
        .expect("rewrap");
    let total = versions_stored() as u64;
    assert_eq!(report.progress.examined, total, "{report:?}");
    assert_eq!(report.progress.rewrapped, total, "{report:?}");
    assert_eq!(report.reencrypted, 0, "v2 envelopes keep their payload");
    // One report per written batch, in order, the last one covering everything.
    assert_eq!(calls.len(), versions_stored().div_ceil(BATCH));
    assert!(calls.windows(2).all(|w| w[0].examined < w[1].examined));
    assert_eq!(calls.last().map(|p| p.rewrapped), Some(total));
    let stored = all_stanzas(dir.path());
    assert_eq!(stored.len(), versions_stored());
    for (scope, key, version, stanzas) in stored {
        assert_eq!(stanzas.len(), 1, "{scope} {key} v{version}");
        assert_eq!(epoch_of(&stanzas[0]), 2, "{scope} {key} v{version}");
    }
    vault.set_min_decryption_version(2).expect("retire epoch 1");
    assert_every_version_opens(&vault);
}

#[test]
fn a_rewrap_killed_while_the_next_batch_is_made_resumes_after_the_written_ones() {
    let (dir, vault) = rotated_vault();
    // The report of the first batch comes while the second batch's envelopes are being made
    // on other threads: a kill there must leave only the first batch written.
    let result = catch_unwind(AssertUnwindSafe(|| {
        vault.rewrap(options(), &mut |_| panic!("killed after the first batch"))
    }));
    assert!(result.is_err(), "the run was killed");
    let moved = all_stanzas(dir.path())
        .iter()
        .filter(|(_, _, _, stanzas)| epoch_of(&stanzas[0]) == 2)
        .count();
    assert_eq!(moved, BATCH, "exactly the first batch was written");
    assert_every_version_opens(&vault);

    let report = vault.rewrap(options(), &mut |_| {}).expect("resumed");
    assert!(report.resumed, "{report:?}");
    assert_eq!(report.progress.examined, versions_stored() as u64);
    assert_eq!(report.progress.rewrapped, versions_stored() as u64);
    assert!(
        all_stanzas(dir.path())
            .iter()
            .all(|(_, _, _, stanzas)| epoch_of(&stanzas[0]) == 2)
    );
    vault.set_min_decryption_version(2).expect("retire epoch 1");
    assert_every_version_opens(&vault);
}

fn set_many_is_all_or_nothing(options: &InitOptions) {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = Vault::init_with(dir.path(), options, vec![kek("a")]).expect("init");
    vault.set("global", "kept", b"old").expect("set");
    let refused = vault.set_many(&[
        ("global", "kept", b"new"),
        ("global", "fresh", b"value"),
        ("global", "not a key!", b"value"),
    ]);
    assert!(
        matches!(refused, Err(Error::InvalidKeyName { .. })),
        "{refused:?}"
    );
    assert_eq!(value(&vault, "global", "kept"), b"old");
    assert!(matches!(
        vault.get("global", "fresh", None),
        Err(Error::NotFound { .. })
    ));
    // The same key twice gets two versions, after the ones it had; later sets go on.
    let versions = vault
        .set_many(&[
            ("global", "kept", b"second"),
            ("global", "kept", b"third"),
            ("global", "fresh", b"value"),
        ])
        .expect("set_many");
    assert_eq!(versions, [2, 3, 1]);
    assert_eq!(vault.set("global", "kept", b"fourth").expect("set"), 4);
    let second = vault.get("global", "kept", Some(2)).expect("v2");
    assert_eq!(second.expose_secret(), b"second");
    assert_eq!(value(&vault, "global", "fresh"), b"value");
}

#[test]
fn set_many_writes_every_entry_or_none_in_sqlite() {
    set_many_is_all_or_nothing(&tiered());
}

#[test]
fn set_many_writes_every_entry_or_none_in_memory() {
    set_many_is_all_or_nothing(&InitOptions {
        mode: Some(vault::WrapMode::Tiered),
        ..InitOptions::new(StoreKind::Memory)
    });
}
