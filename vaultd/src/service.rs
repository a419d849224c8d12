//! The VaultService RPCs: each one names what it asks for, passes the gates, runs on the
//! bounded pool, and is audited.

use std::sync::Arc;

use proto::v1 as pb;
use proto::v1::vault_service_server::VaultService;
use tonic::{Request, Response, Status};

use crate::acl::Operation;
use crate::gates::{Ask, Gates, status_of};

/// Data-key lengths GenerateDataKey accepts (bytes).
const DATA_KEY_LEN: std::ops::RangeInclusive<u32> = 16..=64;

/// The service; cheap to clone (one per connection).
#[derive(Debug, Clone)]
pub struct Api {
    gates: Arc<Gates>,
    max_secret_bytes: usize,
    keks: Arc<Vec<vault::Kek>>,
}

impl Api {
    /// The service over `gates`; `keks` are what `Unlock` opens the vault with.
    pub fn new(gates: Arc<Gates>, max_secret_bytes: usize, keks: Vec<vault::Kek>) -> Self {
        Api {
            gates,
            max_secret_bytes,
            keks: Arc::new(keks),
        }
    }

    /// Gates, the call inline, and the audit record, around `work`: for calls that only use
    /// software keys in memory (no store, no device), where a hop to the pool would cost
    /// more than the work. Falls back to the pool when a KEK is hardware.
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
        let outcome = work(&self.gates.vault);
        self.gates.finish(&caller, ask, outcome).await
    }

    /// Gates, the call on the pool, and the audit record, around `work`.
    async fn call<Req, T: Send + 'static>(
        &self,
        request: &Request<Req>,
        ask: Ask<'_>,
        work: impl FnOnce(&vault::Vault) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let caller = self.gates.admit(request, ask).await?;
        let vault = Arc::clone(&self.gates.vault);
        let outcome = match self.gates.pool.run(move || work(&vault)).await {
            Ok(result) => result,
            Err(status) => Err(status),
        };
        self.gates.finish(&caller, ask, outcome).await
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
        let m = request.get_ref();
        let ask = Ask {
            rpc: "put",
            op: Operation::Write,
            scope: &m.scope,
            key: &m.key,
            names_a_secret: true,
        };
        if m.value.len() > self.max_secret_bytes {
            let caller = self.gates.admit(&request, ask).await?;
            let status = Status::invalid_argument(format!(
                "the value is {} bytes, over this vault's limit of {}",
                m.value.len(),
                self.max_secret_bytes
            ));
            return self.gates.finish(&caller, ask, Err(status)).await;
        }
        let (scope, key, value) = (m.scope.clone(), m.key.clone(), m.value.clone());
        let version = self
            .call(&request, ask, move |v| {
                v.set(&scope, &key, &value).map_err(vault_err)
            })
            .await?;
        Ok(Response::new(pb::PutResponse { version }))
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let m = request.get_ref();
        let ask = Ask {
            rpc: "get",
            op: Operation::Read,
            scope: &m.scope,
            key: &m.key,
            names_a_secret: true,
        };
        let (scope, key, version) = (m.scope.clone(), m.key.clone(), m.version);
        // A cached value is answered on the async worker: it needs neither store nor KEK,
        // so it keeps working while a slow device holds the pool.
        if let Some((found, value)) = self.gates.vault.get_cached(&scope, &key, version) {
            let caller = self.gates.admit(&request, ask).await?;
            let value = value.expose_secret().to_vec();
            let reply = pb::GetResponse {
                value,
                version: found,
            };
            return self
                .gates
                .finish(&caller, ask, Ok(reply))
                .await
                .map(Response::new);
        }
        let reply = self
            .call(&request, ask, move |v| {
                let (found, value) = v.get_versioned(&scope, &key, version).map_err(vault_err)?;
                Ok(pb::GetResponse {
                    value: value.expose_secret().to_vec(),
                    version: found,
                })
            })
            .await?;
        Ok(Response::new(reply))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let m = request.get_ref();
        let ask = Ask {
            rpc: "delete",
            op: Operation::Delete,
            scope: &m.scope,
            key: &m.key,
            names_a_secret: true,
        };
        let (scope, key) = (m.scope.clone(), m.key.clone());
        self.call(&request, ask, move |v| {
            v.delete(&scope, &key).map_err(vault_err)
        })
        .await?;
        Ok(Response::new(pb::DeleteResponse {}))
    }

    async fn list(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        let m = request.get_ref();
        let scope = m.scope.clone();
        let ask = Ask {
            rpc: "list",
            op: Operation::List,
            scope: scope.as_deref().unwrap_or("*"),
            key: "*",
            names_a_secret: false,
        };
        let caller = self.gates.admit(&request, ask).await?;
        let vault = Arc::clone(&self.gates.vault);
        let wanted = scope.clone();
        let listed = self
            .gates
            .pool
            .run(move || vault.list(wanted.as_deref()).map_err(vault_err))
            .await
            .and_then(|r| r);
        let acl = self.gates.acl();
        let outcome = listed.map(|all| pb::ListResponse {
            secrets: all
                .into_iter()
                .filter(|s| acl.visible(&caller.id, &s.scope, &s.key))
                .map(|s| pb::SecretInfo {
                    scope: s.scope,
                    key: s.key,
                    version: s.version,
                    versions: s.versions,
                    created_at_ms: s.created_at,
                    updated_at_ms: s.updated_at,
                })
                .collect(),
        });
        self.gates
            .finish(&caller, ask, outcome)
            .await
            .map(Response::new)
    }

    async fn seal(
        &self,
        request: Request<pb::SealRequest>,
    ) -> Result<Response<pb::SealResponse>, Status> {
        let m = request.get_ref();
        let ask = Ask {
            rpc: "seal",
            op: Operation::Seal,
            scope: "transit",
            key: &m.context,
            names_a_secret: false,
        };
        let (context, plaintext) = (m.context.clone(), m.plaintext.clone());
        let envelope = self
            .call_in_memory(&request, ask, move |v| {
                v.seal_data(&context, &plaintext).map_err(vault_err)
            })
            .await?;
        Ok(Response::new(pb::SealResponse { envelope }))
    }

    async fn open(
        &self,
        request: Request<pb::OpenRequest>,
    ) -> Result<Response<pb::OpenResponse>, Status> {
        let m = request.get_ref();
        let ask = Ask {
            rpc: "open",
            op: Operation::Open,
            scope: "transit",
            key: &m.context,
            names_a_secret: false,
        };
        let (context, sealed) = (m.context.clone(), m.envelope.clone());
        let plaintext = self
            .call_in_memory(&request, ask, move |v| {
                v.open_data(&context, &sealed)
                    .map(|p| p.expose_secret().to_vec())
                    .map_err(vault_err)
            })
            .await?;
        Ok(Response::new(pb::OpenResponse { plaintext }))
    }

    async fn rewrap(
        &self,
        request: Request<pb::RewrapRequest>,
    ) -> Result<Response<pb::RewrapResponse>, Status> {
        let m = request.get_ref();
        // Rewrap opens and seals: the caller needs both rights on the context.
        let open = Ask {
            rpc: "rewrap",
            op: Operation::Open,
            scope: "transit",
            key: &m.context,
            names_a_secret: false,
        };
        self.gates.admit(&request, open).await?;
        let ask = Ask {
            op: Operation::Seal,
            ..open
        };
        let (context, sealed) = (m.context.clone(), m.envelope.clone());
        let envelope = self
            .call_in_memory(&request, ask, move |v| {
                v.rewrap_data(&context, &sealed).map_err(vault_err)
            })
            .await?;
        Ok(Response::new(pb::RewrapResponse { envelope }))
    }

    async fn generate_data_key(
        &self,
        request: Request<pb::GenerateDataKeyRequest>,
    ) -> Result<Response<pb::GenerateDataKeyResponse>, Status> {
        let m = request.get_ref();
        let ask = Ask {
            rpc: "generate_data_key",
            op: Operation::Seal,
            scope: "transit",
            key: &m.context,
            names_a_secret: false,
        };
        let length = if m.length == 0 { 32 } else { m.length };
        if !DATA_KEY_LEN.contains(&length) {
            let caller = self.gates.admit(&request, ask).await?;
            let status =
                Status::invalid_argument(format!("a data key is 16 to 64 bytes, not {length}"));
            return self.gates.finish(&caller, ask, Err(status)).await;
        }
        let context = m.context.clone();
        let reply = self
            .call_in_memory(&request, ask, move |v| {
                let mut key = envelope::SecretBytes::zeroed(length as usize)
                    .map_err(|e| vault_err(e.into()))?;
                envelope::random_bytes(key.expose_secret_mut()).map_err(|e| vault_err(e.into()))?;
                let sealed_key = v
                    .seal_data(&context, key.expose_secret())
                    .map_err(vault_err)?;
                Ok(pb::GenerateDataKeyResponse {
                    plaintext_key: key.expose_secret().to_vec(),
                    sealed_key,
                })
            })
            .await?;
        Ok(Response::new(reply))
    }

    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let ask = admin("status");
        let reply = self
            .call(&request, ask, |v| {
                let s = v.status().map_err(vault_err)?;
                Ok(pb::StatusResponse {
                    store: s.store.to_string(),
                    mode: s.mode.to_string(),
                    locked: s.locked,
                    secrets: s.secrets,
                    keks: s
                        .keks
                        .iter()
                        .map(|k| pb::KekInfo {
                            id: k.id.clone(),
                            uri: k.uri.clone(),
                            health: health_text(&k.health),
                            assurance: assurance_text(&k.assurance),
                        })
                        .collect(),
                    missing_keks: s.missing_keks,
                    epochs: s.epochs,
                    min_decryption_version: s.min_decryption_version,
                    locked_bytes: s.memory.locked_bytes,
                    unlocked_bytes: s.memory.unlocked_bytes,
                })
            })
            .await?;
        Ok(Response::new(reply))
    }

    async fn unlock(
        &self,
        request: Request<pb::UnlockRequest>,
    ) -> Result<Response<pb::UnlockResponse>, Status> {
        let keks = self.keks.as_ref().clone();
        self.call(&request, admin("unlock"), move |v| {
            v.unlock(keks).map_err(vault_err)
        })
        .await?;
        Ok(Response::new(pb::UnlockResponse {}))
    }

    async fn lock(
        &self,
        request: Request<pb::LockRequest>,
    ) -> Result<Response<pb::LockResponse>, Status> {
        self.call(&request, admin("lock"), |v| v.lock().map_err(vault_err))
            .await?;
        Ok(Response::new(pb::LockResponse {}))
    }

    async fn rotate(
        &self,
        request: Request<pb::RotateRequest>,
    ) -> Result<Response<pb::RotateResponse>, Status> {
        let epoch = self
            .call(&request, admin("rotate"), |v| v.rotate().map_err(vault_err))
            .await?;
        Ok(Response::new(pb::RotateResponse { epoch }))
    }

    async fn kek_check(
        &self,
        request: Request<pb::KekCheckRequest>,
    ) -> Result<Response<pb::KekCheckResponse>, Status> {
        let keks = self.keks.as_ref().clone();
        let results = self
            .call(&request, admin("kek_check"), move |v| {
                Ok(keks
                    .iter()
                    .map(|k| {
                        let (state, detail) = match v.check_kek(k) {
                            vault::KekCheck::Ok => ("ok", String::new()),
                            vault::KekCheck::Unreachable(why) => ("unreachable", why),
                            vault::KekCheck::Failed(why) => ("failed", why),
                        };
                        pb::KekCheckResult {
                            id: k.provider.id().to_string(),
                            state: state.into(),
                            detail,
                        }
                    })
                    .collect())
            })
            .await?;
        Ok(Response::new(pb::KekCheckResponse { results }))
    }

    async fn audit_tail(
        &self,
        request: Request<pb::AuditTailRequest>,
    ) -> Result<Response<pb::AuditTailResponse>, Status> {
        let count = match request.get_ref().count {
            0 => 20,
            n => n.min(10_000) as usize,
        };
        let audit = Arc::clone(self.gates.audit());
        let records = self
            .call(&request, admin("audit_tail"), move |_| {
                let records = vault::audit::tail(audit.path(), count).map_err(vault_err)?;
                records
                    .iter()
                    .map(|r| serde_json::to_string(r).map_err(|e| Status::internal(e.to_string())))
                    .collect()
            })
            .await?;
        Ok(Response::new(pb::AuditTailResponse { records }))
    }

    async fn audit_verify(
        &self,
        request: Request<pb::AuditVerifyRequest>,
    ) -> Result<Response<pb::AuditVerifyResponse>, Status> {
        let audit = Arc::clone(self.gates.audit());
        let report = self
            .call(&request, admin("audit_verify"), move |_| {
                vault::audit::verify(audit.path()).map_err(vault_err)
            })
            .await?;
        Ok(Response::new(pb::AuditVerifyResponse {
            records: report.records,
            head_seq: report.head_seq,
        }))
    }
}

fn admin(rpc: &'static str) -> Ask<'static> {
    Ask {
        rpc,
        op: Operation::Admin,
        scope: "admin",
        key: "*",
        names_a_secret: false,
    }
}

/// `ok`, `unreachable: why` or `failed: why`, as `vaultctl status` prints locally.
fn health_text(health: &envelope::Health) -> String {
    match health {
        envelope::Health::Ok => "ok".into(),
        envelope::Health::Unreachable(why) => format!("unreachable: {why}"),
        envelope::Health::Failed(why) => format!("failed: {why}"),
    }
}

/// The properties a KEK assures, comma-separated, or `software`.
fn assurance_text(a: &envelope::Assurance) -> String {
    let parts: Vec<&str> = [
        (a.hardware, "hardware"),
        (a.non_exportable, "non-exportable"),
        (a.platform_bound, "platform-bound"),
        (a.user_presence, "user-presence"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if parts.is_empty() {
        "software".into()
    } else {
        parts.join(", ")
    }
}
