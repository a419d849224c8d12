//! Envelope encryption for the vault: secret memory types, envelopes (a fresh DEK per
//! secret, ChaCha20-Poly1305, KEK stanzas; format v2 written, v1 still read), their binary
//! and JSON codecs, rewrap under other KEKs, and the KEK provider contract. Pure: no I/O
//! beyond the OS random generator and memory locking.
//!
//! The byte layout, nonce strategy and key-usage limits are in `FORMAT.md`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod codec;
mod context;
mod error;
mod json;
mod kek;
pub mod memory;
mod restanza;
mod rewrap;
mod rng;
mod scratch;
mod seal;
mod secret;
mod soft_kek;

pub use codec::{
    EnvelopeRef, FORMAT_VERSION, FORMAT_VERSION_1, MAGIC, MAX_BODY_LEN, MAX_KIND_LEN,
    MAX_LABEL_LEN, MAX_PAYLOAD_LEN, MAX_STANZAS, TAG_LEN,
};
pub use context::{Context, MAX_CONTEXT_FIELD};
pub use error::Error;
pub use json::{MAX_JSON_LEN, from_json, to_json};
pub use kek::{Assurance, Health, KekId, KekProvider, StanzaRef};
pub use restanza::restanza;
pub use rewrap::{Rewrapped, rewrap};
pub use seal::{MAX_FAILED_UNWRAPS_PER_KEK, open, seal};
pub use secret::{DEK_LEN, Dek, SecretBytes};
pub use soft_kek::SoftwareKek;

/// Fills `out` with bytes from the process CSPRNG (for salts, nonces and key ids).
pub fn random_bytes(out: &mut [u8]) -> Result<(), Error> {
    rng::fill(out)
}
