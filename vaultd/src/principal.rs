//! Who is calling: the principal named by the client certificate, unless it is revoked.
//!
//! The TLS handshake has already checked the certificate chain against the vault's CA and
//! the revocation set (`crate::tls`); here, per request, the certificate is mapped to its
//! principal (see `pki::principal_of`) and checked against the revocation set in force
//! now: a revocation also cuts off connections opened before it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tonic::Status;

use crate::revocation::Revocations;

/// Certificates remembered (parsing one costs microseconds; a busy daemon sees few).
const MAX_CACHED: usize = 4096;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The principal id.
    pub id: Arc<str>,
    /// Lowercase hex SHA-256 of the certificate.
    pub fingerprint: Arc<str>,
}

/// Why `Principals::identify` refused a certificate: the answer, and the caller the
/// certificate names when it names one (a revoked certificate does), for the audit record.
#[derive(Debug)]
pub struct Refused {
    /// Who the certificate names, if it could be read.
    pub caller: Option<Caller>,
    /// The answer (UNAUTHENTICATED).
    pub status: Status,
}

impl Refused {
    fn anonymous(status: Status) -> Self {
        Refused {
            caller: None,
            status,
        }
    }
}

/// A certificate seen before: whom it names and what revokes it.
#[derive(Debug, Clone)]
struct Known {
    caller: Caller,
    ids: Arc<pki::CertificateIds>,
}

/// Maps client certificates to principals and enforces revocation.
#[derive(Debug)]
pub struct Principals {
    known: Mutex<HashMap<Box<[u8]>, Known>>,
    revocations: Arc<Revocations>,
}

impl Principals {
    /// Principals checked against `revocations` (the set the TLS handshake uses too).
    pub fn new(revocations: Arc<Revocations>) -> Self {
        Principals {
            known: Mutex::new(HashMap::new()),
            revocations,
        }
    }

    /// The caller of a request whose peer presented `certs` (leaf first).
    pub fn identify(
        &self,
        certs: Option<&[tonic::transport::CertificateDer<'static>]>,
    ) -> Result<Caller, Refused> {
        let leaf = certs
            .and_then(|c| c.first())
            .ok_or_else(|| Refused::anonymous(Status::unauthenticated("no client certificate")))?;
        let der: &[u8] = leaf.as_ref();
        let cached = lock(&self.known).get(der).cloned();
        let known = match cached {
            Some(known) => known,
            None => {
                let unreadable = |e: pki::Error| {
                    Refused::anonymous(Status::unauthenticated(format!(
                        "client certificate names no principal: {e}"
                    )))
                };
                let id = pki::principal_of(der).map_err(unreadable)?;
                let ids = pki::certificate_ids(der).map_err(unreadable)?;
                let known = Known {
                    caller: Caller {
                        id: id.into(),
                        fingerprint: pki::fingerprint(der).into(),
                    },
                    ids: Arc::new(ids),
                };
                let mut cache = lock(&self.known);
                if cache.len() >= MAX_CACHED {
                    cache.clear();
                }
                cache.insert(der.into(), known.clone());
                known
            }
        };
        if let Some(entry) = self.revocations.current().revoked_by(&known.ids) {
            let status = Status::unauthenticated(format!(
                "the client certificate of {} is revoked ({})",
                known.caller.id,
                entry_kind(entry)
            ));
            return Err(Refused {
                caller: Some(known.caller),
                status,
            });
        }
        Ok(known.caller)
    }
}

/// What kind of entry revoked a certificate, in words.
fn entry_kind(entry: &pki::RevocationEntry) -> &'static str {
    match entry {
        pki::RevocationEntry::Key(_) => "by its key",
        pki::RevocationEntry::IssuerSerial { .. } => "by its issuer and serial number",
        pki::RevocationEntry::Certificate(_) => "by its fingerprint",
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
