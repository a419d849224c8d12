//! What the certificates say: the CA, the server certificate and client certificates.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::error::{Error, shown};
use crate::principal::PRINCIPAL_URI_PREFIX;

/// The CA's subject common name.
pub const CA_COMMON_NAME: &str = "vault dev CA";

const CA_DAYS: i64 = 3650;
const LEAF_DAYS: i64 = 365;

/// Validity from an hour ago (clients whose clocks lag a little still accept it) for `days`.
fn validity(params: &mut CertificateParams, days: i64) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// The self-signed CA: signs leaf certificates only (path length 0).
pub(crate) fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(CA_COMMON_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, CA_DAYS);
    params
}

/// The server certificate for `hosts` (DNS names and IP addresses).
pub(crate) fn server_params(hosts: &[String]) -> Result<CertificateParams, Error> {
    let first = hosts.first().ok_or_else(|| Error::InvalidHost {
        shown: String::new(),
        reason: "no hosts given".into(),
    })?;
    for host in hosts {
        if host.is_empty() || !host.chars().all(|c| c.is_ascii_graphic()) || host.contains('/') {
            return Err(Error::InvalidHost {
                shown: shown(host),
                reason: "empty, or not printable ASCII without '/'".into(),
            });
        }
    }
    let mut params = CertificateParams::new(hosts.to_vec()).map_err(|e| Error::InvalidHost {
        shown: shown(first),
        reason: e.to_string(),
    })?;
    params.distinguished_name = common_name(first);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, LEAF_DAYS);
    Ok(params)
}

/// A client certificate naming `principal` (already validated) by CN and SAN URI.
pub(crate) fn client_params(principal: &str) -> Result<CertificateParams, Error> {
    let uri = format!("{PRINCIPAL_URI_PREFIX}{principal}");
    let uri = uri.try_into().map_err(|source| Error::Generate {
        what: "the principal URI",
        source,
    })?;
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(principal);
    params.subject_alt_names = vec![SanType::URI(uri)];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, LEAF_DAYS);
    Ok(params)
}
