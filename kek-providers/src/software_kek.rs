//! The providers whose key ends up in process memory (file, OS keystore): a [`SoftwareKek`]
//! named by its key, so a key moved or restored elsewhere is still the same KEK.

use std::sync::Arc;

use envelope::{Dek, KekId, SoftwareKek};

use crate::{BuiltKek, Error};

/// A [`SoftwareKek`] of `kind` whose label is derived from `key` under `id_context` (domain
/// separation per provider), reopened by `uri`.
pub(crate) fn key_derived(
    kind: &str,
    id_context: &[u8],
    uri: String,
    key: Dek,
) -> Result<BuiltKek, Error> {
    let id = KekId::new(kind, &key_label(id_context, &key), 1)?;
    Ok(BuiltKek {
        uri,
        provider: Arc::new(SoftwareKek::new(id, key)),
        created: None,
    })
}

/// First 16 hex digits of SHA-256(context || key): names the key without revealing it.
fn key_label(id_context: &[u8], key: &Dek) -> String {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(id_context);
    digest.update(key.expose_secret());
    digest.finish().as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
