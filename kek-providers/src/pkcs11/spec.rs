//! What a `pkcs11:` KEK URI asks for: which token and key, the module, the PIN and the
//! wrapping mechanism. Parsing touches nothing; the module is found when the KEK is opened.

use std::fmt;
use std::path::PathBuf;

use envelope::SecretBytes;

use super::uri::{ObjectType, Pkcs11Uri};
use crate::{Error, SecretSource};

/// How the DEK is wrapped on the token; the choice is recorded in every stanza.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrapMechanism {
    /// CKM_AES_GCM through C_Encrypt/C_Decrypt: 96-bit random IV, the stanza AAD as GCM AAD,
    /// 128-bit tag. The default.
    AesGcm,
    /// CKM_AES_KEY_WRAP_PAD (RFC 5649) through C_WrapKey/C_UnwrapKey, for HSMs without GCM.
    /// It has no AAD, so the wrapped key is the DEK followed by SHA-256 of the AAD.
    AesKeyWrapPad,
}

impl WrapMechanism {
    /// The name used in `x-mechanism=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AesGcm => "aes-gcm",
            Self::AesKeyWrapPad => "aes-key-wrap-pad",
        }
    }

    fn parse(name: &str) -> Result<Self, Error> {
        match name {
            "aes-gcm" => Ok(Self::AesGcm),
            "aes-key-wrap-pad" => Ok(Self::AesKeyWrapPad),
            _ => Err(Error::Pkcs11InvalidAttribute {
                name: "x-mechanism",
                reason: "must be aes-gcm (the default) or aes-key-wrap-pad".into(),
            }),
        }
    }
}

impl fmt::Display for WrapMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the user PIN comes from.
#[derive(Debug)]
pub(super) enum Pin {
    /// `pin-source=file:PATH` (or a bare absolute path), or `pin-source=env:NAME`.
    Source(SecretSource),
    /// `pin-value=...`, accepted with a warning: the PIN then sits in the URI.
    Value(SecretBytes),
    /// No PIN given: only for tokens that need no login.
    None,
}

impl Pin {
    /// Names the PIN's origin for messages, never the PIN.
    pub(super) fn describe(&self) -> String {
        match self {
            Self::Source(source) => source.to_string(),
            Self::Value(_) => "pin-value in the URI".into(),
            Self::None => "nowhere (no PIN given)".into(),
        }
    }
}

/// A parsed `pkcs11:` KEK URI.
#[derive(Debug)]
pub(crate) struct Pkcs11KekSpec {
    pub(super) uri: Pkcs11Uri,
    pub(super) object: String,
    pub(super) mechanism: WrapMechanism,
    pub(super) pin: Pin,
}

impl Pkcs11KekSpec {
    /// Parses a whole `pkcs11:` URI and checks that it names one secret key.
    pub(crate) fn parse(text: &str) -> Result<Self, Error> {
        let mut uri = Pkcs11Uri::parse(text)?;
        let needs = |what: &str| Error::Pkcs11InvalidUri {
            reason: format!(
                "a KEK URI {what}, e.g. pkcs11:token=vault;object=kek-1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/vault/pin"
            ),
        };
        let object = uri
            .object
            .clone()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| needs("names its key with object=LABEL"))?;
        if uri.token.as_deref().is_none_or(str::is_empty)
            && uri.serial.as_deref().is_none_or(str::is_empty)
        {
            return Err(needs("names its token with token=LABEL (or serial=)"));
        }
        if uri.object_type.is_some_and(|t| t != ObjectType::SecretKey) {
            return Err(Error::Pkcs11InvalidAttribute {
                name: "type",
                reason: "a KEK is a secret key: use type=secret-key or leave type out".into(),
            });
        }
        if uri.module_path.is_none() && uri.module_name.is_none() {
            return Err(needs(
                "names its module with module-path=/path/to/module.so or module-name=NAME",
            ));
        }
        let mechanism = match &uri.mechanism {
            Some(name) => WrapMechanism::parse(name)?,
            None => WrapMechanism::AesGcm,
        };
        let pin = match (&uri.pin_source, uri.pin_value()) {
            (Some(source), _) => Pin::Source(parse_pin_source(source)?),
            (None, Some(value)) => Pin::Value(value.try_clone()?),
            (None, None) => Pin::None,
        };
        uri.clear_pin_value();
        Ok(Self {
            uri,
            object,
            mechanism,
            pin,
        })
    }

    /// The canonical URI (never with `pin-value`), to pin in the vault marker.
    pub(crate) fn canonical_uri(&self) -> String {
        self.uri.to_canonical()
    }

    /// The key's id label: `<token label>/<object label>` (or `serial:<serial>/...`).
    pub(super) fn kek_label(&self) -> String {
        let token = match (&self.uri.token, &self.uri.serial) {
            (Some(label), _) if !label.is_empty() => label.clone(),
            (_, Some(serial)) => format!("serial:{serial}"),
            _ => String::new(),
        };
        format!("{token}/{}", self.object)
    }

    /// The token as named in the URI, for messages.
    pub(super) fn token_name(&self) -> String {
        match (&self.uri.token, &self.uri.serial) {
            (Some(label), _) if !label.is_empty() => label.clone(),
            (_, Some(serial)) => format!("serial {serial}"),
            _ => "(any)".into(),
        }
    }

    /// The module path, or the name to look it up by.
    pub(super) fn module(&self) -> (Option<&std::path::Path>, Option<&str>) {
        (
            self.uri.module_path.as_deref(),
            self.uri.module_name.as_deref(),
        )
    }
}

/// `file:PATH` (RFC 7512), a bare absolute path, or `env:NAME` (this vault's extension).
fn parse_pin_source(source: &str) -> Result<SecretSource, Error> {
    let bad = |reason: &str| Error::Pkcs11InvalidAttribute {
        name: "pin-source",
        reason: reason.into(),
    };
    if let Some(name) = source.strip_prefix("env:") {
        return SecretSource::env_named(name).map_err(bad);
    }
    let path = source.strip_prefix("file:").unwrap_or(source);
    // `file:///p` and `file:/p` both name /p.
    let path = path.strip_prefix("//").unwrap_or(path);
    if !path.starts_with('/') {
        return Err(bad(
            "must be file:/absolute/path (or env:NAME) so that it does not depend on the working directory",
        ));
    }
    Ok(SecretSource::File(PathBuf::from(path)))
}
