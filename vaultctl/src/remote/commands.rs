//! The commands that work against the daemon; the rest say where to run them.

use proto::v1 as pb;

use super::Remote;
use super::client::Client;
use crate::cli::{Cli, Command, EnvelopeFormat, KekCommand};
use crate::error::Error;
use crate::io::{MAX_SECRET_INPUT, read_public, read_secret, stdout_is_terminal, write_output};

/// `list --count`: the total_count of a first page of one secret; where vaultd leaves it
/// unset (its rules would have it check too many names one by one), every page is read and
/// counted.
fn remote_count(client: &Client, args: &crate::cli::ListArgs) -> Result<u64, Error> {
    let (mut counted, mut page_token, mut page_size) = (0, String::new(), 1);
    loop {
        let request = pb::ListRequest {
            scope: args.scope.clone(),
            page_size,
            page_token,
        };
        let reply = client.call_idempotent(|mut api| {
            let request = request.clone();
            async move { api.list(request).await }
        })?;
        if let Some(total) = reply.total_count {
            return Ok(total);
        }
        counted += reply.secrets.len() as u64;
        if reply.next_page_token.is_empty() {
            return Ok(counted);
        }
        (page_token, page_size) = (reply.next_page_token, args.page_size);
    }
}

/// Runs the command line against the daemon.
pub fn run(cli: &Cli, remote: &Remote) -> Result<(), Error> {
    let local_only = |what: &str| {
        Err(Error::Usage(format!(
            "`{what}` works on the vault directory only: run it on the vault host without --addr"
        )))
    };
    match &cli.command {
        Command::Init(_) => local_only("init"),
        Command::Rewrap(_) => local_only("rewrap"),
        Command::Upgrade => local_only("upgrade"),
        Command::MinDecryptionVersion(_) => local_only("min-decryption-version"),
        Command::Kek(KekCommand::Add(_)) => local_only("kek add"),
        Command::Kek(KekCommand::Remove(_)) => local_only("kek remove"),
        Command::Kek(KekCommand::List(_)) => local_only("kek list"),
        Command::Pki(_) => local_only("pki"),
        command => run_remote(command, &Client::connect(remote)?),
    }
}

