//! The leader lease of the PostgreSQL store, on a real server: one replica at a time leads;
//! a lease row deleted under the leader fences its writes at once and hands the lease to a
//! new term; a replica that closes hands it over without waiting for the expiry; and while
//! replicas come and go, no two ever count themselves the leader at the same moment.

use std::time::{Duration, Instant};

use test_support::postgres::{self, PgDatabase};
use vault::{PostgresStore, SecretStore, StoreLocation};

const TEST: &str = "postgres_lease";
const TTL: Duration = Duration::from_millis(800);

fn replica(db: &PgDatabase) -> PostgresStore {
    let mut location = StoreLocation::new(db.url()).expect("url");
    location.lease_ttl_ms = Some(TTL.as_millis() as u64);
    let store = PostgresStore::open_at(&location).expect("open");
    store.join_leader_election().expect("join");
    store
}

/// The lease row: holder and term.
fn lease_row(db: &PgDatabase) -> Option<(String, i64)> {
    let out = db.psql("SELECT holder, term FROM leader_lease WHERE name = 'leader'");
    let line = out.lines().next()?;
    let (holder, term) = line.split_once('|')?;
    Some((holder.to_owned(), term.trim().parse().ok()?))
}

/// Waits until exactly one of `replicas` leads, and returns its index.
fn leader(replicas: &[&PostgresStore]) -> usize {
    let start = Instant::now();
    loop {
        let leading: Vec<usize> = (0..replicas.len())
            .filter(|&i| replicas[i].leads() == Some(true))
            .collect();
        assert!(leading.len() <= 1, "two leaders: {leading:?}");
        if let [one] = leading[..] {
            return one;
        }
        assert!(
            start.elapsed() < TTL * 3,
            "no replica took the lease within {:?}",
            TTL * 3
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn one_replica_leads_and_the_row_names_it() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let replicas = [replica(&db), replica(&db), replica(&db)];
    let refs: Vec<&PostgresStore> = replicas.iter().collect();
    let first = leader(&refs);
    let (holder, _) = lease_row(&db).expect("a lease row");
    assert_eq!(holder, replicas[first].replica_name());
    // It keeps leading across several renewals.
    std::thread::sleep(TTL * 2);
    assert_eq!(leader(&refs), first);
}

#[test]
fn a_deleted_lease_row_fences_the_old_leaders_writes() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let replicas = [replica(&db), replica(&db)];
    let refs: Vec<&PostgresStore> = replicas.iter().collect();
    let old = leader(&refs);
    let (_, old_term) = lease_row(&db).expect("a lease row");
    // Changes to prune: the log of a few writes (a prune keeping nothing takes them all).
    db.psql("INSERT INTO changes (scope, key, at) VALUES ('global', 'a', 0), ('global', 'b', 0)");

    db.psql("DELETE FROM leader_lease");
    // The old leader still counts itself the leader for a moment, but its fenced write does
    // nothing: the lease is no longer its own in the database.
    if replicas[old].leads() == Some(true) {
        let pruned = replicas[old]
            .prune_change_log(Duration::ZERO)
            .expect("prune");
        assert!(
            matches!(pruned, Some(0) | None),
            "a fenced prune deleted rows: {pruned:?}"
        );
        assert_eq!(db.psql("SELECT count(*) FROM changes").trim(), "2");
    }
    // A new term begins (on whichever replica), and its prune runs.
    let start = Instant::now();
    let new_term = loop {
        if let Some((_, term)) = lease_row(&db)
            && term > old_term
        {
            break term;
        }
        assert!(
            start.elapsed() < TTL * 2,
            "no new term after the row was deleted"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(new_term > old_term);
    let now = leader(&refs);
    assert_eq!(
        replicas[now]
            .prune_change_log(Duration::ZERO)
            .expect("prune"),
        Some(2)
    );
}

#[test]
fn a_closing_leader_hands_over_without_waiting_for_the_expiry() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let mut replicas = vec![replica(&db), replica(&db)];
    let first = {
        let refs: Vec<&PostgresStore> = replicas.iter().collect();
        leader(&refs)
    };
    let (_, term) = lease_row(&db).expect("a lease row");
    drop(replicas.remove(first));
    let closed = Instant::now();
    let refs: Vec<&PostgresStore> = replicas.iter().collect();
    leader(&refs);
    // Released, not expired: taken at the next attempt (every TTL / 4).
    assert!(closed.elapsed() < TTL, "{:?}", closed.elapsed());
    assert!(lease_row(&db).expect("row").1 > term);
}

#[test]
fn no_two_replicas_ever_lead_at_once_while_they_come_and_go() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let mut replicas: Vec<PostgresStore> = (0..3).map(|_| replica(&db)).collect();
    let mut leaders_seen = std::collections::BTreeSet::new();
    let start = Instant::now();
    let mut round = 0u32;
    while start.elapsed() < Duration::from_secs(6) {
        let refs: Vec<&PostgresStore> = replicas.iter().collect();
        let leading = (0..refs.len())
            .filter(|&i| refs[i].leads() == Some(true))
            .count();
        assert!(leading <= 1, "{leading} replicas lead at once");
        if let Some((holder, _)) = lease_row(&db) {
            leaders_seen.insert(holder);
        }
        round += 1;
        // Every so often one replica goes away (releasing, or not: a dropped runtime whose
        // release timed out is a crash) and a new one comes.
        if round.is_multiple_of(40) {
            replicas.remove((round as usize / 40) % replicas.len());
            replicas.push(replica(&db));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        leaders_seen.len() >= 2,
        "the lease changed hands: {leaders_seen:?}"
    );
}
