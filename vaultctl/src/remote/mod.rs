//! Remote mode: the same commands against a `vaultd` over mutual TLS, chosen by `--addr` /
//! `VAULTCTL_ADDR`. The client certificate decides who we are; the daemon's gates decide what
//! we may do.

mod client;
mod commands;
mod options;

pub use client::Client;
pub use commands::run;
pub use options::ClientOptions;

use std::path::PathBuf;

use crate::cli::Cli;
use crate::error::Error;

/// Where the daemon is and how to prove who we are.
#[derive(Debug, Clone)]
pub struct Remote {
    /// `https://host:port`.
    pub addr: String,
    /// The CA that signed the daemon's certificate.
    pub ca: PathBuf,
    /// Our client certificate and key.
    pub cert: PathBuf,
    /// Our client key.
    pub key: PathBuf,
    /// Timeouts and retries.
    pub options: ClientOptions,
}

impl Remote {
    /// The remote settings, if `--addr` is given: certificate paths from flags or env, else
    /// from `--dev-dir` (a `vaultd --dev` directory, as the admin).
    pub fn from_cli(cli: &Cli) -> Result<Option<Self>, Error> {
        let Some(addr) = &cli.addr else {
            return Ok(None);
        };
        let dev_tls = cli.dev_dir.as_ref().map(|d| d.join("tls"));
        let pick = |given: &Option<PathBuf>, dev_file: &str, flag: &str| {
            given
                .clone()
                .or_else(|| dev_tls.as_ref().map(|t| t.join(dev_file)))
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "remote mode needs {flag} (or --dev-dir DIR of a `vaultd --dev` directory)"
                    ))
                })
        };
        Ok(Some(Remote {
            addr: addr.clone(),
            ca: pick(&cli.cacert, "ca.pem", "--cacert / VAULTCTL_CACERT")?,
            cert: pick(
                &cli.client_cert,
                "clients/admin.pem",
                "--client-cert / VAULTCTL_CLIENT_CERT",
            )?,
            key: pick(
                &cli.client_key,
                "clients/admin.key",
                "--client-key / VAULTCTL_CLIENT_KEY",
            )?,
            options: cli.client.clone(),
        }))
    }
}
