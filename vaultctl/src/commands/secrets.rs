//! `set`, `get`, `list`, `delete`: secrets stored in the vault.

use crate::cli::{Cli, GetArgs, ListArgs, NameArgs, SetArgs};
use crate::error::Error;
use crate::io::{MAX_SECRET_INPUT, read_secret, write_output};
use crate::open::open_vault;

pub fn set(cli: &Cli, args: &SetArgs) -> Result<(), Error> {
    let NameArgs { scope, key } = &args.name;
    let vault = open_vault(cli)?;
    let prompt = format!("Value for {scope} {key} (not echoed): ");
    let value = read_secret(args.from_file.as_deref(), &prompt, MAX_SECRET_INPUT)?;
    let version = vault.set(scope, key, value.expose_secret())?;
    println!("stored {scope} {key} version {version}");
    Ok(())
}

pub fn get(cli: &Cli, args: &GetArgs) -> Result<(), Error> {
    let NameArgs { scope, key } = &args.name;
    let vault = open_vault(cli)?;
    let value = vault.get(scope, key, args.version)?;
    write_output(None, value.expose_secret())
}

pub fn delete(cli: &Cli, args: &NameArgs) -> Result<(), Error> {
    let vault = open_vault(cli)?;
    vault.delete(&args.scope, &args.key)?;
    println!("deleted {} {}", args.scope, args.key);
    Ok(())
}

pub fn list(cli: &Cli, args: &ListArgs) -> Result<(), Error> {
    let vault = open_vault(cli)?;
    let secrets = vault.list(args.scope.as_deref())?;
    if args.format.json {
        let rows: Vec<serde_json::Value> = secrets
            .iter()
            .map(|s| {
                serde_json::json!({
                    "scope": s.scope, "key": s.key, "version": s.version,
                    "versions": s.versions, "created_at_ms": s.created_at, "updated_at_ms": s.updated_at,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    println!(
        "{:<32} {:<32} {:>7} {:>20}",
        "SCOPE", "KEY", "VERSION", "UPDATED (unix ms)"
    );
    for s in &secrets {
        println!(
            "{:<32} {:<32} {:>7} {:>20}",
            s.scope, s.key, s.version, s.updated_at
        );
    }
    Ok(())
}
