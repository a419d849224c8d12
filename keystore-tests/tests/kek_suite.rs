//! The compliance KEK suite on the OS keystore KEK, on a private unlocked gnome-keyring per
//! test.
//!
//! The suite's fixture makes a KEK from a test directory; here the directory is not used:
//! `create` makes the entry `keyring:service=vault-suite;account=kek` (a new random key in
//! the keyring), `reopen` reads it again, `other` makes (once) and opens another entry. The
//! KEK has no PIN or passphrase; its `Debug` must not show the entry's value, which
//! `secrets` reads back with secret-tool.
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;

use envelope::KekProvider;
use kek_providers::{Error, KekEnv};

const KEK: &str = "keyring:service=vault-suite;account=kek";
const OTHER: &str = "keyring:service=vault-suite;account=other";

fn env(dir: &Path) -> KekEnv<'_> {
    KekEnv { vault_dir: dir }
}

fn create(dir: &Path) -> Arc<dyn KekProvider> {
    let built = kek_providers::create(KEK, &env(dir)).expect("create the suite's KEK");
    assert_eq!(built.uri, KEK);
    built.provider
}

fn open(uri: &str, dir: &Path) -> Arc<dyn KekProvider> {
    kek_providers::open(uri, &env(dir))
        .expect("open the keyring KEK")
        .provider
}

/// Makes the other entry unless this process did already, and opens it.
fn other(dir: &Path) -> Arc<dyn KekProvider> {
    match kek_providers::create(OTHER, &env(dir)) {
        Ok(built) => built.provider,
        Err(Error::KeystoreEntryExists { .. }) => open(OTHER, dir),
        Err(e) => panic!("create {OTHER}: {e}"),
    }
}

/// The suites' runner: the test body runs in a child process with a private keyring.
fn in_keyring(body: impl FnOnce()) {
    keystore_tests::in_unlocked_keyring(|_| body());
}

/// The raw key bytes, as stored in the keyring.
fn stored_key(_: &Path) -> Vec<Vec<u8>> {
    let key =
        keystore_tests::lookup("vault-suite", "kek").expect("the suite's entry is in the keyring");
    assert_eq!(key.len(), 32);
    vec![key]
}

compliance::kek_suite!(secret_service,
    create: create,
    reopen: |dir: &Path| open(KEK, dir),
    other: other,
    secrets: stored_key,
    run: in_keyring,
);
