//! `vaultctl backup` and `vaultctl restore`: a consistent copy of the vault directory, made
//! while vaultd serves it, and restoring one into a new directory (never over a vault).
//! Both work on files, so they run on the vault's host (also when --addr is set).
#![deny(missing_docs)]

use std::path::PathBuf;

use clap::Args;
use vault::Kek;

use crate::cli::Cli;
use crate::error::Error;
use crate::open::vault_dir;

/// Arguments of `backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The backup directory to create (or an empty one); made 0700.
    #[arg(value_name = "OUT")]
    pub out: PathBuf,
    /// The audit log whose head goes into the backup (default: `<vault dir>/audit.jsonl`,
    /// vaultd's default).
    #[arg(long, value_name = "PATH")]
    pub audit_log: Option<PathBuf>,
}

/// Arguments of `restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup directory (made by `vaultctl backup`). It is restored into the vault
    /// directory (--vault / VAULTCTL_DIR), which must not exist or be empty.
    #[arg(value_name = "BACKUP")]
    pub backup: PathBuf,
}

/// Runs `backup`.
pub fn backup(cli: &Cli, args: &BackupArgs) -> Result<(), Error> {
    let dir = vault_dir(cli)?;
    let audit_log = args
        .audit_log
        .clone()
        .unwrap_or_else(|| dir.join("audit.jsonl"));
    let report = vault::backup::backup(&dir, &audit_log, &args.out)?;
    let head = report.manifest.audit_head_seq.map_or_else(
        || "no audit head".to_owned(),
        |seq| format!("audit head at seq {seq}"),
    );
    println!(
        "backed up vault {} into {}: {} files, {head}",
        report.manifest.vault_id,
        report.dir.display(),
        report.manifest.files.len() + 1
    );
    Ok(())
}

/// Runs `restore`: the KEKs are those of `--kek`, else the ones the backup's `vault.json`
/// pins (built with the backup directory as their vault directory, where a passphrase KEK's
/// parameters are).
pub fn restore(cli: &Cli, args: &RestoreArgs) -> Result<(), Error> {
    let target = vault_dir(cli)?;
    let keks = Kek::build_all(&args.backup, &cli.keks)?;
    let report = vault::backup::restore(&args.backup, &target, keks)?;
    for (id, why) in &report.keks_unreachable {
        eprintln!("warn: KEK {id} could not be reached to check it: {why}");
    }
    println!(
        "restored vault {} into {}: {} secrets; KEKs checked: {}; new audit log {}{}",
        report.vault_id,
        report.dir.display(),
        report.secrets,
        report.keks_ok.join(", "),
        report.audit_log.display(),
        report
            .audit_head_seq
            .map_or_else(String::new, |seq| format!(
                " (its first record names the old log's head, seq {seq})"
            )),
    );
    Ok(())
}
