//! The card as vpcd sees it: APDUs in, responses out. Between vpcd and piv-authenticator it
//! does what a card's APDU layer does (command chaining, GET RESPONSE for long replies) and
//! answers the three things the `yubikey` crate expects of a YubiKey that piv-authenticator
//! does not: SELECT by the 5-byte partial PIV AID, case-3 commands without Le answered with
//! their data and 9000, and a firmware version of 5.x (with the serial beside it).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::virt::Piv;

/// The full PIV AID (NIST SP 800-73-4): the card's own; SELECT accepts any prefix of it from
/// the 5-byte RID A0 00 00 03 08 on, as a YubiKey does.
const PIV_AID: [u8; 11] = [
    0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
];
const PIV_RID_LEN: usize = 5;

/// The firmware version the card reports (YubiKey GET VERSION, INS FD): the `yubikey` crate
/// reads the serial the 5.x way (INS F8 in the PIV application) and refuses 6.x.
pub const FIRMWARE_VERSION: [u8; 3] = [5, 4, 3];

/// The ATR of a YubiKey 5 (CCID interface).
const YUBIKEY_ATR: &[u8] = &[
    0x3B, 0xFD, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x80, 0x73, 0xC0, 0x21, 0xC0, 0x57, 0x59,
    0x75, 0x62, 0x69, 0x4B, 0x65, 0x79, 0x40,
];

const INS_SELECT: u8 = 0xA4;
const INS_VERIFY: u8 = 0x20;
const INS_GET_RESPONSE: u8 = 0xC0;
const INS_YK_GET_VERSION: u8 = 0xFD;
const INS_YK_GET_SERIAL: u8 = 0xF8;
const CLA_CHAINING: u8 = 0x10;
/// The largest reply the PIV application writes (a certificate object is at most 3 KiB).
const REPLY_CAPACITY: usize = 4096;
/// A short reply: longer ones go out 256 bytes at a time behind 61 xx.
const SHORT_REPLY: usize = 256;

const SW_OK: [u8; 2] = [0x90, 0x00];
const SW_WRONG_LENGTH: [u8; 2] = [0x67, 0x00];
const SW_FILE_NOT_FOUND: [u8; 2] = [0x6A, 0x82];
const SW_CONDITIONS_NOT_SATISFIED: [u8; 2] = [0x69, 0x85];

/// A PIV card answering as a YubiKey 5 would.
pub(crate) struct YubiKeyCard<'a> {
    piv: Piv<'a>,
    serial: u32,
    /// PINs sent (VERIFY with data), for tests that count them.
    verifications: Arc<AtomicUsize>,
    /// Data of a chained command so far (CLA bit 0x10), with the INS/P1/P2 it started with.
    chain: Option<([u8; 3], Vec<u8>)>,
    /// What is left of a long reply, for GET RESPONSE.
    pending: Vec<u8>,
}

impl<'a> YubiKeyCard<'a> {
    pub(crate) fn new(piv: Piv<'a>, serial: u32, verifications: Arc<AtomicUsize>) -> Self {
        Self {
            piv,
            serial,
            verifications,
            chain: None,
            pending: Vec::new(),
        }
    }

