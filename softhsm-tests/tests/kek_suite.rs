//! The compliance KEK suite on the PKCS#11 KEK, with each of its mechanisms, on a private
//! SoftHSM2 token per test.
//!
//! The suite's fixture makes a KEK from a test directory; here the directory is not used:
//! `create` generates the key on the test's token (`create_key`, then `open_kek`), `reopen`
//! opens the same URI again, `other` generates (once) and opens another key, and `secrets`
//! is the token's user PIN, which the KEK's `Debug` must never show.
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use envelope::KekProvider;
use kek_providers::pkcs11::{self, WrapMechanism};

/// The test's token, as the fixture closures need it. Each test runs in a child process of
/// its own with its own token, so one per process.
struct Token {
    kek_uri: String,
    other_uri: String,
    pin: String,
}

static TOKEN: OnceLock<Token> = OnceLock::new();

/// The suites' runner: the test body runs in a child process with a private token.
fn on_private_token(body: impl FnOnce()) {
    softhsm_tests::in_private_token(|hsm| {
        let token = Token {
            kek_uri: hsm.kek_uri("suite-kek"),
            other_uri: hsm.kek_uri("suite-other"),
            pin: hsm.user_pin().to_owned(),
        };
        assert!(TOKEN.set(token).is_ok(), "one token per test process");
        body();
    });
}

fn token() -> &'static Token {
    TOKEN
        .get()
        .expect("the fixture runs inside on_private_token")
}

/// `uri` asking for `mechanism`: AES-GCM is the default, so its URI says nothing.
fn with_mechanism(uri: &str, mechanism: WrapMechanism) -> String {
    match mechanism {
        WrapMechanism::AesGcm => uri.to_owned(),
        other => format!("{uri}&x-mechanism={other}"),
    }
}

fn open(uri: &str, mechanism: WrapMechanism) -> Arc<dyn KekProvider> {
    let kek = pkcs11::open_kek(&with_mechanism(uri, mechanism)).expect("open the PKCS#11 KEK");
    assert_eq!(kek.mechanism(), mechanism);
    Arc::new(kek)
}

/// Generates the key `uri` names (unless this process did already) and opens it.
fn create(uri: &str, mechanism: WrapMechanism) -> Arc<dyn KekProvider> {
    match pkcs11::create_key(uri) {
        Ok(()) | Err(kek_providers::Error::Pkcs11KeyExists { .. }) => {}
        Err(e) => panic!("create the key of {uri}: {e}"),
    }
    open(uri, mechanism)
}

fn pin(_: &Path) -> Vec<Vec<u8>> {
    vec![token().pin.as_bytes().to_vec()]
}

compliance::kek_suite!(aes_gcm,
    create: |_: &Path| {
        pkcs11::create_key(&token().kek_uri).expect("create the suite's key");
        open(&token().kek_uri, WrapMechanism::AesGcm)
    },
    reopen: |_: &Path| open(&token().kek_uri, WrapMechanism::AesGcm),
    other: |_: &Path| create(&token().other_uri, WrapMechanism::AesGcm),
    secrets: pin,
    run: on_private_token,
);

compliance::kek_suite!(aes_key_wrap_pad,
    create: |_: &Path| {
        pkcs11::create_key(&token().kek_uri).expect("create the suite's key");
        open(&token().kek_uri, WrapMechanism::AesKeyWrapPad)
    },
    reopen: |_: &Path| open(&token().kek_uri, WrapMechanism::AesKeyWrapPad),
    other: |_: &Path| create(&token().other_uri, WrapMechanism::AesKeyWrapPad),
    secrets: pin,
    run: on_private_token,
);
