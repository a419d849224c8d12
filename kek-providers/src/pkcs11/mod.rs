//! PKCS#11: the RFC 7512 URI parser (in every build) and, behind the `pkcs11` feature, the
//! KEK provider that keeps a non-extractable AES-256 key on a token (an HSM, SoftHSM2).
//!
//! A KEK URI names the token, the key and the module, and says where the PIN comes from:
//! `pkcs11:token=vault;object=kek-1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/vault/pin`.
//! `pin-source` takes `file:PATH` or `env:NAME`; `pin-value` works but warns, and is never
//! written to the vault's configuration. `x-mechanism=aes-key-wrap-pad` selects AES key wrap
//! instead of AES-GCM for HSMs without GCM.

mod uri;

#[cfg(feature = "pkcs11")]
mod call;
#[cfg(feature = "pkcs11")]
mod create;
#[cfg(feature = "pkcs11")]
mod destroy;
#[cfg(feature = "pkcs11")]
mod info;
#[cfg(feature = "pkcs11")]
mod kek;
#[cfg(feature = "pkcs11")]
mod module;
#[cfg(feature = "pkcs11")]
mod slots;
#[cfg(feature = "pkcs11")]
mod spec;
#[cfg(feature = "pkcs11")]
mod stanza;
#[cfg(feature = "pkcs11")]
mod token;

pub use uri::{LibraryVersion, MAX_PKCS11_URI_LEN, MAX_PKCS11_VALUE_LEN, ObjectType, Pkcs11Uri};

#[cfg(feature = "pkcs11")]
pub use info::KeyInfo;
#[cfg(feature = "pkcs11")]
pub use kek::Pkcs11Kek;
#[cfg(feature = "pkcs11")]
pub(crate) use spec::Pkcs11KekSpec;
#[cfg(feature = "pkcs11")]
pub use spec::WrapMechanism;

/// Generates the key a `pkcs11:` KEK URI names on its token: AES-256, TOKEN, PRIVATE,
/// SENSITIVE, not EXTRACTABLE, not MODIFIABLE, allowed to encrypt/decrypt and wrap/unwrap.
/// Refuses when the token has an object with that label already.
/// The key is the caller's to keep (`vaultctl kek create`).
#[cfg(feature = "pkcs11")]
pub fn create_key(uri: &str) -> Result<(), crate::Error> {
    create::generate(Pkcs11KekSpec::parse(uri)?).map(drop)
}

/// Generates the key `uri` names, like [`create_key`], for a command that may still fail
/// after it (`--kek auto`): what it returns lets [`crate::discard_created`] destroy exactly
/// this key again.
#[cfg(feature = "pkcs11")]
pub(crate) fn create_discardable_key(uri: &str) -> Result<crate::Created, crate::Error> {
    let spec = Pkcs11KekSpec::parse(uri)?;
    let label = spec.object.clone();
    let canonical = spec.canonical_uri();
    let id = create::generate(spec)?;
    Ok(crate::Created::TokenKey {
        uri: canonical,
        label,
        id,
    })
}

/// Destroys the key with CKA_LABEL `label` and CKA_ID `id` on the token `uri` names, and no
/// other object: see [`create_discardable_key`].
#[cfg(feature = "pkcs11")]
pub(crate) fn destroy_created_key(uri: &str, label: &str, id: &[u8]) -> Result<(), crate::Error> {
    destroy::destroy(Pkcs11KekSpec::parse(uri)?, label, id)
}

/// The attributes of the key a `pkcs11:` KEK URI names.
#[cfg(feature = "pkcs11")]
pub fn key_info(uri: &str) -> Result<KeyInfo, crate::Error> {
    let token = token::Token::connect(Pkcs11KekSpec::parse(uri)?)?;
    KeyInfo::read(&token)
}

/// Opens the KEK a `pkcs11:` URI names (what the registry builds, with the concrete type).
#[cfg(feature = "pkcs11")]
pub fn open_kek(uri: &str) -> Result<Pkcs11Kek, crate::Error> {
    Pkcs11Kek::open(Pkcs11KekSpec::parse(uri)?)
}
