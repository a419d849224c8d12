//! The KEK provider contract: wrap and unwrap data-encryption keys.

use std::fmt;

use crate::codec::{MAX_KIND_LEN, MAX_LABEL_LEN};
use crate::{Dek, Error};

/// Names a KEK: the provider kind, the key's label in that provider, and the key version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KekId {
    kind: String,
    label: String,
    version: u32,
}

impl KekId {
    /// Validates and builds an id. `kind` is 1..=32 of `[a-z0-9-]`; `label` is at most 255
    /// bytes of printable UTF-8.
    pub fn new(kind: &str, label: &str, version: u32) -> Result<Self, Error> {
        check_kind(kind)?;
        check_label(label)?;
        Ok(Self {
            kind: kind.to_owned(),
            label: label.to_owned(),
            version,
        })
    }

    /// The provider kind, e.g. `file`, `passphrase`, `pkcs11`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The key's label within its provider.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The key version.
    pub fn version(&self) -> u32 {
        self.version
    }
}

impl fmt::Display for KekId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}#v{}", self.kind, self.label, self.version)
    }
}

/// 1 to 32 of `[a-z0-9-]`.
pub(crate) fn is_valid_kind(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= MAX_KIND_LEN
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether `label` holds a control character (checked byte-wise first: labels are ASCII).
pub(crate) fn has_control_chars(label: &str) -> bool {
    let printable_ascii = label.bytes().all(|b| (0x20..0x7f).contains(&b));
    !printable_ascii && label.chars().any(char::is_control)
}

pub(crate) fn check_kind(kind: &str) -> Result<(), Error> {
    if is_valid_kind(kind) {
        Ok(())
    } else {
        Err(Error::InvalidName {
            field: "KEK kind",
            reason: "must be 1 to 32 of a-z, 0-9, -",
        })
    }
}

pub(crate) fn check_label(label: &str) -> Result<(), Error> {
    if label.len() > MAX_LABEL_LEN {
        return Err(Error::InvalidName {
            field: "KEK label",
            reason: "longer than 255 bytes",
        });
    }
    if has_control_chars(label) {
        return Err(Error::InvalidName {
            field: "KEK label",
            reason: "contains control characters",
        });
    }
    Ok(())
}

/// A KEK stanza as read from an envelope: whose it is, and the provider's wrapped key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StanzaRef<'a> {
    /// The provider kind that wrote the stanza.
    pub kind: &'a str,
    /// The key label within that provider.
    pub label: &'a str,
    /// The key version.
    pub version: u32,
    /// The provider-defined wrapped key (opaque to the envelope).
    pub body: &'a [u8],
}

impl StanzaRef<'_> {
    /// Whether the stanza names exactly this KEK (kind, label and version).
    pub fn is_for(&self, id: &KekId) -> bool {
        self.kind == id.kind && self.label == id.label && self.version == id.version
    }

    /// The stanza's KEK id, for error messages.
    pub fn describe(&self) -> String {
        format!("{}:{}#v{}", self.kind, self.label, self.version)
    }
}

/// What a KEK protects against: printed by `kek list` and used to pick providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Assurance {
    /// The key lives in dedicated hardware (TPM, HSM, smart card).
    pub hardware: bool,
    /// The key cannot be read out of where it lives.
    pub non_exportable: bool,
    /// Using the key requires the platform to be in a measured state (TPM PCR policy).
    pub platform_bound: bool,
    /// Using the key requires a human (touch, PIN entry) per operation.
    pub user_presence: bool,
}

/// Whether a KEK can be used right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// The KEK answered.
    Ok,
    /// The KEK's device or service cannot be reached; says what to check.
    Unreachable(String),
    /// The KEK was reached but failed; says what failed.
    Failed(String),
}

/// `hardware, non-exportable, ...`, or `software` when it assures none of them.
impl fmt::Display for Assurance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<&str> = [
            (self.hardware, "hardware"),
            (self.non_exportable, "non-exportable"),
            (self.platform_bound, "platform-bound"),
            (self.user_presence, "user-presence"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if parts.is_empty() {
            f.write_str("software")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// `ok`, `unreachable: why` or `failed: why`.
impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Health::Ok => f.write_str("ok"),
            Health::Unreachable(why) => write!(f, "unreachable: {why}"),
            Health::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// A key-encryption key: wraps and unwraps data-encryption keys.
///
/// Implementations are `Send + Sync` (the daemon shares them between workers) and their
/// `Debug` never prints key material, PINs or passphrases. Blocking calls are fine.
pub trait KekProvider: Send + Sync + fmt::Debug {
    /// The id written into stanzas this provider wraps.
    fn id(&self) -> &KekId;

    /// Wraps `dek`, authenticating `aad`, and returns the stanza body.
    fn wrap(&self, dek: &Dek, aad: &[u8]) -> Result<Vec<u8>, Error>;

    /// Unwraps a stanza: `None` if the stanza is not this KEK's ("not mine"), `Some(Err)` if
    /// it is but unwrapping failed (tampered, wrong AAD, device error).
    fn unwrap(&self, stanza: &StanzaRef<'_>, aad: &[u8]) -> Option<Result<Dek, Error>>;

    /// Whether the KEK can be used now.
    fn health(&self) -> Health;

    /// What the KEK assures.
    fn assurance(&self) -> Assurance;

    /// Whether wrap and unwrap only compute on a key in this process's memory, so that they
    /// never wait on a device or a service. A daemon runs such KEKs inline and every other
    /// one on its bounded pool with a deadline (a PKCS#11 call to a network HSM can hang,
    /// whatever its slot claims to be).
    fn computes_in_process(&self) -> bool {
        false
    }

    /// Whether someone without this KEK's secret can make stanzas it opens: a public-key
    /// KEK wraps with the public key alone (a YubiKey's ECDH), and a TPM seals for anyone who
    /// can send it commands. A stanza such a KEK opens proves nothing about who wrote it, so
    /// the vault authenticates those stanzas itself.
    fn wraps_without_secret(&self) -> bool {
        false
    }
}
