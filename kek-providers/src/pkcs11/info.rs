//! The key's attributes that matter to a KEK: `vaultctl kek info` prints them, and opening a
//! KEK checks them.

use std::fmt;

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::MechanismType;
use cryptoki::object::{Attribute, AttributeType, KeyType};

use super::call::call_error;
use super::spec::WrapMechanism;
use super::token::{NeedKey, Token};
use crate::Error;

/// What the token says about a KEK.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyInfo {
    /// CKA_LABEL.
    pub label: String,
    /// CKA_ID, hex.
    pub id: String,
    /// CKA_KEY_TYPE, e.g. `CKK_AES`.
    pub key_type: String,
    /// CKA_VALUE_LEN in bytes (0 when the token does not say).
    pub value_len: u64,
    /// CKA_TOKEN: kept on the token, not only in a session.
    pub token: bool,
    /// CKA_PRIVATE: usable only after login.
    pub private: bool,
    /// CKA_SENSITIVE: the value cannot be read in plaintext.
    pub sensitive: bool,
    /// CKA_ALWAYS_SENSITIVE: it never could.
    pub always_sensitive: bool,
    /// CKA_EXTRACTABLE: it can be wrapped out of the token.
    pub extractable: bool,
    /// CKA_NEVER_EXTRACTABLE: it never could.
    pub never_extractable: bool,
    /// CKA_LOCAL: generated on the token.
    pub local: bool,
    /// CKA_ENCRYPT / CKA_DECRYPT (AES-GCM).
    pub encrypt_decrypt: (bool, bool),
    /// CKA_WRAP / CKA_UNWRAP (AES key wrap).
    pub wrap_unwrap: (bool, bool),
}

impl KeyInfo {
    /// Reads the URI's key's attributes from the token.
    pub(super) fn read(token: &Token) -> Result<Self, Error> {
        let wanted = [
            AttributeType::Label,
            AttributeType::Id,
            AttributeType::KeyType,
            AttributeType::ValueLen,
            AttributeType::Token,
            AttributeType::Private,
            AttributeType::Sensitive,
            AttributeType::AlwaysSensitive,
            AttributeType::Extractable,
            AttributeType::NeverExtractable,
            AttributeType::Local,
            AttributeType::Encrypt,
            AttributeType::Decrypt,
            AttributeType::Wrap,
            AttributeType::Unwrap,
        ];
        let attributes = token.with_session(NeedKey::Yes, |session, key| {
            session.get_attributes(key.ok_or(cryptoki::error::Error::InvalidValue)?, &wanted)
        })?;
        let mut info = Self::default();
        for attribute in attributes {
            match attribute {
                Attribute::Label(label) => info.label = String::from_utf8_lossy(&label).into(),
                Attribute::Id(id) => info.id = id.iter().map(|b| format!("{b:02x}")).collect(),
                Attribute::KeyType(kind) => info.key_type = kind.to_string(),
                Attribute::ValueLen(len) => info.value_len = *len,
                Attribute::Token(on) => info.token = on,
                Attribute::Private(on) => info.private = on,
                Attribute::Sensitive(on) => info.sensitive = on,
                Attribute::AlwaysSensitive(on) => info.always_sensitive = on,
                Attribute::Extractable(on) => info.extractable = on,
                Attribute::NeverExtractable(on) => info.never_extractable = on,
                Attribute::Local(on) => info.local = on,
                Attribute::Encrypt(on) => info.encrypt_decrypt.0 = on,
                Attribute::Decrypt(on) => info.encrypt_decrypt.1 = on,
                Attribute::Wrap(on) => info.wrap_unwrap.0 = on,
                Attribute::Unwrap(on) => info.wrap_unwrap.1 = on,
                _ => {}
            }
        }
        Ok(info)
    }

    /// Whether the key can never leave the token in plaintext or wrapped.
    pub fn cannot_leave_token(&self) -> bool {
        self.token && self.sensitive && !self.extractable
    }

    /// Refuses keys that cannot serve as a KEK with `mechanism`; warns about exportable ones.
    pub(super) fn check_usable(
        &self,
        token: &Token,
        mechanism: WrapMechanism,
    ) -> Result<(), Error> {
        let unusable = |reason: String| Error::Pkcs11KeyUnusable {
            object: token.spec().object.clone(),
            token: token.spec().token_name(),
            reason,
        };
        if self.key_type != KeyType::AES.to_string() {
            return Err(unusable(format!(
                "it is a {} key, not an AES key; create one with `vaultctl kek create URI`",
                self.key_type
            )));
        }
        let (allowed, attributes) = match mechanism {
            WrapMechanism::AesGcm => (self.encrypt_decrypt, "CKA_ENCRYPT and CKA_DECRYPT"),
            WrapMechanism::AesKeyWrapPad => (self.wrap_unwrap, "CKA_WRAP and CKA_UNWRAP"),
        };
        if allowed != (true, true) {
            return Err(unusable(format!(
                "{mechanism} needs {attributes} on the key; pick the other mechanism with x-mechanism= or create a new key"
            )));
        }
        let needed = match mechanism {
            WrapMechanism::AesGcm => MechanismType::AES_GCM,
            WrapMechanism::AesKeyWrapPad => MechanismType::AES_KEY_WRAP_PAD,
        };
        // Asked one by one: listing every mechanism makes cryptoki log each one it does not
        // know.
        if let Err(e) = token.context().get_mechanism_info(token.slot()?, needed) {
            return Err(match e {
                CkError::Pkcs11(RvError::MechanismInvalid, _) => unusable(format!(
                    "the token does not offer {needed}; choose another mechanism with x-mechanism="
                )),
                other => call_error(other),
            });
        }
        if !self.cannot_leave_token() {
            log::warn!(
                "PKCS#11 key {:?} on token {} can leave the token (token={}, sensitive={}, extractable={}); \
                 a KEK made by `vaultctl kek create` cannot",
                self.label,
                token.spec().token_name(),
                self.token,
                self.sensitive,
                self.extractable
            );
        }
        Ok(())
    }
}

/// One attribute per line, then a verdict.
impl fmt::Display for KeyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "label:                  {}", self.label)?;
        writeln!(f, "id:                     {}", self.id)?;
        writeln!(f, "key type:               {}", self.key_type)?;
        writeln!(f, "value length:           {} bytes", self.value_len)?;
        let flags = [
            ("CKA_TOKEN", self.token),
            ("CKA_PRIVATE", self.private),
            ("CKA_SENSITIVE", self.sensitive),
            ("CKA_ALWAYS_SENSITIVE", self.always_sensitive),
            ("CKA_EXTRACTABLE", self.extractable),
            ("CKA_NEVER_EXTRACTABLE", self.never_extractable),
            ("CKA_LOCAL", self.local),
            ("CKA_ENCRYPT", self.encrypt_decrypt.0),
            ("CKA_DECRYPT", self.encrypt_decrypt.1),
            ("CKA_WRAP", self.wrap_unwrap.0),
            ("CKA_UNWRAP", self.wrap_unwrap.1),
        ];
        for (name, on) in flags {
            writeln!(f, "{:<24}{on}", format!("{name}:"))?;
        }
        if self.cannot_leave_token() && self.always_sensitive && self.never_extractable {
            write!(
                f,
                "verdict:                cannot leave the token (sensitive and never extractable)"
            )
        } else {
            write!(
                f,
                "verdict:                CAN LEAVE THE TOKEN: not a key made by `vaultctl kek create`"
            )
        }
    }
}
