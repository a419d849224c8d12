//! Client certificates the tests make themselves, signed by a development vault's CA (as
//! only the CA's holder can) or re-encoded from an issued one (as its holder can), and the
//! identifiers revocation uses.

use std::path::{Path, PathBuf};

use base64::Engine as _;

/// The DER of the first certificate in a PEM file.
pub fn der_of(pem_file: &Path) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_file(pem_file)
        .unwrap_or_else(|e| panic!("read a certificate from {}: {e:?}", pem_file.display()))
        .to_vec()
}

/// Writes `der` as a PEM certificate file.
pub fn write_pem(path: &Path, der: &[u8]) {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    std::fs::write(path, pem).expect("write the PEM certificate");
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The revocation identifiers of a PEM certificate file.
pub fn ids_of(pem_file: &Path) -> pki::CertificateIds {
    pki::certificate_ids(&der_of(pem_file)).expect("a certificate")
}

/// A copy of the certificate in `cert` re-encoded by its holder (see
/// `test_support::x509::high_s_copy`), written to `out`: same subject, key, serial and
/// extensions, other bytes and fingerprint.
pub fn re_encoded_copy(cert: &Path, out: &Path) -> PathBuf {
    write_pem(out, &test_support::x509::high_s_copy(&der_of(cert)));
    out.to_path_buf()
}

/// What a certificate the test signs says.
pub struct Subject<'a> {
    /// The subject CN, if any.
    pub cn: Option<&'a str>,
    /// SAN URIs.
    pub uris: &'a [&'a str],
    /// SAN DNS names.
    pub dns: &'a [&'a str],
    /// The serial number (big-endian bytes).
    pub serial: &'a [u8],
}

/// Signs a client certificate for the key in `key_file` (PKCS#8 PEM) with the CA of `pki`
/// and writes it to `out`: a renewal for the same key, or a certificate of odd content.
pub fn sign_with_vault_ca(pki: &pki::PkiDir, key_file: &Path, subject: &Subject<'_>, out: &Path) {
    let read = |path: &Path| std::fs::read_to_string(path).expect("read a PEM file");
    let key = rcgen::KeyPair::from_pem(&read(key_file)).expect("the client key");
    let ca_key = rcgen::KeyPair::from_pem(&read(&pki.ca_key())).expect("the CA key");
    let issuer = rcgen::Issuer::from_ca_cert_pem(&read(&pki.ca_cert()), ca_key).expect("the CA");
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(cn) = subject.cn {
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
    }
    params.subject_alt_names = subject
        .uris
        .iter()
        .map(|uri| rcgen::SanType::URI((*uri).try_into().expect("a URI")))
        .chain(
            subject
                .dns
                .iter()
                .map(|name| rcgen::SanType::DnsName((*name).try_into().expect("a DNS name"))),
        )
        .collect();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(subject.serial));
    let cert = params
        .signed_by(&key, &issuer)
        .expect("sign the certificate");
    std::fs::write(out, cert.pem()).expect("write the certificate");
}

/// A new key pair written to `out` (PKCS#8 PEM, 0600).
pub fn new_key(out: &Path) -> PathBuf {
    use std::os::unix::fs::OpenOptionsExt;
    let key = rcgen::KeyPair::generate().expect("a key pair");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .expect("create the key file");
    std::io::Write::write_all(&mut file, key.serialize_pem().as_bytes()).expect("write the key");
    out.to_path_buf()
}

/// Connects to `addr` with rustls itself (trusting `ca`, presenting `cert` and `key`) and
/// reads: the error the client gets, such as the TLS alert the server sent
/// (`received fatal alert: CertificateRevoked`), or `Ok` if the server let it in.
pub async fn raw_tls_attempt(
    addr: std::net::SocketAddr,
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> Result<(), String> {
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(der_of(ca)))
        .expect("the CA certificate");
    let key = PrivateKeyDer::from_pem_file(key).expect("the client key");
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![CertificateDer::from(der_of(cert))], key)
        .expect("the client identity");
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let server = ServerName::try_from("localhost").expect("a server name");
    let mut tls = connector
        .connect(server, tcp)
        .await
        .map_err(|e| e.to_string())?;
    // TLS 1.3: the server checks the client's certificate after the client finished; its
    // answer (an alert, or its first HTTP/2 frames) is the next thing to read.
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut first = [0u8; 1];
    match tokio::time::timeout(std::time::Duration::from_secs(20), tls.read(&mut first)).await {
        Err(_) => Err("no answer within 20 s".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(0)) => Err("closed without an alert".into()),
        Ok(Ok(_)) => Ok(()),
    }
}
