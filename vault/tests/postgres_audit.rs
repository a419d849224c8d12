//! Audit across replicas on a real PostgreSQL server: three replicas' audit logs, written
//! from many threads, are copied record for record into one chain each and checkpointed by
//! the leader; `verify_replicas` passes them, and names what was done when a middle record is
//! deleted, a chain's tail is cut (also with its head row put back as it was), a replica's
//! whole chain is dropped, a record or checkpoint is edited, or a checkpoint deleted. A
//! chain moved by someone else closes the log; a database restart only makes appends wait.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use envelope::{Dek, KekId, SoftwareKek};
use test_support::postgres::{self, PgServer};
use vault::audit::replicas::{ReplicaChain, ReplicaDefect, ReplicasReport};
use vault::audit::{AuditEvent, AuditLog, AuditOptions, Decision, NoAnchor};
use vault::{InitOptions, Kek, StoreKind, StoreLocation, Vault};

const TEST: &str = "postgres_audit";

/// One replica: its vault and its audit log copying to its chain.
struct Replica {
    vault: Arc<Vault>,
    chain: Arc<ReplicaChain>,
    log: AuditLog,
}

fn kek(key: &Dek) -> Kek {
    Kek {
        uri: "memory:shared".into(),
        provider: Arc::new(SoftwareKek::new(
            KekId::new("memory", "shared", 1).expect("id"),
            Dek::from_slice(key.expose_secret()).expect("key"),
        )),
    }
}

/// `n` replicas of one vault on `url`, in directories under `root`, each electing a leader;
/// and the key of their KEK.
fn replicas(url: &str, root: &Path, n: usize) -> Vec<Replica> {
    replicas_and_key(url, root, n).0
}

fn replicas_and_key(url: &str, root: &Path, n: usize) -> (Vec<Replica>, Dek) {
    let key = Dek::generate().expect("key");
    let first = root.join("r0");
    std::fs::create_dir(&first).expect("dir");
    let mut location = StoreLocation::new(url).expect("url");
    location.lease_ttl_ms = Some(800);
    location.write(&first).expect("store.json");
    drop(
        Vault::init_with(
            &first,
            &InitOptions::new(StoreKind::Postgres),
            vec![kek(&key)],
        )
        .expect("init"),
    );
    let replicas = (0..n)
        .map(|i| {
            let dir = root.join(format!("r{i}"));
            if i > 0 {
                std::fs::create_dir(&dir).expect("dir");
                for file in [vault::CONFIG_FILE, vault::STORE_LOCATION_FILE] {
                    std::fs::copy(first.join(file), dir.join(file)).expect("copy");
                }
            }
            open_replica(&dir, &key)
        })
        .collect();
    (replicas, key)
}

/// The replica in `dir` (a vault directory with its store.json).
fn open_replica(dir: &Path, key: &Dek) -> Replica {
    let vault = Arc::new(Vault::open(dir, None, vec![kek(key)]).expect("open"));
    vault.join_leader_election().expect("join");
    let audit_key = vault.audit_key().expect("audit key");
    let chain = ReplicaChain::new(&vault, &audit_key, Duration::from_secs(3600))
        .expect("chain")
        .expect("a shared store has chains");
    let mut options = AuditOptions::new(Arc::new(NoAnchor), "test");
    options.mirror = Some(Arc::clone(&chain) as _);
    let log = AuditLog::open(&dir.join("audit.jsonl"), audit_key, options).expect("log");
    Replica { vault, chain, log }
}

fn event(i: usize) -> AuditEvent {
    AuditEvent {
        principal: format!("svc-{}", i % 7),
        op: "get".into(),
        scope: Some("global".into()),
        key: Some(format!("k{i}")),
        ..AuditEvent::new(Decision::Allow, "OK")
    }
}

/// `per_thread` records from each of 4 threads on every replica, the async and the blocking
/// way.
fn load(replicas: &[Replica], per_thread: usize) {
    std::thread::scope(|s| {
        for replica in replicas {
            for t in 0..4 {
                s.spawn(move || {
                    for i in 0..per_thread {
                        if i % 2 == 0 {
                            replica.log.append(&event(t * 1000 + i)).expect("append");
                        } else {
                            futures_executor::block_on(replica.log.append_written(event(i)))
                                .expect("append");
                        }
                    }
                });
            }
        }
    });
}

