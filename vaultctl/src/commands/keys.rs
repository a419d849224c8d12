//! `rotate`, `rewrap`, `min-decryption-version`, `lock`, `unlock`: the vault's keys over time.

use std::io::{IsTerminal, Write};
use std::time::Instant;

use vault::{RewrapOptions, RewrapProgress};

use crate::cli::{Cli, MinVersionArgs, RewrapArgs, UnlockArgs};
use crate::error::Error;
use crate::open::{open_vault, open_vault_with_keks};

pub fn rotate(cli: &Cli) -> Result<(), Error> {
    let epoch = open_vault(cli)?.rotate()?;
    println!("started epoch {epoch}; run `vaultctl rewrap` to move older secrets onto it");
    Ok(())
}

/// Upgrades a format 2 vault with every one of its KEKs (the pinned ones, or `--kek`).
pub fn upgrade(cli: &Cli) -> Result<(), Error> {
    let dir = crate::open::vault_dir(cli)?;
    let uris = if cli.keks.is_empty() {
        vault::legacy_kek_uris(&dir)?
    } else {
        cli.keks.clone()
    };
    let keks = vault::Kek::build_all(&dir, &uris)?;
    let report = vault::upgrade(&dir, keks)?;
    println!(
        "upgraded {}: vault.json is authenticated; {} keys got a version counter, {} epoch keys and {} stored versions were sealed again with the vault's tag",
        dir.display(),
        report.counters,
        report.epochs,
        report.tagged
    );
    Ok(())
}

pub fn rewrap(cli: &Cli, args: &RewrapArgs) -> Result<(), Error> {
    let vault = open_vault(cli)?;
    // One run wraps many DEKs: lease epoch wraps in large blocks (fewer config writes).
    vault.set_epoch_lease(4096);
    let options = RewrapOptions {
        dry_run: args.dry_run,
        batch: args.batch,
    };
    let mut bar = ProgressBar::new(std::io::stderr().is_terminal());
    let report = vault.rewrap(options, &mut |p| bar.show(p))?;
    bar.finish();
    let p = report.progress;
    if args.dry_run {
        println!(
            "dry run: {} of {} secret versions would be rewrapped",
            p.rewrapped, p.examined
        );
    } else {
        println!(
            "rewrapped {} of {} secret versions{}{}",
            p.rewrapped,
            p.examined,
            if report.resumed {
                " (resumed an interrupted run)"
            } else {
                ""
            },
            if report.reencrypted > 0 {
                format!(
                    "; {} format-v1 envelopes were re-encrypted",
                    report.reencrypted
                )
            } else {
                String::new()
            }
        );
    }
    if report.epochs_resealed > 0 {
        println!(
            "{} epoch keys wrapped under the current root KEKs",
            report.epochs_resealed
        );
    }
    Ok(())
}

pub fn min_decryption_version(cli: &Cli, args: &MinVersionArgs) -> Result<(), Error> {
    open_vault(cli)?.set_min_decryption_version(args.version)?;
    println!(
        "min_decryption_version is {}: older epoch keys are deleted",
        args.version
    );
    Ok(())
}

pub fn lock(cli: &Cli) -> Result<(), Error> {
    open_vault(cli)?.lock()?;
    println!("vault locked");
    Ok(())
}

pub fn unlock(cli: &Cli, args: &UnlockArgs) -> Result<(), Error> {
    let (vault, keks) = match unlock_passphrase(args)? {
        None => open_vault_with_keks(cli)?,
        Some(passphrase) => {
            let dir = crate::open::vault_dir(cli)?;
            let keks = vault::Kek::build_all_with(&dir, &cli.keks, Some(&passphrase))?;
            (vault::Vault::open(&dir, None, keks.clone())?, keks)
        }
    };
    vault.unlock(keks)?;
    println!("vault unlocked");
    Ok(())
}

/// The passphrase `unlock --passphrase` asks for, if it was given.
pub fn unlock_passphrase(args: &UnlockArgs) -> Result<Option<envelope::SecretBytes>, Error> {
    if !args.passphrase {
        return Ok(None);
    }
    crate::io::read_secret(None, "Passphrase: ", kek_providers::MAX_PASSPHRASE_LEN).map(Some)
}

/// A one-line progress bar with rate and ETA, drawn only on a terminal.
struct ProgressBar {
    on: bool,
    started: Instant,
    drawn: bool,
}

impl ProgressBar {
    fn new(on: bool) -> Self {
        ProgressBar {
            on,
            started: Instant::now(),
            drawn: false,
        }
    }

    fn show(&mut self, p: &RewrapProgress) {
        if !self.on {
            return;
        }
        let total = p.total.max(p.examined).max(1);
        let done = p.examined as f64 / total as f64;
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = p.examined as f64 / secs;
        let eta = if rate > 0.0 {
            (total - p.examined) as f64 / rate
        } else {
            0.0
        };
        let width = 30;
        let filled = (done * width as f64) as usize;
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\r[{}{}] {:>3.0}% {}/{} {:.0}/s ETA {:.0}s ",
            "#".repeat(filled),
            ".".repeat(width - filled),
            done * 100.0,
            p.examined,
            total,
            rate,
            eta
        );
        let _ = err.flush();
        self.drawn = true;
    }

    fn finish(&self) {
        if self.drawn {
            eprintln!();
        }
    }
}
