//! Whether the daemon is ready to serve, for the gRPC health service and for `/readyz`: the
//! vault is unlocked, a root KEK answers, and the audit log takes records.
//!
//! Lock state and the audit log are read when asked (both are cheap). Asking a KEK whether
//! it answers may be a device call, so the held root KEKs are probed in the background,
//! every [`KEK_PROBE_INTERVAL`] and at once after an unlock, one probe at a time, off the
//! request pool; the last result stands in between. A watcher sets the gRPC health status
//! (the server's, `""`, and the vault service's) whenever readiness changes.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use envelope::Health;
use tokio::task::JoinHandle;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use vault::Vault;
use vault::audit::AuditLog;

use crate::root_keks::RootKeks;

/// How often the held root KEKs are asked whether they answer.
pub const KEK_PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// How often the watcher looks at the lock state and the audit log.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// What readiness depends on.
#[derive(Debug)]
pub struct Readiness {
    vault: Arc<Vault>,
    audit: Arc<AuditLog>,
    keks: Arc<RootKeks>,
    /// The last probe of the root KEKs: why none answered, if none did.
    keks_silent: Mutex<Option<String>>,
}

impl Readiness {
    /// Readiness of `vault` with its `audit` log and root `keks`.
    pub fn new(vault: Arc<Vault>, audit: Arc<AuditLog>, keks: Arc<RootKeks>) -> Self {
        Readiness {
            vault,
            audit,
            keks,
            keks_silent: Mutex::new(None),
        }
    }

    /// `Ok` when ready to serve, else why not (one line, for `/readyz` and the log).
    pub fn check(&self) -> Result<(), String> {
        if self.vault.is_locked() {
            return Err("the vault is locked: an admin must unlock it".to_owned());
        }
        if let Some(reason) = self.audit.status().failed {
            return Err(format!("the audit log cannot be written: {reason}"));
        }
        if let Some(reason) = self.keks_silent().clone() {
            return Err(format!("no root KEK answers: {reason}"));
        }
        Ok(())
    }

    fn keks_silent(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.keks_silent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks each held root KEK whether it answers (blocking: may call devices) and keeps the
    /// result; false if no KEKs are held (locked: the lock is the reason then).
    pub fn probe_keks(&self) -> bool {
        let Some(keks) = self.keks.held() else {
            return false;
        };
        let healths = keks
            .iter()
            .map(|k| (k.provider.id().to_string(), k.provider.health()));
        *self.keks_silent() = silent(healths);
        true
    }
}

/// `None` if any KEK answered, else every KEK's reason (or that there is none); KEKs are
/// named by id (`kind:label#vN`), never by URI.
fn silent(healths: impl Iterator<Item = (String, Health)>) -> Option<String> {
    let mut reasons = Vec::new();
    for (id, health) in healths {
        match health {
            Health::Ok => return None,
            Health::Unreachable(why) => reasons.push(format!("{id} is unreachable: {why}")),
            Health::Failed(why) => reasons.push(format!("{id} failed: {why}")),
        }
    }
    if reasons.is_empty() {
        return Some("none is held".to_owned());
    }
    Some(reasons.join("; "))
}

/// Keeps the gRPC health status of the server (`""`) and of `service` in step with
/// `readiness`, and probes the root KEKs (see the module docs). Runs until aborted.
pub fn watch(
    readiness: Arc<Readiness>,
    reporter: HealthReporter,
    service: &'static str,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut serving: Option<bool> = None;
        let mut was_locked = true;
        let mut probed: Option<Instant> = None;
        let mut probe: Option<JoinHandle<bool>> = None;
        // After an unlock, readiness waits for the KEKs' first answer.
        let mut awaiting_probe = false;
        loop {
            tick.tick().await;
            if let Some(finished) = probe.take_if(|p| p.is_finished()) {
                if finished.await.unwrap_or(false) {
                    awaiting_probe = false;
                } else {
                    // No KEK held yet (an unlock between its two steps): ask again.
                    probed = None;
                }
            }
            let locked = readiness.vault.is_locked();
            let due = probed.is_none_or(|at| at.elapsed() >= KEK_PROBE_INTERVAL);
            if !locked && probe.is_none() && (due || was_locked) {
                let readiness = Arc::clone(&readiness);
                probe = Some(tokio::task::spawn_blocking(move || readiness.probe_keks()));
                probed = Some(Instant::now());
                awaiting_probe |= was_locked;
            }
            was_locked = locked;
            if awaiting_probe && !locked {
                continue;
            }
            let verdict = readiness.check();
            if serving == Some(verdict.is_ok()) {
                continue;
            }
            let status = match &verdict {
                Ok(()) => {
                    tracing::info!("ready: serving");
                    ServingStatus::Serving
                }
                Err(reason) => {
                    tracing::warn!("not ready: {reason}");
                    ServingStatus::NotServing
                }
            };
            reporter.set_service_status("", status).await;
            reporter.set_service_status(service, status).await;
            serving = Some(verdict.is_ok());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_kek_that_answers_is_enough() {
        let answers = [
            (
                "tpm:srk#v1".to_owned(),
                Health::Unreachable("no TPM".into()),
            ),
            ("file:k#v1".to_owned(), Health::Ok),
        ];
        assert_eq!(silent(answers.into_iter()), None);
    }

    #[test]
    fn when_none_answers_each_says_why() {
        let answers = [
            (
                "tpm:srk#v1".to_owned(),
                Health::Unreachable("no TPM".into()),
            ),
            (
                "pkcs11:kek#v1".to_owned(),
                Health::Failed("key deleted".into()),
            ),
        ];
        let reason = silent(answers.into_iter()).expect("silent");
        assert!(
            reason.contains("tpm:srk#v1 is unreachable: no TPM"),
            "{reason}"
        );
        assert!(
            reason.contains("pkcs11:kek#v1 failed: key deleted"),
            "{reason}"
        );
        assert_eq!(silent(std::iter::empty()).as_deref(), Some("none is held"));
    }
}
