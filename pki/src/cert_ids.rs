//! What identifies a certificate for revocation: the parts its holder cannot change.
//!
//! The DER of a certificate is not one of them. An ECDSA signature (r, s) verifies exactly
//! as (r, n - s) does, so the holder of a certificate can re-encode it, with the same
//! subject, key and extensions and no CA key, into bytes of another fingerprint. What the
//! CA signed (the public key, the issuer name and the serial number) cannot change without
//! the CA's key.

use std::fmt;

use crate::error::Error;
use crate::principal::{bad, hex, parse};

/// A SHA-256 digest.
pub type Sha256 = [u8; 32];

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Sha256 {
    let mut out = [0; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

/// The most hex digits of a serial number the revocation list holds (RFC 5280 allows 20
/// octets, 40 digits; some CAs write more).
pub const MAX_SERIAL_DIGITS: usize = 64;

/// A certificate serial number in its canonical text form: lowercase hex without leading
/// zeros (`0` for zero), at most [`MAX_SERIAL_DIGITS`] digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(String);

impl Serial {
    /// The serial of a certificate from the content octets of its DER INTEGER (a leading
    /// 0x00 that keeps it positive is dropped with the other leading zeros).
    pub fn from_der_bytes(bytes: &[u8]) -> Serial {
        Serial::trimmed(&hex(bytes))
    }

    /// A serial as a person or a tool writes it: hex digits in either case, with an
    /// optional `0x` and `:` between bytes (`0x1A2B`, `1a:2b`, `001A2B`).
    pub fn from_hex(text: &str) -> Result<Serial, Error> {
        let invalid = || Error::InvalidSerial {
            shown: crate::error::shown(text),
        };
        let trimmed = text.trim();
        let text = trimmed
            .strip_prefix("0x")
            .or_else(|| trimmed.strip_prefix("0X"))
            .unwrap_or(trimmed);
        let hex_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
        // With colons, each part is one byte (`1:2:3` is 0x010203, as `01:02:03`).
        let digits = if text.contains(':') {
            let mut digits = String::new();
            for part in text.split(':') {
                if !hex_digits(part) || part.len() > 2 {
                    return Err(invalid());
                }
                digits.push_str(&format!("{part:0>2}"));
            }
            digits
        } else if hex_digits(text) {
            text.to_owned()
        } else {
            return Err(invalid());
        }
        .to_ascii_lowercase();
        let serial = Serial::trimmed(&digits);
        if serial.0.len() > MAX_SERIAL_DIGITS {
            return Err(invalid());
        }
        Ok(serial)
    }

    /// A serial already in canonical form (as the revocation list holds it), else `None`.
    pub(crate) fn canonical(text: &str) -> Option<Serial> {
        let ok = !text.is_empty()
            && text.len() <= MAX_SERIAL_DIGITS
            && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            && (text == "0" || !text.starts_with('0'));
        ok.then(|| Serial(text.to_owned()))
    }

    fn trimmed(digits: &str) -> Serial {
        let rest = digits.trim_start_matches('0');
        Serial(if rest.is_empty() { "0" } else { rest }.to_owned())
    }

    /// The canonical hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a certificate is revoked by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateIds {
    /// SHA-256 of the whole DER: this encoding of the certificate only.
    pub fingerprint: Sha256,
    /// SHA-256 of the SubjectPublicKeyInfo DER: the key, in every certificate for it.
    pub key: Sha256,
    /// SHA-256 of the issuer Name DER, as the certificate holds it (byte for byte the
    /// subject of the CA that signed it: the chain check compares the bytes).
    pub issuer: Sha256,
    /// The serial number the issuer gave it.
    pub serial: Serial,
}

/// The identifiers of a DER certificate.
pub fn certificate_ids(cert_der: &[u8]) -> Result<CertificateIds, Error> {
    let cert = parse(cert_der)?;
    let tbs = &cert.tbs_certificate;
    Ok(CertificateIds {
        fingerprint: sha256(cert_der),
        key: sha256(tbs.subject_pki.raw),
        issuer: sha256(tbs.issuer.as_raw()),
        serial: Serial::from_der_bytes(tbs.raw_serial()),
    })
}

/// SHA-256 of the subject Name DER of a CA certificate: the issuer of what it signs.
pub fn subject_hash(ca_cert_der: &[u8]) -> Result<Sha256, Error> {
    let cert = parse(ca_cert_der)?;
    let subject = cert.tbs_certificate.subject.as_raw();
    if subject.is_empty() {
        return Err(bad("the CA certificate has no subject"));
    }
    Ok(sha256(subject))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_canonical_however_written() {
        for text in [
            "1a2b", "1A2B", "0x1a2b", "0X001A2B", "1a:2b", "00:1a:2b", "1A:2B", " 1a2b\n",
        ] {
            assert_eq!(Serial::from_hex(text).unwrap().as_str(), "1a2b", "{text:?}");
        }
        assert_eq!(Serial::from_hex("0").unwrap().as_str(), "0");
        assert_eq!(Serial::from_hex("1:2:3").unwrap().as_str(), "10203");
        assert_eq!(Serial::from_hex("00:00").unwrap().as_str(), "0");
        assert_eq!(Serial::from_der_bytes(&[0x00, 0x80, 0x01]).as_str(), "8001");
        assert_eq!(Serial::from_der_bytes(&[0x0f]).as_str(), "f");
        for bad in [
            "",
            "0x",
            "xyz",
            "12 34",
            "-1",
            "1::2",
            "123:4",
            ":12",
            &"1".repeat(MAX_SERIAL_DIGITS + 1),
        ] {
            assert!(
                matches!(Serial::from_hex(bad), Err(Error::InvalidSerial { .. })),
                "{bad:?}"
            );
        }
        // Leading zeros beyond the limit are fine: they are not part of the number.
        let padded = format!("{}1", "0".repeat(MAX_SERIAL_DIGITS + 5));
        assert_eq!(Serial::from_hex(&padded).unwrap().as_str(), "1");
    }

    #[test]
    fn canonical_serials_only() {
        assert!(Serial::canonical("1a2b").is_some());
        assert!(Serial::canonical("0").is_some());
        for bad in [
            "",
            "01",
            "00",
            "1A",
            "0x1",
            "1:2",
            &"1".repeat(MAX_SERIAL_DIGITS + 1),
        ] {
            assert!(Serial::canonical(bad).is_none(), "{bad:?}");
        }
    }
}
