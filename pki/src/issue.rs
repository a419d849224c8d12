//! Issuing client certificates with the directory's CA.

use std::path::PathBuf;

use rcgen::{Issuer, KeyPair};
use zeroize::Zeroizing;

use crate::certs::{client_params, server_params};
use crate::dir::PkiDir;
use crate::error::Error;
use crate::files::{check_private, private_dir, read, replace, write_new};
use crate::principal::{fingerprint, validate_principal};

/// A client certificate just issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCert {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PKCS#8 PEM, mode 0600).
    pub key: PathBuf,
    /// Lowercase hex SHA-256 of the certificate's DER (what `revoke` takes).
    pub fingerprint: String,
}

const OVERWRITE_HINT: &str = "a certificate for this principal was issued before: revoke it \
     with `vaultctl pki revoke <cert path>` and delete both files to issue a new one";

impl PkiDir {
    /// Issues a client certificate for `principal` (1..=64 of `[A-Za-z0-9._@+-]`; 1 year;
    /// clientAuth; CN = principal; SAN URI `urn:vault:principal:<principal>`) into
    /// `clients/<principal>.pem` and `.key` (0600). Refuses to overwrite. Returns the paths
    /// and the SHA-256 fingerprint (lowercase hex of the DER).
    pub fn issue_client(&self, principal: &str) -> Result<IssuedCert, Error> {
        validate_principal(principal)?;
        let cert_path = self.client_cert(principal);
        let key_path = self.client_key(principal);
        for path in [&cert_path, &key_path] {
            if path.exists() {
                return Err(Error::AlreadyExists {
                    path: path.clone(),
                    hint: OVERWRITE_HINT,
                });
            }
        }

        let issuer = self.ca_issuer()?;
        let generate = |what| move |source| Error::Generate { what, source };
        let key = KeyPair::generate().map_err(generate("the client key"))?;
        let cert = client_params(principal)?
            .signed_by(&key, &issuer)
            .map_err(generate("the client certificate"))?;

        private_dir(&self.clients_dir())?;
        // Key first: a certificate file never exists without its key.
        write_new(
            &key_path,
            Zeroizing::new(key.serialize_pem()).as_bytes(),
            OVERWRITE_HINT,
        )?;
        write_new(&cert_path, cert.pem().as_bytes(), OVERWRITE_HINT)?;
        Ok(IssuedCert {
            cert: cert_path,
            key: key_path,
            fingerprint: fingerprint(cert.der()),
        })
    }

    /// Issues a new server certificate for `hosts` (DNS names and IPs; 1 year; serverAuth)
    /// with a new key, signed by the directory's CA, and replaces `server.key` and
    /// `server.pem` with them: how the server certificate is renewed or given other names.
    /// vaultd loads the pair at start and on SIGHUP; between the two replacements the pair
    /// does not match, and a reload then keeps the certificate it has.
    pub fn renew_server(&self, hosts: &[String]) -> Result<(), Error> {
        let params = server_params(hosts)?;
        let issuer = self.ca_issuer()?;
        let generate = |what| move |source| Error::Generate { what, source };
        let key = KeyPair::generate().map_err(generate("the server key"))?;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(generate("the server certificate"))?;
        replace(
            &self.server_key(),
            Zeroizing::new(key.serialize_pem()).as_bytes(),
        )?;
        replace(&self.server_cert(), cert.pem().as_bytes())
    }

    /// The directory's CA as an issuer: its certificate and its key.
    fn ca_issuer(&self) -> Result<Issuer<'static, KeyPair>, Error> {
        let ca_key = self.load_ca_key()?;
        let ca_pem = read(&self.ca_cert())?;
        let ca_pem = std::str::from_utf8(&ca_pem).map_err(|_| Error::BadCertificate {
            from: Some(self.ca_cert()),
            reason: "not a PEM text file".into(),
        })?;
        Issuer::from_ca_cert_pem(ca_pem, ca_key).map_err(|e| Error::BadCertificate {
            from: Some(self.ca_cert()),
            reason: e.to_string(),
        })
    }

    /// The CA key, refused if other users can read it.
    fn load_ca_key(&self) -> Result<KeyPair, Error> {
        let path = self.ca_key();
        if !path.exists() {
            return Err(Error::NoCa { path });
        }
        check_private(&path)?;
        let bytes = Zeroizing::new(read(&path)?);
        let pem = std::str::from_utf8(&bytes).map_err(|_| Error::BadKey {
            path: path.clone(),
            reason: "not PEM text".into(),
        })?;
        // rcgen's PEM errors can quote the input: only the kind of failure is kept.
        KeyPair::from_pem(pem).map_err(|e| {
            let reason = match e {
                rcgen::Error::PemError(_) => "not a PEM file",
                _ => "not a PKCS#8 ECDSA P-256 (or other supported) private key",
            };
            Error::BadKey {
                path,
                reason: reason.into(),
            }
        })
    }
}