fn run_remote(command: &Command, client: &Client) -> Result<(), Error> {
    let mut api = client.api.clone();
    match command {
        Command::Set(args) => {
            let (scope, key) = (&args.name.scope, &args.name.key);
            let prompt = format!("Value for {scope} {key} (not echoed): ");
            let value = read_secret(args.from_file.as_deref(), &prompt, MAX_SECRET_INPUT)?;
            let request = pb::PutRequest {
                scope: scope.clone(),
                key: key.clone(),
                value: value.expose_secret().to_vec(),
                expected_version: args.cas,
            };
            let reply = client.call(api.put(request))?;
            println!("stored {scope} {key} version {}", reply.version);
        }
        Command::Get(args) => {
            let request = pb::GetRequest {
                scope: args.name.scope.clone(),
                key: args.name.key.clone(),
                version: args.version,
            };
            let reply = client.call_idempotent(|mut api| {
                let request = request.clone();
                async move { api.get(request).await }
            })?;
            write_output(None, &reply.value)?;
        }
        Command::Delete(args) => {
            let request = pb::DeleteRequest {
                scope: args.scope.clone(),
                key: args.key.clone(),
            };
            client.call(api.delete(request))?;
            println!("deleted {} {}", args.scope, args.key);
        }
        Command::List(args) if args.count => {
            let total = remote_count(client, args)?;
            crate::commands::print_count(total, &args.format);
        }
        Command::List(args) => {
            let mut printer = crate::commands::ListPrinter::new(&args.format);
            let mut page_token = String::new();
            loop {
                let request = pb::ListRequest {
                    scope: args.scope.clone(),
                    page_size: u32::try_from(args.page_size()).unwrap_or(u32::MAX),
                    page_token,
                };
                let reply = client.call_idempotent(|mut api| {
                    let request = request.clone();
                    async move { api.list(request).await }
                })?;
                printer.rows(reply.secrets.iter().map(|s| crate::commands::ListRow {
                    scope: &s.scope,
                    key: &s.key,
                    version: s.version,
                    versions: s.versions,
                    created_at_ms: s.created_at_ms,
                    updated_at_ms: s.updated_at_ms,
                }));
                if reply.next_page_token.is_empty() || printer.closed() {
                    break;
                }
                page_token = reply.next_page_token;
            }
            printer.finish();
        }
        Command::Seal(args) => {
            let io = &args.io;
            if io.output.is_none() && args.format == EnvelopeFormat::Binary && stdout_is_terminal()
            {
                return Err(Error::Usage(
                    "refusing to write a binary envelope to a terminal: use --out FILE, --format json, or redirect stdout".into(),
                ));
            }
            let data = read_secret(
                io.input.as_deref(),
                "Data to seal (not echoed): ",
                envelope::MAX_PAYLOAD_LEN,
            )?;
            let request = pb::SealRequest {
                context: io.context.clone(),
                plaintext: data.expose_secret().to_vec(),
            };
            let sealed = client.call(api.seal(request))?.envelope;
            if args.format == EnvelopeFormat::Json {
                let mut text = envelope::to_json(&sealed)?;
                text.push('\n');
                write_output(io.output.as_deref(), text.as_bytes())?;
            } else {
                write_output(io.output.as_deref(), &sealed)?;
            }
        }
        Command::Open(args) => {
            let io = &args.io;
            let input = read_public(io.input.as_deref(), envelope::MAX_JSON_LEN)?;
            let binary = crate::commands::envelope_bytes(input)?;
            let request = pb::OpenRequest {
                context: io.context.clone(),
                envelope: binary,
            };
            let reply = client.call_idempotent(|mut api| {
                let request = request.clone();
                async move { api.open(request).await }
            })?;
            write_output(io.output.as_deref(), &reply.plaintext)?;
        }
        Command::Status(args) => {
            let s = client
                .call_idempotent(|mut api| async move { api.status(pb::StatusRequest {}).await })?;
            if args.json() {
                let audit = s.audit.as_ref().map(|a| {
                    serde_json::json!({
                        "state": a.state, "reason": a.reason, "records": a.records,
                        "head_seq": a.head_seq, "anchored_seq": a.anchored_seq,
                        "checkpoint_public_key": a.checkpoint_public_key,
                        "sink_error": a.sink_error,
                    })
                });
                let doc = serde_json::json!({
                    "store": s.store, "mode": s.mode, "locked": s.locked, "secrets": s.secrets,
                    "keks": s.keks.iter().map(|k| serde_json::json!({"id": k.id, "uri": k.uri, "health": k.health})).collect::<Vec<_>>(),
                    "missing_keks": s.missing_keks, "epochs": s.epochs,
                    "min_decryption_version": s.min_decryption_version,
                    "audit": audit,
                    "cache": { "lookups": s.cache_lookups, "hits": s.cache_hits },
                });
                println!("{doc}");
            } else {
                println!("store:   {}", s.store);
                println!("mode:    {}", s.mode);
                println!(
                    "locked:  {}",
                    if s.locked {
                        "yes (run `vaultctl unlock`)"
                    } else {
                        "no"
                    }
                );
                println!("secrets: {}", s.secrets);
                for k in &s.keks {
                    println!("kek:     {} ({}) health {}", k.id, k.uri, k.health);
                }
                for id in &s.missing_keks {
                    println!("kek:     {id} not available");
                }
                if let Some(a) = &s.audit {
                    println!("{}", crate::commands::audit::status_line(a));
                }
            }
        }
        Command::Lock => {
            client.call(api.lock(pb::LockRequest {}))?;
            println!("vault locked");
        }
        Command::Unlock(args) => {
            let passphrase = crate::commands::keys::unlock_passphrase(args)?;
            let request = pb::UnlockRequest {
                passphrase: passphrase
                    .as_ref()
                    .map(|p| p.expose_secret().to_vec())
                    .unwrap_or_default(),
            };
            client.call(api.unlock(request))?;
            println!("vault unlocked");
        }
        Command::Rotate => {
            let reply = client.call(api.rotate(pb::RotateRequest {}))?;
            println!("started epoch {}", reply.epoch);
        }
        Command::Kek(KekCommand::Check(args)) => {
            let reply = client.call_idempotent(|mut api| async move {
                api.kek_check(pb::KekCheckRequest {}).await
            })?;
            let bad = reply.results.iter().filter(|r| r.state != "ok").count();
            if args.json() {
                let rows: Vec<serde_json::Value> = reply
                    .results
                    .iter()
                    .map(
                        |r| serde_json::json!({ "id": r.id, "state": r.state, "detail": r.detail }),
                    )
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else {
                for r in &reply.results {
                    println!("{:<40} {:<12} {}", r.id, r.state, r.detail);
                }
            }
            if bad > 0 {
                return Err(Error::Failed(format!(
                    "{bad} of {} KEKs are not ok",
                    reply.results.len()
                )));
            }
        }
        Command::Audit(command) => crate::commands::audit::run_remote(command, client)?,
        other => {
            return Err(Error::Usage(format!(
                "{other:?} is not available over the daemon"
            )));
        }
    }
    Ok(())
}
