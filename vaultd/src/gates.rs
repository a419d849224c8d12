//! The gates every request passes, cheapest first, each denial audited with a stable status:
//! locked (FAILED_PRECONDITION) -> principal unknown or revoked (UNAUTHENTICATED) -> rate
//! limit (RESOURCE_EXHAUSTED) -> ACL (PERMISSION_DENIED) -> scope and key validation
//! (INVALID_ARGUMENT) -> the vault. Allowed calls are audited with their outcome before the
//! response leaves.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tonic::{Code, Request, Status};
use vault::audit::{AuditEvent, AuditLog, Decision};

use crate::acl::{Acl, Operation};
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

/// Everything the gates need, shared by all requests.
#[derive(Debug)]
pub struct Gates {
    pub(crate) vault: Arc<vault::Vault>,
    acl: Acl,
    principals: Arc<Principals>,
    limiter: DefaultKeyedRateLimiter<Arc<str>>,
    audit: Arc<AuditLog>,
    pub(crate) pool: KekPool,
}

impl Gates {
    /// Gates over `vault` with these rules, limits and log.
    pub fn new(
        vault: Arc<vault::Vault>,
        acl: Acl,
        principals: Arc<Principals>,
        rate_per_second: u32,
        burst: u32,
        audit: Arc<AuditLog>,
        pool: KekPool,
    ) -> Self {
        let rate = NonZeroU32::new(rate_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Gates {
            vault,
            acl,
            principals,
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            audit,
            pool,
        }
    }

    /// The ACL, for filtering lists.
    pub fn acl(&self) -> &Acl {
        &self.acl
    }

    /// The audit log.
    pub fn audit(&self) -> &Arc<AuditLog> {
        &self.audit
    }

    /// Runs the gates for `ask`; the caller if every gate lets it through.
    pub async fn admit<T>(&self, request: &Request<T>, ask: Ask<'_>) -> Result<Caller, Status> {
        if !ask.op.is_administrative() && self.vault.is_locked() {
            let status =
                Status::failed_precondition("the vault is locked: an admin must unlock it");
            return Err(self.deny(None, ask, status).await);
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
                return Err(self
                    .deny(refused.caller.as_ref(), ask, refused.status)
                    .await);
            }
        };
        if !self.acl.knows(&caller.id) {
            let status = Status::unauthenticated(format!(
                "principal {} is not known to this vault",
                caller.id
            ));
            return Err(self.deny(Some(&caller), ask, status).await);
        }
        if self.limiter.check_key(&caller.id).is_err() {
            let status = Status::resource_exhausted(format!(
                "rate limit of principal {} exceeded; retry later",
                caller.id
            ));
            return Err(self.deny(Some(&caller), ask, status).await);
        }
        if !self.acl.allows(&caller.id, ask.op, ask.scope, ask.key) {
            let status = Status::permission_denied(format!(
                "principal {} may not {} {} {}",
                caller.id,
                ask.op.as_str(),
                ask.scope,
                ask.key
            ));
            return Err(self.deny(Some(&caller), ask, status).await);
        }
        if let Err(status) = crate::service::checks::check_names(&ask) {
            return Err(self.deny(Some(&caller), ask, status).await);
        }
        Ok(caller)
    }

    /// Audits the outcome of an admitted call and passes it on; an outcome that cannot be
    /// audited is not returned.
    pub async fn finish<T>(
        &self,
        caller: &Caller,
        ask: Ask<'_>,
        outcome: Result<T, Status>,
    ) -> Result<T, Status> {
        let status = match &outcome {
            Ok(_) => Code::Ok,
            Err(s) => s.code(),
        };
        let reason = outcome.as_ref().err().map(|s| s.message().to_owned());
        self.record(Some(caller), ask, Decision::Allow, status, reason)
            .await?;
        outcome
    }

    async fn deny(&self, caller: Option<&Caller>, ask: Ask<'_>, status: Status) -> Status {
        match self
            .record(
                caller,
                ask,
                Decision::Deny,
                status.code(),
                Some(status.message().to_owned()),
            )
            .await
        {
            Ok(()) => status,
            Err(audit_failure) => audit_failure,
        }
    }

    async fn record(
        &self,
        caller: Option<&Caller>,
        ask: Ask<'_>,
        decision: Decision,
        status: Code,
        reason: Option<String>,
    ) -> Result<(), Status> {
        let event = AuditEvent {
            principal: caller.map_or_else(|| "-".to_owned(), |c| c.id.to_string()),
            op: ask.rpc.to_owned(),
            scope: Some(ask.scope.to_owned()),
            key: Some(ask.key.to_owned()),
            decision,
            status: code_name(status),
            reason,
        };
        // The log's writer thread does the write and fsync; this task just waits for it.
        self.audit.append_async(event).await.map_err(|e| {
            log::error!("audit log write failed: {e}");
            Status::unavailable("the audit log cannot be written; the request was not completed")
        })
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
        E::InvalidScope { .. } | E::InvalidKeyName { .. } | E::ValueTooLarge { .. } => {
            Status::invalid_argument(text)
        }
        E::Locked
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
