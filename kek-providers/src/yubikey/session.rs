//! The card session of a YubiKey KEK: the card opened once and kept, the PIN verified once
//! per card session (a YubiKey keeps it verified until the card is reset or reselected), the
//! card reopened after a failure, and the touch notice before an ECDH that waits for one.

use std::time::Instant;

use envelope::SecretBytes;
use yubikey::piv::{self, AlgorithmId, SlotId};
use yubikey::{PinPolicy, TouchPolicy, YubiKey};
use zeroize::Zeroizing;

use super::card::{self, call_error};
use super::touch::Touch;
use crate::{Error, SecretSource};

/// What the card reports about a slot (GET METADATA, firmware 5.3 and later).
#[derive(Debug, Clone, Copy)]
pub(super) struct SlotPolicy {
    /// The slot's PIN policy; `None` when the card reported no metadata.
    pub(super) pin: Option<PinPolicy>,
    /// The slot's touch policy.
    pub(super) touch: Touch,
}

impl SlotPolicy {
    /// Reads the slot's metadata; a card without GET METADATA gives "unknown".
    pub(super) fn read(yubikey: &mut YubiKey, slot: SlotId) -> Self {
        let policy = piv::metadata(yubikey, slot)
            .ok()
            .and_then(|metadata| metadata.policy);
        Self {
            pin: policy.map(|(pin, _)| pin),
            touch: Touch::from_policy(policy.map(|(_, touch): (PinPolicy, TouchPolicy)| touch)),
        }
    }

    /// Whether the card wants the PIN right before every operation of the slot.
    fn pin_always(self) -> bool {
        matches!(self.pin, Some(PinPolicy::Always))
    }
}

/// The open card and the PIN, used under the KEK's lock.
pub(super) struct Session {
    serial: u32,
    pub(super) slot: SlotId,
    slot_ref: u8,
    pin_source: SecretSource,
    /// `None` after a failure: reopened on next use.
    yubikey: Option<YubiKey>,
    /// Read from the source when first needed.
    pin: Option<SecretBytes>,
    /// The last PIN the card refused: never sent again, so that a wrong PIN in a file does
    /// not use up the card's tries one unwrap at a time.
    refused: Option<(SecretBytes, u8)>,
    /// Whether the card accepted the PIN in this card session.
    pin_verified: bool,
    policy: SlotPolicy,
    /// When an operation that waited for a touch last succeeded.
    last_touch: Option<Instant>,
}

impl Session {
    /// A session on an open card whose PIN was verified (`pin` given) or not yet read.
    pub(super) fn new(
        yubikey: YubiKey,
        slot: (SlotId, u8),
        pin_source: SecretSource,
        pin: Option<SecretBytes>,
        policy: SlotPolicy,
    ) -> Self {
        Self {
            serial: yubikey.serial().0,
            slot: slot.0,
            slot_ref: slot.1,
            pin_source,
            pin_verified: pin.is_some(),
            yubikey: Some(yubikey),
            pin,
            refused: None,
            policy,
            last_touch: None,
        }
    }

    /// The open card, reopened (by serial) if a failure closed it.
    pub(super) fn card(&mut self) -> Result<&mut YubiKey, Error> {
        if self.yubikey.is_none() {
            self.yubikey = Some(card::open(Some(self.serial))?);
            // A reopened card session starts without the PIN.
            self.pin_verified = false;
        }
        self.yubikey
            .as_mut()
            .ok_or(Error::YubikeyNoCard { readers: 0 })
    }

    /// Forgets the card after a failure: the next use reopens it.
    pub(super) fn close(&mut self) {
        self.yubikey = None;
        self.pin_verified = false;
    }

    /// The card's ECDH of the slot's key with `peer`; the card is reopened once if it failed.
    pub(super) fn ecdh(&mut self, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        let mut last = None;
        for _ in 0..2 {
            match self.ecdh_once(peer) {
                Ok(shared) => return Ok(shared),
                // The card failed mid-session (pulled out and plugged in again, reset by
                // another program): reopen it once. Everything else (no card, the PIN, its
                // source) would fail the same way again.
                Err(e @ Error::YubikeyCall { .. }) => {
                    self.close();
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(Error::YubikeyNoCard { readers: 0 }))
    }

    fn ecdh_once(&mut self, peer: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.card()?;
        if !self.pin_verified || self.policy.pin_always() {
            self.verify_pin()?;
        }
        let touch = self.policy.touch.will_wait(self.last_touch, Instant::now());
        if touch {
            log::warn!(
                "touch the YubiKey {} (slot {:02x}): it waits for a touch to decrypt",
                self.serial,
                self.slot_ref
            );
        }
        let slot = self.slot;
        let result = piv::decrypt_data(self.card()?, peer, AlgorithmId::EccP256, slot);
        let shared = match result {
            Ok(shared) => shared,
            // 6982: the card no longer holds the PIN as verified (another program reset the
            // card or reselected PIV): once more after the PIN.
            Err(yubikey::Error::AuthenticationError) => {
                self.verify_pin()?;
                piv::decrypt_data(self.card()?, peer, AlgorithmId::EccP256, slot)
                    .map_err(call_error("computing ECDH on the card"))?
            }
            Err(e) => return Err(call_error("computing ECDH on the card")(e)),
        };
        if touch {
            self.last_touch = Some(Instant::now());
        }
        Ok(Zeroizing::new(shared.to_vec()))
    }

    /// Sends the PIN (read from its source when first needed) to the open card.
    fn verify_pin(&mut self) -> Result<(), Error> {
        self.pin_verified = false;
        if self.pin.is_none() {
            self.pin = Some(self.pin_source.read("YubiKey PIN: ")?);
        }
        let (Some(pin), Some(yubikey)) = (self.pin.as_ref(), self.yubikey.as_mut()) else {
            return Err(Error::YubikeyNoCard { readers: 0 });
        };
        if let Some((refused, tries)) = &self.refused
            && refused.expose_secret() == pin.expose_secret()
        {
            let tries = *tries;
            // Read again next time: the source may have been corrected meanwhile.
            self.pin = None;
            return Err(Error::YubikeyWrongPin { tries });
        }
        match yubikey
            .verify_pin(pin.expose_secret())
            .map_err(call_error("verifying the PIN"))
        {
            Ok(()) => {
                self.pin_verified = true;
                self.refused = None;
                Ok(())
            }
            Err(e) => {
                if let (Error::YubikeyWrongPin { tries }, Some(pin)) = (&e, self.pin.take()) {
                    self.refused = Some((pin, *tries));
                }
                Err(e)
            }
        }
    }
}
