//! Who is calling: the principal named by the client certificate, unless it is revoked.
//!
//! rustls has already checked the certificate chain against the vault's CA during the
//! handshake; here the certificate is mapped to its principal (SAN URI
//! `urn:vault:principal:<id>`, else the CN) and checked against the revocation list, which is
//! reloaded when its file changes, without a restart.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use tonic::Status;

/// How often the revocation list's file is looked at.
const REVOCATION_POLL: Duration = Duration::from_millis(500);
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

/// Maps client certificates to principals and enforces revocation.
#[derive(Debug)]
pub struct Principals {
    known: Mutex<HashMap<Box<[u8]>, Caller>>,
    revoked: RwLock<Arc<HashSet<String>>>,
    revoked_path: PathBuf,
    revoked_mtime: Mutex<Option<SystemTime>>,
}

impl Principals {
    /// Loads the revocation list at `revoked_path` (a missing file means none revoked).
    pub fn new(revoked_path: PathBuf) -> Result<Self, pki::Error> {
        let principals = Principals {
            known: Mutex::new(HashMap::new()),
            revoked: RwLock::new(Arc::new(HashSet::new())),
            revoked_path,
            revoked_mtime: Mutex::new(None),
        };
        principals.reload_if_changed()?;
        Ok(principals)
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
        let caller = match cached {
            Some(caller) => caller,
            None => {
                let id = pki::principal_of(der).map_err(|e| {
                    Refused::anonymous(Status::unauthenticated(format!(
                        "client certificate names no principal: {e}"
                    )))
                })?;
                let caller = Caller {
                    id: id.into(),
                    fingerprint: pki::fingerprint(der).into(),
                };
                let mut known = lock(&self.known);
                if known.len() >= MAX_CACHED {
                    known.clear();
                }
                known.insert(der.into(), caller.clone());
                caller
            }
        };
        let revoked = Arc::clone(&self.revoked.read().unwrap_or_else(|p| p.into_inner()));
        if revoked.contains(caller.fingerprint.as_ref()) {
            let status = Status::unauthenticated(format!(
                "the client certificate of {} is revoked",
                caller.id
            ));
            return Err(Refused {
                caller: Some(caller),
                status,
            });
        }
        Ok(caller)
    }

    /// Rereads the revocation list if its file changed; how many fingerprints it holds.
    pub fn reload_if_changed(&self) -> Result<usize, pki::Error> {
        let mtime = std::fs::metadata(&self.revoked_path)
            .and_then(|m| m.modified())
            .ok();
        let mut last = lock(&self.revoked_mtime);
        if mtime.is_some() && *last == mtime {
            return Ok(self.revoked.read().unwrap_or_else(|p| p.into_inner()).len());
        }
        let set = if mtime.is_some() {
            pki::read_revoked(&self.revoked_path)?
        } else {
            HashSet::new()
        };
        let count = set.len();
        *self.revoked.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(set);
        *last = mtime;
        Ok(count)
    }

    /// Polls the revocation list's file in the background for the life of the daemon.
    pub fn watch(self: &Arc<Self>) {
        let principals = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REVOCATION_POLL);
            loop {
                tick.tick().await;
                if let Err(e) = principals.reload_if_changed() {
                    // Keep the last good list: a half-edited file must not unrevoke anyone.
                    log::warn!("revocation list not reloaded: {e}");
                }
            }
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
