//! `set`, `get`, `list`, `delete`: secrets stored in the vault.

use std::io::Write;

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
    if args.count {
        print_count(vault.count(args.scope.as_deref())?, &args.format);
        return Ok(());
    }
    let mut printer = ListPrinter::new(&args.format);
    let mut after = None;
    loop {
        let page = vault.list_page(args.scope.as_deref(), after.as_ref(), args.page_size())?;
        printer.rows(page.secrets.iter().map(|s| ListRow {
            scope: &s.scope,
            key: &s.key,
            version: s.version,
            versions: s.versions,
            created_at_ms: s.created_at,
            updated_at_ms: s.updated_at,
        }));
        match page.next {
            Some(next) if !printer.closed() => after = Some(next),
            _ => break,
        }
    }
    printer.finish();
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

/// `list --count`: how many secrets the listing holds, as a number or a JSON object.
pub fn print_count(total: u64, format: &FormatArgs) {
    if format.json() {
        println!("{}", serde_json::json!({ "total_count": total }));
    } else {
        println!("{total}");
    }
}

/// `list`'s output, printed page by page as the pages arrive (a listing of a million
/// secrets is never held at once): a table with UTC dates that ends with how many secrets
/// it shows, or a JSON array with the times as Unix milliseconds and as RFC 3339 text. The
/// array stays the whole document (scripts parse it as one), so the count is not in it:
/// it is the array's length, or `list --count`.
pub struct ListPrinter {
    json: bool,
    /// Rows printed so far.
    printed: u64,
    /// Whether stdout was closed (`| head`): nothing more is printed, and the listing stops.
    closed: bool,
}

impl ListPrinter {
    pub fn new(format: &FormatArgs) -> Self {
        let json = format.json();
        let mut out = std::io::stdout().lock();
        let header = if json {
            write!(out, "[")
        } else {
            writeln!(
                out,
                "{:<32} {:<32} {:>7}  UPDATED (UTC)",
                "SCOPE", "KEY", "VERSION"
            )
        };
        Self {
            json,
            printed: 0,
            closed: header.is_err(),
        }
    }

    /// Prints one page, in one write: stdout is line-buffered, and a million rows would
    /// otherwise be a million system calls.
    pub fn rows<'a>(&mut self, rows: impl Iterator<Item = ListRow<'a>>) {
        if self.closed {
            return;
        }
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        for s in rows {
            let written = if self.json {
                let row = serde_json::json!({
                    "scope": s.scope, "key": s.key, "version": s.version, "versions": s.versions,
                    "created_at_ms": s.created_at_ms, "updated_at_ms": s.updated_at_ms,
                    "created_at": utc_time(s.created_at_ms), "updated_at": utc_time(s.updated_at_ms),
                });
                let comma = if self.printed == 0 { "" } else { "," };
                write!(out, "{comma}{row}")
            } else {
                writeln!(
                    out,
                    "{:<32} {:<32} {:>7}  {}",
                    s.scope,
                    s.key,
                    s.version,
                    human_time(s.updated_at_ms)
                )
            };
            if written.is_err() {
                self.closed = true;
                return;
            }
            self.printed += 1;
        }
        self.closed = out.flush().is_err();
    }

    /// Whether stdout was closed: a closed stdout ends the output, and as a listing has
    /// nothing to undo, the command stops reading pages and succeeds.
    pub fn closed(&self) -> bool {
        self.closed
    }

    pub fn finish(self) {
        if self.closed {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = if self.json {
            writeln!(out, "]")
        } else {
            let noun = if self.printed == 1 {
                "secret"
            } else {
                "secrets"
            };
            writeln!(out, "{} {noun}", self.printed)
        };
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
