//! Where a PostgreSQL store is: `store.json` in the vault directory names the database, and
//! how to authenticate and encrypt the connection. It never holds the password itself: a URL
//! ends up in logs, shell histories and process lists, so a password in it is refused.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres::config::{Host, SslMode};

use crate::Error;

/// The file, in the vault directory, that says where a PostgreSQL store is.
pub const STORE_LOCATION_FILE: &str = "store.json";
/// The environment variable a password may come from when no `password_file` is set.
pub const PASSWORD_ENV: &str = "VAULT_STORE_PASSWORD";
/// Connections a store keeps open at most, unless `store.json` says otherwise.
const DEFAULT_POOL_SIZE: usize = 16;
/// How stale a replica's cache may be, unless `store.json` says otherwise: a change made
/// through one replica is served by the others at most this much later.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(5);
/// How long the leader lease lasts unless renewed.
const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(15);

/// The contents of `store.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreLocation {
    /// `postgres://USER@HOST:PORT/DATABASE` (options such as `connect_timeout` allowed), with
    /// no password.
    pub url: String,
    /// A file holding the password (its first line); else [`PASSWORD_ENV`], else none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// PEM certificates of the CA that signed the database server's certificate: the
    /// connection is TLS, verified against them. Required unless the host is loopback or a
    /// Unix socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Connections kept open at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<usize>,
    /// How stale, in milliseconds, a cached value may be served (default 5,000): the cache
    /// is bypassed while the change log was last read longer ago than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_staleness_ms: Option<u64>,
    /// How long, in milliseconds, the leader lease lasts unless renewed (default 15,000): a
    /// replica takes over the singleton jobs at most this long (and a quarter of it, its
    /// renewal interval) after their leader died.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ttl_ms: Option<u64>,
    /// Whether to listen for NOTIFYs of other replicas' writes (default true). Without, the
    /// change log is only polled (twice a second), which is still within the bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<bool>,
}

/// A location checked and ready to connect with.
pub(super) struct Connector {
    pub(super) config: tokio_postgres::Config,
    pub(super) tls: Option<rustls::ClientConfig>,
    pub(super) pool_size: usize,
    pub(super) max_staleness: Duration,
    pub(super) notify: bool,
    pub(super) lease_ttl: Duration,
    /// The URL, for messages (it holds no password).
    pub(super) label: PathBuf,
}

impl StoreLocation {
    /// A location for `url`, checked as [`StoreLocation::read`] checks a file.
    pub fn new(url: &str) -> Result<Self, Error> {
        let location = StoreLocation {
            url: url.to_owned(),
            password_file: None,
            ca_file: None,
            pool_size: None,
            max_staleness_ms: None,
            lease_ttl_ms: None,
            notify: None,
        };
        location.parse_url()?;
        Ok(location)
    }

