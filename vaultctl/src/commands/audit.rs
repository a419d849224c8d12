//! `vaultctl audit`: verify the audit log (with the vault's audit key, which opening the
//! vault's KEKs gives, or against signed checkpoints with their public key alone), show its
//! newest records, or print the checkpoints' public key. Works on the files directly, also
//! while vaultd appends to them.
#![deny(missing_docs)]

use std::path::PathBuf;

use clap::{Args, Subcommand};
use vault::audit::{self, AuditRecord, display_text, escape_text, json_printable};

use crate::cli::{Cli, FormatArgs};
use crate::error::Error;
use crate::open::{open_vault, vault_dir};

/// The audit log's file name in the vault directory.
const LOG_FILE: &str = "audit.jsonl";

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check every record's MAC, the chain, the head checkpoint and the vault's anchor (opens
    /// the vault's KEKs for the audit key); with --checkpoints, also the log against a file
    /// of signed checkpoints. Exit code 1 on damage.
    Verify(VerifyArgs),
    /// Print the newest records (not verified: run `verify` for that).
    Tail(TailArgs),
    /// Print the public key that verifies the log's signed checkpoints (opens the vault's
    /// KEKs); give it to whoever checks them.
    PublicKey,
    /// Close the log's current segment (kept as `audit.jsonl.NNNNNN`) and start the next,
    /// chained to it. With --addr, vaultd does it; locally, only while no vaultd writes the
    /// log (opens the vault's KEKs for the audit key).
    Rotate(RotateArgs),
}

/// Which audit log.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// The audit log (default: `<vault dir>/audit.jsonl`).
    #[arg(long, value_name = "PATH")]
    pub log: Option<PathBuf>,
}

/// Arguments of `audit rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Which audit log.
    #[command(flatten)]
    pub log: LogArgs,
    /// Output format.
    #[command(flatten)]
    pub format: FormatArgs,
}

/// Arguments of `audit verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Which audit log.
    #[command(flatten)]
    pub log: LogArgs,
    /// A file of signed checkpoints (vaultd's `audit.checkpoint_file`, or lines collected
    /// from syslog) to check the log against.
    #[arg(long, value_name = "FILE")]
    pub checkpoints: Option<PathBuf>,
    /// Check against --checkpoints with this public key (hex) alone, without opening the
    /// vault: the records' form and chain and the signed digests, not their MACs.
    #[arg(long, value_name = "HEX", requires = "checkpoints")]
    pub public_key: Option<String>,
    /// Output format.
    #[command(flatten)]
    pub format: FormatArgs,
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
    /// Output format; `json` prints the records as JSON lines, as stored (characters that
    /// could mislead a terminal written as JSON escapes).
    #[command(flatten)]
    pub format: FormatArgs,
}

/// Runs an `audit` subcommand.
pub fn run(cli: &Cli, command: &AuditCommand) -> Result<(), Error> {
    match command {
        AuditCommand::Verify(args) => verify(cli, args),
        AuditCommand::Tail(args) => tail(cli, args),
        AuditCommand::PublicKey => {
            let key = open_vault(cli)?.audit_key()?;
            println!("{}", key.checkpoint_public_key()?);
            Ok(())
        }
        AuditCommand::Rotate(args) => rotate(cli, args),
    }
}

