//! The PKI directory: where its files are, and creating the CA and server certificate.

use std::path::PathBuf;

use rcgen::{Issuer, KeyPair};
use zeroize::Zeroizing;

use crate::certs::{ca_params, server_params};
use crate::error::Error;
use crate::files::{private_dir, replace, write_new};

/// The first lines of a new revocation list.
pub(crate) const REVOKED_HEADER: &str = "\
# Revoked client certificates, one entry per line (add with `vaultctl pki revoke`):
#   spki-sha256:<sha256 of the SubjectPublicKeyInfo DER>   every certificate for that key
#   issuer-serial:<sha256 of the issuer Name DER>:<serial>  one certificate, any encoding
#   cert-sha256:<sha256 of the DER> (or the 64 hex alone)   one encoding of one certificate
# Hex is lower case; the serial has no leading zeros. vaultd rereads this file while it runs.
";

/// Where a vault's TLS material lives: `<dir>/ca.pem`, `ca.key`, `server.pem`, `server.key`,
/// `revoked.txt`, `clients/<principal>.pem` + `.key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiDir {
    /// The directory.
    pub dir: PathBuf,
}

impl PkiDir {
    /// A PKI directory at `dir` (nothing is read or created yet).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        PkiDir { dir: dir.into() }
    }

    /// Creates a CA (ECDSA P-256, 10 years, CN "vault dev CA"), a server certificate for
    /// `hosts` (DNS names and IPs, e.g. `["localhost", "127.0.0.1", "::1"]`; 1 year;
    /// serverAuth) signed by it, and an empty `revoked.txt`; files 0600, directory 0700.
    /// Refuses if `ca.key` exists.
    pub fn create(&self, hosts: &[String]) -> Result<(), Error> {
        let ca_key_path = self.ca_key();
        if ca_key_path.exists() {
            return Err(Error::AlreadyExists {
                path: ca_key_path,
                hint: "this directory has a CA already: issue client certificates with \
                       `vaultctl pki issue`, or pick another directory",
            });
        }
        let server = server_params(hosts)?;
        let generate = |what| move |source| Error::Generate { what, source };

        let ca = ca_params()?;
        let ca_key = KeyPair::generate().map_err(generate("the CA key"))?;
        let ca_cert = ca
            .self_signed(&ca_key)
            .map_err(generate("the CA certificate"))?;
        let issuer = Issuer::from_params(&ca, &ca_key);
        let server_key = KeyPair::generate().map_err(generate("the server key"))?;
        let server_cert = server
            .signed_by(&server_key, &issuer)
            .map_err(generate("the server certificate"))?;

        private_dir(&self.dir)?;
        private_dir(&self.clients_dir())?;
        // The CA key goes first and never over an existing one: of two racing creates, one wins.
        write_new(
            &ca_key_path,
            Zeroizing::new(ca_key.serialize_pem()).as_bytes(),
            "another `create` ran at the same time; use the CA it made",
        )?;
        replace(&self.ca_cert(), ca_cert.pem().as_bytes())?;
        replace(
            &self.server_key(),
            Zeroizing::new(server_key.serialize_pem()).as_bytes(),
        )?;
        replace(&self.server_cert(), server_cert.pem().as_bytes())?;
        replace(&self.revoked(), REVOKED_HEADER.as_bytes())
    }

    /// The CA certificate (PEM): the trust anchor for both server and clients.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The CA's private key (PKCS#8 PEM).
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }

    /// The server certificate (PEM).
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    /// The server's private key (PKCS#8 PEM).
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }

    /// The revocation list: keys, serials and fingerprints of refused client certificates.
    pub fn revoked(&self) -> PathBuf {
        self.dir.join("revoked.txt")
    }

    /// Where client certificates and keys go.
    pub fn clients_dir(&self) -> PathBuf {
        self.dir.join("clients")
    }

    /// A client's certificate (PEM).
    pub fn client_cert(&self, principal: &str) -> PathBuf {
        self.clients_dir().join(format!("{principal}.pem"))
    }

    /// A client's private key (PKCS#8 PEM).
    pub fn client_key(&self, principal: &str) -> PathBuf {
        self.clients_dir().join(format!("{principal}.key"))
    }
}
