//! The bounded pool that runs vault calls (store I/O and KEK calls, which may block on
//! hardware). A call waits at most until its deadline, for a slot and for the work: a slow or
//! vanished HSM gives UNAVAILABLE in time instead of a hung request, and the number of
//! threads stuck on it stays bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    threads: usize,
    /// Calls waiting for a slot (for the metrics).
    waiting: Arc<AtomicUsize>,
    deadline: Duration,
}

/// How full a [`KekPool`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLoad {
    /// Its slots.
    pub threads: usize,
    /// Slots in use.
    pub busy: usize,
    /// Calls waiting for a slot.
    pub waiting: usize,
}

/// Counts a call as waiting for a slot while it lives (also when its future is dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl KekPool {
    /// A pool of `threads` slots whose calls give up after `deadline`.
    pub fn new(threads: usize, deadline: Duration) -> Self {
        KekPool {
            slots: Arc::new(Semaphore::new(threads.max(1))),
            threads: threads.max(1),
            waiting: Arc::new(AtomicUsize::new(0)),
            deadline,
        }
    }

    /// Slots in use and calls waiting, now.
    pub fn load(&self) -> PoolLoad {
        PoolLoad {
            threads: self.threads,
            busy: self.threads.saturating_sub(self.slots.available_permits()),
            waiting: self.waiting.load(Ordering::Relaxed),
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
        // A free slot is taken at once; only a call that has to wait is counted as waiting.
        let acquired = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => Ok(Ok(permit)),
            Err(_) => {
                let _waiting = Waiting::enter(&self.waiting);
                tokio::time::timeout_at(deadline, Arc::clone(&self.slots).acquire_owned()).await
            }
        };
        let permit = match acquired {
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

    /// Until `done` holds, polls every millisecond for at most 5 s (then fails the test).
    async fn until(done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < deadline, "condition not reached in 5 s");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// The load counts the slots in use and the calls waiting for one, and both go back to
    /// zero when the calls return.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn load_counts_busy_slots_and_waiting_calls() {
        let pool = KekPool::new(1, Duration::from_secs(5));
        let (release, released) = std::sync::mpsc::channel::<()>();
        let busy = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(move || released.recv().is_ok()).await }
        });
        until(|| pool.load().busy == 1).await;
        let queued = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(|| true).await }
        });
        until(|| pool.load().waiting == 1).await;
        assert_eq!(
            pool.load(),
            PoolLoad {
                threads: 1,
                busy: 1,
                waiting: 1
            }
        );
        release.send(()).expect("release the busy call");
        assert!(busy.await.expect("join").expect("ran"));
        assert!(queued.await.expect("join").expect("ran"));
        assert_eq!(
            pool.load(),
            PoolLoad {
                threads: 1,
                busy: 0,
                waiting: 0
            }
        );
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
