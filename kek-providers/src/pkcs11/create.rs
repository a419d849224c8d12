//! `vaultctl kek create` and `--kek auto`: a new AES-256 KEK generated on the token, which
//! cannot leave it.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass};

use super::spec::Pkcs11KekSpec;
use super::token::{NeedKey, Token};
use crate::Error;

/// Generates the URI's key on its token; refuses when any object has that label already.
/// Returns the key's CKA_ID (the URI's `id=`, else 16 random bytes), which with the label
/// finds exactly this key again.
pub(super) fn generate(spec: Pkcs11KekSpec) -> Result<Vec<u8>, Error> {
    let token = Token::connect(spec)?;
    let spec = token.spec();
    let label = spec.object.as_bytes().to_vec();
    let id = match &spec.uri.id {
        Some(id) => id.clone(),
        None => {
            let mut id = vec![0u8; 16];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id)
                .map_err(|_| envelope::Error::Random)?;
            id
        }
    };
    let template = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Label(label.clone()),
        Attribute::Id(id.clone()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Modifiable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(true),
        Attribute::Unwrap(true),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Derive(false),
    ];
    let exists = token.with_session(NeedKey::No, |session, _| {
        session
            .find_objects(&[Attribute::Label(label.clone())])
            .map(|found| !found.is_empty())
    })?;
    if exists {
        return Err(Error::Pkcs11KeyExists {
            object: spec.object.clone(),
            token: spec.token_name(),
        });
    }
    token.with_session(NeedKey::No, |session, _| {
        session.generate_key(&Mechanism::AesKeyGen, &template)
    })?;
    Ok(id)
}
