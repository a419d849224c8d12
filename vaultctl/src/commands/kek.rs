//! `kek add | remove | list | check`: the vault's root KEKs; `kek create | info`: keys on a
//! PKCS#11 token, a TPM or a YubiKey, before any vault uses them.

use kek_providers::KekEnv;
use vault::{Kek, KekCheck, Vault, VaultConfig};

use crate::cli::{Cli, FormatArgs, KekAddArgs, KekCommand, KekIdArgs, KekUriArgs};
use crate::error::Error;
use crate::open::{open_vault, vault_dir};

pub fn run(cli: &Cli, command: &KekCommand) -> Result<(), Error> {
    match command {
        KekCommand::Add(args) => add(cli, args),
        KekCommand::Remove(args) => remove(cli, args),
        KekCommand::List(args) => list(cli, args),
        KekCommand::Check(args) => check(cli, args),
        KekCommand::Create(args) => create(args),
        KekCommand::Info(args) => info(args),
    }
}

fn create(args: &KekUriArgs) -> Result<(), Error> {
    match device_uri(&args.uri)? {
        Device::Pkcs11 => {
            kek_providers::pkcs11::create_key(&args.uri)?;
            println!(
                "created a non-extractable AES-256 key: {}",
                canonical(&args.uri)
            );
        }
        Device::Tpm2 => create_tpm(&args.uri)?,
        Device::Yubikey => {
            let built = kek_providers::yubikey::create_key(&args.uri)?;
            println!(
                "created a P-256 key on the YubiKey (kek {}); its certificate in the slot holds the public key",
                built.provider.id()
            );
            println!("KEK URI: {}", built.uri);
        }
    }
    println!("use it with `vaultctl init --kek URI` or `vaultctl kek add --existing URI`");
    Ok(())
}

/// A TPM KEK has no key of its own to make (each DEK is sealed in its own object): `create`
/// persists the storage root key at the URI's `srk=` handle.
fn create_tpm(uri: &str) -> Result<(), Error> {
    use kek_providers::tpm::Persisted;
    match kek_providers::tpm::persist_srk(uri)? {
        Persisted::Now { handle, name } => {
            println!("persisted the ECC P-256 storage root key at {handle:#010x} (name {name})");
        }
        Persisted::Already { handle, name } => {
            println!(
                "the ECC P-256 storage root key is persistent at {handle:#010x} already (name {name})"
            );
        }
        Persisted::Transient { name } => {
            println!(
                "the TPM answers; its storage root key is the ECC P-256 primary (name {name}), derived at each start"
            );
            println!(
                "add ;srk=0x81000001 to the URI and run kek create again to persist it (faster start-up)"
            );
        }
    }
    println!("KEK URI: {}", canonical(uri));
    Ok(())
}

fn info(args: &KekUriArgs) -> Result<(), Error> {
    let text = match device_uri(&args.uri)? {
        Device::Pkcs11 => kek_providers::pkcs11::key_info(&args.uri)?.to_string(),
        Device::Tpm2 => kek_providers::tpm::key_info(&args.uri)?.to_string(),
        Device::Yubikey => {
            // The canonical URI names the card's serial, which only the card knows.
            let info = kek_providers::yubikey::key_info(&args.uri)?;
            println!("uri:                    {}", info.uri);
            println!("{info}");
            return Ok(());
        }
    };
    println!("uri:                    {}", canonical(&args.uri));
    println!("{text}");
    Ok(())
}

/// The kinds of KEK `kek create` and `kek info` handle.
enum Device {
    Pkcs11,
    Tpm2,
    Yubikey,
}

/// `kek create` and `kek info` are about keys on devices (a PKCS#11 token, a TPM, a
/// YubiKey); other KEKs are made by `init` and `kek add`.
fn device_uri(uri: &str) -> Result<Device, Error> {
    kek_providers::check_uri(uri)?;
    if uri.starts_with("pkcs11:") {
        Ok(Device::Pkcs11)
    } else if uri.starts_with("tpm2:") {
        Ok(Device::Tpm2)
    } else if uri.starts_with("yubikey:") {
        Ok(Device::Yubikey)
    } else {
        Err(Error::Usage(
            "kek create and kek info take a pkcs11:, tpm2: or yubikey: URI; file, passphrase and keyring KEKs are made by `init --kek` and `kek add`".into(),
        ))
    }
}

/// The URI as the vault would pin it (without a pin-value).
fn canonical(uri: &str) -> String {
    if uri.starts_with("tpm2:") {
        return kek_providers::tpm::Tpm2Uri::parse(uri)
            .map(|parsed| parsed.to_canonical())
            .unwrap_or_default();
    }
    kek_providers::pkcs11::Pkcs11Uri::parse(uri)
        .map(|parsed| parsed.to_canonical())
        .unwrap_or_default()
}

