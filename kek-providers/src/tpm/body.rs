//! The TPM KEK's stanza body: the sealed data object that holds `DEK || SHA-256(AAD)`, and
//! what is needed to load it again and to explain why it cannot be.
//!
//! ```text
//! version   1 byte   0x01
//! flags     1 byte   bit 0: PCR policy (the selection follows); other bits zero
//! srk name  1 byte length (3..=66), then the SRK's TPM name (hash algorithm id + digest)
//! [pcrs]    2 bytes TPM_ALG_ID of the bank (big-endian), 3 bytes PCR bitmap (PCR i is
//!           bit i % 8 of byte i / 8, as in TPMS_PCR_SELECTION), not empty
//! public    2 bytes length (1..=512, big-endian), then the marshalled TPMT_PUBLIC
//! private   2 bytes length (1..=1024, big-endian), then the TPM2B_PRIVATE's buffer
//! ```
//! Nothing may follow. The SRK name lets unwrap say "the TPM was cleared, or this is another
//! TPM" instead of a generic load failure; the PCR selection lets it name the PCRs when the
//! policy fails. The TPM checks the rest: the private part's integrity HMAC covers the public
//! part, so a tampered blob fails to load.

use std::fmt;

use super::uri::{PcrBank, PcrSelection};

/// The body version this provider writes.
const VERSION: u8 = 1;
const FLAG_PCRS: u8 = 0x01;
/// A TPM name: a 2-byte hash algorithm id and a digest of up to 64 bytes (SHA-512).
pub const MAX_SRK_NAME_LEN: usize = 66;
const MIN_SRK_NAME_LEN: usize = 3;
/// Bound of the marshalled TPMT_PUBLIC (a sealed object's is about 80 bytes).
pub const MAX_PUBLIC_LEN: usize = 512;
/// Bound of the private blob (a sealed 64-byte object's is about 180 bytes).
pub const MAX_PRIVATE_LEN: usize = 1024;
/// Bytes of PCR bitmap: PCRs 0 to 23.
const PCR_SELECT_LEN: usize = 3;

/// A parsed stanza body; the slices borrow from the stanza.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedBody<'a> {
    /// The TPM name of the SRK the object was sealed under.
    pub srk_name: &'a [u8],
    /// The PCRs the object's policy is bound to, if any.
    pub pcrs: Option<PcrSelection>,
    /// The marshalled TPMT_PUBLIC of the sealed object.
    pub public: &'a [u8],
    /// The TPM2B_PRIVATE buffer of the sealed object (encrypted under the SRK).
    pub private: &'a [u8],
}

/// Why a body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyError(&'static str);

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid TPM stanza body: {}", self.0)
    }
}

impl std::error::Error for BodyError {}

impl<'a> SealedBody<'a> {
    /// Parses a body strictly: known version and flags, every length within its bound, no
    /// trailing bytes.
    pub fn parse(body: &'a [u8]) -> Result<Self, BodyError> {
        let mut reader = Reader(body);
        if reader.take(1, "no version byte")? != [VERSION] {
            return Err(BodyError("unknown version"));
        }
        let flags = reader.take(1, "no flags byte")?[0];
        if flags & !FLAG_PCRS != 0 {
            return Err(BodyError("unknown flags"));
        }
        let name_len = usize::from(reader.take(1, "no SRK name")?[0]);
        if !(MIN_SRK_NAME_LEN..=MAX_SRK_NAME_LEN).contains(&name_len) {
            return Err(BodyError("SRK name length out of range"));
        }
        let srk_name = reader.take(name_len, "SRK name truncated")?;
        let pcrs = if flags & FLAG_PCRS != 0 {
            let alg = reader.take(2, "PCR bank truncated")?;
            let bank = PcrBank::from_alg_id(u16::from_be_bytes([alg[0], alg[1]]))
                .ok_or(BodyError("unknown PCR bank"))?;
            let bits = reader.take(PCR_SELECT_LEN, "PCR selection truncated")?;
            let mask = u32::from_le_bytes([bits[0], bits[1], bits[2], 0]);
            Some(PcrSelection::new(bank, mask).ok_or(BodyError("empty PCR selection"))?)
        } else {
            None
        };
        let public = reader.sized(MAX_PUBLIC_LEN, "public part")?;
        let private = reader.sized(MAX_PRIVATE_LEN, "private part")?;
        if !reader.0.is_empty() {
            return Err(BodyError("trailing bytes"));
        }
        Ok(Self {
            srk_name,
            pcrs,
            public,
            private,
        })
    }

