//! End to end: vaultd replicas on one PostgreSQL database (a real server, started by the test
//! fixture as the `postgres` user). Every replica serves reads and writes; a write through
//! one is read through the others, from their cache at most `SHARED_STORE_MAX_STALENESS`
//! late; of writers racing on different replicas with the same expected version exactly one
//! wins; a database restart is survived without restarting vaultd.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Daemon, Sandbox, code, spawn_listening};
use proto::v1 as pb;
use test_support::postgres::{self, PgDatabase};
use tonic::Code;
use vault::{InitOptions, StoreKind, StoreLocation, Vault, WrapMode};

const TEST: &str = "e2e_postgres_replicas";
/// The leader lease's time to live in these clusters (renewed every quarter of it).
const LEASE_TTL: Duration = Duration::from_secs(2);

/// A vault on `db` with a file KEK, and `n` replica directories holding copies of its
/// vault.json and store.json, as an operator makes them; each replica has its own audit log.
struct Cluster {
    sandbox: Sandbox,
    tls: PathBuf,
    replicas: Vec<PathBuf>,
    db: PgDatabase,
}

impl Cluster {
    fn new(db: PgDatabase, n: usize) -> Self {
        let sandbox = Sandbox::new();
        // The development layout gives the TLS material (its own SQLite vault is unused).
        let dev = vaultd::dev::DevDir {
            root: sandbox.dev_dir(),
        };
        dev.prepare(vaultd::config::Config::default())
            .expect("TLS material");
        let first = sandbox.root().join("replica-0");
        std::fs::create_dir(&first).expect("vault dir");
        let mut location = StoreLocation::new(db.url()).expect("url");
        location.lease_ttl_ms = Some(LEASE_TTL.as_millis() as u64);
        location.write(&first).expect("store.json");
        let key = sandbox.root().join("kek.key");
        let built = kek_providers::create(
            &format!("file:{}", key.display()),
            &kek_providers::KekEnv { vault_dir: &first },
        )
        .expect("file KEK");
        let kek = vault::Kek {
            uri: built.uri,
            provider: built.provider,
        };
        let options = InitOptions {
            mode: Some(WrapMode::Direct),
            ..InitOptions::new(StoreKind::Postgres)
        };
        drop(Vault::init_with(&first, &options, vec![kek]).expect("init on PostgreSQL"));
        let mut replicas = vec![first.clone()];
        for i in 1..n {
            let dir = sandbox.root().join(format!("replica-{i}"));
            std::fs::create_dir(&dir).expect("replica dir");
            for file in [vault::CONFIG_FILE, vault::STORE_LOCATION_FILE] {
                std::fs::copy(first.join(file), dir.join(file)).expect("copy the vault's files");
            }
            replicas.push(dir);
        }
        Cluster {
            tls: dev.tls(),
            sandbox,
            replicas,
            db,
        }
    }

    fn start(&self, i: usize) -> Daemon {
        let config = self.sandbox.root().join(format!("vaultd-{i}.toml"));
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\nvault_dir = \"{}\"\n[tls]\ndir = \"{}\"\n\
                 [limits]\nrate_per_second = 100000\nburst = 100000\n\
                 [audit]\ncheckpoint_interval_secs = 1\n\
                 [[acl]]\nprincipal = \"admin\"\nscopes = [\"*\"]\noperations = [\"read\", \"write\", \"delete\", \"list\", \"admin\", \"audit\"]\n",
                self.replicas[i].display(),
                self.tls.display()
            ),
        )
        .expect("config");
        set_private(&config);
        let mut command = Command::new(env!("CARGO_BIN_EXE_vaultd"));
        command
            .arg("--config")
            .arg(&config)
            .env_remove("VAULTD_CONFIG");
        for (var, _) in vaultd::config::ENV_VARS {
            command.env_remove(var);
        }
        let stderr_path = self.sandbox.root().join(format!("replica-{i}.stderr"));
        command.stderr(File::create(&stderr_path).expect("stderr file"));
        spawn_listening(command, stderr_path, self.sandbox.dev_dir(), false)
            .unwrap_or_else(|e| panic!("replica {i}: {e}"))
    }
}

fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

fn put(key: &str, value: &[u8], expected_version: Option<u64>) -> pb::PutRequest {
    pb::PutRequest {
        scope: "global".into(),
        key: key.into(),
        value: value.to_vec(),
        expected_version,
    }
}

