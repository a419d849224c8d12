//! vaultd: the vault daemon. `vaultd --dev` runs a development vault on loopback;
//! `vaultd --config vaultd.toml` runs a configured one; `vaultd print-config` shows the
//! effective configuration (file < env < flags).
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use vaultd::config::{Config, Overrides, parse_metrics_listen};
use vaultd::dev::DevDir;
use vaultd::logger::LogFormat;

/// vaultd: serves a vault over gRPC with mutual TLS.
#[derive(Debug, Parser)]
#[command(name = "vaultd", version, about, max_term_width = 100)]
#[deny(missing_docs)]
struct Cli {
    /// The configuration file (TOML).
    #[arg(long, global = true, env = "VAULTD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, global = true, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The vault directory.
    #[arg(long, global = true, value_name = "DIR")]
    vault_dir: Option<PathBuf>,
    /// The audit log (default: <vault dir>/audit.jsonl).
    #[arg(long, global = true, value_name = "PATH")]
    audit_log: Option<PathBuf>,
    /// The TLS directory (default: <vault dir>/tls).
    #[arg(long, global = true, value_name = "DIR")]
    tls_dir: Option<PathBuf>,
    /// How log lines are written on stderr: text or json (VAULTD_LOG filters them).
    #[arg(long, global = true, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// Serve /metrics, /healthz and /readyz over plain HTTP on this address (a port alone
    /// means loopback).
    #[arg(long, global = true, value_name = "ADDR", value_parser = parse_metrics_listen)]
    metrics_listen: Option<SocketAddr>,
    /// Run a development vault: creates CA, certificates, a file KEK and the store in
    /// --dev-dir on first start, serves on loopback, and prints the vaultctl environment.
    #[arg(long)]
    dev: bool,
    /// The development directory.
    #[arg(long, default_value = "vault-dev", value_name = "DIR")]
    dev_dir: PathBuf,
    /// Start a new audit log where the vault says one was and it is gone (deleted, or moved
    /// aside after `vaultctl audit verify` found it damaged). Its first record says so.
    /// Refused if the log exists.
    #[arg(long)]
    new_audit_log: bool,
    /// What to do instead of serving.
    #[command(subcommand)]
    command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Print the effective configuration (file < env < flags) as TOML.
    PrintConfig,
}

fn main() -> ExitCode {
    // First, before anything is read; its warning waits for the logger.
    let hardened = envelope::memory::harden_process();
    envelope::memory::keep_freed_heap();
    let cli = Cli::parse();
    let overrides = Overrides {
        listen: cli.listen,
        vault_dir: cli.vault_dir.clone(),
        audit_log: cli.audit_log.clone(),
        tls_dir: cli.tls_dir.clone(),
        log_format: cli.log_format,
        metrics_listen: cli.metrics_listen,
    };
    let env = |name: &str| std::env::var(name).ok();
    let config = match Config::load(cli.config.as_deref(), &env, &overrides) {
        Ok(config) => config,
        Err(e) => return fail(&e),
    };
    if let Some(Command::PrintConfig) = cli.command {
        print!("{}", config.to_toml());
        return ExitCode::SUCCESS;
    }
    let filter = std::env::var(vaultd::logger::FILTER_VAR).ok();
    if let Err(e) = vaultd::logger::filter(filter.as_deref())
        .and_then(|filter| vaultd::logger::init(config.log_format, filter))
    {
        return fail(&e);
    }
    if let Err(e) = hardened {
        tracing::warn!("{e}");
    }
    let dev = cli.dev.then(|| DevDir {
        root: absolute(&cli.dev_dir),
    });
    let config = match &dev {
        Some(dev) => match dev.prepare(config) {
            Ok(config) => config,
            Err(e) => return fail(&e),
        },
        None => config,
    };
    // SIGHUP builds the configuration again the same way: the file read anew, the same
    // environment and flags, and --dev's additions.
    let load_config: vaultd::reload::LoadConfig = {
        let (file, dev) = (cli.config.clone(), dev.clone());
        Box::new(move || {
            let env = |name: &str| std::env::var(name).ok();
            let config = Config::load(file.as_deref(), &env, &overrides)?;
            match &dev {
                Some(dev) => dev.prepare(config),
                None => Ok(config),
            }
        })
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    let result = runtime.block_on(vaultd::server::serve(
        config,
        cli.config.as_deref(),
        cli.new_audit_log,
        load_config,
        |addr| {
            println!("vaultd listening on https://{addr}");
            if let Some(dev) = &dev {
                println!("development vault in {}; to use it:", dev.root.display());
                print!("{}", dev.client_env(addr));
                println!("vaultctl status");
            }
            use std::io::Write;
            let _ = std::io::stdout().flush();
        },
    ));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("vaultd: {e}");
    ExitCode::FAILURE
}
