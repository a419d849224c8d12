//! The YubiKey KEK provider's own tests on the emulated card: what it assures, a slot never
//! overwritten, and clear errors for a wrong PIN (with the tries left), an empty slot and
//! two cards without a serial.
#![forbid(unsafe_code)]

use std::path::Path;

use kek_providers::{BuiltKek, Error, KekEnv};
use yubikey_tests::{DEFAULT_PIN, PinFile, PivCards};

fn env() -> KekEnv<'static> {
    KekEnv {
        vault_dir: Path::new("/nonexistent"),
    }
}

fn create(uri: &str) -> Result<BuiltKek, Error> {
    kek_providers::create(uri, &env())
}

fn open(uri: &str) -> Result<BuiltKek, Error> {
    kek_providers::open(uri, &env())
}

#[test]
fn create_claims_hardware_and_never_overwrites_a_slot_and_a_wrong_pin_shows_tries_left() {
    let Some(cards) = PivCards::start("yubikey provider: create and wrong PIN", 1) else {
        return;
    };
    let serial = cards.card().serial();
    let pin = PinFile::new(DEFAULT_PIN);
    // No serial: the only card; the canonical URI names it.
    let built = create(&pin.uri(None, "9d")).expect("create in slot 9d");
    assert_eq!(built.uri, pin.uri(Some(serial), "9d"));
    let assurance = built.provider.assurance();
    assert!(assurance.hardware && assurance.non_exportable && !assurance.user_presence);
    assert!(!built.provider.computes_in_process());

    let err = create(&built.uri).expect_err("the slot holds a key");
    assert!(
        matches!(err, Error::YubikeySlotOccupied { slot: 0x9d, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("never replaced"), "{err}");
    assert_eq!(
        open(&built.uri).expect("open").provider.id(),
        built.provider.id()
    );

    let wrong = PinFile::new(b"654321");
    let err = open(&wrong.uri(Some(serial), "9d")).expect_err("a wrong PIN");
    assert!(
        matches!(err, Error::YubikeyWrongPin { tries: 2 }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("2 tries left"), "{message}");
    assert!(
        !message.contains("654321") && !message.contains("123456"),
        "{message}"
    );
    // The right PIN resets the count.
    open(&built.uri).expect("open with the right PIN");
}

#[test]
fn an_empty_slot_is_a_clear_error() {
    let Some(cards) = PivCards::start("yubikey provider: empty slot", 1) else {
        return;
    };
    let pin = PinFile::new(DEFAULT_PIN);
    let err = open(&pin.uri(Some(cards.card().serial()), "9a")).expect_err("nothing in 9a");
    assert!(
        matches!(err, Error::YubikeyEmptySlot { slot: 0x9a, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("kek create"), "{err}");
}

#[test]
fn two_cards_need_a_serial() {
    let Some(cards) = PivCards::start("yubikey provider: two cards", 2) else {
        return;
    };
    let pin = PinFile::new(DEFAULT_PIN);
    let err = create(&pin.uri(None, "9d")).expect_err("two cards, no serial");
    assert!(matches!(err, Error::YubikeySeveralCards { .. }), "{err:?}");
    let message = err.to_string();
    for card in cards.cards() {
        assert!(message.contains(&card.serial().to_string()), "{message}");
    }
    let err = open(&pin.uri(Some(1), "9d")).expect_err("no card with serial 1");
    assert!(
        matches!(err, Error::YubikeyNotFound { serial: 1, .. }),
        "{err:?}"
    );
    let second = cards.cards()[1].serial();
    let built = create(&pin.uri(Some(second), "9d")).expect("create on the second card");
    assert_eq!(built.uri, pin.uri(Some(second), "9d"));
}
