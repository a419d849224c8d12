//! `vaultctl audit`: verify the audit log's chain, or show its newest records. Works on the
//! files directly (no KEK needed), also while vaultd appends to them.
#![deny(missing_docs)]

use std::path::PathBuf;

use clap::{Args, Subcommand};
use vault::audit::{self, AuditRecord};

use crate::cli::Cli;
use crate::error::Error;
use crate::open::vault_dir;

/// The audit log's file name in the vault directory.
const LOG_FILE: &str = "audit.jsonl";

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check every record's hash, the chain and the head checkpoint; exit code 1 on damage.
    Verify(LogArgs),
    /// Print the newest records (not verified: run `verify` for that).
    Tail(TailArgs),
}

/// Which audit log.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// The audit log (default: `<vault dir>/audit.jsonl`).
    #[arg(long, value_name = "PATH")]
    pub log: Option<PathBuf>,
}

/// Arguments of `audit tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// Which audit log.
    #[command(flatten)]
    pub log: LogArgs,
    /// How many records.
    #[arg(short = 'n', long = "lines", default_value_t = 10, value_name = "N")]
    pub count: usize,
    /// Print the records as JSON lines, as stored.
    #[arg(long)]
    pub json: bool,
}

/// Runs an `audit` subcommand.
pub fn run(cli: &Cli, command: &AuditCommand) -> Result<(), Error> {
    match command {
        AuditCommand::Verify(args) => verify(cli, args),
        AuditCommand::Tail(args) => tail(cli, args),
    }
}

/// The log named by `--log`, else the vault directory's; it must exist.
fn log_path(cli: &Cli, args: &LogArgs) -> Result<PathBuf, Error> {
    let path = match &args.log {
        Some(path) => path.clone(),
        None => vault_dir(cli)?.join(LOG_FILE),
    };
    if !path.exists() {
        return Err(Error::Failed(format!(
            "no audit log at {} (vaultd writes <vault dir>/{LOG_FILE}; pass --log PATH for another)",
            path.display()
        )));
    }
    Ok(path)
}

fn verify(cli: &Cli, args: &LogArgs) -> Result<(), Error> {
    let path = log_path(cli, args)?;
    let report = audit::verify(&path)?;
    let ahead = if report.head_seq < report.records {
        " (the log runs ahead of it: a crash before the checkpoint; the next open re-checkpoints)"
    } else {
        ""
    };
    println!(
        "audit log ok: {} records, chain head at seq {}{ahead}",
        report.records, report.head_seq
    );
    Ok(())
}

fn tail(cli: &Cli, args: &TailArgs) -> Result<(), Error> {
    let path = log_path(cli, &args.log)?;
    for record in audit::tail(&path, args.count)? {
        if args.json {
            let line = serde_json::to_string(&record).map_err(|e| Error::Failed(e.to_string()))?;
            println!("{line}");
        } else {
            println!("{}", text_line(&record));
        }
    }
    Ok(())
}

/// Runs an `audit` subcommand against the daemon (its own log).
pub fn run_remote(command: &AuditCommand, client: &crate::remote::Client) -> Result<(), Error> {
    let mut api = client.api.clone();
    match command {
        AuditCommand::Verify(_) => {
            let report = client.call(api.audit_verify(proto::v1::AuditVerifyRequest {}))?;
            println!(
                "audit log ok: {} records, chain head at seq {}",
                report.records, report.head_seq
            );
        }
        AuditCommand::Tail(args) => {
            let count = u32::try_from(args.count).unwrap_or(u32::MAX);
            let reply = client.call(api.audit_tail(proto::v1::AuditTailRequest { count }))?;
            for line in reply.records {
                if args.json {
                    println!("{line}");
                } else {
                    let record: AuditRecord = serde_json::from_str(&line).map_err(|e| {
                        Error::Failed(format!("vaultd sent an unreadable audit record: {e}"))
                    })?;
                    println!("{}", text_line(&record));
                }
            }
        }
    }
    Ok(())
}

/// `seq time decision status principal op [scope [key]] [(reason)]`, control characters
/// escaped (the log holds what clients sent; it must not drive the terminal).
fn text_line(r: &AuditRecord) -> String {
    let mut line = format!(
        "{:>8} {} {:<5} {} {} {}",
        r.seq,
        utc_time(r.ts_ms),
        r.decision,
        printable(&r.status),
        printable(&r.principal),
        printable(&r.op)
    );
    for part in [&r.scope, &r.key].into_iter().flatten() {
        line.push(' ');
        line.push_str(&printable(part));
    }
    if let Some(reason) = &r.reason {
        line.push_str(&format!(" ({})", printable(reason)));
    }
    line
}

fn printable(text: &str) -> String {
    if text.chars().any(|c| c.is_control() || c == ' ') {
        format!("{text:?}")
    } else {
        text.to_owned()
    }
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn utc_time(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    // Days to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc() {
        assert_eq!(utc_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc_time(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(utc_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc_time(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("svc-a"), "svc-a");
        assert_eq!(printable("a\u{1b}[2Jb"), "\"a\\u{1b}[2Jb\"");
    }
}
