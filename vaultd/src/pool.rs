//! The bounded pool that runs vault calls (store I/O and KEK calls, which may block on
//! hardware). A call waits at most until its deadline, for a slot and for the work: a slow or
//! vanished HSM gives UNAVAILABLE in time instead of a hung request, and the number of
//! threads stuck on it stays bounded.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tonic::Status;

/// What became of a call run with [`KekPool::run_tracked`].
#[derive(Debug)]
pub enum Tracked<T> {
    /// It finished within the deadline, or never started (no slot in time, shutting down):
    /// either way its outcome is known.
    Done(Result<T, Status>),
    /// It started and was still running at the deadline: `status` is the UNAVAILABLE to
    /// answer now, `late` resolves with what it did once it returns.
    Overran {
        /// The answer for the caller.
        status: Status,
        /// The call's result when it returns (an error if it panicked).
        late: JoinHandle<T>,
    },
}

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
        match self.run_tracked(work).await {
            Tracked::Done(result) => result,
            Tracked::Overran { status, .. } => Err(status),
        }
    }

    /// Like [`KekPool::run`], but a call that overruns its deadline is handed back with the
    /// answer to give, so that its caller can learn (and record) what it did in the end.
    pub async fn run_tracked<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Tracked<T> {
        let deadline = tokio::time::Instant::now() + self.deadline;
        let permit = match tokio::time::timeout_at(
            deadline,
            Arc::clone(&self.slots).acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => {
                return Tracked::Done(Err(Status::unavailable("the vault is shutting down")));
            }
            Err(_) => return Tracked::Done(Err(self.overdue())),
        };
        let mut handle = tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        });
        match tokio::time::timeout_at(deadline, &mut handle).await {
            Ok(joined) => Tracked::Done(
                joined.map_err(|_| Status::internal("a vault call failed unexpectedly")),
            ),
            Err(_) => Tracked::Overran {
                status: self.overdue(),
                late: handle,
            },
        }
    }

    fn overdue(&self) -> Status {
        Status::unavailable(format!(
            "the vault did not answer within {} ms: a KEK device may be slow or gone; cached reads still work",
            self.deadline.as_millis()
        ))
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

    /// An overrun call is handed back: its late result arrives when the work returns.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_overrun_call_hands_back_its_late_result() {
        let pool = KekPool::new(1, Duration::from_millis(50));
        match pool
            .run_tracked(|| {
                std::thread::sleep(Duration::from_millis(200));
                7
            })
            .await
        {
            Tracked::Overran { status, late } => {
                assert_eq!(status.code(), tonic::Code::Unavailable);
                assert_eq!(late.await.expect("late result"), 7);
            }
            Tracked::Done(result) => panic!("finished within the deadline: {result:?}"),
        }
        assert!(matches!(pool.run_tracked(|| 8).await, Tracked::Done(Ok(8))));
    }
}
