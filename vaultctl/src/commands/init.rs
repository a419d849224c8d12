//! `vaultctl init`: create a vault and pin its store kind and KEKs.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::Arc;

use kek_providers::{AutoCandidate, AutoChoice, AutoProbe, BuiltKek, KekEnv};
use vault::{InitOptions, Kek, StoreKind, Vault, WrapMode};

use crate::cli::{Cli, InitArgs};
use crate::error::Error;
use crate::open::vault_dir;

pub fn run(cli: &Cli, args: &InitArgs) -> Result<(), Error> {
    let dir = vault_dir(cli)?;
    if Vault::read_config(&dir).is_ok() {
        return Err(vault::Error::AlreadyInitialised { dir }.into());
    }
    let store = StoreKind::from(args.store);
    let location = store_location(store, args)?;
    let default_kek = args.keks.is_empty() && cli.keks.is_empty();
    let uris = match (args.keks.is_empty(), cli.keks.is_empty()) {
        (false, _) => args.keks.clone(),
        (true, false) => cli.keks.clone(),
        (true, true) => vec![default_file_kek_uri()?],
    };
    if uris.iter().filter(|uri| *uri == AUTO).count() > 1 {
        return Err(Error::Usage(
            "--kek auto is given more than once; give it once".into(),
        ));
    }
    // Every URI is checked before any key material is made, so a typo in the second
    // --kek does not leave the first one's new key file behind.
    for uri in uris.iter().filter(|uri| *uri != AUTO) {
        kek_providers::check_uri(uri)?;
    }
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(Error::io(format!("creating {}", dir.display())))?;
    if let Some(location) = &location {
        location.write(&dir)?;
    }
    let env = KekEnv { vault_dir: &dir };
    // Key material made for an init that then fails is removed again, so that the same
    // command, corrected, can run (a key file left behind would refuse to be replaced).
    let discard_location = || {
        if location.is_some() {
            // Ours: written above, into a directory that held no vault.
            let _ = std::fs::remove_file(dir.join(vault::STORE_LOCATION_FILE));
        }
    };
    let (built, auto) = create_keks(&uris, &env).inspect_err(|_| discard_location())?;
    let keks: Vec<Kek> = built
        .iter()
        .map(|b| Kek {
            uri: b.uri.clone(),
            provider: Arc::clone(&b.provider),
        })
        .collect();
    let described: Vec<String> = keks
        .iter()
        .map(|k| {
            let picked = auto
                .as_ref()
                .filter(|a| a.kek.uri == k.uri)
                .map(|a| format!(" (auto: {} because {})", a.candidate, a.reason))
                .unwrap_or_default();
            format!("{} ({}){picked}", k.provider.id(), k.uri)
        })
        .collect();
    let options = InitOptions {
        mode: args.mode.map(WrapMode::from),
        threshold: args.threshold,
        ..InitOptions::new(store)
    };
    let vault = Vault::init_with(&dir, &options, keks).inspect_err(|_| {
        kek_providers::discard_created(&built);
        discard_location();
    })?;
    let mode = Vault::read_config(&dir)?.mode;
    println!("initialised vault at {}", vault.dir().display());
    println!("store: {store}");
    println!("mode: {mode}");
    if let Some(m) = args.threshold {
        println!("threshold: any {m} of the {} KEKs below", described.len());
    }
    for kek in &described {
        println!("kek: {kek}");
    }
    if store == StoreKind::Memory {
        eprintln!(
            "note: the memory store keeps secrets only for the life of one process; \
             each vaultctl command starts empty. Use it for tests."
        );
    }
    let auto_file = auto
        .as_ref()
        .is_some_and(|a| a.candidate == AutoCandidate::File);
    if default_kek || auto_file {
        eprintln!(
            "note: the key file above protects every secret in this vault; back it up \
             separately from {}. Without it the secrets cannot be opened.",
            dir.display()
        );
    }
    Ok(())
}

/// Where a PostgreSQL store is, from the `--store-*` options; `None` for the other stores,
/// which take none of them.
fn store_location(
    store: StoreKind,
    args: &InitArgs,
) -> Result<Option<vault::StoreLocation>, Error> {
    let given =
        args.store_url.is_some() || args.store_password_file.is_some() || args.store_ca.is_some();
    if store != StoreKind::Postgres {
        return if given {
            Err(Error::Usage(format!(
                "--store-url, --store-password-file and --store-ca are for --store postgres, not --store {store}"
            )))
        } else {
            Ok(None)
        };
    }
    let url = args.store_url.as_deref().ok_or_else(|| {
        Error::Usage("--store postgres needs --store-url postgres://USER@HOST:PORT/DATABASE".into())
    })?;
    let mut location = vault::StoreLocation::new(url)?;
    // Absolute: vaultd and vaultctl read them from wherever they run.
    let absolute = |path: &PathBuf| {
        std::path::absolute(path).map_err(Error::io(format!("resolving {}", path.display())))
    };
    location.password_file = args
        .store_password_file
        .as_ref()
        .map(absolute)
        .transpose()?;
    location.ca_file = args.store_ca.as_ref().map(absolute).transpose()?;
    Ok(Some(location))
}

/// The `--kek` value that lets the machine pick its strongest KEK.
pub(crate) const AUTO: &str = "auto";

/// Creates the KEK of every URI in order, `auto` where it stands; if one fails, the key
/// material made for the others (files, keystore entries, a key auto generated on a token)
/// is removed again.
fn create_keks(
    uris: &[String],
    env: &KekEnv<'_>,
) -> Result<(Vec<BuiltKek>, Option<AutoChoice>), Error> {
    let mut built = Vec::with_capacity(uris.len());
    let mut auto = None;
    for uri in uris {
        let kek = if uri == AUTO {
            choose_auto(env).map(|choice| {
                let kek = choice.kek.clone();
                auto = Some(choice);
                kek
            })
        } else {
            kek_providers::create(uri, env).map_err(Error::from)
        };
        match kek {
            Ok(kek) => built.push(kek),
            Err(e) => {
                kek_providers::discard_created(&built);
                return Err(e);
            }
        }
    }
    Ok((built, auto))
}

/// `--kek auto`: makes the strongest KEK the machine offers (see
/// [`kek_providers::AutoProbe`]) and notes on stderr each stronger candidate it skipped.
pub(crate) fn choose_auto(env: &KekEnv<'_>) -> Result<AutoChoice, Error> {
    // Without a home directory the key file is out, but a device may still serve.
    let choice = AutoProbe::from_env(default_file_kek_uri().ok()).choose(env)?;
    for skip in &choice.skipped {
        eprintln!("note: auto: skipped {}: {}", skip.candidate, skip.reason);
    }
    Ok(choice)
}

/// A new key file under `$XDG_CONFIG_HOME/vault/keys` (or `~/.config/vault/keys`), kept
/// apart from the vault directory so that a copy of the data alone opens nothing.
fn default_file_kek_uri() -> Result<String, Error> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| {
            Error::Usage("no home directory for the default key file: pass --kek file:PATH".into())
        })?;
    let mut id = [0u8; 6];
    envelope::random_bytes(&mut id)?;
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let path = config
        .join("vault")
        .join("keys")
        .join(format!("kek-{hex}.key"));
    Ok(format!("file:{}", path.display()))
}
