//! The compliance store suite through a vault whose root KEK is the PKCS#11 KEK (AES-GCM)
//! on a private SoftHSM2 token per test, on the SQLite store.
//!
//! The KEK is built the way `vaultctl` builds it, through the registry
//! (`kek_providers::open`), so the vault pins the canonical `pkcs11:` URI.
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::OnceLock;

use kek_providers::KekEnv;

/// The URI of the test's KEK. Each test runs in a child process of its own with its own
/// token, so one per process.
static KEK_URI: OnceLock<String> = OnceLock::new();

/// The suite's runner: the test body runs in a child process with a private token.
fn on_private_token(body: impl FnOnce()) {
    softhsm_tests::in_private_token(|hsm| {
        let uri = hsm.kek_uri("store-suite-kek");
        kek_providers::pkcs11::create_key(&uri).expect("create the suite's key on the token");
        assert!(KEK_URI.set(uri).is_ok(), "one token per test process");
        body();
    });
}

/// The vault's root KEK: the PKCS#11 KEK, opened through the registry.
fn pkcs11_kek(vault_dir: &Path) -> vault::Kek {
    let uri = KEK_URI
        .get()
        .expect("the fixture runs inside on_private_token");
    let built = kek_providers::open(uri, &KekEnv { vault_dir }).expect("open the PKCS#11 KEK");
    assert!(
        built.uri.starts_with("pkcs11:") && built.uri.contains("object=store-suite-kek"),
        "canonical URI {}",
        built.uri
    );
    assert_eq!(
        built.provider.id().to_string(),
        "pkcs11:vault-test/store-suite-kek#v1"
    );
    vault::Kek {
        uri: built.uri,
        provider: built.provider,
    }
}

compliance::store_suite!(sqlite_on_pkcs11, vault::StoreKind::Sqlite, durable,
    kek: pkcs11_kek,
    run: on_private_token,
);
