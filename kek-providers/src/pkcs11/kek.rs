//! The PKCS#11 KEK: a non-extractable AES-256 key on a token wraps and unwraps DEKs.

use std::fmt;

use cryptoki::error::Error as CkError;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use envelope::{Assurance, Dek, Health, KekId, KekProvider, StanzaRef};
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use super::call::is_rejected_input;
use super::info::KeyInfo;
use super::spec::{Pkcs11KekSpec, WrapMechanism};
use super::stanza::{self, Body, GCM_IV_LEN, GCM_TAG_LEN, KWP_PLAIN_LEN};
use super::token::{NeedKey, Token};
use crate::Error;

/// A KEK held by a PKCS#11 token. Built by the registry from a `pkcs11:` URI.
pub struct Pkcs11Kek {
    id: KekId,
    token: Token,
    mechanism: WrapMechanism,
    assurance: Assurance,
}

impl fmt::Debug for Pkcs11Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Kek")
            .field("id", &self.id)
            .field("mechanism", &self.mechanism)
            .field("uri", &self.token.spec().canonical_uri())
            .finish_non_exhaustive()
    }
}

impl Pkcs11Kek {
    /// Connects to the token, logs in, and checks that the key exists and may wrap with the
    /// chosen mechanism.
    pub(crate) fn open(spec: Pkcs11KekSpec) -> Result<Self, Error> {
        let id = KekId::new("pkcs11", &spec.kek_label(), 1)?;
        let mechanism = spec.mechanism;
        let token = Token::connect(spec)?;
        let info = KeyInfo::read(&token)?;
        info.check_usable(&token, mechanism)?;
        let hardware = token
            .context()
            .get_slot_info(token.slot()?)
            .is_ok_and(|slot| slot.hardware_slot());
        Ok(Self {
            id,
            token,
            mechanism,
            assurance: Assurance {
                hardware,
                non_exportable: info.cannot_leave_token(),
                ..Assurance::default()
            },
        })
    }

    /// The mechanism new stanzas are wrapped with.
    pub fn mechanism(&self) -> WrapMechanism {
        self.mechanism
    }

    /// Logs every session of this process out of the token, as a token reset or another
    /// part of the application would; the next wrap or unwrap logs in again. Exists to test
    /// that recovery against a real token.
    #[doc(hidden)]
    pub fn log_out_everywhere(&self) -> Result<(), Error> {
        self.token.log_out_everywhere()
    }

    fn wrap_gcm(&self, dek: &Dek, aad: &[u8]) -> Result<Vec<u8>, Error> {
        let mut iv = [0u8; GCM_IV_LEN];
        SystemRandom::new()
            .fill(&mut iv)
            .map_err(|_| envelope::Error::Random)?;
        let sealed = self.token.with_session(NeedKey::Yes, |session, key| {
            let mut iv = iv;
            let params = GcmParams::new(&mut iv, aad, (GCM_TAG_LEN as u64 * 8).into())?;
            session.encrypt(
                &Mechanism::AesGcm(params),
                handle(key)?,
                dek.expose_secret(),
            )
        })?;
        Ok(stanza::gcm(&iv, &sealed))
    }

    fn unwrap_gcm(&self, iv: &[u8], sealed: &[u8], aad: &[u8]) -> Result<Dek, CallError> {
        let plain = self.token.with_session_raw(|session, key| {
            let mut iv = iv.to_vec();
            let params = GcmParams::new(&mut iv, aad, (GCM_TAG_LEN as u64 * 8).into())?;
            session.decrypt(&Mechanism::AesGcm(params), handle(key)?, sealed)
        })?;
        let plain = Zeroizing::new(plain);
        Dek::from_slice(&plain).map_err(|_| CallError::Rejected)
    }

    fn wrap_kwp(&self, dek: &Dek, aad: &[u8]) -> Result<Vec<u8>, Error> {
        let mut plain = Zeroizing::new(Vec::with_capacity(KWP_PLAIN_LEN));
        plain.extend_from_slice(dek.expose_secret());
        plain.extend_from_slice(ring::digest::digest(&ring::digest::SHA256, aad).as_ref());
        let wrapped = self.token.with_session(NeedKey::Yes, |session, key| {
            let mut template = session_key_template();
            template.push(Attribute::Value(plain.to_vec()));
            let created = session.create_object(&template);
            wipe_values(&mut template);
            let dek_object = created?;
            let wrapped = session.wrap_key(&Mechanism::AesKeyWrapPad, handle(key)?, dek_object);
            session.destroy_object(dek_object)?;
            wrapped
        })?;
        Ok(stanza::kwp(&wrapped))
    }

