//! Starting the daemon: checks, the vault, the gates, TLS, and serving until SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use proto::v1::vault_service_server::VaultServiceServer;
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tonic::Request;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tower::limit::GlobalConcurrencyLimitLayer;
use vault::audit::replicas::ReplicaChain;
use vault::audit::{AuditLog, AuditOptions};
use vault::{Kek, Vault};

use crate::acl::Acl;
use crate::config::Config;
use crate::gates::{Gates, Rules};
use crate::health::Readiness;
use crate::metrics::{KekMetrics, StateCollector};
use crate::ops::Telemetry;
use crate::pool::KekPool;
use crate::principal::Principals;
use crate::reload::{Hangups, LoadConfig, Reloader};
use crate::revocation::Revocations;
use crate::root_keks::RootKeks;
use crate::service::Api;
use crate::tls::{AuditRefusedHandshakes, Handshakes};

/// How long after the request timeout a drain may still take before open connections are
/// closed (see `serve`).
const DRAIN_MARGIN: Duration = Duration::from_secs(1);

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A file is readable by others, or missing.
    #[error(transparent)]
    Pki(#[from] pki::Error),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The vault could not be opened.
    #[error(transparent)]
    Vault(#[from] vault::Error),
    /// A KEK could not be built.
    #[error(transparent)]
    Kek(#[from] kek_providers::Error),
    /// The revocation list is missing.
    #[error(
        "{} is missing: vaultd does not start without its revocation list (deleting it must \
         not unrevoke anyone); create an empty one with `install -m 600 /dev/null {}`, or \
         restore it",
        path.display(),
        path.display()
    )]
    NoRevocationList {
        /// Where it should be.
        path: std::path::PathBuf,
    },
    /// TLS or the listener failed.
    #[error("{0}")]
    Serve(String),
}

/// Refuses to start on key, configuration or data files that others can read, and on a
/// trust anchor, revocation list or directory (TLS, vault) that others can write.
pub fn check_files(config: &Config, config_file: Option<&Path>) -> Result<(), StartError> {
    let tls = config.tls_dir();
    let revoked = pki::PkiDir::new(&tls).revoked();
    if !revoked.exists() {
        return Err(StartError::NoRevocationList { path: revoked });
    }
    for path in [
        config.vault_dir.clone(),
        tls.clone(),
        tls.join("ca.pem"),
        revoked,
    ] {
        pki::check_not_writable_by_others(&path)?;
    }
    let mut files = vec![tls.join("server.key")];
    if tls.join("ca.key").exists() {
        files.push(tls.join("ca.key"));
    }
    files.extend(config_file.map(Path::to_path_buf));
    for name in [vault::CONFIG_FILE, "secrets.db"] {
        let path = config.vault_dir.join(name);
        if path.exists() {
            files.push(path);
        }
    }
    let audit = config.audit_log_path();
    if audit.exists() {
        files.push(audit);
    }
    for file in files {
        pki::check_private(&file)?;
    }
    Ok(())
}

/// Opens the vault with its pinned KEKs (or the configured ones), their calls measured by
/// `metrics`; KEKs that cannot be built are reported and skipped while another one remains.
pub fn open_vault(config: &Config, metrics: &KekMetrics) -> Result<(Vault, Vec<Kek>), StartError> {
    let dir = &config.vault_dir;
    let keks = metrics.instrument(Kek::build_all(dir, &config.kek)?);
    let mut vault = Vault::open(dir, None, keks.clone())?;
    vault.set_cache_ttl(Duration::from_secs(config.limits.cache_ttl_secs));
    // On a store replicas share, one daemon at a time runs its singleton jobs.
    vault.join_leader_election()?;
    // A daemon seals many secrets: lease epoch wraps in large blocks.
    vault.set_epoch_lease(1024);
    Ok((vault, keks))
}