/// The leader's checkpoint, made now.
fn checkpoint(replicas: &[Replica]) -> u64 {
    for _ in 0..300 {
        for replica in replicas {
            if replica.vault.leads() == Some(true) {
                return replica
                    .chain
                    .checkpoint_now()
                    .expect("checkpoint")
                    .expect("something to checkpoint");
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no replica leads");
}

fn verify(replica: &Replica) -> ReplicasReport {
    replica
        .vault
        .verify_replica_audit()
        .expect("verify")
        .expect("a shared store")
}

fn name(replica: &Replica) -> String {
    replica.chain.chain().expect("started")
}

#[test]
fn three_replicas_chains_verify_and_every_tampering_is_named() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let root = tempfile::tempdir().expect("tempdir");
    let replicas = replicas(db.url(), root.path(), 3);
    load(&replicas, 50);
    assert_eq!(checkpoint(&replicas), 1);
    load(&replicas[..1], 5);
    assert_eq!(checkpoint(&replicas), 2);

    let report = verify(&replicas[2]);
    assert_eq!(report.defects, vec![]);
    assert_eq!(report.checkpoints, 2);
    assert_eq!(report.chains.len(), 3);
    for replica in &replicas {
        let chain = report
            .chains
            .iter()
            .find(|c| c.chain == name(replica))
            .expect("every replica has its chain");
        // Every record of the log file is in the chain.
        let records = replica.log.status().records;
        assert_eq!((chain.records, chain.head_seq), (records, records));
        assert_eq!(chain.checkpointed_seq, Some(records));
    }

    let (a, b, c) = (name(&replicas[0]), name(&replicas[1]), name(&replicas[2]));
    // A middle record of A deleted; B's newest three cut; C dropped whole.
    db.psql(&format!(
        "DELETE FROM audit_records WHERE chain = '{a}' AND seq = 100"
    ));
    db.psql(&format!(
        "DELETE FROM audit_records WHERE chain = '{b}' AND seq > 197"
    ));
    db.psql(&format!("DELETE FROM audit_records WHERE chain = '{c}'"));
    db.psql(&format!("DELETE FROM audit_chains WHERE chain = '{c}'"));
    let defects = verify(&replicas[0]).defects;
    assert!(
        defects.contains(&ReplicaDefect::RecordsMissing {
            chain: a.clone(),
            from: 100,
            to: 100
        }),
        "{defects:?}"
    );
    assert!(
        defects.contains(&ReplicaDefect::TailCut {
            chain: b.clone(),
            ends_at: 197,
            expected: 200,
            checkpoint: None
        }),
        "{defects:?}"
    );
    assert!(
        defects.contains(&ReplicaDefect::ChainMissing {
            chain: c.clone(),
            number: 1,
            seq: 200
        }),
        "{defects:?}"
    );
    assert_eq!(defects.len(), 3, "{defects:?}");
    let text = defects
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains(&format!("chain {a}: records 100..100 were deleted")),
        "{text}"
    );
    assert!(text.contains(&format!("chain {c} is missing")), "{text}");
}

#[test]
fn a_cut_tail_with_its_old_head_row_put_back_is_caught_by_the_checkpoint() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let root = tempfile::tempdir().expect("tempdir");
    let replicas = replicas(db.url(), root.path(), 1);
    load(&replicas, 10);
    let a = name(&replicas[0]);
    let old_head = db.psql(&format!(
        "SELECT seq || ',' || quote_literal(mac) || ',' || quote_literal(tag) FROM audit_chains WHERE chain = '{a}'"
    ));
    let old_head: Vec<&str> = old_head.trim().splitn(3, ',').collect();
    load(&replicas, 10);
    checkpoint(&replicas);
    db.psql(&format!(
        "DELETE FROM audit_records WHERE chain = '{a}' AND seq > {0};
         UPDATE audit_chains SET seq = {0}, mac = {1}, tag = {2} WHERE chain = '{a}'",
        old_head[0], old_head[1], old_head[2]
    ));
    let defects = verify(&replicas[0]).defects;
    assert_eq!(
        defects,
        vec![ReplicaDefect::TailCut {
            chain: a,
            ends_at: 40,
            expected: 80,
            checkpoint: Some(1)
        }]
    );
}

#[test]
fn edited_records_forged_heads_and_deleted_checkpoints_are_named() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let root = tempfile::tempdir().expect("tempdir");
    let replicas = replicas(db.url(), root.path(), 2);
    load(&replicas, 5);
    checkpoint(&replicas);
    load(&replicas, 5);
    checkpoint(&replicas);
    load(&replicas, 5);
    checkpoint(&replicas);
    let (a, b) = (name(&replicas[0]), name(&replicas[1]));
    db.psql(&format!(
        "UPDATE audit_records SET line = replace(line, '\"op\":\"get\"', '\"op\":\"put\"')
             WHERE chain = '{a}' AND seq = 3;
         UPDATE audit_chains SET started_ms = started_ms + 1 WHERE chain = '{b}';
         DELETE FROM audit_checkpoints WHERE number = 2;
         UPDATE audit_checkpoints SET ts_ms = ts_ms + 1 WHERE number = 3"
    ));
    let defects = verify(&replicas[0]).defects;
    assert!(
        defects.contains(&ReplicaDefect::RecordDamaged {
            chain: a.clone(),
            seq: 3,
            defect: vault::audit::AuditDefect::MacMismatch { seq: 3 }
        }),
        "{defects:?}"
    );
    assert!(
        defects.contains(&ReplicaDefect::HeadForged { chain: b.clone() }),
        "{defects:?}"
    );
    assert!(
        defects.contains(&ReplicaDefect::CheckpointsMissing { from: 2, to: 2 }),
        "{defects:?}"
    );
    assert!(
        defects.contains(&ReplicaDefect::CheckpointForged { number: 3 }),
        "{defects:?}"
    );
}

