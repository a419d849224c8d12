//! Tiered mode on PostgreSQL: the epochs live in the database, shared by every replica. What
//! one replica seals under an epoch it started, the others open; no epoch is started twice;
//! wrap budgets hold across replicas (leases are disjoint ranges inside the budget, also with
//! 3 replicas x 32 threads leasing at once); and a replica adopts an epoch another started
//! through the upgrade copy, without asking its root KEK.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use envelope::{Assurance, Dek, Health, KekId, KekProvider, SoftwareKek, StanzaRef};
use test_support::postgres::{self, PgDatabase};
use vault::{
    EpochLedger, EpochPolicy, InitOptions, Kek, PostgresStore, StoreKind, StoreLocation, Vault,
    WrapMode,
};

const TEST: &str = "postgres_epochs";

/// A software KEK that can be switched off, standing in for a device that stops answering.
#[derive(Debug)]
struct Switchable {
    inner: SoftwareKek,
    on: Arc<AtomicBool>,
}

impl KekProvider for Switchable {
    fn id(&self) -> &KekId {
        self.inner.id()
    }
    fn wrap(&self, dek: &Dek, aad: &[u8]) -> Result<Vec<u8>, envelope::Error> {
        assert!(
            self.on.load(Ordering::SeqCst),
            "the root KEK was asked to wrap"
        );
        self.inner.wrap(dek, aad)
    }
    fn unwrap(&self, stanza: &StanzaRef<'_>, aad: &[u8]) -> Option<Result<Dek, envelope::Error>> {
        assert!(
            self.on.load(Ordering::SeqCst),
            "the root KEK was asked to unwrap"
        );
        self.inner.unwrap(stanza, aad)
    }
    fn health(&self) -> Health {
        self.inner.health()
    }
    fn assurance(&self) -> Assurance {
        self.inner.assurance()
    }
}

fn root_key() -> Dek {
    Dek::generate().expect("key")
}

/// A KEK over `key`, and its switch.
fn kek(key: &Dek) -> (Kek, Arc<AtomicBool>) {
    let on = Arc::new(AtomicBool::new(true));
    let provider = Switchable {
        inner: SoftwareKek::new(
            KekId::new("memory", "shared", 1).expect("id"),
            Dek::from_slice(key.expose_secret()).expect("key"),
        ),
        on: Arc::clone(&on),
    };
    let kek = Kek {
        uri: "memory:shared".into(),
        provider: Arc::new(provider),
    };
    (kek, on)
}

/// A tiered vault on `db` in `root/a` (epochs closing after `max_wraps` wraps), and `n - 1`
/// replica directories with copies of its files; every replica opened, each with its own
/// KEK handle (and switch) over the same key.
fn replicas(
    db: &PgDatabase,
    root: &Path,
    n: usize,
    max_wraps: u64,
) -> Vec<(Vault, Arc<AtomicBool>)> {
    replicas_and_key(db, root, n, max_wraps).0
}

/// [`replicas`], and the key of their shared KEK.
fn replicas_and_key(
    db: &PgDatabase,
    root: &Path,
    n: usize,
    max_wraps: u64,
) -> (Vec<(Vault, Arc<AtomicBool>)>, Dek) {
    let key = root_key();
    let first = root.join("r0");
    std::fs::create_dir(&first).expect("dir");
    StoreLocation::new(db.url())
        .and_then(|l| l.write(&first))
        .expect("store.json");
    let options = InitOptions {
        mode: Some(WrapMode::Tiered),
        epoch_policy: EpochPolicy {
            max_wraps,
            ..EpochPolicy::default()
        },
        ..InitOptions::new(StoreKind::Postgres)
    };
    let (k, on) = kek(&key);
    let mut out = vec![(
        Vault::init_with(&first, &options, vec![k]).expect("init"),
        on,
    )];
    for i in 1..n {
        let dir = root.join(format!("r{i}"));
        std::fs::create_dir(&dir).expect("dir");
        for file in [vault::CONFIG_FILE, vault::STORE_LOCATION_FILE] {
            std::fs::copy(first.join(file), dir.join(file)).expect("copy");
        }
        let (k, on) = kek(&key);
        out.push((Vault::open(&dir, None, vec![k]).expect("open replica"), on));
    }
    for (vault, _) in &out {
        vault.set_epoch_lease(3);
    }
    (out, key)
}

fn epochs_in(db: &PgDatabase) -> Vec<(u32, u64)> {
    db.psql("SELECT number, wraps_leased FROM epochs ORDER BY number")
        .lines()
        .filter_map(|line| {
            let (n, w) = line.split_once('|')?;
            Some((n.parse().ok()?, w.parse().ok()?))
        })
        .collect()
}

