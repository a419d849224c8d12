//! The YubiKey KEK on a real YubiKey (firmware 5.x): ignored unless asked for with
//! `cargo test -p yubikey-tests --test real_yubikey -- --ignored`, and then failing with a
//! clear message when the card is not named.
//!
//! - `VAULT_TEST_YUBIKEY_SERIAL`: the card's serial (required).
//! - `VAULT_TEST_YUBIKEY_PIN`: its PIN (required; read through `pin-source=env:`).
//! - `VAULT_TEST_YUBIKEY_SLOT`: the slot to use, default `82` (a retired slot). A key is
//!   generated there when the slot is empty; a vault key made by an earlier run is used
//!   again; a slot holding anything else is refused. 9a, 9c, 9d and 9e hold keys people use
//!   elsewhere: they are refused unless `VAULT_TEST_YUBIKEY_ALLOW_SLOT=1` is set too.
//!
//! The tests never lock the PIN: the wrong-PIN test runs only with at least 2 tries left,
//! spends one, and verifies the right PIN at once (which resets the count).
#![forbid(unsafe_code)]

use std::env;
use std::path::Path;

use kek_providers::{BuiltKek, Error, KekEnv};
use test_support::kek::{assert_unwraps, round_trip, wrap};
use yubikey_tests::PinFile;

const IGNORED: &str = "needs a real YubiKey: set VAULT_TEST_YUBIKEY_SERIAL (and VAULT_TEST_YUBIKEY_SLOT, a retired slot like 82 that may be overwritten)";
const SERIAL_VAR: &str = "VAULT_TEST_YUBIKEY_SERIAL";
const PIN_VAR: &str = "VAULT_TEST_YUBIKEY_PIN";
const SLOT_VAR: &str = "VAULT_TEST_YUBIKEY_SLOT";
const ALLOW_SLOT_VAR: &str = "VAULT_TEST_YUBIKEY_ALLOW_SLOT";
/// A PIN no one uses (8 digits: a YubiKey PIN is 6 to 8 characters).
const WRONG_PIN: &str = "00000000";

/// The card the variables name: (serial, slot).
fn real_card() -> (u32, String) {
    let serial = env::var(SERIAL_VAR).unwrap_or_else(|_| {
        panic!("{IGNORED}; {SERIAL_VAR} is not set (and {PIN_VAR} must hold the card's PIN)")
    });
    let serial: u32 = serial
        .parse()
        .unwrap_or_else(|_| panic!("{SERIAL_VAR}={serial:?} is not a decimal serial number"));
    assert!(
        env::var_os(PIN_VAR).is_some(),
        "{PIN_VAR} must hold the PIN of YubiKey {serial}"
    );
    let slot = env::var(SLOT_VAR).unwrap_or_else(|_| "82".to_owned());
    let standard = ["9a", "9c", "9d", "9e"].contains(&slot.to_ascii_lowercase().as_str());
    assert!(
        !standard || env::var_os(ALLOW_SLOT_VAR).is_some(),
        "{SLOT_VAR}={slot} is a slot people use for their own keys; use a retired slot (82 to 95), or set {ALLOW_SLOT_VAR}=1 if this card's slot {slot} may be used"
    );
    (serial, slot)
}

fn uri(serial: u32, slot: &str, pin_var: &str) -> String {
    format!("yubikey:serial={serial};slot={slot};pin-source=env:{pin_var}")
}

fn env() -> KekEnv<'static> {
    KekEnv {
        vault_dir: Path::new("/nonexistent"),
    }
}

/// The slot's vault key: made now if the slot is empty, else the one an earlier run made.
fn kek(serial: u32, slot: &str) -> BuiltKek {
    kek_providers::create(&uri(serial, slot, PIN_VAR), &env())
        .unwrap_or_else(|e| panic!("the KEK in slot {slot} of YubiKey {serial}: {e}"))
}

#[test]
#[ignore = "needs a real YubiKey: set VAULT_TEST_YUBIKEY_SERIAL (and VAULT_TEST_YUBIKEY_SLOT, a retired slot like 82 that may be overwritten)"]
fn a_real_yubikey_round_trips_and_reopens() {
    let (serial, slot) = real_card();
    let built = kek(serial, &slot);
    assert_eq!(built.uri, uri(serial, &slot, PIN_VAR));
    let assurance = built.provider.assurance();
    assert!(assurance.hardware && assurance.non_exportable);
    for _ in 0..3 {
        round_trip(&*built.provider);
    }
    let (dek, body) = wrap(&*built.provider);
    let reopened = kek_providers::open(&built.uri, &env()).expect("open the KEK again");
    assert_eq!(reopened.provider.id(), built.provider.id());
    assert_unwraps(&*reopened.provider, &body, &dek, "unwrap after reopening");

    let info = kek_providers::yubikey::key_info(&built.uri).expect("kek info");
    assert_eq!(info.serial, serial);
    assert!(info.firmware.starts_with('5'), "{}", info.firmware);
    assert_eq!(info.kek_id, built.provider.id().to_string());
    println!("{info}");
}

#[test]
#[ignore = "needs a real YubiKey: set VAULT_TEST_YUBIKEY_SERIAL (and VAULT_TEST_YUBIKEY_SLOT, a retired slot like 82 that may be overwritten)"]
fn a_wrong_pin_on_a_real_yubikey_shows_the_tries_left_without_locking_it() {
    let (serial, slot) = real_card();
    let right_pin = env::var(PIN_VAR).unwrap_or_default();
    assert_ne!(
        right_pin, WRONG_PIN,
        "{PIN_VAR} is the PIN this test sends as wrong"
    );
    // The right PIN first: the KEK exists and the count is full.
    let built = kek(serial, &slot);
    round_trip(&*built.provider);
    drop(built);
    let tries = kek_providers::yubikey::key_info(&uri(serial, &slot, PIN_VAR))
        .expect("kek info")
        .pin_tries
        .expect("the card reports its PIN tries");
    assert!(
        tries >= 2,
        "YubiKey {serial} has {tries} PIN tries left: not spending one of them"
    );

    // One wrong PIN, then the right one at once, which resets the count.
    let wrong = PinFile::new(WRONG_PIN.as_bytes());
    let err =
        kek_providers::open(&wrong.uri(Some(serial), &slot), &env()).expect_err("a wrong PIN");
    let left = tries - 1;
    assert!(
        matches!(err, Error::YubikeyWrongPin { tries } if tries == left),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&format!("{left} tries left")), "{message}");
    assert!(
        !message.contains(WRONG_PIN) && !message.contains(&right_pin),
        "{message}"
    );

    let reopened = kek_providers::open(&uri(serial, &slot, PIN_VAR), &env())
        .expect("the right PIN resets the count");
    round_trip(&*reopened.provider);
    drop(reopened);
    let after = kek_providers::yubikey::key_info(&uri(serial, &slot, PIN_VAR))
        .expect("kek info")
        .pin_tries;
    assert_eq!(after, Some(tries), "the right PIN restored the count");
}
