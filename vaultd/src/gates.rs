//! The gates every request passes, cheapest first, each denial audited with a stable status:
//! locked (FAILED_PRECONDITION) -> principal unknown or revoked (UNAUTHENTICATED) -> rate
//! limit (RESOURCE_EXHAUSTED) -> ACL (PERMISSION_DENIED) -> scope and key validation
//! (INVALID_ARGUMENT) -> the vault. Denials go through the [`DenialRecorder`] (rate-limited,
//! aggregated); allowed calls are audited by the service (see `service::calls`): a state
//! change is recorded as started before it runs and with its outcome after, a read with its
//! outcome before the reply leaves.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::{ArcSwap, Guard};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio_util::task::TaskTracker;
use tonic::{Code, Request, Status};
use vault::audit::{AuditEvent, AuditLog, Decision, Stage};

use crate::acl::{Acl, Operation};
use crate::config::Limits;
use crate::denials::{DenialRecorder, Denied};
use crate::metrics::{DenialReason, Metrics};
use crate::pool::KekPool;
use crate::principal::{Caller, Principals};

/// What one request asks for, as the gates and the audit log see it.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// The RPC, for the audit log (`get`, `put`, `seal`, ...).
    pub rpc: &'static str,
    /// The operation the ACL checks.
    pub op: Operation,
    /// The scope (`transit` for caller data, `admin` for administration).
    pub scope: &'a str,
    /// The key name (the context for caller data, `*` otherwise).
    pub key: &'a str,
    /// Whether scope and key are a secret's address, to be validated.
    pub names_a_secret: bool,
}

/// The rules a reload replaces (see `crate::reload`): the ACL, the rate limit and the
/// largest secret. Swapped whole, so one request sees one set; read without a lock.
#[derive(Debug)]
pub struct Rules {
    /// The access rules.
    pub acl: Acl,
    limiter: Arc<DefaultKeyedRateLimiter<Arc<str>>>,
    /// `limits.rate_per_second` and `limits.burst` the limiter was made with.
    rate: (u32, u32),
    /// `limits.max_secret_bytes`.
    pub max_secret_bytes: usize,
}

impl Rules {
    /// The rules of `acl` and `limits`, with a new rate limiter.
    pub fn new(acl: Acl, limits: &Limits) -> Self {
        let rate = NonZeroU32::new(limits.rate_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(limits.burst).unwrap_or(NonZeroU32::MIN);
        Rules {
            acl,
            limiter: Arc::new(RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            )),
            rate: (limits.rate_per_second, limits.burst),
            max_secret_bytes: limits.max_secret_bytes,
        }
    }

    /// The rules of `acl` and `limits` to replace `self` with: the rate limiter (and what
    /// each principal has used of it) carries over unless the rate or the burst changed.
    pub fn replacing(&self, acl: Acl, limits: &Limits) -> Self {
        let mut rules = Rules::new(acl, limits);
        if rules.rate == self.rate {
            rules.limiter = Arc::clone(&self.limiter);
        }
        rules
    }

    /// The gates this set decides: principal known, rate limit, ACL.
    fn check(&self, caller: &Caller, ask: Ask<'_>) -> Result<(), (DenialReason, Status)> {
        if !self.acl.knows(&caller.id) {
            let status = Status::unauthenticated(format!(
                "principal {} is not known to this vault",
                caller.id
            ));
            return Err((DenialReason::UnknownPrincipal, status));
        }
        if self.limiter.check_key(&caller.id).is_err() {
            let status = Status::resource_exhausted(format!(
                "rate limit of principal {} exceeded; retry later",
                caller.id
            ));
            return Err((DenialReason::RateLimited, status));
        }
        // A List is admitted on its scope alone (every scope: `*`): the secrets it returns
        // are then those the caller may list, key by key, so that a rule for some keys of a
        // scope lists those instead of refusing the call.
        let allowed = match ask.op {
            Operation::List => self
                .acl
                .may_list(&caller.id, (ask.scope != "*").then_some(ask.scope)),
            op => self.acl.allows(&caller.id, op, ask.scope, ask.key),
        };
        if !allowed {
            let status = Status::permission_denied(format!(
                "principal {} may not {} {} {}",
                caller.id,
                ask.op.as_str(),
                ask.scope,
                ask.key
            ));
            return Err((DenialReason::Acl, status));
        }
        Ok(())
    }
}

