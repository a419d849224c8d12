//! The leader lease: one replica at a time runs the singleton jobs (pruning the change log
//! today). A row in `leader_lease` with a holder, a term and an expiry on the database's
//! clock; a replica takes it only when it has expired, renews only its own (never upserts,
//! never steals), and every write of a singleton job is fenced by the lease still being its
//! own, in the same statement. Locally, a replica counts its lease as ending `ttl` after it
//! *sent* the request that took or renewed it (the database's expiry is later than that), and
//! stops its jobs then, even if it cannot reach the database to learn it lost the lease.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;

use super::pool_error;
use super::schema::{ACQUIRE_LEASE_SQL, RELEASE_LEASE_SQL, RENEW_LEASE_SQL};
use crate::Error;

/// Who holds the lease, as this replica knows it.
#[derive(Debug)]
pub(super) struct Lease {
    /// This replica's holder name: `host:pid:random`, unique per process.
    pub(super) me: String,
    ttl: Duration,
    state: Mutex<Option<Held>>,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    term: i64,
    /// When this replica stops counting itself the leader, unless it renews first.
    until: Instant,
}

impl Lease {
    pub(super) fn new(ttl: Duration) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "host".into());
        let mut random = [0u8; 4];
        // Only tells two processes with the same host name and pid apart.
        let _ = envelope::random_bytes(&mut random);
        let me = format!(
            "{host}:{}:{:08x}",
            std::process::id(),
            u32::from_be_bytes(random)
        );
        Lease {
            me,
            ttl,
            state: Mutex::new(None),
        }
    }

    fn state(&self) -> MutexGuard<'_, Option<Held>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The term this replica leads in, if it still does by its own clock.
    pub(super) fn term(&self) -> Option<i64> {
        self.state()
            .filter(|held| Instant::now() < held.until)
            .map(|held| held.term)
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// Takes the lease if it is free, or renews the one held. Errors leave the local
    /// deadline as it was: the jobs stop when it passes.
    pub(super) async fn take_or_renew(&self, pool: &Pool) -> Result<(), Error> {
        let client = pool.get().await.map_err(pool_error)?;
        let sent = Instant::now();
        let held = *self.state();
        let row = match held {
            Some(held) => client
                .query_opt(RENEW_LEASE_SQL, &[&self.me, &held.term, &self.ttl_ms()])
                .await
                .map_err(Error::pg("renewing the leader lease"))?,
            None => client
                .query_opt(ACQUIRE_LEASE_SQL, &[&self.me, &self.ttl_ms()])
                .await
                .map_err(Error::pg("taking the leader lease"))?,
        };
        let term: Option<i64> = row
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(Error::pg("reading the leader lease"))?;
        let mut state = self.state();
        match (held, term) {
            (_, Some(term)) => {
                if held.is_none() {
                    log::info!("this replica leads the singleton jobs (term {term})");
                }
                *state = Some(Held {
                    term,
                    until: sent + self.ttl,
                });
            }
            (Some(held), None) => {
                log::warn!(
                    "this replica lost the leader lease (term {}): another took it, or it was removed",
                    held.term
                );
                *state = None;
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// Gives the lease up (at shutdown).
    pub(super) async fn release(&self, pool: &Pool) {
        let Some(held) = self.state().take() else {
            return;
        };
        if let Ok(client) = pool.get().await {
            let _ = client
                .execute(RELEASE_LEASE_SQL, &[&self.me, &held.term])
                .await;
        }
    }
}

/// Takes part in the election for ever (the store's runtime ends it): renews every
/// `ttl / 4`, so a lease survives three failed renewals in a row.
pub(super) async fn campaign(lease: Arc<Lease>, pool: Pool) {
    loop {
        if let Err(e) = lease.take_or_renew(&pool).await {
            log::warn!("the leader lease: {e}");
        }
        tokio::time::sleep(lease.ttl / 4).await;
    }
}
