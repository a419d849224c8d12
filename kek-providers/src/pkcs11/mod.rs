//! PKCS#11 (RFC 7512) URI parsing. Pure parsing, in every build: the provider that uses it
//! is behind the `pkcs11` feature.

mod uri;

pub use uri::{LibraryVersion, MAX_PKCS11_URI_LEN, MAX_PKCS11_VALUE_LEN, ObjectType, Pkcs11Uri};
