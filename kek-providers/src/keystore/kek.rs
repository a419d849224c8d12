//! Creating and opening a keyring KEK: a random key written to a new keystore entry, or
//! read from an existing one, used by a [`SoftwareKek`].

use std::sync::Arc;

use envelope::{Dek, KekId, SoftwareKek};

use super::{KeyringKekSpec, store};
use crate::{BuiltKek, Error};

/// Domain separation for the key id: derived from the key, so that an entry deleted and made
/// again under the same names is another KEK ("not mine"), not a KEK that fails.
const KEY_ID_CONTEXT: &[u8] = b"vault keyring kek id v1";

/// Generates a key and stores it in a new entry; refuses to replace an existing entry, which
/// would make every secret sealed under the old key unreadable.
pub(crate) fn create(spec: &KeyringKekSpec) -> Result<BuiltKek, Error> {
    let key = store::write_new(spec, Dek::generate()?)?;
    build(spec, key)
}

/// Reads the key of an existing entry.
pub(crate) fn open(spec: &KeyringKekSpec) -> Result<BuiltKek, Error> {
    build(spec, store::read(spec)?)
}

fn build(spec: &KeyringKekSpec, key: Dek) -> Result<BuiltKek, Error> {
    let id = KekId::new("keyring", &key_label(&key), 1)?;
    Ok(BuiltKek {
        uri: spec.canonical_uri(),
        // Held in process memory from here on: wrap and unwrap compute in process, and the
        // KEK claims no hardware or non-exportable assurance (SoftwareKek's default).
        provider: Arc::new(SoftwareKek::new(id, key)),
        // Not a file: an entry left by a failed init is named in the error of the next try.
        created: None,
    })
}

/// First 16 hex digits of SHA-256(context || key): names the key without revealing it.
fn key_label(key: &Dek) -> String {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(KEY_ID_CONTEXT);
    digest.update(key.expose_secret());
    digest.finish().as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
