//! The client certificate check of the TLS handshake: the webpki chain check against the
//! vault's CA, then the revocation set in force, then the principal.

use std::cell::RefCell;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use super::refused::HandshakeRefusal;
use crate::revocation::Revocations;

/// The client certificate a handshake presented, as the verifier saw it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Presented {
    /// Lowercase hex SHA-256 of the certificate.
    pub(crate) fingerprint: Option<String>,
    /// Whom it names, if it names a valid principal.
    pub(crate) principal: Option<String>,
    /// Why the verifier refused it, if it did.
    pub(crate) refusal: Option<HandshakeRefusal>,
}

tokio::task_local! {
    /// What the verifier saw in the handshake this task runs (see `accept::handshake`).
    /// rustls calls the verifier inside the poll of the handshake future, so the task that
    /// runs one handshake learns what its verifier decided, with its peer address, while
    /// every connection shares one `ServerConfig`.
    pub(crate) static PRESENTED: RefCell<Presented>;
}

/// Wraps the webpki client verifier for the vault's CA: a certificate that passes the chain
/// check is then refused if the revocation set in force revokes it (by key, by issuer and
/// serial, or by fingerprint) or if it names no valid principal.
#[derive(Debug)]
pub struct RevocationCheckingVerifier {
    webpki: Arc<dyn ClientCertVerifier>,
    revocations: Arc<Revocations>,
}

impl RevocationCheckingVerifier {
    /// `webpki` (the chain check, requiring a client certificate) followed by `revocations`.
    pub fn new(webpki: Arc<dyn ClientCertVerifier>, revocations: Arc<Revocations>) -> Self {
        RevocationCheckingVerifier {
            webpki,
            revocations,
        }
    }

    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        presented: &mut Presented,
    ) -> Result<ClientCertVerified, (HandshakeRefusal, rustls::Error)> {
        let der: &[u8] = end_entity.as_ref();
        self.webpki
            .verify_client_cert(end_entity, intermediates, now)
            .map_err(|e| (HandshakeRefusal::Untrusted(e.to_string()), e))?;
        let principal = pki::principal_of(der);
        presented.principal = principal.as_ref().ok().cloned();
        let ids = pki::certificate_ids(der).map_err(|e| {
            let refusal = HandshakeRefusal::Untrusted(e.to_string());
            (refusal, CertificateError::BadEncoding.into())
        })?;
        if let Some(entry) = self.revocations.current().revoked_by(&ids) {
            let refusal = HandshakeRefusal::Revoked(entry.clone());
            return Err((refusal, CertificateError::Revoked.into()));
        }
        if let Err(e) = principal {
            let refusal = HandshakeRefusal::NoPrincipal(e.to_string());
            return Err((
                refusal,
                CertificateError::ApplicationVerificationFailure.into(),
            ));
        }
        Ok(ClientCertVerified::assertion())
    }
}

impl ClientCertVerifier for RevocationCheckingVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let mut presented = Presented {
            fingerprint: Some(pki::fingerprint(end_entity.as_ref())),
            ..Presented::default()
        };
        let verdict = self.check(end_entity, intermediates, now, &mut presented);
        let verdict = verdict.map_err(|(refusal, error)| {
            presented.refusal = Some(refusal);
            error
        });
        // Outside a handshake task (a unit test, say) there is no one to tell.
        let _ = PRESENTED.try_with(|slot| *slot.borrow_mut() = presented);
        verdict
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}
