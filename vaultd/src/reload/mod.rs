//! SIGHUP: the configuration file, the ACL, the limits, the revocation list and the server
//! certificate and key are read again and put in force, all or nothing, without a restart.
//!
//! Everything is read and checked first: the configuration (file < environment < flags, as
//! at start), the file permissions the start checks, the ACL, the revocation list (as its
//! watcher would take it) and the TLS material (a new acceptor). If anything fails, or a
//! setting that cannot change at runtime changed (see [`restart_only_changes`]), the reload
//! is refused and the running configuration stays entirely. Otherwise the new rules go to
//! the gates and the new acceptor to the listener by swapping one pointer each: requests
//! already admitted finish under the rules they were admitted with, connections keep the
//! TLS session they have, the vault and its unlocked keys are not touched.
//!
//! A reload is a state change and is audited as one: a `started` record (op `reload`,
//! principal `-`) durable before anything is read, and an `outcome` record after (`allow`
//! and `OK` with what is now in force, or `deny` with why it was refused). A reload whose
//! `started` record cannot be written does not happen.

mod restart_only;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::signal::unix::{Signal, SignalKind, signal};
use vault::audit::{AuditEvent, Decision, Stage};

pub use restart_only::restart_only_changes;

use crate::config::Config;
use crate::gates::Gates;
use crate::notify::Notifier;
use crate::revocation::Revocations;
use crate::server::StartError;
use crate::tls::{Handshakes, SharedHandshakes};

/// Builds the configuration again as the daemon was started with it (file, environment,
/// flags, and `--dev`'s additions).
pub type LoadConfig = Box<dyn Fn() -> Result<Config, StartError> + Send + Sync>;

/// The audit operation of a reload.
pub const RELOAD_OP: &str = "reload";

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// The new configuration is in force; what it holds.
    Taken(String),
    /// The running configuration stays; why.
    Refused(String),
}

/// The parts of the running daemon a reload replaces, and how to read the new ones.
pub struct Reloader {
    load: LoadConfig,
    config_file: Option<PathBuf>,
    /// The configuration in force.
    running: Mutex<Config>,
    gates: Arc<Gates>,
    revocations: Arc<Revocations>,
    handshakes: SharedHandshakes,
    notifier: Arc<Notifier>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("config_file", &self.config_file)
            .finish_non_exhaustive()
    }
}

/// What a reload read and checked, ready to be put in force.
struct Prepared {
    config: Config,
    acl: crate::acl::Acl,
    acceptor: tokio_rustls::TlsAcceptor,
    revoked: usize,
    server_cert: String,
}

impl Reloader {
    /// A reloader of the daemon running `config` (read from `config_file`, if any).
    pub fn new(
        load: LoadConfig,
        config: Config,
        config_file: Option<PathBuf>,
        gates: Arc<Gates>,
        revocations: Arc<Revocations>,
        handshakes: SharedHandshakes,
        notifier: Arc<Notifier>,
    ) -> Arc<Self> {
        Arc::new(Reloader {
            load,
            config_file,
            running: Mutex::new(config),
            gates,
            revocations,
            handshakes,
            notifier,
        })
    }

    /// Reloads on every SIGHUP `hangups` receives, one reload at a time, for the life of
    /// the daemon.
    pub fn on_hangups(self: &Arc<Self>, mut hangups: Hangups) {
        let reloader = Arc::clone(self);
        tokio::spawn(async move {
            while hangups.received().await {
                reloader.reload().await;
            }
        });
    }

    /// Reads everything again and puts it in force, or refuses; logs and audits which.
    pub async fn reload(self: &Arc<Self>) -> Reloaded {
        let announced = self.notifier.reloading();
        log::info!("SIGHUP: reloading the configuration");
        let outcome = self.reload_audited().await;
        match &outcome {
            Reloaded::Taken(summary) => {
                log::info!("configuration reloaded: {summary}");
                self.notifier
                    .reloaded(announced, &format!("reloaded: {summary}"));
            }
            Reloaded::Refused(why) => {
                log::error!("reload refused, the running configuration stays: {why}");
                self.notifier
                    .reloaded(announced, &format!("reload refused: {why}"));
            }
        }
        outcome
    }

