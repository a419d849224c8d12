//! `set`, `get`, `list`, `delete`: secrets stored in the vault.

use crate::cli::{Cli, FormatArgs, GetArgs, ListArgs, NameArgs, SetArgs};
use crate::commands::audit::utc_time;
use crate::error::Error;
use crate::io::{MAX_SECRET_INPUT, read_secret, write_output};
use crate::open::{needs_every_kek, open_vault, open_vault_for_reading};

pub fn set(cli: &Cli, args: &SetArgs) -> Result<(), Error> {
    let NameArgs { scope, key } = &args.name;
    let vault = open_vault(cli)?;
    let prompt = format!("Value for {scope} {key} (not echoed): ");
    let value = read_secret(args.from_file.as_deref(), &prompt, MAX_SECRET_INPUT)?;
    let version = vault.set_if(scope, key, value.expose_secret(), args.cas)?;
    println!("stored {scope} {key} version {version}");
    Ok(())
}

pub fn get(cli: &Cli, args: &GetArgs) -> Result<(), Error> {
    let NameArgs { scope, key } = &args.name;
    let vault = open_vault_for_reading(cli)?;
    let value = match vault.get(scope, key, args.version) {
        Err(e) if needs_every_kek(&e) => {
            drop(vault);
            open_vault(cli)?.get(scope, key, args.version)?
        }
        other => other?,
    };
    write_output(None, value.expose_secret())
}

pub fn delete(cli: &Cli, args: &NameArgs) -> Result<(), Error> {
    let vault = open_vault(cli)?;
    vault.delete(&args.scope, &args.key)?;
    println!("deleted {} {}", args.scope, args.key);
    Ok(())
}

pub fn list(cli: &Cli, args: &ListArgs) -> Result<(), Error> {
    let vault = open_vault_for_reading(cli)?;
    let secrets = vault.list(args.scope.as_deref())?;
    let rows = secrets.iter().map(|s| ListRow {
        scope: &s.scope,
        key: &s.key,
        version: s.version,
        versions: s.versions,
        created_at_ms: s.created_at,
        updated_at_ms: s.updated_at,
    });
    print_list(rows, &args.format);
    Ok(())
}

/// One secret as `list` shows it (local or from vaultd); never its value.
pub struct ListRow<'a> {
    pub scope: &'a str,
    pub key: &'a str,
    pub version: u64,
    pub versions: u64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// `list`'s output: a table with UTC dates, or a JSON array with the times as Unix
/// milliseconds and as RFC 3339 text.
pub fn print_list<'a>(rows: impl Iterator<Item = ListRow<'a>>, format: &FormatArgs) {
    if format.json() {
        let rows: Vec<serde_json::Value> = rows
            .map(|s| {
                serde_json::json!({
                    "scope": s.scope, "key": s.key, "version": s.version, "versions": s.versions,
                    "created_at_ms": s.created_at_ms, "updated_at_ms": s.updated_at_ms,
                    "created_at": utc_time(s.created_at_ms), "updated_at": utc_time(s.updated_at_ms),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return;
    }
    println!(
        "{:<32} {:<32} {:>7}  UPDATED (UTC)",
        "SCOPE", "KEY", "VERSION"
    );
    for s in rows {
        println!(
            "{:<32} {:<32} {:>7}  {}",
            s.scope,
            s.key,
            s.version,
            human_time(s.updated_at_ms)
        );
    }
}

/// Unix milliseconds as `YYYY-MM-DD HH:MM:SS` (UTC).
fn human_time(ms: i64) -> String {
    let iso = utc_time(ms);
    match iso.split_once('T') {
        Some((date, time)) => format!("{date} {}", time.get(..8).unwrap_or(time)),
        None => iso,
    }
}