/// Rotates the log in this process: refused while a daemon writes it (it must rotate it
/// itself, or its writes would go to the closed segment). Recorded as a started and an
/// outcome record around the rotation, as the daemon records its calls.
fn rotate(cli: &Cli, args: &RotateArgs) -> Result<(), Error> {
    let path = log_path(cli, &args.log)?;
    if audit::is_live(&path)? {
        return Err(Error::Failed(format!(
            "a running vaultd writes {}: rotate it through the daemon (`vaultctl --addr URL audit rotate`), or let `[audit] max_segment_bytes` do it",
            path.display()
        )));
    }
    let vault = open_vault(cli)?;
    let vault_id = vault::Vault::read_config(vault.dir())?.id;
    let options = audit::AuditOptions::new(std::sync::Arc::new(vault.audit_anchor()?), &vault_id);
    let log = audit::AuditLog::open(&path, vault.audit_key()?, options)?;
    let uid = std::fs::metadata("/proc/self").map_or_else(
        |_| "unknown".to_owned(),
        |m| std::os::unix::fs::MetadataExt::uid(&m).to_string(),
    );
    let event = |stage, call, version, status| audit::AuditEvent {
        stage,
        call,
        principal: "vaultctl".into(),
        op: "audit_rotate".into(),
        version,
        reason: Some(format!("local rotation by uid {uid}")),
        ..audit::AuditEvent::new(audit::Decision::Allow, status)
    };
    log.append(&event(audit::Stage::Started, None, None, "OK"))?;
    // Nothing else appends to this log here: the record just written is the newest.
    let call = Some(log.status().records);
    let rotated = log.rotate(&format!(
        "asked for locally with vaultctl audit rotate by uid {uid}"
    ));
    let (version, status) = match &rotated {
        Ok(r) => (Some(r.segment), "OK"),
        Err(_) => (None, "INTERNAL"),
    };
    log.append(&event(audit::Stage::Outcome, call, version, status))?;
    log.close();
    let rotated = rotated?;
    let archive = rotated.archive.display().to_string();
    print_rotated(
        &args.format,
        rotated.closed,
        &archive,
        rotated.segment,
        rotated.first_seq,
    );
    Ok(())
}

