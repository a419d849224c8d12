//! The VaultService RPCs: each one names what it asks for, passes the gates, runs on the
//! bounded pool (or inline when it needs only keys in memory), and is audited (`calls`).
//! One file per RPC group: `kv`, `transit`, `admin`.

mod admin;
mod calls;
pub mod checks;
mod kv;
mod transit;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use proto::v1 as pb;
use proto::v1::vault_service_server::VaultService;
use tonic::{Code, Request, Response, Status};
use tracing::Instrument;
use tracing::field::Empty;

use crate::gates::{Ask, CallRecord, Gates, status_of};
use crate::metrics::Method;
use crate::root_keks::RootKeks;

/// The service; cheap to clone (one per connection).
#[derive(Debug, Clone)]
pub struct Api {
    gates: Arc<Gates>,
    keks: Arc<RootKeks>,
    /// Whether a renewal of the epoch lease is queued on the pool (see `calls`).
    lease_renewal: Arc<AtomicBool>,
}

impl Api {
    /// The service over `gates`; `keks` are the root KEKs the vault was opened with, which
    /// `Lock` drops and `Unlock` builds again.
    pub fn new(gates: Arc<Gates>, keks: RootKeks) -> Self {
        Api {
            gates,
            keks: Arc::new(keks),
            lease_renewal: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The root KEKs (for the readiness probe).
    pub fn root_keks(&self) -> Arc<RootKeks> {
        Arc::clone(&self.keks)
    }

    /// Runs one request of `method` in its span (method, then principal and outcome as they
    /// are known), counted and timed by method and status code. The span is at debug level:
    /// an enabled span costs the log formatter a microsecond or two per request, a disabled
    /// one next to nothing.
    async fn observed<T>(
        &self,
        method: Method,
        call: impl Future<Output = Result<Response<T>, Status>>,
    ) -> Result<Response<T>, Status> {
        let span = tracing::debug_span!(
            "request",
            method = method.as_str(),
            principal = Empty,
            outcome = Empty
        );
        let timer = self.gates.metrics.requests.start(method, span.clone());
        let answer = call.instrument(span).await;
        timer.finish(answer.as_ref().map_or_else(Status::code, |_| Code::Ok));
        answer
    }

    /// Gates, then `work` inline when it needs only keys in memory (seal, open, rewrap of
    /// a tiered vault with its epoch lease, or of a direct vault whose KEKs compute in
    /// process), where a hop to the pool would cost more than the work; on the pool when it
    /// would reach a device (see `vault::Vault::without_devices`). Either way one `outcome`
    /// record. A lease running low is renewed on the pool meanwhile, so sealing does not
    /// wait for it.
    async fn call_in_memory<Req, T: Send + 'static>(
        &self,
        request: &Request<Req>,
        ask: Ask<'_>,
        work: impl Fn(&vault::Vault) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let caller = self.gates.admit(request, ask).await?;
        let call = CallRecord::new(&caller, request.remote_addr(), ask);
        match self.gates.vault.without_devices(&work) {
            Some(outcome) => {
                self.renew_lease_ahead();
                self.gates.finish(&call, outcome).await
            }
            None => self.read_on_pool(call, work).await,
        }
    }
}

fn vault_err(e: vault::Error) -> Status {
    status_of(&e)
}

#[tonic::async_trait]
impl VaultService for Api {
    async fn put(
        &self,
        request: Request<pb::PutRequest>,
    ) -> Result<Response<pb::PutResponse>, Status> {
        self.observed(Method::Put, kv::put(self, request)).await
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        self.observed(Method::Get, kv::get(self, request)).await
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        self.observed(Method::Delete, kv::delete(self, request))
            .await
    }

    async fn list(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        self.observed(Method::List, kv::list(self, request)).await
    }

    async fn seal(
        &self,
        request: Request<pb::SealRequest>,
    ) -> Result<Response<pb::SealResponse>, Status> {
        self.observed(Method::Seal, transit::seal(self, request))
            .await
    }

    async fn open(
        &self,
        request: Request<pb::OpenRequest>,
    ) -> Result<Response<pb::OpenResponse>, Status> {
        self.observed(Method::Open, transit::open(self, request))
            .await
    }

    async fn rewrap(
        &self,
        request: Request<pb::RewrapRequest>,
    ) -> Result<Response<pb::RewrapResponse>, Status> {
        self.observed(Method::Rewrap, transit::rewrap(self, request))
            .await
    }

    async fn generate_data_key(
        &self,
        request: Request<pb::GenerateDataKeyRequest>,
    ) -> Result<Response<pb::GenerateDataKeyResponse>, Status> {
        self.observed(
            Method::GenerateDataKey,
            transit::generate_data_key(self, request),
        )
        .await
    }

    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        self.observed(Method::Status, admin::status(self, request))
            .await
    }

    async fn unlock(
        &self,
        request: Request<pb::UnlockRequest>,
    ) -> Result<Response<pb::UnlockResponse>, Status> {
        self.observed(Method::Unlock, admin::unlock(self, request))
            .await
    }

    async fn lock(
        &self,
        request: Request<pb::LockRequest>,
    ) -> Result<Response<pb::LockResponse>, Status> {
        self.observed(Method::Lock, admin::lock(self, request))
            .await
    }

    async fn rotate(
        &self,
        request: Request<pb::RotateRequest>,
    ) -> Result<Response<pb::RotateResponse>, Status> {
        self.observed(Method::Rotate, admin::rotate(self, request))
            .await
    }

    async fn kek_check(
        &self,
        request: Request<pb::KekCheckRequest>,
    ) -> Result<Response<pb::KekCheckResponse>, Status> {
        self.observed(Method::KekCheck, admin::kek_check(self, request))
            .await
    }

    async fn audit_tail(
        &self,
        request: Request<pb::AuditTailRequest>,
    ) -> Result<Response<pb::AuditTailResponse>, Status> {
        self.observed(Method::AuditTail, admin::audit_tail(self, request))
            .await
    }

    async fn audit_verify(
        &self,
        request: Request<pb::AuditVerifyRequest>,
    ) -> Result<Response<pb::AuditVerifyResponse>, Status> {
        self.observed(Method::AuditVerify, admin::audit_verify(self, request))
            .await
    }

    async fn audit_rotate(
        &self,
        request: Request<pb::AuditRotateRequest>,
    ) -> Result<Response<pb::AuditRotateResponse>, Status> {
        self.observed(Method::AuditRotate, admin::audit_rotate(self, request))
            .await
    }
}
