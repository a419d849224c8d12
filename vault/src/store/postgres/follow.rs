//! Following the change log (`changes`), so that a replica's cache learns of the writes
//! other replicas make. A poll is the guarantee: every `POLL_INTERVAL` (and at once when a
//! NOTIFY says a write committed), the follower reads the changes of every transaction that
//! had not ended at its previous snapshot, in a snapshot of its own, and hands their names to
//! the [`ChangeFeed`]. Transaction ids, not sequence numbers, bound what it reads: a sequence
//! number is taken when a row is inserted, not when it commits, so a follower reading "after
//! the highest number seen" would skip a slower transaction that commits later with a lower one.

use std::collections::HashSet;
use std::future::poll_fn;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio::sync::Notify;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{AsyncMessage, IsolationLevel, Socket};

use super::lease::Lease;
use super::pool_error;
use super::schema::{CHANGES_CHANNEL, CHANGES_SINCE_SQL, HORIZON_SQL, PRUNE_CHANGES_SQL};
use crate::Error;
use crate::store::{ChangeFeed, now_ms};

/// How often a follower polls when no NOTIFY wakes it.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// More changes than this in one poll: the cache is flushed instead of picked at.
const MAX_CHANGES_PER_POLL: i64 = 10_000;
/// How long change-log rows are kept. A follower that falls further behind has failed polls
/// in between, and so flushes its cache.
const KEEP_CHANGES: Duration = Duration::from_secs(600);
/// How often the leader prunes the change log.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// The listener's `application_name`, by which an administrator (or a test) finds it.
pub(super) const LISTENER_NAME: &str = "vault change listener";
/// How long the listener waits before connecting again after losing its connection.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

/// Where a follower is: the horizon its next poll reads from.
pub(super) struct Follower {
    pool: Pool,
    feed: Arc<ChangeFeed>,
    horizon: i64,
    /// The changes already handed on that the next poll reads again (those of transactions
    /// at or above the horizon): not handed on twice, so that a value cached since is kept.
    seen: HashSet<i64>,
    wake: Arc<Notify>,
    last_prune: Option<Instant>,
    lease: Arc<Lease>,
}

impl Follower {
    /// A follower that starts at the database's current horizon, read before this process
    /// caches anything (so every later change is read); the feed is fresh from here.
    pub(super) async fn start(
        pool: Pool,
        feed: Arc<ChangeFeed>,
        wake: Arc<Notify>,
        lease: Arc<Lease>,
    ) -> Result<Self, Error> {
        let mut follower = Follower {
            pool,
            feed,
            horizon: i64::MAX,
            seen: HashSet::new(),
            wake,
            last_prune: None,
            lease,
        };
        follower.poll().await?;
        Ok(follower)
    }

    /// Polls for ever (the store's runtime ends it).
    pub(super) async fn run(mut self) {
        // Said once when following stops and once when it resumes, not twice a second.
        let mut failing = false;
        loop {
            match self.poll().await {
                Ok(()) if failing => {
                    failing = false;
                    log::info!("following the store's change log again; the cache serves again");
                }
                Ok(()) => {}
                Err(e) => {
                    if !failing {
                        log::warn!(
                            "following the store's change log: {e}; the cache is flushed and bypassed until it catches up"
                        );
                    }
                    failing = true;
                    self.feed.failed();
                }
            }
            if self.lease.term().is_some()
                && self
                    .last_prune
                    .is_none_or(|at| at.elapsed() >= PRUNE_INTERVAL)
            {
                self.last_prune = Some(Instant::now());
                if let Err(e) = prune(&self.pool, &self.lease, KEEP_CHANGES).await {
                    log::warn!("pruning the store's change log: {e}");
                }
            }
            let _ = tokio::time::timeout(POLL_INTERVAL, self.wake.notified()).await;
        }
    }

