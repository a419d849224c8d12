//! Principals named by client certificates, and certificate fingerprints.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::{Error, shown};

/// The SAN URI prefix that names a principal: `urn:vault:principal:<id>`.
pub const PRINCIPAL_URI_PREFIX: &str = "urn:vault:principal:";

/// The longest principal id.
pub const MAX_PRINCIPAL_LEN: usize = 64;

/// Checks a principal id: 1..=64 of `[A-Za-z0-9._@+-]`.
pub fn validate_principal(principal: &str) -> Result<(), Error> {
    let refuse = |reason| {
        Err(Error::InvalidPrincipal {
            shown: shown(principal),
            reason,
        })
    };
    if principal.is_empty() {
        return refuse("it is empty; use 1 to 64 of A-Z a-z 0-9 . _ @ + -");
    }
    if principal.len() > MAX_PRINCIPAL_LEN {
        return refuse("it is longer than 64 characters");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '+' | '-');
    if !principal.chars().all(allowed) {
        return refuse("only A-Z a-z 0-9 . _ @ + - are allowed");
    }
    Ok(())
}

/// Lowercase hex SHA-256 of a DER certificate.
pub fn fingerprint(cert_der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert_der);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn bad(reason: impl Into<String>) -> Error {
    Error::BadCertificate {
        from: None,
        reason: reason.into(),
    }
}

/// Parses a DER certificate, refusing trailing bytes.
pub(crate) fn parse(cert_der: &[u8]) -> Result<X509Certificate<'_>, Error> {
    match X509Certificate::from_der(cert_der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(bad("trailing bytes after the DER certificate")),
        Err(e) => Err(bad(format!("not a DER X.509 certificate ({e})"))),
    }
}

/// The principal named by a client certificate (DER): the SAN URI
/// `urn:vault:principal:<id>` if present, else the subject CN; validated with the same
/// character rules as [`validate_principal`].
pub fn principal_of(cert_der: &[u8]) -> Result<String, Error> {
    let cert = parse(cert_der)?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| bad(format!("unreadable subjectAltName ({e})")))?;
    let mut from_uri: Option<&str> = None;
    for name in san.iter().flat_map(|s| s.value.general_names.iter()) {
        if let GeneralName::URI(uri) = name
            && let Some(id) = uri.strip_prefix(PRINCIPAL_URI_PREFIX)
        {
            match from_uri {
                Some(other) if other != id => {
                    return Err(bad("two different principal URIs in subjectAltName"));
                }
                _ => from_uri = Some(id),
            }
        }
    }
    let principal = match from_uri {
        Some(id) => id.to_owned(),
        None => {
            let mut cns = cert.subject().iter_common_name();
            let cn = cns.next().ok_or_else(|| {
                bad(format!(
                    "no {PRINCIPAL_URI_PREFIX}<id> URI and no subject CN to name a principal"
                ))
            })?;
            if cns.next().is_some() {
                return Err(bad("more than one subject CN and no principal URI"));
            }
            cn.as_str()
                .map_err(|e| bad(format!("subject CN is not a string ({e})")))?
                .to_owned()
        }
    };
    validate_principal(&principal)?;
    Ok(principal)
}
