//! The gRPC client: one mutual-TLS channel, calls run on a small runtime.

use proto::v1::vault_service_client::VaultServiceClient;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::Remote;
use crate::error::Error;

/// A connected client and the runtime that drives it.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    /// The generated client.
    pub api: VaultServiceClient<Channel>,
}

impl Client {
    /// Connects to the daemon.
    pub fn connect(remote: &Remote) -> Result<Self, Error> {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(Error::io(format!("reading {}", path.display())))
        };
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(&remote.ca)?))
            .identity(Identity::from_pem(read(&remote.cert)?, read(&remote.key)?));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::io("starting the client runtime"))?;
        let endpoint = Endpoint::from_shared(remote.addr.clone())
            .map_err(|e| Error::Usage(format!("bad --addr {}: {e}", remote.addr)))?
            .tls_config(tls)
            .map_err(|e| Error::Usage(format!("TLS settings: {e}")))?;
        let channel = runtime
            .block_on(endpoint.connect())
            .map_err(|e| Error::Remote {
                code: "UNAVAILABLE".into(),
                message: format!("cannot reach vaultd at {}: {e}", remote.addr),
            })?;
        Ok(Client {
            runtime,
            api: VaultServiceClient::new(channel),
        })
    }

    /// Runs one call to completion.
    pub fn call<F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>, T>(
        &self,
        call: F,
    ) -> Result<T, Error> {
        self.runtime
            .block_on(call)
            .map(tonic::Response::into_inner)
            .map_err(|s| Error::Remote {
                code: code_name(s.code()).into(),
                message: s.message().to_owned(),
            })
    }
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::NotFound => "NOT_FOUND",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::Unauthenticated => "UNAUTHENTICATED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Unavailable => "UNAVAILABLE",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Internal => "INTERNAL",
        _ => "ERROR",
    }
}