fn add(cli: &Cli, args: &KekAddArgs) -> Result<(), Error> {
    let auto = args.uri == super::init::AUTO;
    if auto && args.existing {
        return Err(Error::Usage(
            "kek add auto makes a new KEK; --existing takes the URI of one made before".into(),
        ));
    }
    let vault = open_vault(cli)?;
    if !auto {
        kek_providers::check_uri(&args.uri)?;
    }
    let env = KekEnv {
        vault_dir: vault.dir(),
    };
    let mut picked = String::new();
    let built = if auto {
        let choice = super::init::choose_auto(&env)?;
        picked = format!(" (auto: {} because {})", choice.candidate, choice.reason);
        choice.kek
    } else if args.existing {
        kek_providers::open(&args.uri, &env)?
    } else {
        kek_providers::create(&args.uri, &env)?
    };
    let id = built.provider.id().to_string();
    vault
        .add_kek(Kek {
            uri: built.uri.clone(),
            provider: std::sync::Arc::clone(&built.provider),
        })
        // A key made for a KEK the vault refused would only be in the way of the next try.
        .inspect_err(|_| kek_providers::discard_created(std::slice::from_ref(&built)))?;
    println!("added kek {id} ({}){picked}", built.uri);
    if Vault::read_config(vault.dir())?.mode == vault::WrapMode::Direct {
        println!("run `vaultctl rewrap` to wrap the secrets stored so far under it");
    }
    Ok(())
}

fn remove(cli: &Cli, args: &KekIdArgs) -> Result<(), Error> {
    let vault = open_vault(cli)?;
    vault.remove_kek(&args.id)?;
    println!("removed kek {}", args.id);
    Ok(())
}

fn list(cli: &Cli, args: &FormatArgs) -> Result<(), Error> {
    let config = Vault::read_config(&vault_dir(cli)?)?;
    let rows = rows(&config);
    if args.json() {
        let keks: Vec<serde_json::Value> = rows
            .iter()
            .map(|(id, uri, role)| serde_json::json!({ "id": id, "uri": uri, "role": role }))
            .collect();
        let doc = serde_json::json!({
            "mode": config.mode.to_string(), "keks": keks,
            "epochs": config.epochs.iter().map(|e| e.number).collect::<Vec<_>>(),
            "min_decryption_version": config.min_decryption_version,
        });
        println!("{doc}");
        return Ok(());
    }
    println!("mode: {}", config.mode);
    for (id, uri, role) in &rows {
        println!("{id:<40} {role:<16} {uri}");
    }
    Ok(())
}

/// (id, uri, role) of every pinned KEK.
fn rows(config: &VaultConfig) -> Vec<(String, String, String)> {
    let mut rows: Vec<_> = config
        .keks
        .iter()
        .map(|k| (k.id.clone(), k.uri.clone(), "any-of".to_owned()))
        .collect();
    if let Some(t) = &config.threshold {
        let role = format!("{} of {}", t.m, t.members.len());
        rows.extend(
            t.members
                .iter()
                .map(|k| (k.id.clone(), k.uri.clone(), role.clone())),
        );
    }
    rows
}

fn check(cli: &Cli, args: &FormatArgs) -> Result<(), Error> {
    let dir = vault_dir(cli)?;
    let config = Vault::read_config(&dir)?;
    let env = KekEnv { vault_dir: &dir };
    let mut results = Vec::new();
    for pinned in config.all_keks() {
        let result = match kek_providers::open(&pinned.uri, &env) {
            Ok(built) => Vault::check_kek_in(
                &dir,
                &Kek {
                    uri: built.uri,
                    provider: built.provider,
                },
            ),
            Err(e) => KekCheck::Failed(e.to_string()),
        };
        results.push((pinned.id.clone(), result));
    }
    let text = |r: &KekCheck| match r {
        KekCheck::Ok => ("ok", String::new()),
        KekCheck::Unreachable(why) => ("unreachable", why.clone()),
        KekCheck::Failed(why) => ("failed", why.clone()),
    };
    if args.json() {
        let rows: Vec<serde_json::Value> = results
            .iter()
            .map(|(id, r)| {
                let (state, why) = text(r);
                serde_json::json!({ "id": id, "state": state, "detail": why })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
    } else {
        for (id, r) in &results {
            let (state, why) = text(r);
            println!("{id:<40} {state:<12} {why}");
        }
    }
    let bad = results.iter().filter(|(_, r)| *r != KekCheck::Ok).count();
    if bad > 0 {
        return Err(Error::Failed(format!(
            "{bad} of {} KEKs are not ok",
            results.len()
        )));
    }
    Ok(())
}
