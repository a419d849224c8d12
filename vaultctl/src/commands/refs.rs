//! What `exec` and `resolve` share: the resolver's policy from flags, and the vault that
//! `vault://` references read (the local directory, or vaultd with --addr), opened only
//! when a reference needs it.
#![deny(missing_docs)]

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use envelope::SecretBytes;
use proto::v1 as pb;
use secret_refs::{Policy, SecretRef, VaultSource};
use vault::Scope;
use zeroize::Zeroize;

use crate::cli::Cli;
use crate::error::Error;
use crate::remote::{Client, Remote};

/// The resolver's policy: nothing but `vault://` is allowed unless named here.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Let `env://NAME` read this variable (repeatable; `PREFIX_*` allows the variables
    /// starting with `PREFIX_`: a prefix ends at an underscore).
    #[arg(long = "allow-env", value_name = "NAME")]
    pub allow_env: Vec<String>,
    /// Let `file://` read files under this directory (repeatable; no symbolic links on the
    /// way, files and every directory on their path owned by you or root and not
    /// group/world writable).
    #[arg(long = "trusted-dir", value_name = "DIR")]
    pub trusted_dirs: Vec<PathBuf>,
    /// Let `exec://` run this program, by absolute path (repeatable).
    #[arg(long = "allow-exec", value_name = "PROGRAM")]
    pub allow_exec: Vec<PathBuf>,
    /// How long an `exec://` program may run before it is killed: `10s`, `500ms` or seconds.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub exec_timeout: Duration,
}

impl PolicyArgs {
    /// The policy; relative trusted directories are taken from the current directory. A
    /// flag the policy cannot take (`--allow-env 'AWS*'`) is a usage error.
    pub fn policy(&self) -> Result<Policy, Error> {
        let trusted_dirs = self
            .trusted_dirs
            .iter()
            .map(|dir| {
                std::path::absolute(dir).map_err(Error::io(format!("resolving {}", dir.display())))
            })
            .collect::<Result<_, _>>()?;
        let policy = Policy {
            allow_env: self.allow_env.clone(),
            trusted_dirs,
            allow_exec: self.allow_exec.clone(),
            exec_timeout: self.exec_timeout,
            ..Policy::default()
        };
        policy.validate().map_err(|e| Error::Usage(e.to_string()))?;
        Ok(policy)
    }
}

pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit_ms) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1)
    } else {
        (text.strip_suffix('s').unwrap_or(text), 1000)
    };
    let n: u64 = number.parse().map_err(|_| {
        format!("{text:?} is not a duration: write 10s, 500ms or a number of seconds")
    })?;
    let ms = n
        .checked_mul(unit_ms)
        .filter(|ms| *ms > 0)
        .ok_or("the timeout must be more than 0 and fit in u64 ms")?;
    Ok(Duration::from_millis(ms))
}

/// The vault `vault://` references read from, if any reference needs one.
// One per command: the size of the larger variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Source {
    /// A vault directory opened here.
    Local(vault::Vault),
    /// vaultd (remote mode).
    Remote(Client),
}

impl Source {
    /// Opens the vault (or connects to vaultd with --addr) when one of `refs` is `vault://`.
    pub fn for_refs<'r>(
        cli: &Cli,
        mut refs: impl Iterator<Item = &'r SecretRef>,
    ) -> Result<Option<Self>, Error> {
        if !refs.any(|r| matches!(r, SecretRef::Vault { .. })) {
            return Ok(None);
        }
        if let Some(remote) = Remote::from_cli(cli)? {
            return Ok(Some(Source::Remote(Client::connect(&remote)?)));
        }
        Ok(Some(Source::Local(crate::open::open_vault(cli)?)))
    }
}

impl VaultSource for Source {
    fn read_secret(
        &self,
        scope: &Scope,
        key: &str,
        version: Option<u64>,
    ) -> Result<SecretBytes, Box<dyn std::error::Error + Send + Sync>> {
        match self {
            Source::Local(vault) => vault.read_secret(scope, key, version),
            Source::Remote(client) => {
                let request = pb::GetRequest {
                    scope: scope.to_string(),
                    key: key.to_owned(),
                    version,
                };
                let mut value = client
                    .call_idempotent(|mut api| {
                        let request = request.clone();
                        async move { api.get(request).await }
                    })?
                    .value;
                let secret = SecretBytes::from_slice(&value);
                value.zeroize();
                Ok(secret?)
            }
        }
    }
}

/// The environment variables the vault's KEKs read secrets from (`passphrase:env=NAME`,
/// `pin-source=env:NAME`, `owner-auth=env:NAME`), from --kek and the vault's pinned URIs.
/// `exec` keeps them from the command it runs: a vault's root passphrase or a token PIN is
/// not the command's business.
pub fn kek_variables(cli: &Cli) -> Vec<String> {
    let mut uris = cli.keks.clone();
    if let Ok(dir) = crate::open::vault_dir(cli)
        && let Ok(config) = vault::Vault::read_config(&dir)
    {
        uris.extend(config.kek_uris());
    }
    let mut names = Vec::new();
    for uri in &uris {
        for marker in ["env=", "env:"] {
            for (at, _) in uri.match_indices(marker) {
                let name: String = uri[at + marker.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    names
}
