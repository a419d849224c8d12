//! The YubiKey PIV KEK: a P-256 key generated on the card in a PIV slot (9d by default),
//! reached through the `yubikey` crate (PC/SC) behind the `yubikey` feature. The URI parser
//! is in every build.
//!
//! URI: `yubikey:serial=N;slot=9d;pin-source=file:/path|env:NAME;touch=never|always|cached`.
//! `serial` may be left out when exactly one card is plugged in; `slot` is one of 9a, 9c, 9d,
//! 9e, 82 to 95 (default 9d); `pin-source` is where the PIN comes from (the terminal when not
//! given); `touch` is the touch policy of a key generated for the URI (the slot's default,
//! never, when not given; opening a key goes by the card's policy). The canonical form names
//! the serial of the card found and the slot.
//!
//! Scheme: wrap computes in software, with no card call: an ephemeral P-256 key's ECDH with
//! the card's public key, HKDF-SHA256 (salt = ephemeral public key || card public key, info =
//! "vault yubikey kek v1"), ChaCha20-Poly1305 of the DEK with the stanza's AAD. Unwrap asks
//! the card for the ECDH of its private key with the ephemeral public key (after the PIN),
//! then derives the same key and opens. Stanza body: version (1) || ephemeral public key (65
//! bytes, uncompressed) || nonce (12) || ciphertext and tag (48).
//!
//! `vaultctl kek create` ([`create_key`]) generates the key on the card, authenticated with
//! the factory-default management key only (a card whose management key was changed is
//! refused), and writes a certificate holding the public key into the slot (the slot's
//! public key is read back from it when the KEK is opened: the card does not return it
//! otherwise). A vault's `create` (init, `kek add`) uses the key `kek create` made, or
//! generates one in an empty slot. A slot that holds anyone else's certificate is never
//! touched, and no key is ever overwritten.
//!
//! The card is opened once per KEK and the PIN verified once per card session (a YubiKey
//! keeps it until the card is reset); it is sent again only when the card asks for it (a
//! reopened card, a slot whose PIN policy is `always`). When the slot's metadata says that
//! it waits for a touch, a warning asks for one before the ECDH.

mod uri;

#[cfg(feature = "yubikey")]
mod card;
#[cfg(feature = "yubikey")]
mod info;
#[cfg(feature = "yubikey")]
mod kek;
#[cfg(feature = "yubikey")]
mod session;
#[cfg(feature = "yubikey")]
mod touch;

pub(crate) use uri::YubikeyKekSpec;

#[cfg(feature = "yubikey")]
pub use info::YubikeyInfo;
#[cfg(feature = "yubikey")]
pub(crate) use kek::{create, open};

/// `vaultctl kek create`: generates a P-256 key in the URI's slot and writes a certificate
/// with its public key there; refuses a slot that holds any certificate. Returns the KEK.
#[cfg(feature = "yubikey")]
pub fn create_key(uri: &str) -> Result<crate::BuiltKek, crate::Error> {
    kek::generate(&parse(uri)?)
}

/// `vaultctl kek info`: what the card says about the slot of the KEK a `yubikey:` URI names
/// (no PIN needed).
#[cfg(feature = "yubikey")]
pub fn key_info(uri: &str) -> Result<YubikeyInfo, crate::Error> {
    YubikeyInfo::read(&parse(uri)?)
}

/// The `yubikey:` URI's parameters.
#[cfg(feature = "yubikey")]
fn parse(uri: &str) -> Result<YubikeyKekSpec, crate::Error> {
    let rest = uri
        .strip_prefix("yubikey:")
        .ok_or_else(|| crate::Error::InvalidUri {
            reason: "a YubiKey KEK URI starts with yubikey:".into(),
        })?;
    YubikeyKekSpec::parse(rest)
}