#[test]
fn a_chain_moved_by_someone_else_closes_the_log() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let root = tempfile::tempdir().expect("tempdir");
    let replicas = replicas(db.url(), root.path(), 1);
    load(&replicas, 2);
    let a = name(&replicas[0]);
    db.psql(&format!(
        "UPDATE audit_chains SET seq = seq + 5 WHERE chain = '{a}'"
    ));
    let error = replicas[0].log.append(&event(1)).expect_err("refused");
    assert!(error.to_string().contains("by someone else"), "{error}");
    assert!(replicas[0].log.status().failed.is_some());
    assert!(
        replicas[0].log.append(&event(2)).is_err(),
        "the log stays closed"
    );
}

#[test]
fn appends_wait_out_a_database_restart_and_the_chain_has_no_gap() {
    let Some(server) = PgServer::start(TEST) else {
        return;
    };
    let db = server.database();
    let root = tempfile::tempdir().expect("tempdir");
    let replicas = replicas(db.url(), root.path(), 1);
    load(&replicas, 5);
    std::thread::scope(|s| {
        let writer = s.spawn(|| load(&replicas, 20));
        std::thread::sleep(Duration::from_millis(20));
        server.restart();
        writer.join().expect("appends went on after the restart");
    });
    let report = verify(&replicas[0]);
    assert_eq!(report.defects, vec![]);
    assert_eq!(report.chains[0].records, 4 * 25);
    assert!(replicas[0].log.status().failed.is_none());
}

#[test]
fn schema_1_databases_gain_the_audit_tables() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let root = tempfile::tempdir().expect("tempdir");
    drop(replicas(db.url(), root.path(), 1));
    // As a version 1 database was: no audit tables.
    db.psql(
        "DROP TABLE audit_chains, audit_records, audit_checkpoints, audit_checkpoint_heads;
         UPDATE vault_schema SET version = 1",
    );
    let store = vault::PostgresStore::open_at(&StoreLocation::new(db.url()).expect("url"))
        .expect("open migrates");
    drop(store);
    assert_eq!(db.psql("SELECT MAX(version) FROM vault_schema").trim(), "2");
    assert_eq!(
        db.psql("SELECT COUNT(*) FROM audit_chains").trim(),
        "0",
        "the tables exist"
    );
}

#[test]
fn a_replica_role_with_the_readmes_grants_appends_and_cannot_rewrite_the_audit() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let root = tempfile::tempdir().expect("tempdir");
    let (owner, key) = replicas_and_key(db.url(), root.path(), 1);
    // The grants the README gives the replicas' role.
    let role = format!("replica_{}", db.name());
    db.psql(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'replica-pass';
         GRANT SELECT, INSERT, UPDATE, DELETE ON secrets, changes, epochs, leader_lease TO {role};
         GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role};
         GRANT SELECT ON vault_schema TO {role};
         GRANT SELECT, INSERT ON audit_records, audit_checkpoints, audit_checkpoint_heads TO {role};
         GRANT SELECT, INSERT, UPDATE ON audit_chains TO {role};"
    ));
    let dir = root.path().join("limited");
    std::fs::create_dir(&dir).expect("dir");
    std::fs::copy(
        root.path().join("r0").join(vault::CONFIG_FILE),
        dir.join(vault::CONFIG_FILE),
    )
    .expect("copy");
    let password = root.path().join("db.pass");
    std::fs::write(&password, "replica-pass\n").expect("password");
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let mut location = StoreLocation::new(&format!(
        "postgres://{role}@127.0.0.1:{}/{}",
        db.port(),
        db.name()
    ))
    .expect("url");
    location.password_file = Some(password);
    location.lease_ttl_ms = Some(800);
    location.write(&dir).expect("store.json");
    let limited = open_replica(&dir, &key);
    let replicas = [owner.into_iter().next().expect("owner"), limited];
    // The role serves secrets too.
    let limited = &replicas[1].vault;
    assert_eq!(limited.set("global", "k", b"v1").expect("set"), 1);
    assert_eq!(
        limited
            .get("global", "k", None)
            .expect("get")
            .expose_secret(),
        b"v1"
    );
    limited.delete("global", "k").expect("delete");
    load(&replicas, 10);
    // Whichever leads checkpoints, the limited role too.
    checkpoint(&replicas);
    assert_eq!(verify(&replicas[1]).defects, vec![]);
    for statement in [
        "DELETE FROM audit_records",
        "UPDATE audit_records SET line = ''",
        "DELETE FROM audit_checkpoints",
        "DELETE FROM audit_chains",
        "TRUNCATE audit_records",
    ] {
        let out = db
            .client("psql")
            .env("PGUSER", &role)
            .env("PGPASSWORD", "replica-pass")
            .args(["-v", "ON_ERROR_STOP=1", "-c", statement])
            .output()
            .expect("psql");
        assert!(!out.status.success(), "{statement} was allowed");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("permission denied"),
            "{statement}: {stderr}"
        );
    }
}
