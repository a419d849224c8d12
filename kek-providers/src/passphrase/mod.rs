//! The passphrase KEK: a key derived from a passphrase with Argon2id, used by a
//! [`SoftwareKek`]. The salt, costs and a key-check value live in a parameter file in the
//! vault directory, so a wrong passphrase is reported as such instead of as a failed unwrap.
//!
//! URI: `passphrase:<source>[;m=KIB][;t=N][;p=N][;label=L]` with source `env=NAME`,
//! `file=PATH` or `prompt`; the canonical form is `passphrase:<source>;label=<label>`.
//! Without `label=`, `create` picks a random label and `open` uses the only passphrase KEK
//! in the vault directory.

mod create;
mod hidden_prompt;
mod kdf;
mod label;
mod open;
mod params_file;
mod secret_source;
mod uri;

use std::sync::Arc;

use envelope::{Dek, KekId, SoftwareKek};

use crate::{BuiltKek, Error};
use label::Label;

pub(crate) use create::create;
pub use hidden_prompt::read_hidden;
pub(crate) use open::open;
pub(crate) use secret_source::ENV_NAME_RULE;
pub use secret_source::{MAX_PASSPHRASE_LEN, SecretSource};
pub(crate) use uri::PassphraseKekSpec;

/// The KEK id of passphrase KEK `label`.
fn kek_id(label: &Label) -> Result<KekId, Error> {
    Ok(KekId::new("passphrase", label.as_str(), 1)?)
}

/// The provider for `key`, with the URI that reopens it.
fn build(spec: &PassphraseKekSpec, label: &Label, key: Dek) -> Result<BuiltKek, Error> {
    Ok(BuiltKek {
        uri: spec.canonical_uri(label),
        provider: Arc::new(SoftwareKek::new(kek_id(label)?, key)),
        created: None,
    })
}
