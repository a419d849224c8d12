//! The vault's TLS material for `vaultd`'s mutual TLS: a dev CA, the server certificate,
//! client certificates that name a principal (SAN URI `urn:vault:principal:<id>`), and the
//! revocation list of client certificate fingerprints.
//!
//! Keys are ECDSA P-256 in PKCS#8 PEM files of mode 0600 in a 0700 directory; files appear
//! whole or not at all. No error or Debug output ever holds key material.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod certs;
mod dir;
mod error;
mod files;
mod issue;
mod principal;
mod revoke;

pub use certs::CA_COMMON_NAME;
pub use dir::PkiDir;
pub use error::Error;
pub use files::check_private;
pub use issue::IssuedCert;
pub use principal::{
    MAX_PRINCIPAL_LEN, PRINCIPAL_URI_PREFIX, fingerprint, principal_in_uri, principal_of,
    validate_principal,
};
pub use revoke::read_revoked;
