//! Finding the vault directory and opening the vault with its KEKs.

use std::path::PathBuf;
use std::time::Duration;

use vault::{Kek, Vault};

use crate::cli::Cli;
use crate::error::Error;

/// The vault directory: `--vault`, else `$VAULTCTL_DIR`, else `$XDG_DATA_HOME/vault` or
/// `~/.local/share/vault`.
pub fn vault_dir(cli: &Cli) -> Result<PathBuf, Error> {
    if let Some(dir) = &cli.vault {
        return Ok(dir.clone());
    }
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    data_home.map(|d| d.join("vault")).ok_or_else(|| {
        Error::Usage("no vault directory: pass --vault DIR or set VAULTCTL_DIR".into())
    })
}

/// Opens the vault with the KEKs given by `--kek`, else with the ones pinned at init.
///
/// A pinned KEK that cannot be built (an unset passphrase variable, a missing key file, an
/// unplugged token) is reported and skipped as long as another one remains: any one KEK
/// (or m of a threshold group) opens the vault.
pub fn open_vault(cli: &Cli) -> Result<Vault, Error> {
    Ok(open_vault_with_keks(cli)?.0)
}

/// Opens the vault for a command that only reads: with the KEKs given by `--kek`, else with
/// as few of the pinned ones as open it (see `Kek::build_for_reading`: with a token and a
/// recovery KEK, only the token is asked).
pub fn open_vault_for_reading(cli: &Cli) -> Result<Vault, Error> {
    if !cli.keks.is_empty() {
        return open_vault(cli);
    }
    let dir = vault_dir(cli)?;
    // Read once: the KEKs are chosen from the same bytes the vault then verifies.
    let config = Vault::read_config(&dir)?;
    let keks = Kek::build_for_reading(&dir, &config)?;
    let mut vault = Vault::open_with_config(&dir, config, None, keks)?;
    vault.set_cache_ttl(Duration::from_secs(cli.cache_ttl));
    Ok(vault)
}

/// Whether `error` says that no KEK the vault was opened with has a stanza in an envelope:
/// one wrapped before that KEK was pinned, which the other pinned KEKs open.
pub fn needs_every_kek(error: &vault::Error) -> bool {
    matches!(
        error,
        vault::Error::Envelope(envelope::Error::NoUsableKek { .. })
    )
}

/// Like [`open_vault`], also returning the KEKs it was opened with (for `unlock`).
pub fn open_vault_with_keks(cli: &Cli) -> Result<(Vault, Vec<Kek>), Error> {
    let dir = vault_dir(cli)?;
    let keks = Kek::build_all(&dir, &cli.keks)?;
    let mut vault = Vault::open(&dir, None, keks.clone())?;
    vault.set_cache_ttl(Duration::from_secs(cli.cache_ttl));
    Ok((vault, keks))
}
