//! The VaultService RPCs: each one names what it asks for, passes the gates, runs on the
//! bounded pool (or inline when it only needs software keys), and is audited (`calls`). One
//! file per RPC group: `kv`, `transit`, `admin`.

mod admin;
mod calls;
pub mod checks;
mod kv;
mod transit;

use std::sync::Arc;

use proto::v1 as pb;
use proto::v1::vault_service_server::VaultService;
use tonic::{Request, Response, Status};

use crate::gates::{Ask, CallRecord, Gates, status_of};
use crate::root_keks::RootKeks;

/// The service; cheap to clone (one per connection).
#[derive(Debug, Clone)]
pub struct Api {
    gates: Arc<Gates>,
    keks: Arc<RootKeks>,
}

impl Api {
    /// The service over `gates`; `keks` are the root KEKs the vault was opened with, which
    /// `Lock` drops and `Unlock` builds again.
    pub fn new(gates: Arc<Gates>, keks: RootKeks) -> Self {
        Api {
            gates,
            keks: Arc::new(keks),
        }
    }

    /// Gates, the call inline, and the audit record, around `work`: for reads that only use
    /// software keys in memory (no store, no device), where a hop to the pool would cost more
    /// than the work. Falls back to the pool when a KEK calls out of the process (an HSM).
    async fn call_in_memory<Req, T: Send + 'static>(
        &self,
        request: &Request<Req>,
        ask: Ask<'_>,
        work: impl FnOnce(&vault::Vault) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        if !self.gates.vault.keks_are_software() {
            return self.call(request, ask, work).await;
        }
        let caller = self.gates.admit(request, ask).await?;
        let call = CallRecord::new(&caller, request.remote_addr(), ask);
        let outcome = work(&self.gates.vault);
        self.gates.finish(&call, outcome).await
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
        kv::put(self, request).await
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        kv::get(self, request).await
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        kv::delete(self, request).await
    }

    async fn list(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        kv::list(self, request).await
    }

    async fn seal(
        &self,
        request: Request<pb::SealRequest>,
    ) -> Result<Response<pb::SealResponse>, Status> {
        transit::seal(self, request).await
    }

    async fn open(
        &self,
        request: Request<pb::OpenRequest>,
    ) -> Result<Response<pb::OpenResponse>, Status> {
        transit::open(self, request).await
    }

    async fn rewrap(
        &self,
        request: Request<pb::RewrapRequest>,
    ) -> Result<Response<pb::RewrapResponse>, Status> {
        transit::rewrap(self, request).await
    }

    async fn generate_data_key(
        &self,
        request: Request<pb::GenerateDataKeyRequest>,
    ) -> Result<Response<pb::GenerateDataKeyResponse>, Status> {
        transit::generate_data_key(self, request).await
    }

    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        admin::status(self, request).await
    }

    async fn unlock(
        &self,
        request: Request<pb::UnlockRequest>,
    ) -> Result<Response<pb::UnlockResponse>, Status> {
        admin::unlock(self, request).await
    }

    async fn lock(
        &self,
        request: Request<pb::LockRequest>,
    ) -> Result<Response<pb::LockResponse>, Status> {
        admin::lock(self, request).await
    }

    async fn rotate(
        &self,
        request: Request<pb::RotateRequest>,
    ) -> Result<Response<pb::RotateResponse>, Status> {
        admin::rotate(self, request).await
    }

    async fn kek_check(
        &self,
        request: Request<pb::KekCheckRequest>,
    ) -> Result<Response<pb::KekCheckResponse>, Status> {
        admin::kek_check(self, request).await
    }

    async fn audit_tail(
        &self,
        request: Request<pb::AuditTailRequest>,
    ) -> Result<Response<pb::AuditTailResponse>, Status> {
        admin::audit_tail(self, request).await
    }

    async fn audit_verify(
        &self,
        request: Request<pb::AuditVerifyRequest>,
    ) -> Result<Response<pb::AuditVerifyResponse>, Status> {
        admin::audit_verify(self, request).await
    }

    async fn audit_rotate(
        &self,
        request: Request<pb::AuditRotateRequest>,
    ) -> Result<Response<pb::AuditRotateResponse>, Status> {
        admin::audit_rotate(self, request).await
    }
}
