//! `scan PATH...`: plaintext secrets and `vault://` references to missing keys in
//! configuration files (the scanning itself is the `config-scan` crate).
#![deny(missing_docs)]

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Args;
use config_scan::{Allowlist, Lookup, Options, Severity, VaultIndex, VaultRef};
use vault::StoreKind;

use crate::cli::{Cli, FormatArgs};
use crate::error::Error;

/// Arguments of `scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Files and directories to scan (TOML, YAML, JSON, INI and .env files inside them).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Output format: `text` prints `path:line: severity kind key=... value=... fp=...`
    /// lines and a summary; `json` one document of schema vault-scan/1, for CI.
    #[command(flatten)]
    pub format: FormatArgs,
    /// Accepted findings, by fingerprint or `GLOB KIND` (default: `.vault-scan-allow` in
    /// each scanned directory, if present).
    #[arg(long, value_name = "FILE")]
    pub allowlist: Option<PathBuf>,
    /// Exit with status 1 when a blocking finding is not allowlisted.
    #[arg(long)]
    pub strict: bool,
    /// Skip files larger than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = config_scan::DEFAULT_MAX_FILE_SIZE)]
    pub max_file_size: u64,
    /// Do not check `vault://` references against the vault.
    #[arg(long)]
    pub no_vault: bool,
}

/// Runs `scan`.
pub fn run(cli: &Cli, args: &ScanArgs) -> Result<(), Error> {
    let allowlist = args
        .allowlist
        .as_deref()
        .map(Allowlist::read)
        .transpose()
        .map_err(scan_error)?;
    let options = Options {
        max_file_size: args.max_file_size,
        allowlist,
    };
    let index = open_index(cli, args)?;
    let report = config_scan::scan(
        &args.paths,
        &options,
        index.as_ref().map(|i| i as &dyn VaultIndex),
    )
    .map_err(scan_error)?;
    if args.format.json() {
        println!("{:#}", report.json());
    } else {
        print!("{}", report.human());
        eprint!("{}", report.human_notes());
        if report.unchecked_refs > 0 {
            eprintln!(
                "note: {} vault:// references not checked: no vault (give --vault DIR)",
                report.unchecked_refs
            );
        }
    }
    let blocking = report.count(Severity::Blocking);
    if args.strict && blocking > 0 {
        return Err(Error::Failed(format!(
            "{blocking} blocking findings (--strict); revoke and remove them, or accept them \
             in an allowlist"
        )));
    }
    Ok(())
}

/// A missing path or a malformed allowlist is the caller's to fix (exit 2).
fn scan_error(e: config_scan::Error) -> Error {
    if e.is_usage() {
        Error::Usage(e.to_string())
    } else {
        Error::Scan(e)
    }
}

/// The vault's names, to check references against: `--vault`/`VAULTCTL_DIR` must be a vault;
/// the default directory is used when it holds one. Only the store's name list is read, so no
/// KEK is needed and nothing is decrypted. Remote mode and in-memory vaults are not checked.
fn open_index(cli: &Cli, args: &ScanArgs) -> Result<Option<StoreIndex>, Error> {
    if args.no_vault || cli.addr.is_some() {
        return Ok(None);
    }
    let explicit = cli.vault.is_some();
    let dir = match crate::open::vault_dir(cli) {
        Ok(dir) => dir,
        Err(_) if !explicit => return Ok(None),
        Err(e) => return Err(e),
    };
    if !dir.join(vault::CONFIG_FILE).is_file() {
        if explicit {
            return Err(Error::Usage(format!(
                "{} is not a vault (no {}): give a vault directory, or --no-vault",
                dir.display(),
                vault::CONFIG_FILE
            )));
        }
        return Ok(None);
    }
    let config = vault::Vault::read_config(&dir)?;
    let kind: StoreKind = config.store.parse()?;
    if kind == StoreKind::Memory {
        return Ok(None);
    }
    let store = vault::open_store(kind, &dir)?;
    let mut versions = HashMap::new();
    let mut after = None;
    loop {
        let page = store.list(None, after.as_ref(), 10_000)?;
        after = page.last().map(|info| vault::ListPosition {
            scope: info.scope.clone(),
            key: info.key.clone(),
        });
        let full = page.len() == 10_000;
        versions.extend(
            page.into_iter()
                .map(|info| ((info.scope, info.key), (info.version, info.versions))),
        );
        if !full {
            return Ok(Some(StoreIndex { versions }));
        }
    }
}

/// A vault store's names, each with its latest version and how many versions it keeps.
struct StoreIndex {
    versions: HashMap<(String, String), (u64, u64)>,
}

impl VaultIndex for StoreIndex {
    fn lookup(&self, r: &VaultRef) -> Lookup {
        let Some(&(latest, kept)) = self.versions.get(&(r.scope.clone(), r.key.clone())) else {
            return Lookup::MissingKey;
        };
        let Some(version) = r.version else {
            return Lookup::Found;
        };
        // A key keeps every version since it was last (re)created: the newest `kept` ones.
        if version <= latest && version > latest.saturating_sub(kept) {
            Lookup::Found
        } else {
            Lookup::MissingVersion { latest }
        }
    }
}
