//! The vault's TLS material for `vaultd`'s mutual TLS: a dev CA, the server certificate,
//! client certificates that name a principal (SAN URI `urn:vault:principal:<id>`), and the
//! revocation list, which names what a certificate's holder cannot change: its public key,
//! or its issuer and serial number (see [`RevocationList`]).
//!
//! Keys are ECDSA P-256 in PKCS#8 PEM files of mode 0600 in a 0700 directory; files appear
//! whole or not at all. No error or Debug output ever holds key material.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cert_ids;
mod certs;
mod dir;
mod error;
mod files;
mod issue;
mod principal;
mod revocation_list;
mod revoke;

pub use cert_ids::{
    CertificateIds, MAX_SERIAL_DIGITS, Serial, Sha256, certificate_ids, sha256, subject_hash,
};
pub use certs::CA_COMMON_NAME;
pub use dir::PkiDir;
pub use error::Error;
pub use files::{check_not_writable_by_others, check_private};
pub use issue::IssuedCert;
pub use principal::{
    MAX_PRINCIPAL_LEN, PRINCIPAL_URI_PREFIX, fingerprint, principal_in_uri, principal_of,
    validate_principal,
};
pub use revocation_list::{
    MAX_LIST_BYTES, RevocationEntry, RevocationList, read_list_bytes, read_revoked,
};
pub use revoke::Revoked;