/// Opens the audit log with the vault's audit key, its anchor in `vault.json` and the
/// configured checkpoint sinks; `new_log` starts a new one where the anchor says one was
/// (`--new-audit-log`).
pub fn open_audit(
    config: &Config,
    vault: &Arc<Vault>,
    new_log: bool,
) -> Result<AuditLog, StartError> {
    let vault_id = Vault::read_config(vault.dir())?.id;
    let mut options = AuditOptions::new(Arc::new(vault.following_audit_anchor()), &vault_id);
    options.sinks = crate::checkpoint_sinks::from_config(&config.audit)?;
    options.checkpoint_interval = Duration::from_secs(config.audit.checkpoint_interval_secs);
    options.new_log = new_log;
    options.max_segment_bytes = config.audit.max_segment_bytes;
    let key = vault.audit_key()?;
    // On a store replicas share, the records go to this replica's chain there too, and the
    // leader checkpoints every replica's chain.
    if let Some(chain) = ReplicaChain::new(vault, &key, options.checkpoint_interval)? {
        options.mirror = Some(chain);
    }
    let audit = AuditLog::open(&config.audit_log_path(), key, options)?;
    let status = audit.status();
    log::info!(
        "audit log {}: {} records, segment {}; its checkpoints verify with public key {}",
        audit.path().display(),
        status.records,
        status.segment,
        status.checkpoint_public_key
    );
    Ok(audit)
}