/// Everything the gates need, shared by all requests.
#[derive(Debug)]
pub struct Gates {
    pub(crate) vault: Arc<vault::Vault>,
    rules: ArcSwap<Rules>,
    principals: Arc<Principals>,
    audit: Arc<AuditLog>,
    denials: Arc<DenialRecorder>,
    pub(crate) pool: KekPool,
    /// The calls running detached from their requests (see `service::calls`): shutdown waits
    /// for them before the audit log closes.
    pub(crate) calls: TaskTracker,
    /// What the request path counts.
    pub(crate) metrics: Arc<Metrics>,
}

/// Who made an admitted call and what it asked: what each of its records repeats.
#[derive(Debug, Clone)]
pub struct CallRecord {
    principal: Arc<str>,
    cert: Arc<str>,
    peer: Option<SocketAddr>,
    rpc: &'static str,
    scope: String,
    key: String,
}

impl CallRecord {
    /// The record of `caller`'s call from `peer` asking `ask`.
    pub fn new(caller: &Caller, peer: Option<SocketAddr>, ask: Ask<'_>) -> Self {
        CallRecord {
            principal: Arc::clone(&caller.id),
            cert: Arc::clone(&caller.fingerprint),
            peer,
            rpc: ask.rpc,
            scope: ask.scope.to_owned(),
            key: ask.key.to_owned(),
        }
    }

    /// The event of this call at `stage`, with `outcome`'s status and message.
    fn event<T>(
        &self,
        stage: Stage,
        call: Option<u64>,
        outcome: Option<&Result<T, Status>>,
        version: Option<u64>,
    ) -> AuditEvent {
        let (status, reason) = match outcome {
            None | Some(Ok(_)) => (Code::Ok, None),
            Some(Err(s)) => (s.code(), Some(s.message().to_owned())),
        };
        AuditEvent {
            stage,
            call,
            principal: self.principal.to_string(),
            cert: Some(self.cert.to_string()),
            peer: self.peer.map(|p| p.to_string()),
            op: self.rpc.to_owned(),
            scope: Some(self.scope.clone()),
            key: Some(self.key.clone()),
            version,
            reason,
            ..AuditEvent::new(Decision::Allow, code_name(status))
        }
    }
}

/// The answer when the audit log cannot take a record: UNAVAILABLE, saying so and what
/// became of the request (`what`).
pub fn audit_unavailable(error: &vault::Error, what: &str) -> Status {
    log::error!("audit log write failed: {error}");
    Status::unavailable(format!(
        "the audit log cannot be written, so {what}; an operator must fix it and restart vaultd (vaultctl status shows why)"
    ))
}

impl Gates {
    /// Gates over `vault` with these rules and log.
    pub fn new(
        vault: Arc<vault::Vault>,
        rules: Rules,
        principals: Arc<Principals>,
        audit: Arc<AuditLog>,
        pool: KekPool,
    ) -> Self {
        Gates {
            vault,
            rules: ArcSwap::from_pointee(rules),
            principals,
            denials: Arc::new(DenialRecorder::new(Arc::clone(&audit))),
            audit,
            pool,
            calls: TaskTracker::new(),
            metrics: Arc::new(Metrics::unregistered()),
        }
    }

    /// The rules in force now (for filtering lists, transit bindings, sizes). A short-lived
    /// guard: read what is needed and drop it, never hold it across an await.
    pub fn rules(&self) -> Guard<Arc<Rules>> {
        self.rules.load()
    }

