//! How admitted calls run and are audited, detached from their requests: tonic drops a
//! request's future when its deadline passes or its client cancels, so whatever must happen
//! whether or not anyone waits (the records, and the work once started) runs in a task of its
//! own that the request only awaits.
//!
//! - A state change: `started` record (fsynced) -> the work on the pool -> `outcome` record
//!   (with the version written). If the work overruns the pool's deadline, the caller is
//!   answered UNAVAILABLE after an `outcome-unknown` record, and the task waits on for the
//!   work and writes a `late` record with what it did.
//! - A read on the pool: the work -> its `outcome` record, written before the value leaves.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::oneshot;
use tonic::{Request, Status};
use tracing::Instrument;
use vault::audit::Stage;

use super::Api;
use crate::gates::{Ask, CallRecord};
use crate::pool::Tracked;

impl Api {
    /// Gates, then `work` on the pool as a read (one `outcome` record).
    pub(super) async fn call<Req, T: Send + 'static>(
        &self,
        request: &Request<Req>,
        ask: Ask<'_>,
        work: impl FnOnce(&vault::Vault) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let caller = self.gates.admit(request, ask).await?;
        let call = CallRecord::new(&caller, request.remote_addr(), ask);
        self.read_on_pool(call, work).await
    }

    /// `work` on the pool as a read of an admitted `call`, in a task of its own: its
    /// `outcome` record is written whether or not the request still waits.
    pub(super) async fn read_on_pool<T: Send + 'static>(
        &self,
        call: CallRecord,
        work: impl FnOnce(&vault::Vault) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let gates = Arc::clone(&self.gates);
        let task = self.gates.calls.spawn(
            async move {
                let vault = Arc::clone(&gates.vault);
                let outcome = gates.pool.run(move || work(&vault)).await.and_then(|r| r);
                gates.finish(&call, outcome).await
            }
            .in_current_span(),
        );
        task.await
            .unwrap_or_else(|_| Err(Status::internal("a vault call failed unexpectedly")))
    }

    /// Gates, then `work` on the pool as a state change: `started` before it, `outcome` (or
    /// `outcome-unknown` and `late`) after, with the version `version_of` finds in its result.
    pub(super) async fn change<Req, T: Send + 'static>(
        &self,
        request: &Request<Req>,
        ask: Ask<'_>,
        work: impl FnOnce(&vault::Vault) -> Result<T, Status> + Send + 'static,
        version_of: fn(&T) -> Option<u64>,
    ) -> Result<T, Status> {
        let caller = self.gates.admit(request, ask).await?;
        let call = CallRecord::new(&caller, request.remote_addr(), ask);
        let gates = Arc::clone(&self.gates);
        let (answer, answered) = oneshot::channel();
        self.gates.calls.spawn(
            async move {
                let started = match gates.record_started(&call).await {
                    Ok(seq) => seq,
                    Err(status) => {
                        let _ = answer.send(Err(status));
                        return;
                    }
                };
                let vault = Arc::clone(&gates.vault);
                let version =
                    |outcome: &Result<T, Status>| outcome.as_ref().ok().and_then(version_of);
                match gates.pool.run_tracked(move || work(&vault)).await {
                    Tracked::Done(outcome) => {
                        let outcome = outcome.and_then(|r| r);
                        let recorded = gates
                            .record_end(&call, started, Stage::Outcome, &outcome, version(&outcome))
                            .await;
                        let _ = answer.send(recorded.and(outcome));
                    }
                    Tracked::Overran { status, late } => {
                        let unknown: Result<T, Status> = Err(status.clone());
                        let recorded = gates
                            .record_end(&call, started, Stage::OutcomeUnknown, &unknown, None)
                            .await;
                        let _ = answer.send(recorded.and(unknown));
                        let outcome = late
                            .await
                            .unwrap_or_else(|_| Err(Status::internal("the vault call panicked")));
                        // Nobody waits for this one: a failure is logged by the audit log.
                        let _ = gates
                            .record_end(&call, started, Stage::Late, &outcome, version(&outcome))
                            .await;
                    }
                }
            }
            .in_current_span(),
        );
        answered
            .await
            .unwrap_or_else(|_| Err(Status::internal("a vault call failed unexpectedly")))
    }

    /// Queues a renewal of the epoch lease on the pool when it runs low (tiered mode), at
    /// most one at a time: the renewal writes `vault.json` (and starts an epoch with the
    /// root KEKs when the current one closed), which must not hold up an async worker.
    pub(super) fn renew_lease_ahead(&self) {
        if !self.gates.vault.epoch_lease_low() || self.lease_renewal.swap(true, Ordering::AcqRel) {
            return;
        }
        let (gates, queued) = (Arc::clone(&self.gates), Arc::clone(&self.lease_renewal));
        tokio::spawn(async move {
            let vault = Arc::clone(&gates.vault);
            let renewed = gates.pool.run(move || vault.renew_epoch_lease()).await;
            queued.store(false, Ordering::Release);
            match renewed {
                Ok(Ok(())) => {}
                // Sealing renews the lease itself when it runs out; this one only saves it
                // the wait.
                Ok(Err(e)) => log::warn!("renewing the epoch lease ahead of need failed: {e}"),
                Err(status) => log::warn!(
                    "renewing the epoch lease ahead of need did not run: {}",
                    status.message()
                ),
            }
        });
    }
}
