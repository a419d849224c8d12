//! Two vaults on one PostgreSQL database, as two replicas are: each caches what it reads,
//! and a change made through one reaches the other's cache within the store's staleness
//! bound, through NOTIFY, through polling alone, and after the database ended the listener.
//! A replica that cannot read the change log serves nothing from its cache.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use envelope::{KekProvider, SoftwareKek};
use test_support::postgres::{self, PgDatabase};
use vault::{InitOptions, Kek, StoreKind, StoreLocation, Vault, WrapMode};

const TEST: &str = "postgres_cache";

fn kek() -> Kek {
    let provider: Arc<dyn KekProvider> =
        Arc::new(SoftwareKek::random("replicas").expect("random KEK"));
    Kek {
        uri: "memory:replicas".into(),
        provider,
    }
}

/// A vault on `db` in `first`, and a replica directory `second` with copies of its files;
/// `tune` adjusts the second replica's store.json.
fn replicas(
    db: &PgDatabase,
    root: &Path,
    kek: &Kek,
    tune: impl FnOnce(&mut StoreLocation),
) -> (Vault, Vault) {
    let (first, second) = (root.join("a"), root.join("b"));
    std::fs::create_dir(&first).expect("dir");
    std::fs::create_dir(&second).expect("dir");
    let mut location = StoreLocation::new(db.url()).expect("url");
    location.write(&first).expect("store.json");
    let options = InitOptions {
        mode: Some(WrapMode::Direct),
        ..InitOptions::new(StoreKind::Postgres)
    };
    let a = Vault::init_with(&first, &options, vec![kek.clone()]).expect("init");
    std::fs::copy(
        first.join(vault::CONFIG_FILE),
        second.join(vault::CONFIG_FILE),
    )
    .expect("copy vault.json");
    tune(&mut location);
    location.write(&second).expect("store.json");
    let b = Vault::open(&second, None, vec![kek.clone()]).expect("open the replica");
    (a, b)
}

/// `reader` has cached `global/k`; `writer` changes it. Returns how long until `reader`
/// served the new value, failing if that is beyond the bound; `reader` must never serve
/// anything but the old or the new value.
fn change_reaches(writer: &Vault, reader: &Vault, new: &[u8]) -> Duration {
    let old = reader
        .get("global", "k", None)
        .expect("get")
        .expose_secret()
        .to_vec();
    // The reader serves from its cache (once it has followed the writes before this one).
    let warming = Instant::now();
    loop {
        let (_, hits) = reader.cache_stats();
        let value = reader.get("global", "k", None).expect("get");
        assert_eq!(value.expose_secret(), &old[..]);
        if reader.cache_stats().1 > hits {
            break;
        }
        assert!(
            warming.elapsed() < Duration::from_secs(2),
            "the reader never served k from its cache"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let changed = Instant::now();
    writer.set("global", "k", new).expect("change");
    loop {
        let value = reader.get("global", "k", None).expect("get");
        if value.expose_secret() == new {
            return changed.elapsed();
        }
        assert_eq!(
            value.expose_secret(),
            &old[..],
            "only the old or the new value"
        );
        assert!(
            changed.elapsed() <= vault::DEFAULT_MAX_STALENESS,
            "the reader still serves the old value after {:?}",
            changed.elapsed()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_change_reaches_the_other_replicas_cache_through_notify() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let root = tempfile::tempdir().expect("tempdir");
    let (a, b) = replicas(&db, root.path(), &kek(), |_| {});
    a.set("global", "k", b"v1").expect("set");
    // NOTIFY wakes the follower at once; a poll alone takes a quarter of a second on
    // average (up to half). One slow round is allowed for a loaded machine.
    let mut took: Vec<Duration> = (0..6)
        .map(|round| change_reaches(&a, &b, format!("v{}", round + 2).as_bytes()))
        .collect();
    took.push(change_reaches(&b, &a, b"from b"));
    took.sort();
    assert!(
        took[took.len() - 2] < Duration::from_millis(100),
        "{took:?}"
    );
    // A delete too.
    b.get("global", "k", None).expect("cached");
    a.delete("global", "k").expect("delete");
    let deleted = Instant::now();
    while b.get("global", "k", None).is_ok() {
        assert!(deleted.elapsed() <= vault::DEFAULT_MAX_STALENESS);
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn without_notify_polling_alone_keeps_the_bound() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let root = tempfile::tempdir().expect("tempdir");
    let (a, b) = replicas(&db, root.path(), &kek(), |location| {
        location.notify = Some(false)
    });
    a.set("global", "k", b"v1").expect("set");
    for round in 0..3 {
        let took = change_reaches(&a, &b, format!("p{round}").as_bytes());
        eprintln!("polling only: {took:?}");
    }
}

#[test]
fn after_the_database_ends_the_listener_changes_still_arrive() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let root = tempfile::tempdir().expect("tempdir");
    let (a, b) = replicas(&db, root.path(), &kek(), |_| {});
    a.set("global", "k", b"v1").expect("set");
    change_reaches(&a, &b, b"v2");
    let ended = db.psql(&format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = 'vault change listener' AND datname = '{}'",
        db.name()
    ));
    assert!(
        ended.trim().parse::<u32>().expect("a count") >= 1,
        "{ended}"
    );
    for round in 0..3 {
        change_reaches(&a, &b, format!("after-{round}").as_bytes());
    }
}

#[test]
fn a_replica_that_cannot_read_the_change_log_serves_nothing_from_its_cache() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let root = tempfile::tempdir().expect("tempdir");
    let (a, b) = replicas(&db, root.path(), &kek(), |location| {
        location.max_staleness_ms = Some(1000)
    });
    a.set("global", "k", b"v1").expect("set");
    change_reaches(&a, &b, b"v2");

    // The change log is gone (writes fail too: nothing changes meanwhile). Within the bound
    // the replica stops serving from its cache, and reads the store instead.
    db.psql("ALTER TABLE changes RENAME TO changes_away");
    let cut = Instant::now();
    loop {
        let (_, hits) = b.cache_stats();
        assert_eq!(
            b.get("global", "k", None).expect("get").expose_secret(),
            b"v2"
        );
        if b.cache_stats().1 == hits {
            break;
        }
        assert!(
            cut.elapsed() <= Duration::from_millis(1000) + Duration::from_millis(600),
            "the cache still serves {:?} after the change log became unreadable",
            cut.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        a.set("global", "k", b"lost").is_err(),
        "a write without its change record fails"
    );

    // Once the log is back the replica caches again.
    db.psql("ALTER TABLE changes_away RENAME TO changes");
    let back = Instant::now();
    loop {
        b.get("global", "k", None).expect("get");
        let (_, hits) = b.cache_stats();
        b.get("global", "k", None).expect("get");
        if b.cache_stats().1 > hits {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "the cache never came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        b.get("global", "k", None).expect("get").expose_secret(),
        b"v2"
    );
    change_reaches(&a, &b, b"v3");
}