    /// Puts `rules` in force for the requests that pass the gates from now on; requests
    /// already past them finish under the rules they were admitted with.
    pub fn replace_rules(&self, rules: Rules) {
        self.rules.store(Arc::new(rules));
    }

    /// The same gates, counting into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// What the request path counts.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The audit log.
    pub fn audit(&self) -> &Arc<AuditLog> {
        &self.audit
    }

    /// The denial recorder (also for refusals outside a request, such as TLS handshakes).
    pub fn denials(&self) -> &Arc<DenialRecorder> {
        &self.denials
    }

    /// Runs the gates for `ask`; the caller if every gate lets it through.
    pub async fn admit<T>(&self, request: &Request<T>, ask: Ask<'_>) -> Result<Caller, Status> {
        let peer = request.remote_addr();
        if !ask.op.is_administrative() && self.vault.is_locked() {
            let status =
                Status::failed_precondition("the vault is locked: an admin must unlock it");
            return Err(self
                .deny(DenialReason::Locked, None, peer, ask, status)
                .await);
        }
        let certs = request.peer_certs();
        let caller = match self
            .principals
            .identify(certs.as_deref().map(Vec::as_slice))
        {
            Ok(caller) => caller,
            // A revoked certificate still names its principal: the denial is recorded under
            // that name, where an operator looks for it.
            Err(refused) => {
                let reason = DenialReason::Unauthenticated;
                let caller = refused.caller.as_ref();
                if let Some(caller) = caller {
                    tracing::Span::current().record("principal", &*caller.id);
                }
                return Err(self.deny(reason, caller, peer, ask, refused.status).await);
            }
        };
        // The request's span (see `service`) names who is calling from here on.
        tracing::Span::current().record("principal", &*caller.id);
        // One load of the rules for the three gates they decide; the guard is gone before
        // the denial is awaited.
        let decided = self.rules.load().check(&caller, ask);
        if let Err((reason, status)) = decided {
            return Err(self.deny(reason, Some(&caller), peer, ask, status).await);
        }
        if let Err(status) = crate::service::checks::check_names(&ask) {
            let reason = DenialReason::InvalidName;
            return Err(self.deny(reason, Some(&caller), peer, ask, status).await);
        }
        Ok(caller)
    }

    async fn deny(
        &self,
        reason: DenialReason,
        caller: Option<&Caller>,
        peer: Option<SocketAddr>,
        ask: Ask<'_>,
        status: Status,
    ) -> Status {
        self.metrics.denied(reason);
        let (cert, principal) = (caller.map(|c| &*c.fingerprint), caller.map(|c| &*c.id));
        let answer = self
            .denials
            .record(cert, principal, peer, Denied::from(ask), status)
            .await;
        // A caller refused in a loop waits for its answers instead of taking the processors.
        self.denials.pace(cert, principal, peer).await;
        answer
    }

    /// Audits the outcome of an admitted call that changed nothing and passes it on; an
    /// outcome that cannot be audited is not returned.
    pub async fn finish<T>(
        &self,
        call: &CallRecord,
        outcome: Result<T, Status>,
    ) -> Result<T, Status> {
        self.record_outcome(call, &outcome).await?;
        outcome
    }

