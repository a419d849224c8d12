//! The emulated card seen through the `yubikey` crate, as the YubiKey KEK provider will see
//! it: found, version 5.x and a serial, PIN checks, a P-256 key generated in slot 9d and the
//! card's ECDH with it; and what goes wrong: a wrong or blocked PIN, two cards, a card pulled
//! out mid-operation.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use p256::PublicKey;
use p256::ecdh::EphemeralSecret;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use piv_card::{DEFAULT_PIN, DEFAULT_PUK, PivCards};
use rand_core_06::OsRng;
use yubikey::piv::{self, AlgorithmId, SlotId};
use yubikey::{Error, MgmKey, PinPolicy, Serial, TouchPolicy, YubiKey};

const WRONG_PIN: &[u8] = b"654321";

/// Generates a P-256 key in slot 9d (management key authenticated) and returns its public key.
fn generate_key_management_key(yubikey: &mut YubiKey) -> PublicKey {
    yubikey
        .authenticate(MgmKey::default())
        .expect("authenticate with the default management key");
    let spki = piv::generate(
        yubikey,
        SlotId::KeyManagement,
        AlgorithmId::EccP256,
        PinPolicy::Default,
        TouchPolicy::Default,
    )
    .expect("generate a P-256 key in slot 9d");
    PublicKey::from_sec1_bytes(spki.subject_public_key.raw_bytes())
        .expect("the card's public key is a P-256 point")
}

/// The card's ECDH of its slot 9d key with `peer`: the shared secret's X coordinate.
fn card_ecdh(yubikey: &mut YubiKey, peer: &PublicKey) -> Result<Vec<u8>, Error> {
    let peer = peer.to_encoded_point(false);
    piv::decrypt_data(
        yubikey,
        peer.as_bytes(),
        AlgorithmId::EccP256,
        SlotId::KeyManagement,
    )
    .map(|shared| shared.to_vec())
}

#[test]
fn the_card_answers_as_a_yubikey_5() {
    let Some(cards) = PivCards::start("the_card_answers_as_a_yubikey_5", 1) else {
        return;
    };
    let mut yubikey = YubiKey::open().expect("open the only card");
    assert_eq!(yubikey.version().major, 5, "{}", yubikey.version());
    assert_eq!(yubikey.serial(), Serial(cards.card().serial()));
    assert!(cards.card().reader().starts_with("Virtual PCD"));
    yubikey.verify_pin(DEFAULT_PIN).expect("the default PIN");
}

#[test]
fn the_card_does_ecdh_with_a_key_it_generated_in_slot_9d() {
    let Some(_cards) = PivCards::start("the_card_does_ecdh_with_a_key_it_generated_in_slot_9d", 1)
    else {
        return;
    };
    let mut yubikey = YubiKey::open().expect("open the only card");
    let card_public = generate_key_management_key(&mut yubikey);
    yubikey.verify_pin(DEFAULT_PIN).expect("the default PIN");

    // Wrap in software: an ephemeral key's ECDH with the card's public key.
    let ephemeral = EphemeralSecret::random(&mut OsRng);
    let software = ephemeral.diffie_hellman(&card_public);
    // Unwrap on the card: its ECDH with the ephemeral public key.
    let started = Instant::now();
    let card = card_ecdh(&mut yubikey, &ephemeral.public_key()).expect("the card's ECDH");
    eprintln!("card ECDH took {:?}", started.elapsed());
    assert_eq!(card.as_slice(), software.raw_secret_bytes().as_slice());

    // Another peer, another secret: the card really computes it.
    let other = EphemeralSecret::random(&mut OsRng);
    let card = card_ecdh(&mut yubikey, &other.public_key()).expect("the card's ECDH");
    assert_eq!(
        card.as_slice(),
        other
            .diffie_hellman(&card_public)
            .raw_secret_bytes()
            .as_slice()
    );
}

