//! One ESAPI context per TPM (per TCTI) in the process, behind a mutex: the TPM runs one
//! command at a time, and swtpm without a resource manager holds only 3 loaded objects, so
//! KEKs on the same TPM share the context and the storage root key.
//!
//! A call that fails as if the connection was lost or the TPM restarted (a TCTI error, a
//! transient handle that is gone) drops the context and runs again on a new one, a bounded
//! number of times; the SRK is loaded (or the primary re-created) on the new context.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;

use tss_esapi::Context;
use tss_esapi::tcti_ldr::TctiNameConf;

use super::call::{Failure, describe, is_reconnectable};
use super::seal::Sessions;
use super::srk::{self, Srk, SrkChoice};
use super::uri::Tcti;
use crate::Error;

/// Pauses before the 2nd, 3rd and 4th attempt of a call that lost its TPM (a restarted
/// swtpm answers again after about 0.15 s).
const RETRY_BACKOFF: [Duration; 3] = [
    Duration::from_millis(50),
    Duration::from_millis(200),
    Duration::from_millis(500),
];

/// The TPM behind one TCTI.
pub(super) struct Worker {
    tcti: Tcti,
    state: Mutex<State>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("tcti", &self.tcti.to_string())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
pub(super) struct State {
    context: Option<Context>,
    /// The primary SRK made from the fixed template, while loaded.
    pub(super) primary: Option<Srk>,
    /// The SRKs found at persistent handles on this context.
    pub(super) persistent: HashMap<u32, Srk>,
    /// Sessions kept open on this context.
    sessions: Sessions,
}

impl Worker {
    /// The process's worker for `tcti`, made on first use.
    pub(super) fn shared(tcti: &Tcti) -> Arc<Self> {
        static WORKERS: OnceLock<Mutex<HashMap<String, Weak<Worker>>>> = OnceLock::new();
        let mut workers = WORKERS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        workers.retain(|_, worker| worker.strong_count() > 0);
        let key = tcti.to_string();
        if let Some(worker) = workers.get(&key).and_then(Weak::upgrade) {
            return worker;
        }
        let worker = Arc::new(Self {
            tcti: tcti.clone(),
            state: Mutex::new(State::default()),
        });
        workers.insert(key, Arc::downgrade(&worker));
        worker
    }

    /// The TCTI, for messages.
    pub(super) fn tcti(&self) -> &Tcti {
        &self.tcti
    }

    /// Runs `op` with the context, the SRK `choice` names and the sessions kept open,
    /// reconnecting and retrying after a lost connection.
    pub(super) fn with_srk<T>(
        &self,
        choice: &SrkChoice<'_>,
        mut op: impl FnMut(&mut Context, &Srk, &mut Sessions) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        self.run(|context, state| {
            let srk = srk::resolve(context, state, choice)?;
            op(context, &srk, &mut state.sessions)
        })
    }

    fn run<T>(
        &self,
        mut op: impl FnMut(&mut Context, &mut State) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let mut attempt = 0;
        loop {
            let mut state = self.lock();
            let result = match self.connect(&mut state) {
                Ok(mut context) => {
                    let result = op(&mut context, &mut state);
                    state.context = Some(context);
                    result
                }
                Err(failure) => Err(failure),
            };
            let lost =
                matches!(&result, Err(Failure::Tpm { error, .. }) if is_reconnectable(error));
            if !lost {
                return result;
            }
            // Drop the context (flushing what it still can) and forget its handles.
            *state = State::default();
            drop(state);
            let Some(pause) = RETRY_BACKOFF.get(attempt) else {
                return result.map_err(|failure| self.unreachable(failure));
            };
            if let Err(Failure::Tpm { command, error }) = &result {
                log::info!(
                    "TPM at {}: TPM2_{command} failed with {}; reconnecting",
                    self.tcti,
                    describe(error)
                );
            }
            std::thread::sleep(*pause);
            attempt += 1;
        }
    }

    /// The context, taken out of the state while in use (a panic in `op` drops it, so a
    /// poisoned state starts over).
    fn connect(&self, state: &mut State) -> Result<Context, Failure> {
        if let Some(context) = state.context.take() {
            return Ok(context);
        }
        *state = State::default();
        let conf = TctiNameConf::from_str(&self.tcti.to_string()).map_err(|error| {
            Failure::Other(Error::TpmUnreachable {
                tcti: self.tcti.to_string(),
                reason: describe(&error),
                hint: "tpm2-tss does not accept this TCTI configuration",
            })
        })?;
        Context::new(conf).map_err(|error| Failure::Tpm {
            command: "Startup (connecting)",
            error,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The last failure of a call that kept losing the TPM, as "unreachable".
    fn unreachable(&self, failure: Failure) -> Failure {
        match failure {
            Failure::Tpm { command, error } => Failure::Other(Error::TpmUnreachable {
                tcti: self.tcti.to_string(),
                reason: format!("TPM2_{command}: {}", describe(&error)),
                hint: match self.tcti {
                    Tcti::Device { .. } => {
                        "check that the device exists and this user may open it (Debian: group tss); the vault retried 4 times"
                    }
                    Tcti::Swtpm { .. } | Tcti::Mssim { .. } => {
                        "check that the simulator is running and listening there; the vault retried 4 times"
                    }
                    Tcti::Tabrmd { .. } => {
                        "check that tpm2-abrmd is running on that bus; the vault retried 4 times"
                    }
                },
            }),
            other => other,
        }
    }
}
