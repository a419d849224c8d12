//! What the certificates say: the CA, the server certificate and client certificates.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use time::{Duration, OffsetDateTime};

use crate::error::{Error, shown};
use crate::principal::PRINCIPAL_URI_PREFIX;

/// The CA's subject common name.
pub const CA_COMMON_NAME: &str = "vault dev CA";

const CA_DAYS: i64 = 3650;
const LEAF_DAYS: i64 = 365;

/// A random positive 159-bit serial number (RFC 5280: unique per CA, at most 20 octets).
/// rcgen's default is derived from the public key, so two certificates for one key would
/// share a serial, and revoking one by serial would revoke the other.
fn random_serial() -> Result<SerialNumber, Error> {
    let mut bytes = [0u8; 20];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Generate {
            what: "a serial number",
            source: rcgen::Error::RingUnspecified,
        })?;
    bytes[0] &= 0x7f;
    // Never a leading zero octet: the serial's DER is 20 octets, its hex 40 digits or fewer.
    bytes[0] |= 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

/// Validity from an hour ago (clients whose clocks lag a little still accept it) for `days`,
/// and a random serial number.
fn validity(params: &mut CertificateParams, days: i64) -> Result<(), Error> {
    params.serial_number = Some(random_serial()?);
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
    Ok(())
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// The self-signed CA: signs leaf certificates only (path length 0).
pub(crate) fn ca_params() -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(CA_COMMON_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, CA_DAYS)?;
    Ok(params)
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
    validity(&mut params, LEAF_DAYS)?;
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
    validity(&mut params, LEAF_DAYS)?;
    Ok(params)
}