/// Serves until SIGTERM or SIGINT, then drains in-flight calls (closing connections still
/// open after the request timeout and `DRAIN_MARGIN`), waits for calls still running
/// detached, closes the audit log (a last checkpoint and anchor) and drops every key.
/// SIGHUP reloads with `load_config` (see `crate::reload`); a service manager is told what
/// happens (see `crate::notify`).
/// `new_audit_log` is `--new-audit-log`. `on_listening` receives the bound address (the port
/// may have been 0).
pub async fn serve(
    config: Config,
    config_file: Option<&Path>,
    new_audit_log: bool,
    load_config: LoadConfig,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), StartError> {
    check_files(&config, config_file)?;
    if config.hardening.mlockall {
        envelope::memory::lock_all_memory().map_err(|e| StartError::Serve(e.to_string()))?;
    }
    let telemetry = Telemetry::new();
    let (vault, keks) = open_vault(&config, &telemetry.metrics().keks)?;
    let vault = Arc::new(vault);
    let audit = Arc::new(open_audit(&config, &vault, new_audit_log)?);
    let tls_dir = pki::PkiDir::new(config.tls_dir());
    let revocations = Arc::new(Revocations::load(tls_dir.revoked())?);
    revocations.watch();
    let principals = Arc::new(Principals::new(Arc::clone(&revocations)));
    let health_principals = Arc::clone(&principals);
    let rules = Rules::new(Acl::new(&config.acl)?, &config.limits);
    let limits = &config.limits;
    let pool = KekPool::new(
        limits.kek_threads,
        Duration::from_millis(limits.request_timeout_ms),
    );
    let gates = Arc::new(
        Gates::new(
            Arc::clone(&vault),
            rules,
            principals,
            Arc::clone(&audit),
            pool.clone(),
        )
        .with_metrics(telemetry.metrics()),
    );
    let keks = RootKeks::new(config.vault_dir.clone(), config.kek.clone(), keks)
        .metered(telemetry.metrics().keks.clone());
    let api = Api::new(Arc::clone(&gates), keks);
    flush_denials_every_window(&gates);

    let handshakes = Arc::new(arc_swap::ArcSwap::from_pointee(Handshakes {
        acceptor: crate::tls::acceptor(&tls_dir, Arc::clone(&revocations))?,
        deadline: limits.handshake_timeout(),
    }));
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    // Health is not behind the gates (it reveals nothing and is not audited), but a
    // connection opened before its certificate was revoked gets no new Watch either.
    let health_service = InterceptedService::new(health_service, move |request: Request<()>| {
        let certs = request.peer_certs();
        health_principals
            .identify(certs.as_deref().map(Vec::as_slice))
            .map(|_| request)
            .map_err(|refused| refused.status)
    });
    health_reporter
        .set_serving::<VaultServiceServer<Api>>()
        .await;
    // Health follows readiness from here on; metrics and probes on their own listener.
    let readiness = Arc::new(Readiness::new(Arc::clone(&vault), audit, api.root_keks()));
    let state = StateCollector::new(
        Arc::clone(&vault),
        Arc::clone(gates.audit()),
        pool,
        Arc::clone(&readiness),
    );
    let _ops = crate::ops::start(
        config.metrics_listen,
        telemetry,
        readiness,
        state,
        health_reporter.clone(),
        <VaultServiceServer<Api> as tonic::server::NamedService>::NAME,
    )
    .await?;

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| StartError::Serve(format!("listening on {}: {e}", config.listen)))?;
    let bound = listener
        .local_addr()
        .map_err(|e| StartError::Serve(e.to_string()))?;
    // The handlers are installed before anyone learns the address: a SIGTERM sent as soon as
    // the daemon says it listens drains it, and a SIGHUP reloads it, instead of killing it.
    let signals = ShutdownSignals::install();
    let hangups = Hangups::install();
    on_listening(bound);
    let notifier = crate::notify::Notifier::new();
    notifier.ready_when_unlocked(&vault, bound.to_string());
    let reloader = Reloader::new(
        load_config,
        config.clone(),
        config_file.map(Path::to_path_buf),
        Arc::clone(&gates),
        revocations,
        Arc::clone(&handshakes),
        Arc::clone(&notifier),
    );
    reloader.on_hangups(hangups);

    // tonic's graceful shutdown waits for every connection to close, without a limit: one
    // client that stops reading (a hung or stopped process) would keep the daemon from
    // exiting. Every call ends within the request timeout, so after the signal the drain
    // gets that long, plus a margin for the last answers to leave.
    let (signalled, drain_started) = tokio::sync::oneshot::channel();
    let shutdown = async move {
        signals.received().await;
        notifier.stopping();
        let _ = signalled.send(());
    };
    let drain_deadline = limits.request_timeout() + DRAIN_MARGIN;
    let overdue = async move {
        match drain_started.await {
            Ok(()) => tokio::time::sleep(drain_deadline).await,
            Err(_) => std::future::pending().await,
        }
    };
    // The one place refused handshakes are reported (see `tls::HandshakeRefusalHook`).
    let incoming = crate::tls::incoming_with(
        listener,
        handshakes,
        Arc::new(AuditRefusedHandshakes::new(
            Arc::clone(gates.denials()),
            Arc::clone(gates.metrics()),
        )),
    );
    let serving = Server::builder()
        .timeout(Duration::from_millis(limits.request_timeout_ms))
        .layer(GlobalConcurrencyLimitLayer::new(
            limits.max_concurrent_requests,
        ))
        .add_service(health_service)
        .add_service(
            VaultServiceServer::new(api)
                .max_decoding_message_size(limits.max_message_bytes)
                .max_encoding_message_size(limits.max_message_bytes),
        )
        .serve_with_incoming_shutdown(incoming, shutdown);
    tokio::select! {
        served = serving => {
            served.map_err(|e| StartError::Serve(e.to_string()))?;
            log::info!("stopped: in-flight calls drained; keys are dropped and zeroized");
        }
        () = overdue => log::warn!(
            "stopped: connections still open {} ms after the signal (clients that stopped \
             reading) are closed; every call was answered or timed out; keys are dropped and zeroized",
            drain_deadline.as_millis()
        ),
    }
    // Calls whose requests are gone may still be running (a state change past its
    // deadline): their records come before the log's last checkpoint.
    gates.calls.close();
    if tokio::time::timeout(drain_deadline, gates.calls.wait())
        .await
        .is_err()
    {
        log::warn!(
            "{} call(s) still running {} ms after the drain: their outcome-unknown records stand, their late records are not written",
            gates.calls.len(),
            drain_deadline.as_millis()
        );
    }
    gates.denials().flush();
    gates.audit().close();
    drop(vault);
    Ok(())
}

/// Writes the counts of repeated denials every window, also when denials stop coming.
fn flush_denials_every_window(gates: &Gates) {
    let denials = Arc::downgrade(gates.denials());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(crate::denials::WINDOW);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match denials.upgrade() {
                Some(denials) => denials.flush_ended(),
                None => return,
            }
        }
    });
}

/// SIGTERM and SIGINT, listened for from the moment they are installed.
struct ShutdownSignals(Option<(Signal, Signal)>);

impl ShutdownSignals {
    fn install() -> Self {
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => ShutdownSignals(Some((term, int))),
            _ => {
                log::error!("cannot listen for SIGTERM; stop the daemon with SIGKILL");
                ShutdownSignals(None)
            }
        }
    }

    /// Resolves on SIGTERM or SIGINT.
    async fn received(self) {
        let Some((mut term, mut int)) = self.0 else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => log::info!("SIGTERM: draining"),
            _ = int.recv() => log::info!("SIGINT: draining"),
        }
    }
}
