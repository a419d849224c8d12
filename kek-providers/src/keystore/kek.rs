//! Creating and opening a keyring KEK: a random key written to a new keystore entry, or
//! read from an existing one, used by an [`envelope::SoftwareKek`].

use envelope::Dek;

use super::{KeyringKekSpec, store};
use crate::{BuiltKek, Created, Error};

/// Domain separation for the key id: derived from the key, so that an entry deleted and made
/// again under the same names is another KEK ("not mine"), not a KEK that fails.
const KEY_ID_CONTEXT: &[u8] = b"vault keyring kek id v1";

/// Generates a key and stores it in a new entry; refuses to replace an existing entry, which
/// would make every secret sealed under the old key unreadable.
/// The built KEK names the entry as created, so that an init that fails after this removes
/// it again (`discard_created`) and the same command, corrected, can run.
pub(crate) fn create(spec: &KeyringKekSpec) -> Result<BuiltKek, Error> {
    let key = store::write_new(spec, Dek::generate()?)?;
    let built = build(spec, key);
    if built.is_err() {
        // Nothing can use the new entry: leave nothing behind.
        let _ = store::delete(spec);
    }
    let mut built = built?;
    built.created = Some(Created::KeystoreEntry {
        service: spec.service.clone(),
        account: spec.account.clone(),
    });
    Ok(built)
}

/// Reads the key of an existing entry.
pub(crate) fn open(spec: &KeyringKekSpec) -> Result<BuiltKek, Error> {
    build(spec, store::read(spec)?)
}

/// Held in process memory from here on: wrap and unwrap compute in process, and the KEK
/// claims no hardware or non-exportable assurance (SoftwareKek's default).
fn build(spec: &KeyringKekSpec, key: Dek) -> Result<BuiltKek, Error> {
    crate::software_kek::key_derived("keyring", KEY_ID_CONTEXT, spec.canonical_uri(), key)
}
