//! `vaultd --dev`: a development vault in one directory, made on first start and reused
//! after: a CA, a server certificate for loopback, an `admin` client certificate, a file KEK
//! and the SQLite store; the admin may do everything: every data operation, `admin` (key
//! management) and `audit` (the audit log).

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use kek_providers::KekEnv;
use vault::{Kek, StoreKind, Vault};

use crate::config::Config;
use crate::server::StartError;

/// The principal of the development client certificate.
pub const DEV_ADMIN: &str = "admin";

/// Where the parts of a development vault live.
#[derive(Debug, Clone)]
pub struct DevDir {
    /// The directory.
    pub root: PathBuf,
}

impl DevDir {
    /// TLS material (pki layout).
    pub fn tls(&self) -> PathBuf {
        self.root.join("tls")
    }

    /// The vault directory.
    pub fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The file KEK, kept apart from the data.
    pub fn kek(&self) -> PathBuf {
        self.root.join("keys").join("kek.key")
    }

    /// Creates what is missing; returns the configuration to serve it with.
    pub fn prepare(&self, base: Config) -> Result<Config, StartError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(|e| StartError::Serve(format!("creating {}: {e}", self.root.display())))?;
        let pki = pki::PkiDir::new(self.tls());
        if !pki.ca_cert().exists() {
            pki.create(&["localhost".into(), "127.0.0.1".into(), "::1".into()])?;
            pki.issue_client(DEV_ADMIN)?;
        }
        if Vault::read_config(&self.data()).is_err() {
            let uri = format!("file:{}", self.kek().display());
            let env = KekEnv {
                vault_dir: &self.data(),
            };
            let built = kek_providers::create(&uri, &env)?;
            Vault::init(
                &self.data(),
                StoreKind::Sqlite,
                vec![Kek {
                    uri: built.uri,
                    provider: built.provider,
                }],
            )?;
        }
        let mut config = base;
        config.vault_dir = self.data();
        config.tls.dir = self.tls();
        config.audit_log = PathBuf::new();
        if config.acl.is_empty() {
            config.acl = vec![crate::config::AclRule::allow_all(DEV_ADMIN)];
        }
        Ok(config)
    }

    /// The shell lines that point vaultctl at this daemon.
    pub fn client_env(&self, addr: std::net::SocketAddr) -> String {
        let pki = pki::PkiDir::new(self.tls());
        let show = |p: &Path| p.display().to_string();
        format!(
            "export VAULTCTL_ADDR=https://{addr}\nexport VAULTCTL_CACERT={}\nexport VAULTCTL_CLIENT_CERT={}\nexport VAULTCTL_CLIENT_KEY={}\n",
            show(&pki.ca_cert()),
            show(&pki.client_cert(DEV_ADMIN)),
            show(&pki.client_key(DEV_ADMIN)),
        )
    }
}