/// What `audit rotate` prints: the closed segment and its file, the new segment.
fn print_rotated(format: &FormatArgs, closed: u64, archive: &str, segment: u64, first_seq: u64) {
    if format.json() {
        let doc = serde_json::json!({
            "closed": closed, "archive": archive, "segment": segment, "first_seq": first_seq,
        });
        println!("{doc}");
    } else {
        println!(
            "closed segment {closed} as {}; segment {segment} begins at seq {first_seq}",
            printable(archive)
        );
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

fn verify(cli: &Cli, args: &VerifyArgs) -> Result<(), Error> {
    let path = log_path(cli, &args.log);
    if let (Some(file), Some(public_key)) = (&args.checkpoints, &args.public_key) {
        let path = path?;
        let report = audit::verify_checkpoints(&path, file, public_key, None)?;
        if args.format.json() {
            let doc = serde_json::json!({
                "ok": true, "records": report.records, "macs_checked": false,
                "checkpoints": { "checked": report.checked, "newest_seq": report.newest_seq, "other_logs": report.other_logs },
            });
            println!("{doc}");
            return Ok(());
        }
        println!(
            "audit log matches its signed checkpoints: {} records, {} checkpoint(s) checked, the newest at seq {}{} (records' MACs not checked: that needs the vault's KEKs)",
            report.records,
            report.checked,
            report.newest_seq,
            other_logs(report.other_logs)
        );
        return Ok(());
    }
    verify_with_vault(cli, args, path)
}

/// `verify` with the vault's audit key: the local log (if there is one: on an
/// administrator's host of a vault on PostgreSQL there may be none) and, on a store replicas
/// share, every replica's chain in it.
fn verify_with_vault(
    cli: &Cli,
    args: &VerifyArgs,
    path: Result<PathBuf, Error>,
) -> Result<(), Error> {
    // Without a local log, only a vault on a shared store has something to verify.
    let path = match path {
        Ok(path) => Some(path),
        Err(_) if args.log.log.is_none() && args.checkpoints.is_none() && on_shared_store(cli) => {
            None
        }
        Err(e) => return Err(e),
    };
    let vault = open_vault(cli)?;
    let replicas = vault.verify_replica_audit()?;
    let key = vault.audit_key()?;
    let mut doc = match &path {
        Some(path) => verify_local(&vault, path, args, &key)?,
        None => {
            if !args.format.json() {
                println!("no local audit log here: only the replicas' chains are verified");
            }
            serde_json::json!({ "ok": true, "records": null, "macs_checked": true })
        }
    };
    let damaged = match &replicas {
        Some(report) => {
            doc["replicas"] = super::audit_replicas::show(report, args.format.json());
            !report.defects.is_empty()
        }
        None => false,
    };
    if damaged {
        doc["ok"] = serde_json::Value::Bool(false);
    }
    if args.format.json() {
        println!("{doc}");
    }
    if damaged {
        return Err(Error::Failed(
            "the replicas' audit chains do not verify (see above)".into(),
        ));
    }
    Ok(())
}

/// Whether the vault's pinned store is one that replicas share (its audit is in the database).
fn on_shared_store(cli: &Cli) -> bool {
    vault_dir(cli)
        .ok()
        .and_then(|dir| vault::Vault::read_config(&dir).ok())
        .is_some_and(|config| config.store == vault::StoreKind::Postgres.to_string())
}

/// Verifies the local log (printing the result unless JSON is asked for): its JSON report.
fn verify_local(
    vault: &vault::Vault,
    path: &std::path::Path,
    args: &VerifyArgs,
    key: &audit::AuditKey,
) -> Result<serde_json::Value, Error> {
    let report = audit::verify(path, key, &vault.audit_anchor()?)?;
    let checkpoints = match &args.checkpoints {
        Some(file) => {
            let public_key = key.checkpoint_public_key()?;
            Some(audit::verify_checkpoints(
                path,
                file,
                &public_key,
                Some(key),
            )?)
        }
        None => None,
    };
    if !args.format.json() {
        let ahead = if report.head_seq < report.records {
            " (the log runs ahead of it: a crash before the checkpoint; the next open re-checkpoints)"
        } else {
            ""
        };
        let anchor = report.anchor_seq.map_or_else(
            || ", no anchor yet".to_owned(),
            |seq| format!(", anchored at seq {seq}"),
        );
        println!(
            "audit log ok: {} records in {} segment(s), chain head at seq {}{ahead}{anchor}",
            report.records, report.segments, report.head_seq
        );
        if let Some(c) = &checkpoints {
            println!(
                "signed checkpoints ok: {} checked, the newest at seq {}{}",
                c.checked,
                c.newest_seq,
                other_logs(c.other_logs)
            );
        }
    }
    let checkpoints = checkpoints.map_or(serde_json::Value::Null, |c| {
        serde_json::json!({ "checked": c.checked, "newest_seq": c.newest_seq, "other_logs": c.other_logs })
    });
    Ok(serde_json::json!({
        "ok": true, "records": report.records, "head_seq": report.head_seq,
        "anchor_seq": report.anchor_seq, "macs_checked": true, "checkpoints": checkpoints,
    }))
}

fn other_logs(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!("; {n} checkpoint(s) of earlier logs (before a --new-audit-log) not compared")
    }
}

fn tail(cli: &Cli, args: &TailArgs) -> Result<(), Error> {
    let path = log_path(cli, &args.log)?;
    for record in audit::tail(&path, args.count)? {
        if args.format.json() {
            let line = serde_json::to_string(&record).map_err(|e| Error::Failed(e.to_string()))?;
            println!("{}", json_printable(&line));
        } else {
            println!("{}", text_line(&record));
        }
    }
    Ok(())
}

/// Runs an `audit` subcommand against the daemon (its own log).
pub fn run_remote(command: &AuditCommand, client: &crate::remote::Client) -> Result<(), Error> {
    match command {
        AuditCommand::Verify(args) => {
            if args.checkpoints.is_some() {
                return Err(Error::Usage(
                    "--checkpoints checks a log file: run it where the log is (without --addr)"
                        .into(),
                ));
            }
            let report = client.call_idempotent(|mut api| async move {
                api.audit_verify(proto::v1::AuditVerifyRequest {}).await
            })?;
            if args.format.json() {
                let doc = serde_json::json!({
                    "ok": true, "records": report.records, "head_seq": report.head_seq,
                    "anchor_seq": report.anchor_seq, "macs_checked": true,
                });
                println!("{doc}");
                return Ok(());
            }
            println!(
                "audit log ok: {} records in {} segment(s), chain head at seq {}, anchored at seq {}",
                report.records, report.segments, report.head_seq, report.anchor_seq
            );
        }
        AuditCommand::Tail(args) => {
            let count = u32::try_from(args.count).unwrap_or(u32::MAX);
            let reply = client.call_idempotent(|mut api| async move {
                api.audit_tail(proto::v1::AuditTailRequest { count }).await
            })?;
            for line in reply.records {
                if args.format.json() {
                    println!("{}", json_printable(&line));
                } else {
                    let record: AuditRecord = serde_json::from_str(&line).map_err(|e| {
                        Error::Failed(format!("vaultd sent an unreadable audit record: {e}"))
                    })?;
                    println!("{}", text_line(&record));
                }
            }
        }
        AuditCommand::Rotate(args) => {
            if args.log.log.is_some() {
                return Err(Error::Usage(
                    "--log names a file: vaultd rotates its own log (drop --log, or run without --addr where the log is)".into(),
                ));
            }
            // A state change: sent once, never retried.
            let request = proto::v1::AuditRotateRequest {};
            let r = client.call(client.api.clone().audit_rotate(request))?;
            print_rotated(&args.format, r.closed, &r.archive, r.segment, r.first_seq);
        }
        AuditCommand::PublicKey => {
            let status = client.call_idempotent(|mut api| async move {
                api.status(proto::v1::StatusRequest {}).await
            })?;
            let key = status
                .audit
                .map(|a| a.checkpoint_public_key)
                .unwrap_or_default();
            println!("{}", printable(&key));
        }
    }
    Ok(())
}

/// The `audit:` line of `vaultctl status` against a daemon.
pub fn status_line(a: &proto::v1::AuditStatus) -> String {
    let standing = format!(
        "{} records, head at seq {}, anchored at seq {}",
        a.records, a.head_seq, a.anchored_seq
    );
    let mut line = if a.state == "ok" {
        format!("audit:   ok, {standing}")
    } else {
        format!(
            "audit:   {} ({}): requests are refused until vaultd is restarted; {standing}",
            printable(&a.state).to_uppercase(),
            escape_text(&a.reason)
        )
    };
    if !a.sink_error.is_empty() {
        line.push_str(&format!(
            "; last checkpoint not sent: {}",
            escape_text(&a.sink_error)
        ));
    }
    line
}

/// `seq time decision stage status principal op [scope [key]] [version N] [call N]
/// [(reason)]`, every field escaped (the log holds what clients sent; it must not drive the
/// terminal or reorder what it shows).
fn text_line(r: &AuditRecord) -> String {
    let mut line = format!(
        "{:>8} {} {:<5} {:<15} {} {} {}",
        r.seq,
        utc_time(r.ts_ms),
        r.decision,
        r.stage,
        printable(&r.status),
        printable(&r.principal),
        printable(&r.op)
    );
    for part in [&r.scope, &r.key].into_iter().flatten() {
        line.push(' ');
        line.push_str(&printable(part));
    }
    if let Some(version) = r.version {
        line.push_str(&format!(" version {version}"));
    }
    if let Some(call) = r.call {
        line.push_str(&format!(" call {call}"));
    }
    if let Some(reason) = &r.reason {
        line.push_str(&format!(" ({})", display_text(reason)));
    }
    line
}

/// A record's field with every character that could mislead a terminal written as visible
/// text (the log stores its fields escaped already, see `vault::audit::escape_text`; this
/// also covers a log written by someone else), and quoted if it has a space.
fn printable(text: &str) -> String {
    let escaped = display_text(text);
    if escaped.contains(' ') || escaped.is_empty() {
        format!("\"{escaped}\"")
    } else {
        escaped.into_owned()
    }
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(crate) fn utc_time(ms: i64) -> String {
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
    fn control_and_format_characters_are_escaped() {
        assert_eq!(printable("svc-a"), "svc-a");
        assert_eq!(printable("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(printable("db\u{202e}txt.exe"), "db\\u{202e}txt.exe");
        assert_eq!(printable("a\u{200d}b c"), "\"a\\u{200d}b c\"");
        // A stored escape shows once.
        assert_eq!(printable("db\\u{202e}txt"), "db\\u{202e}txt");
    }
}
