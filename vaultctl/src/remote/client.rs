//! The gRPC client: one mutual-TLS channel, calls run on a small runtime. Every wait is
//! bounded: connecting (TCP, TLS handshake, HTTP/2) by the connect timeout, each call by the
//! request timeout. A read answered UNAVAILABLE is sent again a bounded number of times; a
//! write never is, since the daemon may have carried it out before the answer was lost.

use std::future::Future;

use proto::v1::vault_service_client::VaultServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Status};

use super::Remote;
use super::options::{ClientOptions, backoff, show};
use crate::error::Error;

/// A connected client and the runtime that drives it.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    /// The generated client.
    pub api: VaultServiceClient<Channel>,
    /// `https://host:port`, for messages.
    addr: String,
    options: ClientOptions,
}

impl Client {
    /// Connects to the daemon, within the connect timeout.
    pub fn connect(remote: &Remote) -> Result<Self, Error> {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(Error::io(format!("reading {}", path.display())))
        };
        let options = remote.options.clone();
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(&remote.ca)?))
            .identity(Identity::from_pem(read(&remote.cert)?, read(&remote.key)?))
            // Also when the channel reconnects later: a listener that accepts and then says
            // nothing must not hold a call past its deadline.
            .timeout(options.connect_timeout);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::io("starting the client runtime"))?;
        let endpoint = Endpoint::from_shared(remote.addr.clone())
            .map_err(|e| {
                Error::Usage(format!(
                    "bad --addr {}: {e} (write https://HOST:PORT)",
                    remote.addr
                ))
            })?
            .connect_timeout(options.connect_timeout)
            .tls_config(tls)
            .map_err(|e| Error::Usage(format!("TLS settings: {e}")))?;
        let unreachable = |reason: String| Error::Unreachable {
            addr: remote.addr.clone(),
            reason,
        };
        let limit = options.connect_timeout;
        // The whole connection (TCP, TLS, HTTP/2) within one deadline: tonic's own timeouts
        // cover the TCP connect and the TLS handshake separately.
        let connected =
            runtime.block_on(async { tokio::time::timeout(limit, endpoint.connect()).await });
        let timed_out = || {
            unreachable(format!(
                "no TLS session within {} (the connect timeout: --connect-timeout or \
                 VAULTCTL_CONNECT_TIMEOUT)",
                show(limit)
            ))
        };
        let channel = match connected {
            Ok(Ok(channel)) => channel,
            // tonic's own handshake deadline, the same length, may fire first.
            Ok(Err(e)) if causes(&e).contains("handshake timeout") => return Err(timed_out()),
            Ok(Err(e)) => return Err(unreachable(causes(&e))),
            Err(_) => return Err(timed_out()),
        };
        Ok(Client {
            runtime,
            api: VaultServiceClient::new(channel),
            addr: remote.addr.clone(),
            options,
        })
    }

    /// Runs a call that must not be sent twice (a write, or anything that changes state),
    /// within the request timeout. Never retried.
    pub fn call<F: Future<Output = Result<tonic::Response<T>, Status>>, T>(
        &self,
        call: F,
    ) -> Result<T, Error> {
        self.bounded(call).map_err(|status| {
            let unavailable = status.code() == Code::Unavailable;
            let mut error = self.error(status);
            if unavailable && let Error::Remote { message, .. } = &mut error {
                message.push_str(
                    "; not sent again: vaultd may have carried it out before the answer was \
                     lost, so check before running it again",
                );
            }
            error
        })
    }

    /// Runs a read that may be sent again: `make` builds the call from a handle of the
    /// client. Answered UNAVAILABLE, it is sent again up to `--retries` times, with a
    /// growing pause; each try has the request timeout.
    pub fn call_idempotent<F, T>(
        &self,
        mut make: impl FnMut(VaultServiceClient<Channel>) -> F,
    ) -> Result<T, Error>
    where
        F: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let mut retried = 0;
        loop {
            match self.bounded(make(self.api.clone())) {
                Ok(reply) => return Ok(reply),
                Err(status)
                    if status.code() == Code::Unavailable && retried < self.options.retries =>
                {
                    retried += 1;
                    log::warn!(
                        "vaultd at {} answered UNAVAILABLE ({}); trying again ({retried} of {})",
                        self.addr,
                        status.message(),
                        self.options.retries
                    );
                    std::thread::sleep(backoff(retried));
                }
                Err(status) => {
                    let mut error = self.error(status);
                    if retried > 0
                        && let Error::Remote { message, .. } = &mut error
                    {
                        message.push_str(&format!(" (tried {} times)", retried + 1));
                    }
                    return Err(error);
                }
            }
        }
    }

    /// Runs one call to completion or to the request timeout (DEADLINE_EXCEEDED).
    fn bounded<F: Future<Output = Result<tonic::Response<T>, Status>>, T>(
        &self,
        call: F,
    ) -> Result<T, Status> {
        let limit = self.options.request_timeout;
        match self
            .runtime
            .block_on(async { tokio::time::timeout(limit, call).await })
        {
            Ok(answer) => answer.map(tonic::Response::into_inner),
            Err(_) => Err(Status::deadline_exceeded(format!(
                "no answer from vaultd at {} within {} (the request timeout: --request-timeout \
                 or VAULTCTL_REQUEST_TIMEOUT)",
                self.addr,
                show(limit)
            ))),
        }
    }

    /// The error for a status; one the connection caused names the address.
    fn error(&self, status: Status) -> Error {
        let mut message = status.message().to_owned();
        if status.code() == Code::Unavailable && !message.contains(&self.addr) {
            message.push_str(&format!(" (vaultd at {})", self.addr));
        }
        Error::Remote {
            code: code_name(status.code()).into(),
            message,
        }
    }
}

/// An error and its causes, `outer: inner: ...`, each said once (tonic's transport error
/// says only "transport error"; the cause says "Connection refused").
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
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
        Code::Cancelled => "CANCELLED",
        Code::Unimplemented => "UNIMPLEMENTED",
        _ => "ERROR",
    }
}
