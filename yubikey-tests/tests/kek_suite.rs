//! The compliance KEK suite on the YubiKey KEK, on a factory-fresh emulated card per test.
//!
//! `create` generates the key in slot 9d (`kek_providers::create`), `reopen` opens the same
//! URI again, `other` generates (once) and opens a key in slot 9e of the same card, and
//! `secrets` is the card's PIN, which the KEK's `Debug` must never show.
#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use envelope::KekProvider;
use kek_providers::{Error, KekEnv};
use yubikey_tests::{DEFAULT_PIN, PinFile, PivCards};

thread_local! {
    /// The test's card serial and PIN file (each test runs on its own thread and card).
    static CARD: RefCell<Option<(u32, PinFile)>> = const { RefCell::new(None) };
}

fn uri(slot: &str) -> String {
    CARD.with(|card| {
        let card = card.borrow();
        let (serial, pin) = card.as_ref().expect("the fixture runs inside on_card");
        pin.uri(Some(*serial), slot)
    })
}

fn env(dir: &Path) -> KekEnv<'_> {
    KekEnv { vault_dir: dir }
}

fn create(dir: &Path) -> Arc<dyn KekProvider> {
    let uri = uri("9d");
    let built = kek_providers::create(&uri, &env(dir)).expect("create the suite's KEK");
    assert_eq!(built.uri, uri);
    built.provider
}

fn open(uri: &str, dir: &Path) -> Arc<dyn KekProvider> {
    kek_providers::open(uri, &env(dir))
        .expect("open the YubiKey KEK")
        .provider
}

/// Generates the other key unless this test did already, and opens it.
fn other(dir: &Path) -> Arc<dyn KekProvider> {
    let uri = uri("9e");
    match kek_providers::create(&uri, &env(dir)) {
        Ok(built) => built.provider,
        Err(Error::YubikeySlotOccupied { .. }) => open(&uri, dir),
        Err(e) => panic!("create {uri}: {e}"),
    }
}

/// The suites' runner: a fresh emulated card for the test body.
fn on_card(body: impl FnOnce()) {
    let Some(cards) = PivCards::start("yubikey kek suite", 1) else {
        return;
    };
    let serial = cards.card().serial();
    CARD.with(|card| *card.borrow_mut() = Some((serial, PinFile::new(DEFAULT_PIN))));
    body();
    CARD.with(|card| *card.borrow_mut() = None);
}

compliance::kek_suite!(emulated_card,
    create: create,
    reopen: |dir: &Path| open(&uri("9d"), dir),
    other: other,
    secrets: |_: &Path| vec![DEFAULT_PIN.to_vec()],
    run: on_card,
);
