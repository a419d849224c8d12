//! The registry: parses a KEK URI and builds its provider. The only place that knows which
//! providers this binary was built with; the URI grammar itself does not depend on features,
//! so a URI pinned by one build parses in every build and a missing provider names the
//! feature that adds it.

use std::path::Path;

use crate::error::shorten;
use crate::file::{self, FileKekSpec};
use crate::passphrase::{self, PassphraseKekSpec};
use crate::{BuiltKek, Error};

/// Longest KEK URI accepted.
pub const MAX_URI_LEN: usize = 4096;

/// Every KEK kind, for messages.
const KNOWN_KINDS: &str = "file, passphrase, pkcs11, tpm2, yubikey, keyring";

/// A parsed KEK URI.
#[derive(Debug)]
pub(crate) enum KekSpec {
    /// `file:<path>`
    File(FileKekSpec),
    /// `passphrase:<source>;...`
    Passphrase(PassphraseKekSpec),
}

impl KekSpec {
    /// Parses `uri`: bounded, no control characters, a known kind, then the kind's own syntax.
    pub(crate) fn parse(uri: &str) -> Result<Self, Error> {
        if uri.len() > MAX_URI_LEN {
            return Err(Error::UriTooLong {
                len: uri.len(),
                max: MAX_URI_LEN,
            });
        }
        if uri.chars().any(char::is_control) {
            return Err(Error::InvalidUri {
                reason: "it contains control characters".into(),
            });
        }
        let Some((kind, rest)) = uri.split_once(':') else {
            return Err(Error::InvalidUri {
                reason: format!(
                    "it must start with its kind ({KNOWN_KINDS}), e.g. file:/etc/vault/kek.key or passphrase:env=VAULT_PASSPHRASE"
                ),
            });
        };
        match kind {
            "file" => FileKekSpec::parse(rest).map(Self::File),
            "passphrase" => PassphraseKekSpec::parse(rest).map(Self::Passphrase),
            "pkcs11" => Err(not_built("pkcs11", "pkcs11", cfg!(feature = "pkcs11"))),
            "tpm2" => Err(not_built("tpm2", "tpm", cfg!(feature = "tpm"))),
            "yubikey" => Err(not_built("yubikey", "yubikey", cfg!(feature = "yubikey"))),
            "keyring" => Err(not_built(
                "keyring",
                "os-keystore",
                cfg!(feature = "os-keystore"),
            )),
            _ => Err(Error::UnknownKind {
                kind: shorten(kind, 32),
                known: KNOWN_KINDS,
            }),
        }
    }

    /// Makes new key material (at vault init).
    pub(crate) fn create(&self, vault_dir: &Path) -> Result<BuiltKek, Error> {
        match self {
            Self::File(spec) => file::create(spec),
            Self::Passphrase(spec) => passphrase::create(spec, vault_dir),
        }
    }

    /// Opens existing key material.
    pub(crate) fn open(&self, vault_dir: &Path) -> Result<BuiltKek, Error> {
        match self {
            Self::File(spec) => file::open(spec),
            Self::Passphrase(spec) => passphrase::open(spec, vault_dir),
        }
    }
}

/// The error for a hardware or OS kind: not compiled in, or compiled in before its provider
/// exists (the features are declared ahead of the providers).
fn not_built(kind: &'static str, feature: &'static str, enabled: bool) -> Error {
    if enabled {
        Error::NotImplemented { kind }
    } else {
        Error::FeatureNotBuilt { kind, feature }
    }
}