    fn unwrap_kwp(&self, wrapped: &[u8], aad: &[u8]) -> Result<Dek, CallError> {
        let plain = self.token.with_session_raw(|session, key| {
            let object = session.unwrap_key(
                &Mechanism::AesKeyWrapPad,
                handle(key)?,
                wrapped,
                &session_key_template(),
            )?;
            let value = session.get_attributes(object, &[AttributeType::Value]);
            session.destroy_object(object)?;
            match value?.pop() {
                Some(Attribute::Value(bytes)) => Ok(bytes),
                _ => Ok(Vec::new()),
            }
        })?;
        let plain = Zeroizing::new(plain);
        if plain.len() != KWP_PLAIN_LEN {
            return Err(CallError::Rejected);
        }
        let (dek, digest) = plain.split_at(envelope::DEK_LEN);
        let expected = ring::digest::digest(&ring::digest::SHA256, aad);
        if !bool::from(digest.ct_eq(expected.as_ref())) {
            return Err(CallError::Rejected);
        }
        Dek::from_slice(dek).map_err(|_| CallError::Rejected)
    }
}

impl KekProvider for Pkcs11Kek {
    fn id(&self) -> &KekId {
        &self.id
    }

    fn wrap(&self, dek: &Dek, aad: &[u8]) -> Result<Vec<u8>, envelope::Error> {
        match self.mechanism {
            WrapMechanism::AesGcm => self.wrap_gcm(dek, aad),
            WrapMechanism::AesKeyWrapPad => self.wrap_kwp(dek, aad),
        }
        .map_err(|e| self.failed(&e))
    }

    fn unwrap(&self, stanza: &StanzaRef<'_>, aad: &[u8]) -> Option<Result<Dek, envelope::Error>> {
        if !stanza.is_for(&self.id) {
            return None;
        }
        let result = match Body::parse(stanza.body) {
            Some(Body::Gcm { iv, sealed }) => self.unwrap_gcm(iv, sealed, aad),
            Some(Body::Kwp { wrapped }) => self.unwrap_kwp(wrapped, aad),
            None => Err(CallError::Rejected),
        };
        Some(result.map_err(|e| match e {
            CallError::Rejected => envelope::Error::StanzaRejected {
                kek: self.id.to_string(),
            },
            CallError::Failed(e) => self.failed(&e),
        }))
    }

    fn health(&self) -> Health {
        // A real call on the key: a cached handle alone would not notice a deleted key.
        let probe = self.token.with_session(NeedKey::Yes, |session, key| {
            session
                .get_attributes(handle(key)?, &[AttributeType::Class])
                .map(drop)
        });
        match probe {
            Ok(()) => Health::Ok,
            Err(e @ (Error::Pkcs11KeyNotFound { .. } | Error::Pkcs11Pin { .. })) => {
                Health::Failed(e.to_string())
            }
            Err(e) => Health::Unreachable(e.to_string()),
        }
    }

    fn assurance(&self) -> Assurance {
        self.assurance
    }
}

impl Pkcs11Kek {
    fn failed(&self, error: &Error) -> envelope::Error {
        envelope::Error::Kek {
            kek: self.id.to_string(),
            reason: error.to_string(),
        }
    }
}

/// An unwrap failure: the token rejected the input (tampered, or another key's), or the call
/// failed for another reason.
#[derive(Debug)]
enum CallError {
    Rejected,
    Failed(Error),
}

impl Token {
    /// [`Token::with_session`] for unwrapping: a rejected ciphertext is told apart from a
    /// failing token.
    fn with_session_raw<T>(
        &self,
        mut call: impl FnMut(&Session, Option<ObjectHandle>) -> Result<T, CkError>,
    ) -> Result<T, CallError> {
        let mut rejected = false;
        let result = self.with_session(NeedKey::Yes, |session, key| {
            call(session, key).inspect_err(|e| rejected = is_rejected_input(e))
        });
        match result {
            Ok(value) => Ok(value),
            Err(_) if rejected => Err(CallError::Rejected),
            Err(e) => Err(CallError::Failed(e)),
        }
    }
}

/// The key handle `with_session` passed (always present with [`NeedKey::Yes`]).
fn handle(key: Option<ObjectHandle>) -> Result<ObjectHandle, CkError> {
    key.ok_or(CkError::InvalidValue)
}

/// A short-lived, extractable generic secret in the session: the DEK (and AAD digest) on
/// its way into or out of AES key wrap. Destroyed right after use.
fn session_key_template() -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(false),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ]
}

/// Wipes key values out of a template once the token has copied them.
fn wipe_values(template: &mut [Attribute]) {
    for attribute in template {
        if let Attribute::Value(bytes) = attribute {
            bytes.zeroize();
        }
    }
}

impl Pkcs11KekSpec {
    /// Opens the KEK and pairs it with its canonical URI.
    pub(crate) fn build(self) -> Result<crate::BuiltKek, Error> {
        let uri = self.canonical_uri();
        Ok(crate::BuiltKek {
            uri,
            provider: std::sync::Arc::new(Pkcs11Kek::open(self)?),
            created: None,
        })
    }
}