    /// Reads the changes since the previous horizon (none on the first poll, whose horizon
    /// is past every transaction) and moves the horizon to this snapshot's.
    async fn poll(&mut self) -> Result<(), Error> {
        let read = Error::pg("reading the change log");
        let mut client = self.pool.get().await.map_err(pool_error)?;
        // One snapshot for the horizon and the rows: both as of the same instant.
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(read)?;
        let snapshot = Instant::now();
        let horizon: i64 = tx
            .query_one(HORIZON_SQL, &[])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(read)?;
        let rows = tx
            .query(
                CHANGES_SINCE_SQL,
                &[&self.horizon, &(MAX_CHANGES_PER_POLL + 1)],
            )
            .await
            .map_err(read)?;
        tx.commit().await.map_err(read)?;
        if rows.len() as i64 > MAX_CHANGES_PER_POLL {
            self.feed.overflowed(snapshot);
            self.seen.clear();
        } else {
            let mut changed = Vec::new();
            let mut seen = HashSet::new();
            for row in &rows {
                let (seq, xid): (i64, i64) =
                    (row.try_get(0).map_err(read)?, row.try_get(1).map_err(read)?);
                if !self.seen.contains(&seq) {
                    changed.push((row.try_get(2).map_err(read)?, row.try_get(3).map_err(read)?));
                }
                if xid >= horizon {
                    seen.insert(seq);
                }
            }
            self.seen = seen;
            self.feed.polled(snapshot, changed);
        }
        self.horizon = horizon;
        Ok(())
    }
}

/// Deletes the change-log rows older than `keep`, if this replica leads: fenced, so a lease
/// lost meanwhile deletes nothing. `None` when it does not lead; else the rows deleted.
pub(super) async fn prune(
    pool: &Pool,
    lease: &Lease,
    keep: Duration,
) -> Result<Option<u64>, Error> {
    let Some(term) = lease.term() else {
        return Ok(None);
    };
    let client = pool.get().await.map_err(pool_error)?;
    let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
    let deleted = client
        .execute(
            PRUNE_CHANGES_SQL,
            &[&now_ms().saturating_sub(keep_ms), &lease.me, &term],
        )
        .await
        .map_err(Error::pg("pruning the change log"))?;
    Ok(Some(deleted))
}

/// Listens for NOTIFYs on a connection of its own and wakes the follower for each, for ever:
/// a hint that makes a change reach the cache sooner than the next poll, never needed for
/// correctness. A lost connection (a database restart, an administrator ending it) is made
/// again after [`LISTEN_RETRY`].
pub(super) async fn listen(
    connect: super::Connect,
    wake: Arc<Notify>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    loop {
        if let Err(e) = listen_once(&connect, &wake, &mut ready).await {
            log::debug!("the store's change listener: {e}; connecting again");
        }
        // Whatever was announced while the listener was away is read by this poll.
        wake.notify_one();
        tokio::time::sleep(LISTEN_RETRY).await;
    }
}

async fn listen_once(
    connect: &super::Connect,
    wake: &Notify,
    ready: &mut Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<(), Error> {
    let mut config = connect.config.clone();
    config.application_name(LISTENER_NAME);
    match &connect.tls {
        Some(tls) => {
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls.clone());
            listen_on(&config, tls, wake, ready).await
        }
        None => listen_on(&config, tokio_postgres::NoTls, wake, ready).await,
    }
}

async fn listen_on<T>(
    config: &tokio_postgres::Config,
    tls: T,
    wake: &Notify,
    ready: &mut Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<(), Error>
where
    T: MakeTlsConnect<Socket>,
{
    let (client, mut connection) = config
        .connect(tls)
        .await
        .map_err(Error::pg("connecting the change listener"))?;
    let listening = async {
        client
            .batch_execute(&format!("LISTEN {CHANGES_CHANNEL}"))
            .await
            .map_err(Error::pg("listening for changes"))?;
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
        // Holds the client (the connection ends when it drops) until the connection ends.
        std::future::pending::<Result<(), Error>>().await
    };
    // Polling the connection also carries the LISTEN above.
    let messages = async {
        loop {
            match poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => wake.notify_one(),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(Error::pg("listening for changes")(e)),
                None => return Ok(()),
            }
        }
    };
    tokio::select! {
        result = listening => result,
        result = messages => result,
    }
}
