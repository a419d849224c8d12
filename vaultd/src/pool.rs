//! The bounded pool that runs vault calls (store I/O and KEK calls, which may block on
//! hardware). A call waits at most until its deadline, for a slot and for the work: a slow or
//! vanished HSM gives UNAVAILABLE in time instead of a hung request, and the number of
//! threads stuck on it stays bounded.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tonic::Status;

/// Runs blocking vault calls on at most `threads` threads at once.
#[derive(Debug, Clone)]
pub struct KekPool {
    slots: Arc<Semaphore>,
    deadline: Duration,
}

impl KekPool {
    /// A pool of `threads` slots whose calls give up after `deadline`.
    pub fn new(threads: usize, deadline: Duration) -> Self {
        KekPool {
            slots: Arc::new(Semaphore::new(threads.max(1))),
            deadline,
        }
    }

    /// Runs `work` on a pool thread; UNAVAILABLE if it cannot finish within the deadline.
    /// A call that overruns keeps its slot until it returns, so a hung device fills the pool
    /// and later calls fail fast rather than piling up threads.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Status> {
        let slots = Arc::clone(&self.slots);
        let run = async move {
            let permit = slots
                .acquire_owned()
                .await
                .map_err(|_| Status::unavailable("the vault is shutting down"))?;
            tokio::task::spawn_blocking(move || {
                let result = work();
                drop(permit);
                result
            })
            .await
            .map_err(|_| Status::internal("a vault call failed unexpectedly"))
        };
        match tokio::time::timeout(self.deadline, run).await {
            Ok(result) => result,
            Err(_) => Err(Status::unavailable(format!(
                "the vault did not answer within {} ms: a KEK device may be slow or gone; cached reads still work",
                self.deadline.as_millis()
            ))),
        }
    }
}