#[test]
fn wrong_pins_count_down_and_three_block_the_pin() {
    let Some(_cards) = PivCards::start("wrong_pins_count_down_and_three_block_the_pin", 1) else {
        return;
    };
    let mut yubikey = YubiKey::open().expect("open the only card");
    for left in [2, 1] {
        match yubikey.verify_pin(WRONG_PIN) {
            Err(Error::WrongPin { tries }) => assert_eq!(tries, left),
            other => panic!("a wrong PIN with {left} tries left: {other:?}"),
        }
    }
    match yubikey.verify_pin(WRONG_PIN) {
        Err(Error::PinLocked | Error::WrongPin { tries: 0 }) => {}
        other => panic!("the third wrong PIN: {other:?}"),
    }
    // Blocked: even the right PIN no longer opens it...
    match yubikey.verify_pin(DEFAULT_PIN) {
        Err(Error::PinLocked | Error::WrongPin { tries: 0 }) => {}
        other => panic!("the right PIN after three wrong ones: {other:?}"),
    }
    // ...until the PUK sets a new one.
    yubikey
        .unblock_pin(DEFAULT_PUK, b"24681357")
        .expect("unblock the PIN with the PUK");
    yubikey.verify_pin(b"24681357").expect("the new PIN");
}

#[test]
fn two_cards_are_told_apart_by_serial() {
    let Some(cards) = PivCards::start("two_cards_are_told_apart_by_serial", 2) else {
        return;
    };
    // Like a YubiKey's, the crate's open() refuses to pick one of two.
    assert!(YubiKey::open().is_err(), "open() with two cards plugged in");
    for card in cards.cards() {
        let mut yubikey = YubiKey::open_by_serial(Serial(card.serial())).expect("open by serial");
        assert_eq!(yubikey.serial(), Serial(card.serial()));
        yubikey.verify_pin(DEFAULT_PIN).expect("the default PIN");
    }
    assert_ne!(cards.cards()[0].serial(), cards.cards()[1].serial());
}

#[test]
fn a_card_pulled_out_mid_operation_fails_the_operation() {
    let Some(mut cards) = PivCards::start("a_card_pulled_out_mid_operation_fails_the_operation", 1)
    else {
        return;
    };
    let mut yubikey = YubiKey::open().expect("open the only card");
    let card_public = generate_key_management_key(&mut yubikey);
    yubikey.verify_pin(DEFAULT_PIN).expect("the default PIN");
    let peer = EphemeralSecret::random(&mut OsRng).public_key();
    card_ecdh(&mut yubikey, &peer).expect("the card's ECDH before it is pulled out");
    let _ = card_public;

    // ECDH in a loop on another thread while the card is pulled out: an error, not a hang.
    let (done, outcome) = mpsc::channel();
    thread::spawn(move || {
        let result = loop {
            if let Err(e) = card_ecdh(&mut yubikey, &peer) {
                break e;
            }
        };
        let _ = done.send(result);
    });
    thread::sleep(Duration::from_millis(300));
    cards.stop(0);
    let error = outcome
        .recv_timeout(Duration::from_secs(20))
        .expect("the operation fails within 20 s of the card going");
    eprintln!("card pulled out: {error:?}");
    // And it is gone: nothing to open any more.
    assert!(
        YubiKey::open().is_err(),
        "open() after the card was pulled out"
    );
}

/// The skip rule: without pcscd a card test skips with a line saying so, or fails under
/// `VAULT_REQUIRE_HW`. `VAULT_PCSCD` names a pcscd that does not exist, so it counts as missing.
#[test]
fn without_pcscd_a_card_test_skips_loudly_or_fails_when_hardware_is_required() {
    test_support::assert_skip_rule(
        "the_card_answers_as_a_yubikey_5",
        "pcscd with vsmartcard-vpcd",
        "/nonexistent/pcscd is not an executable file or on PATH",
        |command| {
            command.env("VAULT_PCSCD", "/nonexistent/pcscd");
        },
    );
}
