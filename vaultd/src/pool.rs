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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    /// A device that hangs (the work sleeps past the deadline): the caller gets UNAVAILABLE
    /// within the deadline, the hung call keeps its slot, and with every slot hung later calls
    /// fail within their deadline too instead of piling up threads.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hung_call_answers_unavailable_within_the_deadline() {
        let pool = KekPool::new(1, Duration::from_millis(100));
        let started = Instant::now();
        let hung = pool
            .run(|| std::thread::sleep(Duration::from_millis(600)))
            .await;
        assert_eq!(hung.expect_err("deadline").code(), tonic::Code::Unavailable);
        assert!(
            started.elapsed() < Duration::from_millis(400),
            "{:?}",
            started.elapsed()
        );

        let started = Instant::now();
        let queued = pool.run(|| 42).await;
        assert_eq!(
            queued.expect_err("slot still held").code(),
            tonic::Code::Unavailable
        );
        assert!(started.elapsed() < Duration::from_millis(400));

        // Once the device answers, the slot is free again.
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(pool.run(|| 42).await.expect("free again"), 42);
    }
}