    /// Encodes the body; `None` when a part is out of its bounds (which [`SealedBody::parse`]
    /// would refuse).
    pub fn encode(&self) -> Option<Vec<u8>> {
        let bounded = (MIN_SRK_NAME_LEN..=MAX_SRK_NAME_LEN).contains(&self.srk_name.len())
            && (1..=MAX_PUBLIC_LEN).contains(&self.public.len())
            && (1..=MAX_PRIVATE_LEN).contains(&self.private.len());
        if !bounded {
            return None;
        }
        let mut out = Vec::with_capacity(
            3 + self.srk_name.len() + 5 + 4 + self.public.len() + self.private.len(),
        );
        out.push(VERSION);
        out.push(if self.pcrs.is_some() { FLAG_PCRS } else { 0 });
        out.push(self.srk_name.len() as u8);
        out.extend_from_slice(self.srk_name);
        if let Some(pcrs) = &self.pcrs {
            out.extend_from_slice(&pcrs.bank().alg_id().to_be_bytes());
            out.extend_from_slice(&pcrs.mask().to_le_bytes()[..PCR_SELECT_LEN]);
        }
        for part in [self.public, self.private] {
            out.extend_from_slice(&(part.len() as u16).to_be_bytes());
            out.extend_from_slice(part);
        }
        Some(out)
    }
}

/// Reads a body front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, missing: &'static str) -> Result<&'a [u8], BodyError> {
        if self.0.len() < n {
            return Err(BodyError(missing));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    /// A 2-byte big-endian length from 1 to `max`, then that many bytes.
    fn sized(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], BodyError> {
        let len = self.take(2, what)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        if len == 0 || len > max {
            return Err(BodyError("part length out of range"));
        }
        self.take(len, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pcrs: Option<PcrSelection>) -> Vec<u8> {
        SealedBody {
            srk_name: &[0, 0x0b, 1, 2, 3],
            pcrs,
            public: &[7; 80],
            private: &[9; 180],
        }
        .encode()
        .expect("bounded")
    }

    #[test]
    fn bodies_round_trip() {
        let pcrs = PcrSelection::new(PcrBank::Sha256, (1 << 7) | (1 << 16));
        for pcrs in [None, pcrs] {
            let body = sample(pcrs);
            let parsed = SealedBody::parse(&body).expect("parses");
            assert_eq!(parsed.pcrs, pcrs);
            assert_eq!(parsed.encode().expect("bounded"), body);
        }
    }

    #[test]
    fn every_truncation_and_any_extension_is_refused() {
        let pcrs = PcrSelection::new(PcrBank::Sha1, 1);
        for body in [sample(None), sample(pcrs)] {
            for len in 0..body.len() {
                assert!(SealedBody::parse(&body[..len]).is_err(), "{len}");
            }
            let mut longer = body.clone();
            longer.push(0);
            assert_eq!(SealedBody::parse(&longer), Err(BodyError("trailing bytes")));
        }
    }

    #[test]
    fn odd_headers_are_refused() {
        let body = sample(None);
        let mut bad = body.clone();
        bad[0] = 2;
        assert_eq!(SealedBody::parse(&bad), Err(BodyError("unknown version")));
        let mut bad = body.clone();
        bad[1] = 0x02;
        assert_eq!(SealedBody::parse(&bad), Err(BodyError("unknown flags")));
        // The PCR flag without a selection reads the public length as a bank.
        let mut bad = body.clone();
        bad[1] = FLAG_PCRS;
        assert!(SealedBody::parse(&bad).is_err());
        let mut bad = body;
        bad[2] = 67;
        assert!(SealedBody::parse(&bad).is_err());
        let empty_selection = [1, FLAG_PCRS, 3, 0, 0x0b, 0, 0, 0x0b, 0, 0, 0];
        assert_eq!(
            SealedBody::parse(&empty_selection),
            Err(BodyError("empty PCR selection"))
        );
    }
}