    /// The answer to reset.
    pub(crate) fn atr(&self) -> &'static [u8] {
        YUBIKEY_ATR
    }

    /// Power off, on or reset: the half-done command chain and reply are gone, the PIV
    /// application is no longer selected, and the PIN is no longer verified.
    pub(crate) fn power_off(&mut self) {
        self.chain = None;
        self.pending.clear();
        self.piv.deselect();
        // A YubiKey forgets the verified PIN on reset; piv-authenticator's deselect keeps it.
        // VERIFY with P1 FF logs the PIN out (an error only means nothing was verified).
        let _ = self.piv_command(0x00, INS_VERIFY, 0xFF, 0x80, &[]);
    }

    /// One short APDU (the `yubikey` crate sends no extended ones) to its response.
    pub(crate) fn apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
        let Some((header, data)) = split_short_apdu(apdu) else {
            return SW_WRONG_LENGTH.to_vec();
        };
        let [cla, ins, p1, p2] = header;
        if ins == INS_GET_RESPONSE {
            return self.next_reply_part();
        }
        self.pending.clear();
        if cla & CLA_CHAINING != 0 {
            let (_, chained) = self.chain.get_or_insert(([ins, p1, p2], Vec::new()));
            chained.extend_from_slice(data);
            return SW_OK.to_vec();
        }
        let reply = match self.chain.take() {
            Some((started, mut chained)) if started == [ins, p1, p2] => {
                chained.extend_from_slice(data);
                self.command(cla, ins, p1, p2, &chained)
            }
            // A chain broken off by another command: the card forgets it.
            Some(_) => Err(SW_CONDITIONS_NOT_SATISFIED),
            None => self.command(cla, ins, p1, p2, data),
        };
        match reply {
            Ok(data) => {
                self.pending = data;
                self.next_reply_part()
            }
            Err(status) => status.to_vec(),
        }
    }

    /// A whole command to its reply data (or its error status).
    fn command(
        &mut self,
        cla: u8,
        ins: u8,
        p1: u8,
        p2: u8,
        data: &[u8],
    ) -> Result<Vec<u8>, [u8; 2]> {
        if ins == INS_VERIFY && !data.is_empty() {
            self.verifications.fetch_add(1, Ordering::Relaxed);
        }
        match ins {
            INS_SELECT if p1 == 0x04 => {
                let partial_piv_aid = data.len() >= PIV_RID_LEN && PIV_AID.starts_with(data);
                if !partial_piv_aid {
                    return Err(SW_FILE_NOT_FOUND);
                }
                self.piv_command(cla, ins, p1, p2, &PIV_AID)
            }
            INS_YK_GET_VERSION => Ok(FIRMWARE_VERSION.to_vec()),
            INS_YK_GET_SERIAL => Ok(self.serial.to_be_bytes().to_vec()),
            _ => self.piv_command(cla, ins, p1, p2, data),
        }
    }

    /// Hands a command to piv-authenticator, re-encoded (extended length when the chained
    /// data is long) with the largest Le: every reply goes out with its data, Le or not.
    fn piv_command(
        &mut self,
        cla: u8,
        ins: u8,
        p1: u8,
        p2: u8,
        data: &[u8],
    ) -> Result<Vec<u8>, [u8; 2]> {
        let mut apdu = vec![cla, ins, p1, p2];
        let Ok(len) = u16::try_from(data.len()) else {
            return Err(SW_WRONG_LENGTH);
        };
        match data.len() {
            0 => apdu.push(0x00),
            1..=255 => {
                apdu.push(len as u8);
                apdu.extend_from_slice(data);
                apdu.push(0x00);
            }
            _ => {
                apdu.push(0x00);
                apdu.extend_from_slice(&len.to_be_bytes());
                apdu.extend_from_slice(data);
                apdu.extend_from_slice(&[0x00, 0x00]);
            }
        }
        let Ok(command) = iso7816::command::CommandView::try_from(apdu.as_slice()) else {
            return Err(SW_WRONG_LENGTH);
        };
        let mut reply = heapless::Vec::<u8, REPLY_CAPACITY>::new();
        match self.piv.respond(command, reply.as_mut_view()) {
            Ok(()) => Ok(reply.to_vec()),
            Err(status) => Err(u16::from(status).to_be_bytes()),
        }
    }

    /// The next part of the pending reply: all of it with 9000, or 256 bytes with 61 xx (xx:
    /// how much is left, 00 for 256 or more).
    fn next_reply_part(&mut self) -> Vec<u8> {
        if self.pending.len() <= SHORT_REPLY {
            let mut response = std::mem::take(&mut self.pending);
            response.extend_from_slice(&SW_OK);
            return response;
        }
        let rest = self.pending.split_off(SHORT_REPLY);
        let mut response = std::mem::replace(&mut self.pending, rest);
        let left = u8::try_from(self.pending.len()).unwrap_or(0);
        response.extend_from_slice(&[0x61, left]);
        response
    }
}

/// Splits a short APDU (cases 1 to 4) into its header and command data.
fn split_short_apdu(apdu: &[u8]) -> Option<([u8; 4], &[u8])> {
    let (header, body) = apdu.split_first_chunk::<4>()?;
    let data = match body {
        // Case 1, or case 2 (Le only).
        [] | [_] => &[][..],
        [lc, rest @ ..] => {
            let lc = usize::from(*lc);
            // Case 3 (data), or case 4 (data and Le).
            if rest.len() != lc && rest.len() != lc + 1 {
                return None;
            }
            &rest[..lc]
        }
    };
    Some((*header, data))
}

#[cfg(test)]
mod tests {
    use super::split_short_apdu;

    #[test]
    fn short_apdus_split_into_header_and_data() {
        assert_eq!(
            split_short_apdu(&[0, 0xFD, 0, 0]),
            Some(([0, 0xFD, 0, 0], &[][..]))
        );
        assert_eq!(
            split_short_apdu(&[0, 0xCB, 0, 0, 0]),
            Some(([0, 0xCB, 0, 0], &[][..]))
        );
        assert_eq!(
            split_short_apdu(&[0, 0xA4, 4, 0, 2, 0xA0, 0]),
            Some(([0, 0xA4, 4, 0], &[0xA0, 0][..]))
        );
        assert_eq!(
            split_short_apdu(&[0, 0xA4, 4, 0, 2, 0xA0, 0, 0]),
            Some(([0, 0xA4, 4, 0], &[0xA0, 0][..]))
        );
        assert_eq!(split_short_apdu(&[0, 0xA4, 4, 0, 3, 0xA0]), None);
        assert_eq!(split_short_apdu(&[0, 0xA4, 4]), None);
    }
}
