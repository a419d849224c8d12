//! Finding the card (by serial, or the only one plugged in) and telling what went wrong in
//! words a user can act on.

use yubikey::YubiKey;
use yubikey::reader::Context;

use crate::Error;

/// Opens the card with `serial`, or the only card when `serial` is `None`.
pub(super) fn open(serial: Option<u32>) -> Result<YubiKey, Error> {
    let mut context = Context::open().map_err(|e| no_reader(&e))?;
    let readers = context.iter().map_err(|e| no_reader(&e))?;
    let mut readers_seen = 0usize;
    let mut cards = Vec::new();
    for reader in readers {
        readers_seen += 1;
        if let Ok(card) = reader.open() {
            cards.push(card);
        }
    }
    if readers_seen == 0 {
        return Err(Error::YubikeyNoReader);
    }
    match serial {
        Some(serial) => {
            let found: Vec<u32> = cards.iter().map(|c| c.serial().0).collect();
            cards
                .into_iter()
                .find(|c| c.serial().0 == serial)
                .ok_or_else(|| Error::YubikeyNotFound {
                    serial,
                    found: describe(&found),
                })
        }
        None => {
            if cards.len() > 1 {
                let found: Vec<u32> = cards.iter().map(|c| c.serial().0).collect();
                return Err(Error::YubikeySeveralCards {
                    found: describe(&found),
                });
            }
            cards.pop().ok_or(Error::YubikeyNoCard {
                readers: readers_seen,
            })
        }
    }
}

/// Serial numbers for a message.
fn describe(serials: &[u32]) -> String {
    if serials.is_empty() {
        return "no card".into();
    }
    serials
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// No PC/SC context or no reader: pcscd not running, or no reader attached.
fn no_reader(error: &yubikey::Error) -> Error {
    match error {
        yubikey::Error::PcscError {
            inner: Some(pcsc::Error::NoReadersAvailable),
        } => Error::YubikeyNoReader,
        other => Error::YubikeyCall {
            action: "reaching PC/SC (is pcscd running?)",
            reason: other.to_string(),
        },
    }
}

/// A card error while doing `action`, with the PIN errors told apart.
pub(super) fn call_error(action: &'static str) -> impl FnOnce(yubikey::Error) -> Error {
    move |error| match error {
        yubikey::Error::WrongPin { tries: 0 } | yubikey::Error::PinLocked => {
            Error::YubikeyPinBlocked
        }
        yubikey::Error::WrongPin { tries } => Error::YubikeyWrongPin { tries },
        other => Error::YubikeyCall {
            action,
            reason: other.to_string(),
        },
    }
}
