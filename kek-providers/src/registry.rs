//! The registry: parses a KEK URI and builds its provider. The only place that knows which
//! providers this binary was built with; the URI grammar itself does not depend on features,
//! so a URI pinned by one build parses in every build and a missing provider names the
//! feature that adds it.

use std::path::Path;

use crate::error::shorten;
use crate::file::{self, FileKekSpec};
use crate::keystore::KeyringKekSpec;
use crate::passphrase::{self, PassphraseKekSpec};
use crate::yubikey::YubikeyKekSpec;
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
    /// `pkcs11:<token and key>?<module, PIN>`
    #[cfg(feature = "pkcs11")]
    Pkcs11(Box<crate::pkcs11::Pkcs11KekSpec>),
    /// `tpm2:tcti=...;srk=...;pcrs=...`
    #[cfg(feature = "tpm")]
    Tpm2(Box<crate::tpm::Tpm2Uri>),
    /// `yubikey:serial=...;slot=...;pin-source=...`
    #[cfg(feature = "yubikey")]
    Yubikey(YubikeyKekSpec),
    /// `keyring:service=...;account=...`
    #[cfg(feature = "os-keystore")]
    Keyring(KeyringKekSpec),
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
            #[cfg(feature = "pkcs11")]
            "pkcs11" => {
                crate::pkcs11::Pkcs11KekSpec::parse(uri).map(|spec| Self::Pkcs11(Box::new(spec)))
            }
            #[cfg(not(feature = "pkcs11"))]
            "pkcs11" => {
                // Checked even without the provider, so a typo is reported as such.
                crate::pkcs11::Pkcs11Uri::parse(uri)?;
                Err(not_built("pkcs11", "pkcs11", false))
            }
            #[cfg(feature = "tpm")]
            "tpm2" => crate::tpm::Tpm2Uri::parse(uri).map(|spec| Self::Tpm2(Box::new(spec))),
            #[cfg(not(feature = "tpm"))]
            "tpm2" => {
                // Checked even without the provider, so a typo is reported as such.
                crate::tpm::Tpm2Uri::parse(uri)?;
                Err(not_built("tpm2", "tpm", false))
            }
            #[cfg(feature = "yubikey")]
            "yubikey" => YubikeyKekSpec::parse(rest).map(Self::Yubikey),
            #[cfg(not(feature = "yubikey"))]
            "yubikey" => {
                // Checked even without the provider, so a typo is reported as such.
                YubikeyKekSpec::parse(rest)?;
                Err(not_built("yubikey", "yubikey", false))
            }
            #[cfg(feature = "os-keystore")]
            "keyring" => KeyringKekSpec::parse(rest).map(Self::Keyring),
            #[cfg(not(feature = "os-keystore"))]
            "keyring" => {
                // Checked even without the provider, so a typo is reported as such.
                KeyringKekSpec::parse(rest)?;
                Err(not_built("keyring", "os-keystore", false))
            }
            _ => Err(Error::UnknownKind {
                kind: shorten(kind, 32),
                known: KNOWN_KINDS,
            }),
        }
    }

    /// Makes new key material (at vault init).
    pub(crate) fn create(self, vault_dir: &Path) -> Result<BuiltKek, Error> {
        match self {
            Self::File(spec) => file::create(&spec),
            Self::Passphrase(spec) => passphrase::create(&spec, vault_dir),
            // A vault uses a key made on the token beforehand (`vaultctl kek create`): key
            // generation on an HSM is its own, deliberate step.
            #[cfg(feature = "pkcs11")]
            Self::Pkcs11(spec) => spec.build(),
            // Nothing to generate: the DEKs are sealed under the TPM's SRK, which is derived
            // from the owner seed or persisted beforehand (`vaultctl kek create`).
            #[cfg(feature = "tpm")]
            Self::Tpm2(spec) => spec.build(),
            #[cfg(feature = "yubikey")]
            Self::Yubikey(spec) => crate::yubikey::create(&spec),
            #[cfg(feature = "os-keystore")]
            Self::Keyring(spec) => crate::keystore::create(&spec),
        }
    }

    /// Opens existing key material; a passphrase KEK takes `passphrase` if given.
    pub(crate) fn open(
        self,
        vault_dir: &Path,
        passphrase: Option<&envelope::SecretBytes>,
    ) -> Result<BuiltKek, Error> {
        match self {
            Self::File(spec) => file::open(&spec),
            Self::Passphrase(spec) => passphrase::open(&spec, vault_dir, passphrase),
            #[cfg(feature = "pkcs11")]
            Self::Pkcs11(spec) => spec.build(),
            #[cfg(feature = "tpm")]
            Self::Tpm2(spec) => spec.build(),
            #[cfg(feature = "yubikey")]
            Self::Yubikey(spec) => crate::yubikey::open(&spec),
            #[cfg(feature = "os-keystore")]
            Self::Keyring(spec) => crate::keystore::open(&spec),
        }
    }
}

/// Generates the key a `pkcs11:` KEK URI names on its token (`--kek auto` with a token
/// configured but no key named), as key material [`crate::discard_created`] can destroy.
pub(crate) fn create_pkcs11_key(uri: &str) -> Result<crate::Created, Error> {
    #[cfg(feature = "pkcs11")]
    {
        crate::pkcs11::create_discardable_key(uri)
    }
    #[cfg(not(feature = "pkcs11"))]
    {
        crate::pkcs11::Pkcs11Uri::parse(uri)?;
        Err(not_built("pkcs11", "pkcs11", false))
    }
}

/// Destroys a key [`create_pkcs11_key`] generated (label and CKA_ID exactly).
pub(crate) fn destroy_pkcs11_key(uri: &str, label: &str, id: &[u8]) -> Result<(), Error> {
    #[cfg(feature = "pkcs11")]
    {
        crate::pkcs11::destroy_created_key(uri, label, id)
    }
    #[cfg(not(feature = "pkcs11"))]
    {
        let _ = (uri, label, id);
        Err(not_built("pkcs11", "pkcs11", false))
    }
}

/// The error for a hardware or OS kind: not compiled in, or compiled in before its provider
/// exists (the features are declared ahead of the providers).
#[cfg_attr(
    all(
        feature = "pkcs11",
        feature = "tpm",
        feature = "yubikey",
        feature = "os-keystore"
    ),
    allow(dead_code)
)]
fn not_built(kind: &'static str, feature: &'static str, enabled: bool) -> Error {
    if enabled {
        Error::NotImplemented { kind }
    } else {
        Error::FeatureNotBuilt { kind, feature }
    }
}