    /// Reads `store.json` of the vault in `dir`.
    pub fn read(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(STORE_LOCATION_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            invalid(
                &path,
                format!(
                    "cannot read it ({e}): a PostgreSQL vault needs it; write it with `vaultctl init --store postgres --store-url URL`"
                ),
            )
        })?;
        serde_json::from_str(&text).map_err(|e| invalid(&path, format!("it is not valid: {e}")))
    }

    /// Writes it into the vault directory `dir` (0600, replacing none: init writes it once).
    pub fn write(&self, dir: &Path) -> Result<(), Error> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = dir.join(STORE_LOCATION_FILE);
        let text = serde_json::to_string_pretty(self).map_err(|e| invalid(&path, e.to_string()))?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(Error::io(format!("creating {}", path.display())))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(Error::io(format!("writing {}", path.display())))
    }

    fn parse_url(&self) -> Result<tokio_postgres::Config, Error> {
        let path = Path::new(STORE_LOCATION_FILE);
        if !self.url.starts_with("postgres://") && !self.url.starts_with("postgresql://") {
            return Err(invalid(
                path,
                "the store URL must start with postgres:// (postgres://USER@HOST:PORT/DATABASE)"
                    .into(),
            ));
        }
        // The parser's own message may quote the URL: say only that it did not parse.
        let config = tokio_postgres::Config::from_str(&self.url).map_err(|_| {
            invalid(
                path,
                "the store URL does not parse: write it as postgres://USER@HOST:PORT/DATABASE"
                    .into(),
            )
        })?;
        if config.get_password().is_some() {
            return Err(invalid(
                path,
                format!(
                    "the store URL holds a password: remove it, and put it in a file named by password_file (or in {PASSWORD_ENV})"
                ),
            ));
        }
        if config.get_user().is_none() || config.get_dbname().is_none() {
            return Err(invalid(
                path,
                "the store URL must name a user and a database: postgres://USER@HOST:PORT/DATABASE"
                    .into(),
            ));
        }
        Ok(config)
    }

    /// Checks the location and reads what it names (password, CA), ready to connect.
    pub(super) fn connector(&self) -> Result<Connector, Error> {
        let mut config = self.parse_url()?;
        let label = PathBuf::from(&self.url);
        if let Some(password) = self.password()? {
            config.password(password);
        }
        let tls = match &self.ca_file {
            Some(ca) => {
                config.ssl_mode(SslMode::Require);
                Some(client_tls(ca)?)
            }
            None => {
                if let Some(host) = config.get_hosts().iter().find(|h| !is_local(h)) {
                    return Err(invalid(
                        Path::new(STORE_LOCATION_FILE),
                        format!(
                            "the database host {} is not on this machine, and no ca_file is set: connections to it would not be encrypted; set ca_file to the CA of the server's certificate (`vaultctl init --store-ca FILE`)",
                            describe(host)
                        ),
                    ));
                }
                config.ssl_mode(SslMode::Disable);
                None
            }
        };
        Ok(Connector {
            config,
            tls,
            pool_size: self.pool_size.unwrap_or(DEFAULT_POOL_SIZE).clamp(1, 1024),
            max_staleness: self
                .max_staleness_ms
                .map_or(DEFAULT_MAX_STALENESS, Duration::from_millis),
            notify: self.notify.unwrap_or(true),
            lease_ttl: self
                .lease_ttl_ms
                .map_or(DEFAULT_LEASE_TTL, Duration::from_millis)
                .max(Duration::from_millis(100)),
            label,
        })
    }

    fn password(&self) -> Result<Option<Vec<u8>>, Error> {
        if let Some(file) = &self.password_file {
            let text = std::fs::read(file).map_err(|e| {
                invalid(
                    file,
                    format!("cannot read the store's password file ({e}): fix password_file in {STORE_LOCATION_FILE}"),
                )
            })?;
            let line = text.split(|b| *b == b'\n').next().unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            return Ok(Some(line.to_vec()));
        }
        Ok(std::env::var_os(PASSWORD_ENV).map(|p| p.into_encoded_bytes()))
    }
}

fn client_tls(ca: &Path) -> Result<rustls::ClientConfig, Error> {
    let certs = CertificateDer::pem_file_iter(ca)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(ca, format!("cannot read the CA certificates ({e})")))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| invalid(ca, format!("a CA certificate is not usable ({e})")))?;
    }
    if roots.is_empty() {
        return Err(invalid(ca, "it holds no PEM certificate".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(ca, e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn is_local(host: &Host) -> bool {
    match host {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            name == "localhost" || IpAddr::from_str(name).is_ok_and(|ip| ip.is_loopback())
        }
    }
}

fn describe(host: &Host) -> String {
    match host {
        Host::Tcp(name) => name.clone(),
        Host::Unix(path) => path.display().to_string(),
    }
}

fn invalid(path: &Path, reason: String) -> Error {
    Error::StoreLocation {
        path: path.to_path_buf(),
        reason,
    }
}
