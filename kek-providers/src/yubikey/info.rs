//! `vaultctl kek info yubikey:...`: what the card says about the KEK's slot, without the PIN.

use std::fmt;

use yubikey::PinPolicy;

use super::YubikeyKekSpec;
use super::card;
use super::kek::{self, SlotContent};
use super::session::SlotPolicy;
use crate::Error;

/// What the card says about a YubiKey KEK's slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YubikeyInfo {
    /// The canonical URI (naming the card's serial).
    pub uri: String,
    /// The card's serial number.
    pub serial: u32,
    /// The PIV application's firmware version, e.g. `5.4.3`.
    pub firmware: String,
    /// The slot, e.g. `9d`.
    pub slot: String,
    /// The key's algorithm.
    pub algorithm: &'static str,
    /// The KEK id envelopes name the key by.
    pub kek_id: String,
    /// SHA-256 of the public key (uncompressed point), hex.
    pub fingerprint: String,
    /// The slot's PIN policy, when the card reports metadata (firmware 5.3 and later).
    pub pin_policy: Option<&'static str>,
    /// The slot's touch policy, when the card reports metadata.
    pub touch_policy: Option<&'static str>,
    /// PIN tries left before the PIN is blocked.
    pub pin_tries: Option<u8>,
}

impl YubikeyInfo {
    pub(super) fn read(spec: &YubikeyKekSpec) -> Result<Self, Error> {
        let mut yubikey = card::open(spec.serial)?;
        let serial = yubikey.serial().0;
        let slot = kek::slot_id(spec.slot)?;
        if let SlotContent::Other = kek::slot_content(&mut yubikey, slot) {
            return Err(Error::YubikeySlotOccupied {
                slot: spec.slot,
                serial,
            });
        }
        let point = kek::public_point(&mut yubikey, spec.slot)?;
        let policy = SlotPolicy::read(&mut yubikey, slot);
        // Last: reading the tries left reselects PIV, which forgets a verified PIN.
        let pin_tries = yubikey.get_pin_retries().ok();
        Ok(Self {
            uri: spec.canonical_uri(serial),
            serial,
            firmware: yubikey.version().to_string(),
            slot: format!("{:02x}", spec.slot),
            algorithm: "ECC P-256 (ECDH)",
            kek_id: kek::kek_id(&point)?.to_string(),
            fingerprint: hex(ring::digest::digest(&ring::digest::SHA256, &point).as_ref()),
            pin_policy: policy.pin.and_then(pin_policy_name),
            touch_policy: policy.touch.name(),
            pin_tries,
        })
    }
}

fn pin_policy_name(policy: PinPolicy) -> Option<&'static str> {
    match policy {
        PinPolicy::Never => Some("never"),
        PinPolicy::Once => Some("once per session"),
        PinPolicy::Always => Some("always"),
        PinPolicy::Default => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Display for YubikeyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let not_reported = "not reported by the card (GET METADATA needs firmware 5.3)";
        writeln!(f, "serial:                 {}", self.serial)?;
        writeln!(f, "firmware:               {}", self.firmware)?;
        writeln!(f, "slot:                   {}", self.slot)?;
        writeln!(f, "algorithm:              {}", self.algorithm)?;
        writeln!(f, "kek id:                 {}", self.kek_id)?;
        writeln!(f, "public key sha256:      {}", self.fingerprint)?;
        writeln!(
            f,
            "pin policy:             {}",
            self.pin_policy.unwrap_or(not_reported)
        )?;
        writeln!(
            f,
            "touch policy:           {}",
            self.touch_policy.unwrap_or(not_reported)
        )?;
        match self.pin_tries {
            Some(tries) => write!(f, "pin tries left:         {tries}"),
            None => write!(f, "pin tries left:         unknown"),
        }
    }
}
