//! The YubiKey PIV KEK: a P-256 key generated on the card in a PIV slot (9d by default),
//! reached through the `yubikey` crate (PC/SC) behind the `yubikey` feature. The URI parser
//! is in every build.
//!
//! URI: `yubikey:serial=N;slot=9d;pin-source=file:/path|env:NAME`. `serial` may be left out
//! when exactly one card is plugged in; `slot` is one of 9a, 9c, 9d, 9e, 82 to 95 (default
//! 9d); `pin-source` is where the PIN comes from (the terminal when not given). The canonical
//! form names the serial of the card found and the slot.
//!
//! Scheme: wrap computes in software, with no card call: an ephemeral P-256 key's ECDH with
//! the card's public key, HKDF-SHA256 (salt = ephemeral public key || card public key, info =
//! "vault yubikey kek v1"), ChaCha20-Poly1305 of the DEK with the stanza's AAD. Unwrap asks
//! the card for the ECDH of its private key with the ephemeral public key (after the PIN),
//! then derives the same key and opens. Stanza body: version (1) || ephemeral public key (65
//! bytes, uncompressed) || nonce (12) || ciphertext and tag (48).
//!
//! `create` generates the key on the card, authenticated with the factory-default
//! management key only (a card whose management key was changed is refused), and writes a
//! certificate holding the public key into the slot (the slot's public key is read back from
//! it when the KEK is opened: the card does not return it otherwise). A slot that holds a
//! certificate already is never overwritten.

mod uri;

#[cfg(feature = "yubikey")]
mod card;
#[cfg(feature = "yubikey")]
mod kek;

pub(crate) use uri::YubikeyKekSpec;

#[cfg(feature = "yubikey")]
pub(crate) use kek::{create, open};