#[test]
fn replicas_open_what_the_others_seal_across_epochs_that_fill_up() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let root = tempfile::tempdir().expect("tempdir");
    let replicas = replicas(&db, root.path(), 3, 10);
    for i in 0..60usize {
        let (vault, _) = &replicas[i % 3];
        vault
            .set("global", &format!("k{i}"), format!("v{i}").as_bytes())
            .expect("set");
    }
    for (vault, _) in &replicas {
        for i in 0..60usize {
            let value = vault.get("global", &format!("k{i}"), None).expect("get");
            assert_eq!(value.expose_secret(), format!("v{i}").as_bytes());
        }
    }
    let epochs = epochs_in(&db);
    let numbers: Vec<u32> = epochs.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        numbers,
        (1..=epochs.len() as u32).collect::<Vec<_>>(),
        "{epochs:?}"
    );
    assert!(epochs.len() >= 6, "60 wraps over epochs of 10: {epochs:?}");
    assert!(
        epochs.iter().all(|(_, leased)| *leased <= 10),
        "an epoch over its budget: {epochs:?}"
    );
    // Nothing of the epochs is in the replicas' vault.json.
    let config = Vault::read_config(&root.path().join("r1")).expect("config");
    assert!(config.epochs.is_empty());
}

#[test]
fn a_replica_adopts_an_epoch_another_started_without_its_root_kek() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let root = tempfile::tempdir().expect("tempdir");
    let replicas = replicas(&db, root.path(), 2, 1 << 20);
    let ((a, _), (b, b_kek)) = (&replicas[0], &replicas[1]);
    a.set("global", "before", b"1").expect("set");
    assert_eq!(
        b.get("global", "before", None)
            .expect("get")
            .expose_secret(),
        b"1"
    );
    let number = a.rotate().expect("rotate");
    assert_eq!(number, 2);
    a.set("global", "after", b"2").expect("set under epoch 2");
    // B's device is gone: it opens epoch 2 with epoch 1's key (the upgrade copy).
    b_kek.store(false, Ordering::SeqCst);
    assert_eq!(
        b.get("global", "after", None).expect("get").expose_secret(),
        b"2"
    );
    // And B's own writes move to epoch 2 within a second (it follows the ledger).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    b.set("global", "from-b", b"3").expect("set");
    assert_eq!(
        a.get("global", "from-b", None)
            .expect("get")
            .expose_secret(),
        b"3"
    );
    let epochs = epochs_in(&db);
    assert_eq!(epochs.len(), 2, "{epochs:?}");
    // What is refused until it works for every replica at once.
    let err = a.set_min_decryption_version(2).expect_err("refused");
    assert!(err.to_string().contains("not supported yet"), "{err}");
}

#[test]
fn leases_from_3_replicas_x_32_threads_are_disjoint_and_within_the_budget() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    const BUDGET: u64 = 5_000;
    let stores: Vec<Arc<PostgresStore>> = (0..3)
        .map(|_| {
            let location = StoreLocation::new(db.url()).expect("url");
            Arc::new(PostgresStore::open_at(&location).expect("open"))
        })
        .collect();
    // An epoch row to lease from (its record is not read by leasing).
    db.psql("INSERT INTO epochs (number, record, wraps_leased) VALUES (7, '{}', 0)");
    let mut threads = Vec::new();
    for t in 0..96u64 {
        let store = Arc::clone(&stores[(t % 3) as usize]);
        threads.push(std::thread::spawn(move || {
            let mut ranges = Vec::new();
            let mut n = 1 + t % 37;
            loop {
                match store.lease_wraps(7, n, BUDGET).expect("lease") {
                    Some(range) => ranges.push(range),
                    // Smaller blocks may still fit, until none does.
                    None if n > 1 => n /= 2,
                    None => return ranges,
                }
            }
        }));
    }
    let mut ranges: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("thread"))
        .collect();
    ranges.sort_by_key(|r| r.start);
    let mut next = 0;
    for range in &ranges {
        assert_eq!(
            range.start, next,
            "ranges overlap or leave a gap: {range:?}"
        );
        next = range.end;
    }
    assert_eq!(
        next, BUDGET,
        "every wrap of the budget was leased, none beyond it"
    );

    // Of many replicas starting the same epoch at once, one adds it.
    let adders: Vec<_> = (0..96)
        .map(|t| {
            let store = Arc::clone(&stores[t % 3]);
            std::thread::spawn(move || {
                let epoch = vault::LedgerEpoch {
                    record: vault::EpochRecord {
                        number: 8,
                        created_at_ms: 0,
                        wraps_reserved: 0,
                        key: String::new(),
                        mac: format!("{t}"),
                    },
                    upgrade: None,
                    wraps_leased: 1,
                };
                store.add_epoch(&epoch).expect("add")
            })
        })
        .collect();
    let added = adders
        .into_iter()
        .filter(|_| true)
        .map(|t| t.join().expect("thread"))
        .filter(|added| *added)
        .count();
    assert_eq!(added, 1, "epoch 8 was started {added} times");
}