    async fn reload_audited(self: &Arc<Self>) -> Reloaded {
        let audit = self.gates.audit();
        let started = audit.append_async(self.event(Stage::Started, None, Ok("SIGHUP")));
        let seq = started.seq();
        if let Err(e) = started.await {
            return Reloaded::Refused(format!(
                "the audit log cannot be written ({e}), so nothing was reloaded"
            ));
        }
        let this = Arc::clone(self);
        let outcome = match tokio::task::spawn_blocking(move || this.prepare()).await {
            Ok(Ok(prepared)) => Reloaded::Taken(self.put_in_force(prepared)),
            Ok(Err(why)) => Reloaded::Refused(why),
            Err(_) => Reloaded::Refused("reading the new configuration failed unexpectedly".into()),
        };
        let result = match &outcome {
            Reloaded::Taken(summary) => Ok(summary.as_str()),
            Reloaded::Refused(why) => Err(why.as_str()),
        };
        if let Err(e) = audit
            .append_async(self.event(Stage::Outcome, seq, result))
            .await
        {
            log::error!("the outcome of the reload is not in the audit log: {e}");
        }
        outcome
    }

    /// Reads and checks everything a reload replaces; changes nothing.
    fn prepare(&self) -> Result<Prepared, String> {
        let config = (self.load)().map_err(|e| e.to_string())?;
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let changed = restart_only_changes(&running, &config);
        if !changed.is_empty() {
            return Err(restart_only::refusal(&changed));
        }
        drop(running);
        crate::server::check_files(&config, self.config_file.as_deref())
            .map_err(|e| e.to_string())?;
        let acl = config.acl().map_err(|e| e.to_string())?;
        let revoked = self
            .revocations
            .check()
            .map_err(|e| format!("the revocation list would not be taken: {e}"))?;
        let pki = pki::PkiDir::new(config.tls_dir());
        let acceptor =
            crate::tls::acceptor(&pki, Arc::clone(&self.revocations)).map_err(|e| e.to_string())?;
        let server_cert = server_fingerprint(&pki.server_cert());
        Ok(Prepared {
            config,
            acl,
            acceptor,
            revoked,
            server_cert,
        })
    }

    /// Swaps in what `prepare` made; returns what is now in force.
    fn put_in_force(&self, prepared: Prepared) -> String {
        let Prepared {
            config,
            acl,
            acceptor,
            revoked,
            server_cert,
        } = prepared;
        let limits = &config.limits;
        let rules = self.gates.rules().replacing(acl, limits);
        self.gates.replace_rules(rules);
        self.handshakes.store(Arc::new(Handshakes {
            acceptor,
            deadline: limits.handshake_timeout(),
        }));
        // The same path the watcher takes, now rather than at its next look.
        self.revocations.poll_now();
        let summary = format!(
            "{} ACL rules; rate {}/s, burst {}; max secret {} bytes; handshake timeout {} ms; \
             {revoked} revocation entries; server certificate sha256 {server_cert}",
            config.acl.len(),
            limits.rate_per_second,
            limits.burst,
            limits.max_secret_bytes,
            limits.handshake_timeout_ms,
        );
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = config;
        summary
    }

    /// The audit event of a reload at `stage`: `Ok(what)` allowed, `Err(why)` refused.
    fn event(&self, stage: Stage, call: Option<u64>, result: Result<&str, &str>) -> AuditEvent {
        let (decision, status, reason) = match result {
            Ok(what) => (Decision::Allow, "OK", what),
            Err(why) => (Decision::Deny, "FAILED_PRECONDITION", why),
        };
        AuditEvent {
            stage,
            call,
            op: RELOAD_OP.to_owned(),
            key: self
                .config_file
                .as_ref()
                .map(|file| file.display().to_string()),
            reason: Some(reason.to_owned()),
            ..AuditEvent::new(decision, status)
        }
    }
}

/// The SHA-256 of the first certificate in `server_pem`, for the log (the acceptor was
/// built from the same file a moment before).
fn server_fingerprint(server_pem: &std::path::Path) -> String {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_file(server_pem)
        .map(|der| pki::fingerprint(&der))
        .unwrap_or_else(|_| "unknown (the file changed while it was read)".into())
}

/// SIGHUP, listened for from the moment it is installed (before the daemon says it
/// listens: a SIGHUP's default action would end it).
#[derive(Debug)]
pub struct Hangups(Option<Signal>);

impl Hangups {
    /// Installs the handler. If that fails, it is logged and SIGHUP keeps its default action
    /// (it ends the daemon): a restart is then the way to reload.
    pub fn install() -> Self {
        match signal(SignalKind::hangup()) {
            Ok(hup) => Hangups(Some(hup)),
            Err(e) => {
                log::error!(
                    "cannot listen for SIGHUP ({e}): restart vaultd to reload its configuration"
                );
                Hangups(None)
            }
        }
    }

    /// Resolves with `true` on each SIGHUP; never, if the handler is missing.
    async fn received(&mut self) -> bool {
        match &mut self.0 {
            Some(hup) => hup.recv().await.is_some(),
            None => std::future::pending().await,
        }
    }
}
