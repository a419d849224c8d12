//! `vaultctl status`: the store, each KEK's health and assurance, and memory locking.

use crate::cli::{Cli, FormatArgs};
use crate::error::Error;
use crate::open::open_vault;

pub fn run(cli: &Cli, args: &FormatArgs) -> Result<(), Error> {
    let status = open_vault(cli)?.status()?;
    let mem = status.memory;
    if args.json() {
        let keks: Vec<serde_json::Value> = status
            .keks
            .iter()
            .map(|k| {
                serde_json::json!({
                    "id": k.id, "uri": k.uri, "health": k.health.to_string(),
                    "assurance": k.assurance.to_string(),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "dir": status.dir.display().to_string(), "store": status.store.to_string(),
            "mode": status.mode.to_string(), "locked": status.locked,
            "secrets": status.secrets, "keks": keks, "missing_keks": status.missing_keks,
            "epochs": status.epochs, "min_decryption_version": status.min_decryption_version,
            "cached": status.cached,
            "memory": { "locked_bytes": mem.locked_bytes, "unlocked_bytes": mem.unlocked_bytes },
        });
        println!("{doc}");
        return Ok(());
    }
    println!("vault:   {}", status.dir.display());
    println!("store:   {}", status.store);
    println!("mode:    {}", status.mode);
    println!(
        "locked:  {}",
        if status.locked {
            "yes (run `vaultctl unlock`)"
        } else {
            "no"
        }
    );
    println!("secrets: {}", status.secrets);
    for k in &status.keks {
        println!(
            "kek:     {} ({}) health {}; {}",
            k.id, k.uri, k.health, k.assurance
        );
    }
    for id in &status.missing_keks {
        println!("kek:     {id} not available: reads work, new keys cannot be wrapped");
    }
    if !status.epochs.is_empty() {
        let epochs: Vec<String> = status.epochs.iter().map(u32::to_string).collect();
        println!(
            "epochs:  {} open; min_decryption_version {}",
            epochs.join(", "),
            status.min_decryption_version
        );
    }
    let locking = if mem.unlocked_bytes == 0 {
        "locked".to_string()
    } else {
        format!(
            "{} bytes could not be locked (raise ulimit -l)",
            mem.unlocked_bytes
        )
    };
    println!("memory:  secret memory {locking}");
    Ok(())
}
