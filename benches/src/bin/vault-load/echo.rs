//! The raw limit: the same generated `VaultService` over the same tonic + rustls mutual-TLS
//! stack, answering every RPC at once with replies of the sizes vaultd sends. Served from
//! its own runtime (as vaultd has one of its own), with a throwaway CA in a tempdir.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use proto::v1 as pb;
use proto::v1::vault_service_server::{VaultService, VaultServiceServer};
use tokio::sync::oneshot;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

/// What the echo answers with: a Get value of `value_bytes`, a Seal envelope of
/// `envelope_bytes` (the plaintext, padded to the length vaultd's envelope has).
#[derive(Debug)]
struct EchoVault {
    value: Vec<u8>,
    envelope_bytes: usize,
}

type Reply<T> = Result<Response<T>, Status>;

fn ok<T>(message: T) -> Reply<T> {
    Ok(Response::new(message))
}

#[tonic::async_trait]
impl VaultService for EchoVault {
    async fn put(&self, _: Request<pb::PutRequest>) -> Reply<pb::PutResponse> {
        ok(pb::PutResponse { version: 1 })
    }

    async fn get(&self, _: Request<pb::GetRequest>) -> Reply<pb::GetResponse> {
        ok(pb::GetResponse {
            value: self.value.clone(),
            version: 1,
        })
    }

    async fn delete(&self, _: Request<pb::DeleteRequest>) -> Reply<pb::DeleteResponse> {
        ok(pb::DeleteResponse {})
    }

    async fn list(&self, _: Request<pb::ListRequest>) -> Reply<pb::ListResponse> {
        ok(pb::ListResponse::default())
    }

    async fn seal(&self, request: Request<pb::SealRequest>) -> Reply<pb::SealResponse> {
        let mut envelope = request.into_inner().plaintext;
        envelope.resize(self.envelope_bytes.max(envelope.len()), 0);
        ok(pb::SealResponse { envelope })
    }

    async fn open(&self, request: Request<pb::OpenRequest>) -> Reply<pb::OpenResponse> {
        let mut plaintext = request.into_inner().envelope;
        plaintext.truncate(self.value.len());
        ok(pb::OpenResponse { plaintext })
    }

    async fn rewrap(&self, request: Request<pb::RewrapRequest>) -> Reply<pb::RewrapResponse> {
        ok(pb::RewrapResponse {
            envelope: request.into_inner().envelope,
        })
    }

    async fn generate_data_key(
        &self,
        _: Request<pb::GenerateDataKeyRequest>,
    ) -> Reply<pb::GenerateDataKeyResponse> {
        ok(pb::GenerateDataKeyResponse::default())
    }

    async fn status(&self, _: Request<pb::StatusRequest>) -> Reply<pb::StatusResponse> {
        ok(pb::StatusResponse::default())
    }

    async fn unlock(&self, _: Request<pb::UnlockRequest>) -> Reply<pb::UnlockResponse> {
        ok(pb::UnlockResponse {})
    }

    async fn lock(&self, _: Request<pb::LockRequest>) -> Reply<pb::LockResponse> {
        ok(pb::LockResponse {})
    }

    async fn rotate(&self, _: Request<pb::RotateRequest>) -> Reply<pb::RotateResponse> {
        ok(pb::RotateResponse { epoch: 1 })
    }

    async fn kek_check(&self, _: Request<pb::KekCheckRequest>) -> Reply<pb::KekCheckResponse> {
        ok(pb::KekCheckResponse::default())
    }

    async fn audit_tail(&self, _: Request<pb::AuditTailRequest>) -> Reply<pb::AuditTailResponse> {
        ok(pb::AuditTailResponse::default())
    }

    async fn audit_verify(
        &self,
        _: Request<pb::AuditVerifyRequest>,
    ) -> Reply<pb::AuditVerifyResponse> {
        ok(pb::AuditVerifyResponse::default())
    }

    async fn audit_rotate(
        &self,
        _: Request<pb::AuditRotateRequest>,
    ) -> Reply<pb::AuditRotateResponse> {
        ok(pb::AuditRotateResponse::default())
    }
}

/// A running echo server; dropping it stops the server and removes its certificates.
#[derive(Debug)]
pub struct Echo {
    /// `https://127.0.0.1:PORT`.
    pub addr: String,
    /// The throwaway CA (PEM path).
    pub ca: PathBuf,
    /// The client certificate and key (PEM paths).
    pub cert: PathBuf,
    /// The client key.
    pub key: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Echo {
    /// Starts the echo on 127.0.0.1:0. `nodelay` sets TCP_NODELAY on accepted connections
    /// (tonic's own `serve` does; `serve_with_incoming` leaves it off).
    pub fn start(value_bytes: usize, envelope_bytes: usize, nodelay: bool) -> Result<Echo, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("echo tempdir: {e}"))?;
        let pki = pki::PkiDir::new(dir.path().join("tls"));
        pki.create(&["localhost".into(), "127.0.0.1".into()])
            .map_err(|e| format!("echo CA: {e}"))?;
        let client = pki
            .issue_client("load")
            .map_err(|e| format!("echo client certificate: {e}"))?;
        let read = |p: PathBuf| std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()));
        let tls = ServerTlsConfig::new()
            .identity(Identity::from_pem(
                read(pki.server_cert())?,
                read(pki.server_key())?,
            ))
            .client_ca_root(Certificate::from_pem(read(pki.ca_cert())?));

        let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .map_err(|e| format!("echo listener: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("echo listener: {e}"))?;
        let bound = listener
            .local_addr()
            .map_err(|e| format!("echo listener: {e}"))?;
        let service = EchoVault {
            value: vec![0x5a; value_bytes],
            envelope_bytes,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let thread = std::thread::Builder::new()
            .name("echo".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Runtime::new() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("echo runtime: {e}")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("echo listener: {e}")));
                            return;
                        }
                    };
                    let incoming = TcpIncoming::from(listener).with_nodelay(Some(nodelay));
                    let server = match Server::builder().tls_config(tls) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("echo TLS: {e}")));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    let served = server
                        .timeout(Duration::from_secs(5))
                        .add_service(VaultServiceServer::new(service))
                        .serve_with_incoming_shutdown(incoming, async {
                            let _ = stopped.await;
                        })
                        .await;
                    if let Err(e) = served {
                        eprintln!("vault-load: echo server: {e}");
                    }
                });
            })
            .map_err(|e| format!("echo thread: {e}"))?;
        ready_rx
            .recv()
            .map_err(|_| "echo server thread died".to_owned())??;
        Ok(Echo {
            addr: format!("https://{bound}"),
            ca: pki.ca_cert(),
            cert: client.cert,
            key: client.key,
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
        })
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
