//! The daemon's TLS: rustls with the ring provider, TLS 1.2 and 1.3, ALPN h2, no session
//! resumption, and a client certificate required of every connection, checked in the handshake against the vault's
//! CA, the revocation set in force and the principal rules (`RevocationCheckingVerifier`).
//! tonic's own TLS cannot take a custom verifier, so the handshakes run here (`incoming`)
//! and tonic serves the finished TLS streams.

mod accept;
mod audited;
mod refused;
mod verifier;

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

pub use accept::{
    Handshakes, Incoming, MAX_HANDSHAKES_IN_PROGRESS, SharedHandshakes, incoming, incoming_with,
};
pub use audited::AuditRefusedHandshakes;
pub use refused::{HandshakeRefusal, HandshakeRefusalHook, LogRefusedHandshakes, TurnedAway};
pub use verifier::RevocationCheckingVerifier;

use crate::revocation::Revocations;
use crate::server::StartError;

/// The ALPN protocol gRPC runs on.
const ALPN_H2: &[u8] = b"h2";

/// The acceptor for the TLS material in `pki` (`ca.pem`, `server.pem`, `server.key`),
/// checking client certificates against `revocations`.
pub fn acceptor(
    pki: &pki::PkiDir,
    revocations: Arc<Revocations>,
) -> Result<TlsAcceptor, StartError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in certificates(&pki.ca_cert())? {
        roots.add(ca).map_err(|e| tls_error(&pki.ca_cert(), &e))?;
    }
    let webpki =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| tls_error(&pki.ca_cert(), &e))?;
    let verifier = RevocationCheckingVerifier::new(webpki, revocations);
    let server_key = pki.server_key();
    let key = PrivateKeyDer::from_pem_file(&server_key).map_err(|e| {
        // The key's bytes never reach the message: only the kind of failure.
        StartError::Serve(format!(
            "cannot load the server key {}: {}; restore it or create the TLS directory again",
            server_key.display(),
            pem_failure(&e)
        ))
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Serve(format!("TLS configuration: {e}")))?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(certificates(&pki.server_cert())?, key)
        .map_err(|e| tls_error(&pki.server_cert(), &e))?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    // No session resumption: a resumed session takes the client certificate of the session
    // it resumes without checking it again, so a certificate revoked since then would be
    // let in. (The default ticketer makes no stateless tickets either.) gRPC clients keep
    // their connections, so full handshakes cost little.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Every certificate of a PEM file (at least one).
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, StartError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            StartError::Serve(format!("reading {}: {}", path.display(), pem_failure(&e)))
        })?;
    if certs.is_empty() {
        return Err(StartError::Serve(format!(
            "{} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

fn pem_failure(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::Io(io) => io.to_string(),
        E::NoItemsFound => "no PEM item of the expected kind found".into(),
        _ => "not a valid PEM file".into(),
    }
}

fn tls_error(path: &Path, e: &dyn std::fmt::Display) -> StartError {
    StartError::Serve(format!("TLS configuration from {}: {e}", path.display()))
}
