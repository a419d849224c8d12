//! The YubiKey KEK provider's own tests on the emulated card: what it assures, a key never
//! overwritten and another program's slot never used, the PIN verified once per card
//! session (and again when the card forgot it), and clear errors for a wrong PIN (with the
//! tries left, never spent twice on the same wrong PIN), a blocked PIN, a card pulled out
//! mid-unwrap, an empty slot and two cards without a serial.
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use kek_providers::{BuiltKek, Error, KekEnv};
use test_support::kek::{assert_unwraps, kek_failure, unwrap, wrap};
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

    // `kek create` never replaces a key; a vault's create uses the one there.
    let err = kek_providers::yubikey::create_key(&built.uri).expect_err("the slot holds a key");
    assert!(
        matches!(err, Error::YubikeySlotOccupied { slot: 0x9d, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("never replaced"), "{err}");
    assert_eq!(
        create(&built.uri).expect("create again").provider.id(),
        built.provider.id()
    );
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

#[test]
fn a_slot_holding_another_programs_certificate_is_never_used() {
    let Some(cards) = PivCards::start("yubikey provider: foreign certificate", 1) else {
        return;
    };
    let serial = cards.card().serial();
    yubikey_tests::write_foreign_certificate(serial, 0x82);
    let pin = PinFile::new(DEFAULT_PIN);
    let uri = pin.uri(Some(serial), "82");
    for err in [
        create(&uri).expect_err("a foreign certificate"),
        kek_providers::yubikey::create_key(&uri).expect_err("a foreign certificate"),
        kek_providers::yubikey::key_info(&uri).expect_err("a foreign certificate"),
    ] {
        assert!(
            matches!(err, Error::YubikeySlotOccupied { slot: 0x82, .. }),
            "{err:?}"
        );
    }
}

#[test]
fn kek_info_shows_the_card_the_slot_and_the_key_without_the_pin() {
    let Some(cards) = PivCards::start("yubikey provider: info", 1) else {
        return;
    };
    let serial = cards.card().serial();
    // No PIN source at all: info never needs the PIN.
    let uri = format!("yubikey:serial={serial};slot=83");
    let built = kek_providers::yubikey::create_key(&uri).expect("create in slot 83");
    let info = kek_providers::yubikey::key_info("yubikey:slot=83").expect("info");
    assert_eq!(info.uri, format!("yubikey:serial={serial};slot=83"));
    assert_eq!(info.serial, serial);
    assert_eq!(info.firmware, "5.4.3");
    assert_eq!(info.slot, "83");
    assert_eq!(info.kek_id, built.provider.id().to_string());
    assert_eq!(info.fingerprint.len(), 64);
    assert_eq!(info.pin_tries, Some(3));
    // The emulated card answers GET METADATA for no PIV key slot but 9e: no policies here.
    assert_eq!((info.pin_policy, info.touch_policy), (None, None));
    let text = info.to_string();
    for line in [
        "serial:",
        "firmware:",
        "slot:",
        "kek id:",
        "public key sha256:",
        "touch policy:",
    ] {
        assert!(text.contains(line), "{text}");
    }
    // A touch policy for the generated key is kept in the URI; the emulated card reports no
    // policy, so no touch is claimed or announced.
    let touch = format!("yubikey:serial={serial};slot=85;touch=cached");
    let built = kek_providers::yubikey::create_key(&touch).expect("create with touch=cached");
    assert_eq!(built.uri, touch);
    assert!(!built.provider.assurance().user_presence);
    let err = kek_providers::yubikey::key_info(&format!("yubikey:serial={serial};slot=84"))
        .expect_err("nothing in slot 84");
    assert!(
        matches!(err, Error::YubikeyEmptySlot { slot: 0x84, .. }),
        "{err:?}"
    );
}

#[test]
fn the_pin_is_verified_once_per_card_session_and_again_after_a_reset() {
    let Some(cards) = PivCards::start("yubikey provider: PIN once per session", 1) else {
        return;
    };
    let card = cards.card();
    let serial = card.serial();
    let pin = PinFile::new(DEFAULT_PIN);
    let kek = create(&pin.uri(Some(serial), "9d"))
        .expect("create")
        .provider;
    assert_eq!(card.pin_verifications(), 0, "create needs no PIN");
    let (dek, body) = wrap(&*kek);
    for round in 0..5 {
        assert_unwraps(&*kek, &body, &dek, &format!("unwrap {round}"));
    }
    assert_eq!(card.pin_verifications(), 1, "one PIN for five unwraps");
    // Another program resets the card (a YubiKey handle does when it is dropped): the card
    // forgets the PIN, and the provider reopens it and sends the PIN it read once more.
    drop(yubikey_tests::open_card(serial));
    assert_unwraps(&*kek, &body, &dek, "unwrap after a reset");
    assert_eq!(card.pin_verifications(), 2);
    let opened = open(&pin.uri(Some(serial), "9d")).expect("open");
    assert_eq!(card.pin_verifications(), 3, "open checks the PIN");
    assert_unwraps(&*opened.provider, &body, &dek, "unwrap after open");
    assert_eq!(card.pin_verifications(), 3, "and the unwrap needs no other");
}

#[test]
fn a_wrong_pin_is_never_sent_twice_and_three_block_the_pin_until_the_puk_unblocks_it() {
    let Some(cards) = PivCards::start("yubikey provider: blocked PIN", 1) else {
        return;
    };
    let serial = cards.card().serial();
    let right = PinFile::new(DEFAULT_PIN);
    let wrong = PinFile::new(b"654321");
    let kek = create(&wrong.uri(Some(serial), "9d"))
        .expect("create")
        .provider;
    let (dek, body) = wrap(&*kek);
    let id = kek.id().to_string();
    // The first unwrap sends the wrong PIN; the next ones do not send it again.
    for _ in 0..3 {
        let message = kek_failure(unwrap(&*kek, &body), &id);
        assert!(message.contains("2 tries left"), "{message}");
        assert!(message.contains(&format!("YubiKey {serial}")), "{message}");
        assert!(
            !message.contains("654321") && !message.contains("123456"),
            "{message}"
        );
    }
    assert_eq!(
        cards.card().pin_verifications(),
        1,
        "the wrong PIN was sent once"
    );
    assert_eq!(yubikey_tests::pin_tries(serial), 2);

    let err = open(&wrong.uri(Some(serial), "9d")).expect_err("wrong PIN again");
    assert!(
        matches!(err, Error::YubikeyWrongPin { tries: 1 }),
        "{err:?}"
    );
    for _ in 0..2 {
        let err = open(&wrong.uri(Some(serial), "9d")).expect_err("blocked");
        assert!(matches!(err, Error::YubikeyPinBlocked), "{err:?}");
    }
    // Blocked: the right PIN no longer works either, and the message says what to do.
    let err = open(&right.uri(Some(serial), "9d")).expect_err("blocked for the right PIN too");
    assert!(matches!(err, Error::YubikeyPinBlocked), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("blocked") && message.contains("PUK"),
        "{message}"
    );

    yubikey_tests::unblock_pin(serial, DEFAULT_PIN);
    let kek = open(&right.uri(Some(serial), "9d")).expect("open after the PUK unblocked the PIN");
    assert_unwraps(&*kek.provider, &body, &dek, "unwrap after unblocking");
}

#[test]
fn a_card_pulled_out_mid_unwrap_is_a_clear_error_naming_it_never_a_panic_or_hang() {
    let Some(mut cards) = PivCards::start("yubikey provider: card pulled out", 1) else {
        return;
    };
    let serial = cards.card().serial();
    let pin = PinFile::new(DEFAULT_PIN);
    let kek = create(&pin.uri(Some(serial), "9d"))
        .expect("create")
        .provider;
    let id = kek.id().to_string();
    let (dek, body) = wrap(&*kek);
    let (progress, unwraps) = mpsc::channel();
    let worker = {
        let kek = std::sync::Arc::clone(&kek);
        thread::spawn(move || {
            let mut errors = Vec::new();
            let started = Instant::now();
            while errors.len() < 3 && started.elapsed() < Duration::from_secs(60) {
                match unwrap(&*kek, &body) {
                    Ok(back) => {
                        assert_eq!(back.expose_secret(), dek.expose_secret());
                        let _ = progress.send(());
                    }
                    Err(e) => errors.push(e),
                }
            }
            errors
        })
    };
    for _ in 0..5 {
        unwraps
            .recv_timeout(Duration::from_secs(30))
            .expect("unwraps work while the card is in");
    }
    cards.stop(0);
    let started = Instant::now();
    while !worker.is_finished() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "unwrap hangs without the card"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let errors = worker.join().expect("no panic in the unwrapping thread");
    assert_eq!(errors.len(), 3, "unwraps fail once the card is out");
    for error in errors {
        let message = kek_failure(Err::<(), _>(error), &id);
        assert!(message.contains(&format!("YubiKey {serial}")), "{message}");
    }
}
