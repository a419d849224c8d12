//! Test support for the YubiKey PIV KEK provider: the emulated card (from `piv-card`) and a
//! PIN file for the KEK URIs that name it.
//!
//! Without pcscd or vsmartcard-vpcd a test skips, saying so on stderr, unless
//! `VAULT_REQUIRE_HW` is set, when it fails (the rule of `piv-card`'s fixture).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fs;
use std::path::Path;

pub use piv_card::{DEFAULT_PIN, DEFAULT_PUK, PivCards};
pub use test_support::vaultctl_binary;

/// A PIN file in a private directory, removed on drop.
#[derive(Debug)]
pub struct PinFile {
    dir: tempfile::TempDir,
}

impl PinFile {
    /// A file holding `pin` (followed by a newline).
    pub fn new(pin: &[u8]) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut content = pin.to_vec();
        content.push(b'\n');
        fs::write(dir.path().join("pin"), content).expect("write the PIN file");
        Self { dir }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The KEK URI of `slot` on the card `serial` (none: the only card), PIN from this file.
    pub fn uri(&self, serial: Option<u32>, slot: &str) -> String {
        let pin = self.dir.path().join("pin");
        match serial {
            Some(serial) => format!(
                "yubikey:serial={serial};slot={slot};pin-source=file:{}",
                pin.display()
            ),
            None => format!("yubikey:slot={slot};pin-source=file:{}", pin.display()),
        }
    }
}

/// Opens the card `serial` beside the provider (PC/SC shares it).
pub fn open_card(serial: u32) -> yubikey::YubiKey {
    yubikey::YubiKey::open_by_serial(yubikey::Serial(serial))
        .unwrap_or_else(|e| panic!("open YubiKey {serial}: {e}"))
}

/// The PIN tries the card `serial` has left (0 while a PIN is verified: the `yubikey` crate's
/// reading of "no PIN needed"). The handle's drop resets the card, as every `YubiKey` does.
pub fn pin_tries(serial: u32) -> u8 {
    open_card(serial)
        .get_pin_retries()
        .unwrap_or_else(|e| panic!("PIN tries of YubiKey {serial}: {e}"))
}

/// Unblocks the PIN of the card `serial` with the factory PUK, setting it to `new_pin`.
pub fn unblock_pin(serial: u32, new_pin: &[u8]) {
    open_card(serial)
        .unblock_pin(DEFAULT_PUK, new_pin)
        .unwrap_or_else(|e| panic!("unblock the PIN of YubiKey {serial}: {e}"));
}

/// Writes a certificate that is not a vault's (subject "CN=someone else") into `slot` of the
/// card `serial`, as another program using the slot would.
pub fn write_foreign_certificate(serial: u32, slot: u8) {
    let key = rcgen::KeyPair::generate().expect("a key pair");
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).expect("certificate parameters");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "someone else");
    let der = params
        .self_signed(&key)
        .expect("a certificate")
        .der()
        .to_vec();
    let cert = yubikey::certificate::Certificate::from_bytes(der).expect("a parsed certificate");
    let mut card = open_card(serial);
    card.authenticate(yubikey::MgmKey::default())
        .expect("the factory management key");
    let slot = yubikey::piv::SlotId::try_from(slot).expect("a PIV slot");
    cert.write(
        &mut card,
        slot,
        yubikey::certificate::CertInfo::Uncompressed,
    )
    .expect("write the certificate");
}