#[test]
fn a_batch_larger_than_the_servers_lock_table_is_written_whole() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let root = tempfile::tempdir().expect("tempdir");
    let replicas = replicas(&db, root.path(), 2, 1 << 20);
    let ((a, _), (b, _)) = (&replicas[0], &replicas[1]);
    // More keys than the server's default lock table holds (about 6,400 locks).
    let entries: Vec<(String, String)> = (0..8_000)
        .map(|i| (format!("k{i}"), format!("v{i}")))
        .collect();
    let borrowed: Vec<(&str, &str, &[u8])> = entries
        .iter()
        .map(|(k, v)| ("global", k.as_str(), v.as_bytes()))
        .collect();
    let versions = a.set_many(&borrowed).expect("one transaction");
    assert!(versions.iter().all(|v| *v == 1));
    // Writes of single keys go on around it, from another replica.
    b.set("global", "k7", b"after").expect("set");
    assert_eq!(
        a.get("global", "k7", None).expect("get").expose_secret(),
        b"after"
    );
    assert_eq!(
        b.get("global", "k7999", None).expect("get").expose_secret(),
        b"v7999"
    );
}

/// A software KEK of its own (a node's TPM, in production).
fn node_kek(name: &str) -> Kek {
    Kek {
        uri: format!("memory:{name}"),
        provider: Arc::new(SoftwareKek::new(
            KekId::new("memory", name, 1).expect("id"),
            root_key(),
        )),
    }
}

/// A replica directory `name` with copies of `from`'s vault.json and store.json.
fn copy_replica(root: &Path, from: &str, name: &str) -> std::path::PathBuf {
    let dir = root.join(name);
    std::fs::create_dir(&dir).expect("dir");
    for file in [vault::CONFIG_FILE, vault::STORE_LOCATION_FILE] {
        std::fs::copy(root.join(from).join(file), dir.join(file)).expect("copy");
    }
    dir
}

#[test]
fn root_kek_changes_reach_the_epochs_every_replica_shares() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let root = tempfile::tempdir().expect("tempdir");
    let (replicas, shared_key) = replicas_and_key(&db, root.path(), 2, 5);
    let (a, b) = (&replicas[0].0, &replicas[1].0);
    for i in 0..12usize {
        a.set("global", &format!("k{i}"), b"before").expect("set");
    }
    let only_shared = copy_replica(root.path(), "r1", "only-shared");
    // Node A adds its own KEK: every epoch's key gets its stanza, in the database.
    let kek_a = node_kek("node-a");
    a.add_kek(kek_a.clone()).expect("add on A");
    let only_a = copy_replica(root.path(), "r0", "only-a");
    let opened = Vault::open(&only_a, None, vec![kek_a.clone()]).expect("open with A's KEK");
    assert_eq!(
        opened
            .get("global", "k0", None)
            .expect("get")
            .expose_secret(),
        b"before"
    );
    drop(opened);
    // Node B, whose vault.json never heard of A's KEK, adds its own: A's stanza stays.
    let kek_b = node_kek("node-b");
    b.add_kek(kek_b.clone()).expect("add on B");
    let only_b = copy_replica(root.path(), "r1", "only-b");
    for (dir, kek) in [(&only_a, &kek_a), (&only_b, &kek_b)] {
        let opened = Vault::open(dir, None, vec![kek.clone()]).expect("open with one node KEK");
        assert_eq!(
            opened
                .get("global", "k11", None)
                .expect("get")
                .expose_secret(),
            b"before"
        );
    }
    // Both replicas keep working, across new epochs, through all of it.
    for i in 0..12usize {
        replicas[i % 2]
            .0
            .set("global", &format!("k{i}"), b"after")
            .expect("set after");
    }
    // The shared KEK removed (on A): it no longer opens any epoch, the node KEKs still do.
    // Until it is removed, the shared KEK alone opens everything.
    let shared_reads = || {
        Vault::open(&only_shared, None, vec![kek(&shared_key).0])
            .and_then(|v| v.get("global", "k0", None).map(|_| ()))
    };
    shared_reads().expect("the shared KEK opens the epochs");
    let shared_id = kek(&shared_key).0.provider.id().to_string();
    a.remove_kek(&shared_id)
        .expect("remove the shared KEK on A");
    assert!(
        shared_reads().is_err(),
        "a KEK that was removed opened the epochs"
    );
    let opened = Vault::open(&only_b, None, vec![kek_b]).expect("open with B's KEK");
    for i in 0..12usize {
        assert_eq!(
            opened
                .get("global", &format!("k{i}"), None)
                .expect("get")
                .expose_secret(),
            b"after"
        );
    }
}
