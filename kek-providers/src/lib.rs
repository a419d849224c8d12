//! KEK providers and the registry that builds them from KEK URIs.
//!
//! Built in: `file:<path>` (a key file) and `passphrase:<source>[;m=KIB][;t=N][;p=N][;label=L]`
//! (Argon2id). `pkcs11:`, `tpm2:`, `yubikey:` and `keyring:` URIs parse in every build and
//! answer with the cargo feature that adds their provider.
//!
//! [`ThresholdKek`] combines member KEKs so that any `m` of `n` of them open (tiered setups:
//! all `n` to seal, any `m` to open).
//!
//! [`create`] makes new key material (vault init); [`open`] opens it again from the
//! canonical URI in [`BuiltKek::uri`]. [`AutoProbe`] makes the strongest KEK the machine
//! offers (`--kek auto`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auto;
mod durable_file;
mod error;
mod file;
mod keystore;
mod passphrase;
pub mod pkcs11;
mod registry;
mod software_kek;
mod threshold;
pub mod tpm;
pub mod yubikey;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use envelope::KekProvider;

pub use auto::{AutoCandidate, AutoChoice, AutoProbe, AutoSkip, PKCS11_URI_VAR, TPM_TCTI_VAR};
pub use error::Error;
pub use passphrase::{MAX_PASSPHRASE_LEN, SecretSource, read_hidden};
pub use registry::MAX_URI_LEN;
pub use threshold::{MAX_THRESHOLD_MEMBERS, ThresholdKek};

/// Where providers keep their state (the passphrase KEK's parameter file).
#[derive(Debug, Clone, Copy)]
pub struct KekEnv<'a> {
    /// The vault directory.
    pub vault_dir: &'a Path,
}

/// A provider built from a URI, with the canonical URI that opens it again.
#[derive(Debug, Clone)]
pub struct BuiltKek {
    /// The canonical URI, to pin in the vault marker; [`open`] of it gives the same KEK.
    pub uri: String,
    /// The provider.
    pub provider: Arc<dyn KekProvider>,
    /// What [`create`] made for it; `None` when the key material existed already (a key on
    /// a token, a card or a TPM is made beforehand). See [`discard_created`].
    pub created: Option<Created>,
}

/// Key material [`create`] made that [`discard_created`] can remove again.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Created {
    /// A file: a key file or a passphrase parameter file.
    File(PathBuf),
    /// An OS keystore entry (`keyring:` URIs).
    KeystoreEntry {
        /// The entry's service name.
        service: String,
        /// The entry's account name.
        account: String,
    },
    /// A key generated on a PKCS#11 token (`--kek auto` with a token but no key named),
    /// found again by its label and the random CKA_ID it was generated with, so that
    /// discarding it can never destroy another object.
    TokenKey {
        /// The canonical `pkcs11:` URI of the key (token, module, pin-source; never a PIN).
        uri: String,
        /// Its CKA_LABEL.
        label: String,
        /// Its CKA_ID.
        id: Vec<u8>,
    },
}

/// Removes what [`create`] made for `built` (key files, parameter files, keystore entries,
/// keys `--kek auto` generated on a token): for a caller whose use of it failed (a vault
/// init that did not complete), so that running it again does not find a key file or an
/// entry in the way, which would refuse to be replaced, nor pile up keys on a token. Only
/// call it for KEKs nothing was sealed under yet. What cannot be removed is logged as a
/// warning, with where it is.
pub fn discard_created(built: &[BuiltKek]) {
    for created in built.iter().filter_map(|b| b.created.as_ref()) {
        discard(created);
    }
}

/// Removes one thing [`create`] made, logging what cannot be removed.
pub(crate) fn discard(created: &Created) {
    match created {
        Created::File(path) => {
            if let Err(e) = std::fs::remove_file(path) {
                log::warn!(
                    "could not remove {} after a failed init: {e}",
                    path.display()
                );
            }
        }
        Created::KeystoreEntry { service, account } => {
            if let Err(e) = keystore::discard(service, account) {
                log::warn!(
                    "could not remove the OS keystore entry service={service} account={account} after a failed init: {e}"
                );
            }
        }
        Created::TokenKey { uri, label, id } => {
            if let Err(e) = registry::destroy_pkcs11_key(uri, label, id) {
                let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
                log::warn!(
                    "could not destroy the new key {label:?} (id {id}) of {uri} after the command failed: {e}; nothing is sealed under it, so it may be deleted"
                );
            }
        }
    }
}

/// Creates the key material of every URI in order. If one fails, what was made for the
/// earlier ones is removed again before the error is returned.
pub fn create_all(uris: &[String], env: &KekEnv<'_>) -> Result<Vec<BuiltKek>, Error> {
    let mut built = Vec::with_capacity(uris.len());
    for uri in uris {
        match create(uri, env) {
            Ok(kek) => built.push(kek),
            Err(e) => {
                discard_created(&built);
                return Err(e);
            }
        }
    }
    Ok(built)
}

/// Creates new key material for `uri` (at vault init); refuses to replace existing material.
pub fn create(uri: &str, env: &KekEnv<'_>) -> Result<BuiltKek, Error> {
    registry::KekSpec::parse(uri)?.create(env.vault_dir)
}

/// Opens the existing key material named by `uri`.
pub fn open(uri: &str, env: &KekEnv<'_>) -> Result<BuiltKek, Error> {
    registry::KekSpec::parse(uri)?.open(env.vault_dir, None)
}

/// Like [`open`], with the passphrase of a `passphrase:` KEK given by the caller instead of
/// read from the source in its URI (a daemon cannot prompt: its API takes the passphrase).
/// Other KEKs open as [`open`] opens them.
pub fn open_with_passphrase(
    uri: &str,
    env: &KekEnv<'_>,
    passphrase: &envelope::SecretBytes,
) -> Result<BuiltKek, Error> {
    registry::KekSpec::parse(uri)?.open(env.vault_dir, Some(passphrase))
}

/// Whether a log record comes from a library under a provider (tss-esapi, cryptoki, yubikey). Those
/// log, in their own words, every failure the provider then reports with context (a PCR
/// policy check that fails is an expected answer, not an error to print twice), so the
/// programs' loggers drop them.
pub fn is_library_log(target: &str) -> bool {
    ["tss_esapi", "cryptoki", "yubikey"]
        .iter()
        .any(|library| target == *library || target.starts_with(&format!("{library}::")))
}

/// Checks that `uri` is a well-formed KEK URI of a provider built into this binary, without
/// touching files, devices or the environment (to validate configuration up front).
pub fn check_uri(uri: &str) -> Result<(), Error> {
    registry::KekSpec::parse(uri).map(|_| ())
}
