//! Principals named by client certificates, and certificate fingerprints.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::{Error, shown};

/// The SAN URI prefix that names a principal: `urn:vault:principal:<id>`. Compared without
/// regard to ASCII case: the `urn` scheme, the NID `vault` and (for this namespace) the
/// `principal` part are case-insensitive (RFC 8141); the id after it is not.
pub const PRINCIPAL_URI_PREFIX: &str = "urn:vault:principal:";

/// The longest principal id.
pub const MAX_PRINCIPAL_LEN: usize = principal_id::MAX_LEN;

/// Checks a principal id: 1..=64 of `[A-Za-z0-9._@+-]`, not starting with `.`, not `-`
/// alone (the rule of the `principal-id` crate, shared with vault scopes and ACL rules).
pub fn validate_principal(principal: &str) -> Result<(), Error> {
    principal_id::check(principal).map_err(|why| Error::InvalidPrincipal {
        shown: shown(principal),
        reason: why.to_string(),
    })
}

/// Lowercase hex SHA-256 of a DER certificate.
pub fn fingerprint(cert_der: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, cert_der).as_ref())
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn bad(reason: impl Into<String>) -> Error {
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

/// The id after a `urn:vault:principal:` prefix (any ASCII case), if `uri` has one.
pub fn principal_in_uri(uri: &str) -> Option<&str> {
    let prefix = uri.get(..PRINCIPAL_URI_PREFIX.len())?;
    prefix
        .eq_ignore_ascii_case(PRINCIPAL_URI_PREFIX)
        .then(|| &uri[PRINCIPAL_URI_PREFIX.len()..])
}

/// The principal named by a client certificate (DER), validated with
/// [`validate_principal`]:
/// - a certificate with a subjectAltName extension names it by a SAN URI
///   `urn:vault:principal:<id>` (prefix in any case) and nowhere else: a SAN without such a
///   URI names no principal (its CN is not read), and two different ids are refused;
/// - a certificate without a subjectAltName names it by its one subject CN.
pub fn principal_of(cert_der: &[u8]) -> Result<String, Error> {
    let cert = parse(cert_der)?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| bad(format!("unreadable subjectAltName ({e})")))?;
    let principal = match san {
        Some(san) => principal_in_san(&san.value.general_names)?,
        None => principal_in_cn(&cert)?,
    };
    validate_principal(&principal)?;
    Ok(principal)
}

/// The one principal the SAN URIs name.
fn principal_in_san(names: &[GeneralName<'_>]) -> Result<String, Error> {
    let mut found: Option<&str> = None;
    for name in names {
        if let GeneralName::URI(uri) = name
            && let Some(id) = principal_in_uri(uri)
        {
            match found {
                Some(other) if other != id => {
                    return Err(bad("two different principal URIs in subjectAltName"));
                }
                _ => found = Some(id),
            }
        }
    }
    found.map(str::to_owned).ok_or_else(|| {
        bad(format!(
            "its subjectAltName holds no {PRINCIPAL_URI_PREFIX}<id> URI (with a subjectAltName \
             the principal is named there only, never by the CN); issue it with \
             `vaultctl pki issue --principal ID`"
        ))
    })
}

/// The principal named by the one subject CN of a certificate without a subjectAltName.
fn principal_in_cn(cert: &X509Certificate<'_>) -> Result<String, Error> {
    let mut cns = cert.subject().iter_common_name();
    let cn = cns.next().ok_or_else(|| {
        bad(format!(
            "no subjectAltName {PRINCIPAL_URI_PREFIX}<id> URI and no subject CN to name a principal"
        ))
    })?;
    if cns.next().is_some() {
        return Err(bad("more than one subject CN and no subjectAltName"));
    }
    Ok(cn
        .as_str()
        .map_err(|e| bad(format!("subject CN is not a string ({e})")))?
        .to_owned())
}
