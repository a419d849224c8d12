//! The audit key: what MACs the records and the head, and what the checkpoint signing key is
//! derived from.

use envelope::SecretBytes;
use ring::signature::{Ed25519KeyPair, KeyPair};
use ring::{hkdf, hmac};

use crate::Error;

/// Length of an audit key.
pub const AUDIT_KEY_LEN: usize = 32;

/// HKDF info of the checkpoint signing seed: a key of its own, never the MAC key.
const SIGNING_INFO: &[u8] = b"vault audit checkpoint signing v2";

/// The 32-byte key of a vault's audit log, in locked, zeroizing memory.
///
/// No `Clone` (use [`AuditKey::try_clone`]), no `Serialize`; `Debug` prints `[REDACTED]`.
/// The MAC computations build ring's `hmac::Key` from it for one batch at a time: ring keeps
/// that (key-equivalent) state in ordinary memory, so it is dropped, not zeroized.
pub struct AuditKey(SecretBytes);

impl AuditKey {
    /// The key of these 32 bytes (copied into locked memory; zeroize your own copy).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != AUDIT_KEY_LEN {
            return Err(Error::Unsupported(format!(
                "an audit key is {AUDIT_KEY_LEN} bytes, not {}",
                bytes.len()
            )));
        }
        Ok(AuditKey(SecretBytes::from_slice(bytes)?))
    }

    /// A copy in new locked memory.
    pub fn try_clone(&self) -> Result<Self, Error> {
        Ok(AuditKey(self.0.try_clone()?))
    }

    /// The key bytes. Every call site is a place where the key leaves protection.
    pub fn expose_secret(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// ring's HMAC-SHA256 key of it, for one batch of MACs.
    pub(crate) fn hmac(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, self.expose_secret())
    }

    /// The Ed25519 key pair that signs checkpoints: its seed is HKDF-SHA256 of the audit key,
    /// so whoever holds the audit key can make it again, and its public key can be given to
    /// auditors who must not hold the audit key.
    pub(crate) fn signing_pair(&self) -> Result<Ed25519KeyPair, Error> {
        let mut seed = SecretBytes::zeroed(32)?;
        hkdf::Salt::new(hkdf::HKDF_SHA256, &[])
            .extract(self.expose_secret())
            .expand(&[SIGNING_INFO], hkdf::HKDF_SHA256)
            .and_then(|okm| okm.fill(seed.expose_secret_mut()))
            .map_err(|_| Error::Unsupported("deriving the checkpoint signing key".into()))?;
        Ed25519KeyPair::from_seed_unchecked(seed.expose_secret())
            .map_err(|e| Error::Unsupported(format!("the checkpoint signing key: {e}")))
    }

    /// The public key that verifies this key's checkpoints, in lowercase hex.
    pub fn checkpoint_public_key(&self) -> Result<String, Error> {
        Ok(super::record::hex(
            self.signing_pair()?.public_key().as_ref(),
        ))
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey([REDACTED])")
    }
}

/// HMAC-SHA256 of `parts` under `key`, in lowercase hex.
pub(crate) fn mac_hex(key: &hmac::Key, parts: &[&[u8]]) -> String {
    let mut ctx = hmac::Context::with_key(key);
    for part in parts {
        ctx.update(part);
    }
    super::record::hex(ctx.sign().as_ref())
}

/// Whether `tag_hex` is the HMAC-SHA256 of `parts` under `key` (constant time).
pub(crate) fn mac_matches(key: &hmac::Key, parts: &[&[u8]], tag_hex: &str) -> bool {
    let Some(tag) = unhex(tag_hex) else {
        return false;
    };
    let message = parts.concat();
    hmac::verify(key, &message, &tag).is_ok()
}

/// Lowercase hex to bytes.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |c: u8| match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            };
            Some(digit(pair[0])? << 4 | digit(pair[1])?)
        })
        .collect()
}
