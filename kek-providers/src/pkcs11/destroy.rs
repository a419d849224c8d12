//! Destroying a key `--kek auto` generated for a command that then failed: nothing was sealed
//! under it, and left on the token it would only pile up with every failed try.

use cryptoki::object::{Attribute, ObjectClass};

use super::spec::Pkcs11KekSpec;
use super::token::{NeedKey, Token};
use crate::Error;

/// Destroys the secret key with CKA_LABEL `label` and CKA_ID `id` on the URI's token. The id
/// is the random one the key was generated with, so the search can only find that key; if it
/// finds anything but exactly one object, nothing is destroyed.
pub(super) fn destroy(spec: Pkcs11KekSpec, label: &str, id: &[u8]) -> Result<(), Error> {
    let token = Token::connect(spec)?;
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::Token(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    let found = token.with_session(NeedKey::No, |session, _| {
        let found = session.find_objects(&template)?;
        if let [key] = found.as_slice() {
            session.destroy_object(*key)?;
        }
        Ok(found.len())
    })?;
    let reason = match found {
        1 => return Ok(()),
        0 => "no secret key has that label and the id it was generated with any more".to_owned(),
        many => format!(
            "{many} secret keys have that label and the id it was generated with; none was destroyed"
        ),
    };
    Err(Error::Pkcs11KeyNotDestroyed {
        object: label.to_owned(),
        token: token.spec().token_name(),
        reason,
    })
}