    /// Records the one `outcome` record of a call that changed nothing (queued by this call,
    /// written to the log file when the future resolves: it outlives a crash or kill of
    /// vaultd, and its batch's fsync follows at once; a read need not wait for the disk as a
    /// change does); the error is the answer to give when the log cannot take it.
    pub fn record_outcome<T>(
        &self,
        call: &CallRecord,
        outcome: &Result<T, Status>,
    ) -> impl Future<Output = Result<(), Status>> + Send + 'static {
        let event = call.event(Stage::Outcome, None, Some(outcome), None);
        let (started, writes) = (Instant::now(), self.metrics.audit_writes());
        let durable = self.audit.append_written(event);
        async move {
            let written = durable.await;
            writes.observe(started.elapsed().as_secs_f64());
            written.map_err(|e| audit_unavailable(&e, "the request was not completed"))
        }
    }

    /// Records that `call` is about to change state, durably; the record's seq names the
    /// call in its later records. The change must not start unless this succeeded.
    pub async fn record_started(&self, call: &CallRecord) -> Result<u64, Status> {
        let started = Instant::now();
        let durable = self
            .audit
            .append_async(call.event::<()>(Stage::Started, None, None, None));
        let seq = durable.seq();
        let written = durable.await;
        self.metrics.audit_written(started);
        written.map_err(|e| audit_unavailable(&e, "the request was not carried out"))?;
        seq.ok_or_else(|| Status::internal("the audit log gave no seq"))
    }

    /// Records how the call started at `started` ended (`Outcome`, `OutcomeUnknown` or
    /// `Late`), with the version it wrote if any (queued by this call, durable when the
    /// future resolves).
    pub fn record_end<T>(
        &self,
        call: &CallRecord,
        started: u64,
        stage: Stage,
        outcome: &Result<T, Status>,
        version: Option<u64>,
    ) -> impl Future<Output = Result<(), Status>> + Send + 'static {
        let event = call.event(stage, Some(started), Some(outcome), version);
        let (queued, writes) = (Instant::now(), self.metrics.audit_writes());
        let durable = self.audit.append_async(event);
        async move {
            let written = durable.await;
            writes.observe(queued.elapsed().as_secs_f64());
            written.map_err(|e| {
                audit_unavailable(
                    &e,
                    "the outcome of the request (which may have taken effect) is not recorded",
                )
            })
        }
    }
}

/// The gRPC name of a status code, as the audit log records it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The status a vault error answers with.
pub fn status_of(e: &vault::Error) -> Status {
    use vault::Error as E;
    let text = e.to_string();
    match e {
        E::NotFound { .. } => Status::not_found(text),
        E::InvalidScope { .. }
        | E::InvalidKeyName { .. }
        | E::ValueTooLarge { .. }
        | E::InvalidPageToken => Status::invalid_argument(text),
        E::Locked
        | E::VersionMismatch { .. }
        | E::IncompleteRoot { .. }
        | E::StillInUse { .. }
        | E::Unsupported(_)
        | E::NoKek
        | E::NoKekOpened { .. }
        | E::Kek(_) => Status::failed_precondition(text),
        // Something in the vault directory changed without the vault's keys: the data the
        // call needs cannot be trusted.
        E::Tampered { .. } => Status::data_loss(text),
        E::Envelope(inner) => match inner {
            envelope::Error::Kek { .. } => Status::unavailable(text),
            envelope::Error::NoUsableKek { .. } => Status::failed_precondition(text),
            envelope::Error::Internal(_) => Status::internal(text),
            _ => Status::invalid_argument(text),
        },
        E::Store { .. } | E::Io { .. } => Status::unavailable(text),
        _ => Status::internal(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Limits;

    #[test]
    fn a_reload_keeps_the_rate_limiter_unless_rate_or_burst_change() {
        let limits = Limits::default();
        let rules = Rules::new(Acl::default(), &limits);
        let same = rules.replacing(Acl::default(), &limits);
        assert!(Arc::ptr_eq(&rules.limiter, &same.limiter));
        let faster = Limits {
            rate_per_second: limits.rate_per_second + 1,
            ..limits.clone()
        };
        assert!(!Arc::ptr_eq(
            &rules.limiter,
            &rules.replacing(Acl::default(), &faster).limiter
        ));
        let larger = Limits {
            burst: limits.burst + 1,
            max_secret_bytes: 7,
            ..limits
        };
        let replaced = rules.replacing(Acl::default(), &larger);
        assert!(!Arc::ptr_eq(&rules.limiter, &replaced.limiter));
        assert_eq!(replaced.max_secret_bytes, 7);
    }
}