fn get(key: &str) -> pb::GetRequest {
    pb::GetRequest {
        scope: "global".into(),
        key: key.into(),
        version: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_writes_and_serve_no_change_stale_beyond_the_bound() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let cluster = Cluster::new(db, 3);
    let daemons: Vec<Daemon> = (0..3).map(|i| cluster.start(i)).collect();
    let mut clients = Vec::new();
    for daemon in &daemons {
        clients.push(daemon.client("admin").await);
    }

    // Written through one replica, read through every one.
    for (n, client) in clients.iter_mut().enumerate() {
        let key = format!("from-{n}");
        client
            .put(put(&key, key.as_bytes(), None))
            .await
            .expect("put");
    }
    for client in &mut clients {
        for n in 0..3 {
            let key = format!("from-{n}");
            let reply = client.get(get(&key)).await.expect("get").into_inner();
            assert_eq!(reply.value, key.as_bytes());
        }
    }

    // Replica 1 has cached from-0; replica 0 changes it. Replica 1 serves the new value
    // within the bound (5 s), and never a value older than the one it had.
    let changed = Instant::now();
    clients[0]
        .put(put("from-0", b"changed", None))
        .await
        .expect("change");
    let fresh_after = loop {
        let reply = clients[1]
            .get(get("from-0"))
            .await
            .expect("get")
            .into_inner();
        if reply.value == b"changed" {
            assert_eq!(reply.version, 2);
            break changed.elapsed();
        }
        assert_eq!(reply.value, b"from-0", "only the old or the new value");
        assert!(
            changed.elapsed() < vault::DEFAULT_MAX_STALENESS + Duration::from_secs(1),
            "replica 1 still serves the old value after {:?}",
            changed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("replica 1 served the change after {fresh_after:?}");

    // A delete through replica 2 is seen by replica 0 within the bound too.
    clients[2]
        .delete(pb::DeleteRequest {
            scope: "global".into(),
            key: "from-1".into(),
        })
        .await
        .expect("delete");
    let deleted = Instant::now();
    loop {
        match clients[0].get(get("from-1")).await {
            Err(status) if status.code() == Code::NotFound => break,
            Ok(_) => assert!(
                deleted.elapsed() < vault::DEFAULT_MAX_STALENESS + Duration::from_secs(1),
                "replica 0 still serves a deleted secret"
            ),
            Err(status) => panic!("{status:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_racing_on_different_replicas_let_exactly_one_win() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let cluster = Cluster::new(db, 3);
    let daemons: Vec<Daemon> = (0..3).map(|i| cluster.start(i)).collect();
    let mut admin = daemons[0].client("admin").await;
    admin
        .put(put("config", b"v1", Some(0)))
        .await
        .expect("create-only");

    let mut writers = Vec::new();
    for n in 0..12u8 {
        let mut client = daemons[usize::from(n) % 3].client("admin").await;
        writers.push(tokio::spawn(async move {
            client.put(put("config", &[b'w', n], Some(1))).await
        }));
    }
    let mut won = Vec::new();
    for writer in writers {
        match writer.await.expect("writer task") {
            Ok(reply) => won.push(reply.into_inner().version),
            Err(status) => assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}"),
        }
    }
    assert_eq!(won, [2], "exactly one writer wins across replicas");
    for daemon in &daemons {
        let reply = daemon
            .client("admin")
            .await
            .get(get("config"))
            .await
            .expect("get")
            .into_inner();
        assert_eq!((reply.version, reply.value[0]), (2, b'w'));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_is_survived_without_restarting_vaultd() {
    let Some(server) = postgres::PgServer::start(TEST) else {
        return;
    };
    let server = Arc::new(server);
    let cluster = Cluster::new(server.database(), 1);
    let daemon = cluster.start(0);
    let mut client = daemon.client("admin").await;
    client.put(put("k", b"before", None)).await.expect("put");

    server.restart();
    // Calls in flight during the restart may fail; after it, the pool replaces the
    // connections the restart broke, and every call succeeds.
    let restarted = Instant::now();
    loop {
        match client.put(put("k", b"after", None)).await {
            Ok(_) => break,
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert!(
                    restarted.elapsed() < Duration::from_secs(15),
                    "vaultd did not recover from the database restart: {status:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    for _ in 0..20 {
        let reply = client.get(get("k")).await.expect("get after the restart");
        assert_eq!(reply.into_inner().value, b"after");
    }
    let status = code(&client.get(get("missing")).await);
    assert_eq!(status, Code::NotFound);
}

/// The holder of the leader lease (`host:pid:random`) and its term, from the database.
fn lease(db: &PgDatabase) -> Option<(u32, i64)> {
    let out = db.psql("SELECT holder, term FROM leader_lease WHERE name = 'leader'");
    let (holder, term) = out.lines().next()?.split_once('|')?;
    let pid = holder.split(':').nth(1)?.parse().ok()?;
    Some((pid, term.trim().parse().ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leader_is_killed_another_replica_takes_over_within_the_lease() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let cluster = Cluster::new(db, 3);
    let mut daemons: Vec<Daemon> = (0..3).map(|i| cluster.start(i)).collect();
    let started = Instant::now();
    let (leader_pid, term) = loop {
        if let Some(lease) = lease(&cluster.db) {
            break lease;
        }
        assert!(
            started.elapsed() < LEASE_TTL * 2,
            "no replica took the lease"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let at = daemons
        .iter()
        .position(|d| d.pid == leader_pid)
        .expect("the lease names one of the replicas");
    // Load on the survivors while the leader dies.
    let mut survivor = daemons[(at + 1) % 3].client("admin").await;
    survivor.put(put("k", b"v", None)).await.expect("put");

    daemons.remove(at).kill();
    let killed = Instant::now();
    let (new_pid, new_term) = loop {
        if let Some((pid, term_now)) = lease(&cluster.db)
            && pid != leader_pid
        {
            break (pid, term_now);
        }
        survivor
            .get(get("k"))
            .await
            .expect("the survivors serve meanwhile");
        assert!(
            killed.elapsed() <= LEASE_TTL + LEASE_TTL / 4 + Duration::from_secs(1),
            "no replica took over {:?} after the leader was killed",
            killed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("taken over after {:?}", killed.elapsed());
    assert!(new_term > term, "a new term: {new_term} after {term}");
    assert!(
        daemons.iter().any(|d| d.pid == new_pid),
        "a live replica leads"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_clients_over_three_replicas_lose_no_acknowledged_write() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let cluster = Cluster::new(db, 3);
    let daemons: Vec<Daemon> = (0..3).map(|i| cluster.start(i)).collect();
    const CLIENTS: usize = 64;
    const WRITES: usize = 12;
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mut client = daemons[c % 3].client("admin").await;
        tasks.push(tokio::spawn(async move {
            // Each client overwrites a key of its own and one key all clients share, and
            // reads back what it wrote to its own.
            let mut acknowledged = Vec::new();
            for w in 0..WRITES {
                let own = format!("c{c}");
                let value = format!("{c}-{w}");
                let reply = client
                    .put(put(&own, value.as_bytes(), None))
                    .await
                    .expect("put own");
                acknowledged.push((own.clone(), reply.into_inner().version, value.clone()));
                let reply = client
                    .put(put("shared", value.as_bytes(), None))
                    .await
                    .expect("put shared");
                acknowledged.push(("shared".into(), reply.into_inner().version, value));
                let read = client.get(get(&own)).await.expect("get own").into_inner();
                assert_eq!(read.version, w as u64 + 1, "read your own write");
            }
            acknowledged
        }));
    }
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.extend(task.await.expect("client task"));
    }
    // Every acknowledged version of every key reads back, with its value, from every replica.
    let shared: Vec<u64> = {
        let mut v: Vec<u64> = acknowledged
            .iter()
            .filter(|(key, _, _)| key == "shared")
            .map(|(_, version, _)| *version)
            .collect();
        v.sort_unstable();
        v
    };
    assert_eq!(
        shared,
        (1..=(CLIENTS * WRITES) as u64).collect::<Vec<_>>(),
        "the shared key's versions are each acknowledged once, none lost"
    );
    // Each acknowledged version reads back with its value (from the replicas in turn), and
    // every replica serves each key's newest version.
    let mut clients = Vec::new();
    for daemon in &daemons {
        clients.push(daemon.client("admin").await);
    }
    for (n, (key, version, value)) in acknowledged.iter().enumerate() {
        let read = clients[n % 3]
            .get(pb::GetRequest {
                scope: "global".into(),
                key: key.clone(),
                version: Some(*version),
            })
            .await
            .expect("an acknowledged version")
            .into_inner();
        assert_eq!(read.value, value.as_bytes(), "{key} v{version}");
    }
    let newest = |key: &str| {
        acknowledged
            .iter()
            .filter(|(k, _, _)| k == key)
            .max_by_key(|(_, version, _)| *version)
            .map(|(_, version, value)| (*version, value.clone()))
            .expect("written")
    };
    for client in &mut clients {
        for key in (0..CLIENTS)
            .map(|c| format!("c{c}"))
            .chain(["shared".to_owned()])
        {
            let read = client.get(get(&key)).await.expect("get").into_inner();
            let (version, value) = newest(&key);
            assert_eq!(
                (read.version, read.value),
                (version, value.into_bytes()),
                "{key}"
            );
        }
    }
}

/// `vaultctl audit verify` on replica `i`'s directory: its exit status and output.
fn audit_verify(cluster: &Cluster, i: usize) -> (bool, String) {
    let out = common::vaultctl_command(&[])
        .arg("--vault")
        .arg(&cluster.replicas[i])
        .args(["audit", "verify"])
        .output()
        .expect("run vaultctl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Waits until the leader's checkpoints name every chain's head.
async fn wait_for_checkpoints(db: &PgDatabase) {
    let started = Instant::now();
    while db
        .psql(
            "SELECT COUNT(*) FROM audit_chains c WHERE c.seq > COALESCE(
                 (SELECT MAX(h.seq) FROM audit_checkpoint_heads h WHERE h.chain = c.chain), -1)",
        )
        .trim()
        != "0"
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the leader did not checkpoint the chains"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_across_replicas_verifies_and_names_what_was_cut() {
    let Some(db) = postgres::database(TEST) else {
        return;
    };
    let cluster = Cluster::new(db, 3);
    let daemons: Vec<Daemon> = (0..3).map(|i| cluster.start(i)).collect();
    let mut tasks = Vec::new();
    for c in 0..12 {
        let mut client = daemons[c % 3].client("admin").await;
        tasks.push(tokio::spawn(async move {
            for w in 0..10 {
                let key = format!("c{c}");
                client.put(put(&key, b"v", None)).await.expect("put");
                client.get(get(&key)).await.expect("get");
                if w == 0 {
                    let absent = client.get(get("missing")).await;
                    assert_eq!(code(&absent), Code::NotFound);
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("client");
    }
    wait_for_checkpoints(&cluster.db).await;
    let (ok, text) = audit_verify(&cluster, 1);
    assert!(ok, "{text}");
    assert!(text.contains("replica audit chains: 3 chain(s)"), "{text}");
    assert!(text.contains("all verify"), "{text}");

    // Each chain holds what its replica's file holds: the same records, line for line.
    let chains: Vec<String> = cluster
        .db
        .psql("SELECT chain FROM audit_chains ORDER BY chain")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(chains.len(), 3);
    for (i, daemon) in daemons.iter().enumerate() {
        let chain = chains
            .iter()
            .find(|c| c.contains(&format!(":{}:", daemon.pid)))
            .expect("a chain per replica, named by its process");
        let file = std::fs::read_to_string(cluster.replicas[i].join("audit.jsonl")).expect("log");
        let rows = cluster.db.psql(&format!(
            "SELECT line FROM audit_records WHERE chain = '{chain}' ORDER BY seq"
        ));
        let file_lines: Vec<&str> = file.lines().collect();
        let row_lines: Vec<&str> = rows.lines().collect();
        assert!(!row_lines.is_empty());
        assert_eq!(
            file_lines[file_lines.len() - row_lines.len()..],
            row_lines[..],
            "replica {i}"
        );
    }

    // An administrator's copy of the vault's files, with no audit log of its own, verifies
    // the database's chains alone.
    let admin = cluster.sandbox.root().join("admin");
    std::fs::create_dir(&admin).expect("admin dir");
    for file in [vault::CONFIG_FILE, vault::STORE_LOCATION_FILE] {
        std::fs::copy(cluster.replicas[0].join(file), admin.join(file)).expect("copy");
    }
    let out = common::vaultctl_command(&[])
        .arg("--vault")
        .arg(&admin)
        .args(["audit", "verify", "--format", "json"])
        .output()
        .expect("run vaultctl");
    assert!(out.status.success(), "{out:?}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["ok"], true, "{doc}");
    assert_eq!(doc["records"], serde_json::Value::Null, "{doc}");
    assert_eq!(
        doc["replicas"]["chains"].as_array().map(Vec::len),
        Some(3),
        "{doc}"
    );

    let (a, b, c) = (&chains[0], &chains[1], &chains[2]);
    cluster.db.psql(&format!(
        "DELETE FROM audit_records WHERE chain = '{a}'
             AND seq = (SELECT MIN(seq) + 3 FROM audit_records WHERE chain = '{a}');
         DELETE FROM audit_records WHERE chain = '{b}'
             AND seq > (SELECT MAX(seq) - 2 FROM audit_records WHERE chain = '{b}');
         DELETE FROM audit_records WHERE chain = '{c}';
         DELETE FROM audit_chains WHERE chain = '{c}';"
    ));
    let (ok, text) = audit_verify(&cluster, 0);
    assert!(!ok, "tampering must fail verification: {text}");
    assert!(
        text.contains(&format!("DAMAGED: chain {a}: records ")) && text.contains("were deleted"),
        "{text}"
    );
    assert!(
        text.contains(&format!("DAMAGED: chain {b}: it ends at seq")),
        "{text}"
    );
    assert!(
        text.contains(&format!("DAMAGED: chain {c} is missing")),
        "{text}"
    );
    drop(daemons);
}
