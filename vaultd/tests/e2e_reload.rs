//! End to end: SIGHUP reloads the configuration. Under a 64-client load an ACL change
//! applies within a second, no call fails and the vault stays unlocked; a configuration that
//! fails its checks, or changes a setting that cannot change at runtime, is refused whole,
//! logged and audited, and the running one stays.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Client, Daemon, Sandbox, code};
use proto::v1 as pb;
use tonic::Code;
use vault::audit::{AuditRecord, Decision, Stage};

const CLIENTS: usize = 64;
/// Calls the loaders make before the SIGHUP, and again after the new rule is seen.
const CALLS_EACH_SIDE: usize = CLIENTS * 20;
/// How soon after the SIGHUP the new rule must be in force.
const RULE_DEADLINE: Duration = Duration::from_secs(1);

/// A configuration: an admin, 64 loaders on `load-*`, and a probe that may read `probe_keys`.
fn config(probe_keys: &str, extra: &str) -> String {
    format!(
        r#"
[limits]
rate_per_second = 1000000
burst = 1000000
{extra}

[[acl]]
principal = "admin"
scopes = ["*"]
operations = ["read", "write", "delete", "list", "seal", "open", "admin", "audit"]

[[acl]]
principal = "loader"
scopes = ["global"]
keys = ["load-*"]
operations = ["read", "write"]

[[acl]]
principal = "probe"
scopes = ["global"]
keys = ["{probe_keys}"]
operations = ["read"]
"#
    )
}

async fn get(
    api: &mut Client,
    key: &str,
) -> Result<tonic::Response<pb::GetResponse>, tonic::Status> {
    api.get(pb::GetRequest {
        scope: "global".into(),
        key: key.into(),
        version: None,
    })
    .await
}

async fn put(api: &mut Client, key: &str, value: &[u8]) {
    api.put(pb::PutRequest {
        scope: "global".into(),
        key: key.into(),
        value: value.to_vec(),
        expected_version: None,
    })
    .await
    .unwrap_or_else(|s| panic!("put {key}: {s:?}"));
}

/// Puts and reads back its own keys until `stop`; every failure goes to `failures`.
async fn load(
    i: usize,
    mut api: Client,
    calls: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    failures: Arc<Mutex<Vec<String>>>,
) {
    let mut n = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let key = format!("load-{i}-{}", n % 4);
        let value = format!("client {i} call {n}").into_bytes();
        let put = api
            .put(pb::PutRequest {
                scope: "global".into(),
                key: key.clone(),
                value: value.clone(),
                expected_version: None,
            })
            .await;
        let got = get(&mut api, &key).await;
        match (put, got) {
            (Ok(_), Ok(got)) if got.get_ref().value == value => {}
            (put, got) => failures.lock().expect("failures").push(format!(
                "client {i} call {n}: put {:?}, get {:?}",
                put.err(),
                got.map(|g| g.into_inner().value.len())
            )),
        }
        calls.fetch_add(2, Ordering::SeqCst);
        n += 1;
    }
}

async fn wait_for_calls(calls: &AtomicUsize, at_least: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while calls.load(Ordering::SeqCst) < at_least {
        assert!(Instant::now() < deadline, "the load stalled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The reload records: each `outcome` with its `started` record before it.
fn reloads(records: &[AuditRecord]) -> Vec<&AuditRecord> {
    let outcomes: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| r.op == "reload" && r.stage == Stage::Outcome)
        .collect();
    for outcome in &outcomes {
        let started = outcome
            .call
            .expect("a reload outcome names its started record");
        let start = records
            .iter()
            .find(|r| r.seq == started)
            .expect("the started record");
        assert_eq!(
            (start.op.as_str(), start.stage, start.principal.as_str()),
            ("reload", Stage::Started, "-")
        );
        assert!(start.seq < outcome.seq);
    }
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_under_load_applies_a_new_acl_without_failing_a_call() {
    let sandbox = Sandbox::in_memory();
    let daemon = sandbox.daemon().config(&config("old-*", "")).start();
    let mut admin = daemon.client("admin").await;
    put(&mut admin, "old-1", b"old").await;
    put(&mut admin, "new-1", b"new").await;
    let mut probe = daemon.client("probe").await;
    assert_eq!(code(&get(&mut probe, "old-1").await), Code::Ok);
    assert_eq!(
        code(&get(&mut probe, "new-1").await),
        Code::PermissionDenied
    );

    let (calls, stop) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let failures = Arc::new(Mutex::new(Vec::new()));
    let mut loaders = Vec::new();
    for i in 0..CLIENTS {
        let api = daemon.client("loader").await;
        loaders.push(tokio::spawn(load(
            i,
            api,
            Arc::clone(&calls),
            Arc::clone(&stop),
            Arc::clone(&failures),
        )));
    }
    wait_for_calls(&calls, CALLS_EACH_SIDE).await;

    sandbox.write_config(&config("new-*", ""));
    let hup = Instant::now();
    daemon.signal("HUP");
    loop {
        if code(&get(&mut probe, "new-1").await) == Code::Ok {
            break;
        }
        assert!(
            hup.elapsed() < RULE_DEADLINE,
            "the new rule was not in force {RULE_DEADLINE:?} after SIGHUP; stderr:\n{}",
            daemon.stderr()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let in_force = hup.elapsed();
    assert_eq!(
        code(&get(&mut probe, "old-1").await),
        Code::PermissionDenied,
        "the rule the new configuration dropped still applies"
    );
    let after = calls.load(Ordering::SeqCst);
    wait_for_calls(&calls, after + CALLS_EACH_SIDE).await;
    stop.store(true, Ordering::SeqCst);
    for loader in loaders {
        loader.await.expect("a loader panicked");
    }
    let failures = std::mem::take(&mut *failures.lock().expect("failures"));
    assert!(
        failures.is_empty(),
        "{} failed calls, first: {:?}",
        failures.len(),
        failures.first()
    );
    let status = admin
        .status(pb::StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert!(!status.locked, "the reload locked the vault");
    eprintln!(
        "new rule in force {in_force:?} after SIGHUP; {} calls by {CLIENTS} clients, none failed",
        calls.load(Ordering::SeqCst)
    );
    daemon.wait_for_log("configuration reloaded", 1).await;
    assert!(daemon.terminate().success());

    let records = sandbox.audit_records();
    let reloads = reloads(&records);
    assert_eq!(reloads.len(), 1, "{reloads:?}");
    assert_eq!(
        (reloads[0].decision, reloads[0].status.as_str()),
        (Decision::Allow, "OK")
    );
    assert!(
        reloads[0]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("3 ACL rules"),
        "{:?}",
        reloads[0].reason
    );
    sandbox.verify_audit().expect("the audit log verifies");
}

/// Whether the probe may read `key` now.
async fn probe_reads(probe: &mut Client, key: &str) -> bool {
    match code(&get(probe, key).await) {
        Code::Ok => true,
        Code::PermissionDenied => false,
        other => panic!("probe read of {key}: {other:?}"),
    }
}

async fn hup_and_wait(daemon: &Daemon, needle: &str, count: usize) -> String {
    daemon.signal("HUP");
    daemon.wait_for_log(needle, count).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reload_is_logged_and_audited_and_the_running_configuration_stays() {
    let sandbox = Sandbox::in_memory();
    let daemon = sandbox.daemon().config(&config("old-*", "")).start();
    let mut admin = daemon.client("admin").await;
    put(&mut admin, "old-1", b"old").await;
    put(&mut admin, "new-1", b"new").await;
    let mut probe = daemon.client("probe").await;
    let file = sandbox.root().join("vaultd.toml");

    // Not TOML.
    sandbox.write_config(&format!("{}\n[[acl]\n", config("new-*", "")));
    let stderr = hup_and_wait(&daemon, "reload refused", 1).await;
    let refused = stderr
        .lines()
        .find(|l| l.contains("reload refused"))
        .expect("the refusal");
    assert!(
        refused.contains(&file.display().to_string()),
        "the refusal names the file: {refused}"
    );
    // TOML that parses, with a rule that does not compile.
    sandbox.write_config(&config("new-{other}", ""));
    let stderr = hup_and_wait(&daemon, "reload refused", 2).await;
    let refused = stderr
        .lines()
        .filter(|l| l.contains("reload refused"))
        .nth(1)
        .expect("the second refusal");
    assert!(refused.contains("acl[2].keys[0]"), "{refused}");
    // A valid file that changes a restart-only setting along with the ACL: refused whole.
    sandbox.write_config(&config("new-*", "request_timeout_ms = 1234"));
    let stderr = hup_and_wait(&daemon, "reload refused", 3).await;
    let refused = stderr
        .lines()
        .filter(|l| l.contains("reload refused"))
        .nth(2)
        .expect("the third refusal");
    assert!(
        refused.contains("limits.request_timeout_ms cannot change while vaultd runs"),
        "{refused}"
    );
    // A valid file, with a revocation list that would not be taken (its watcher keeps the
    // last good one too).
    sandbox.write_config(&config("new-*", ""));
    let revoked = sandbox.pki().revoked();
    let good_list = std::fs::read(&revoked).expect("revoked.txt");
    std::fs::write(&revoked, "not an entry\n").expect("break revoked.txt");
    let stderr = hup_and_wait(&daemon, "reload refused", 4).await;
    let refused = stderr
        .lines()
        .filter(|l| l.contains("reload refused"))
        .nth(3)
        .expect("the fourth refusal");
    assert!(
        refused.contains("revocation list would not be taken"),
        "{refused}"
    );
    std::fs::write(&revoked, good_list).expect("restore revoked.txt");
    // The probe's rule is still the one the daemon started with.
    assert!(probe_reads(&mut probe, "old-1").await);
    assert!(!probe_reads(&mut probe, "new-1").await);
    assert!(!stderr.contains("configuration reloaded"), "{stderr}");

    // Fixed: taken.
    sandbox.write_config(&config("new-*", ""));
    hup_and_wait(&daemon, "configuration reloaded", 1).await;
    assert!(probe_reads(&mut probe, "new-1").await);
    assert!(!probe_reads(&mut probe, "old-1").await);
    assert!(daemon.terminate().success());

    let records = sandbox.audit_records();
    let reloads = reloads(&records);
    let decisions: Vec<(Decision, &str)> = reloads
        .iter()
        .map(|r| (r.decision, r.status.as_str()))
        .collect();
    assert_eq!(
        decisions,
        [
            (Decision::Deny, "FAILED_PRECONDITION"),
            (Decision::Deny, "FAILED_PRECONDITION"),
            (Decision::Deny, "FAILED_PRECONDITION"),
            (Decision::Deny, "FAILED_PRECONDITION"),
            (Decision::Allow, "OK"),
        ]
    );
    let reason = |i: usize| reloads[i].reason.clone().unwrap_or_default();
    assert!(reason(0).contains("vaultd.toml"), "{}", reason(0));
    assert!(reason(1).contains("acl[2].keys[0]"), "{}", reason(1));
    assert!(
        reason(2).contains("limits.request_timeout_ms"),
        "{}",
        reason(2)
    );
    assert!(reason(3).contains("revoked.txt"), "{}", reason(3));
    sandbox.verify_audit().expect("the audit log verifies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_replaces_the_server_certificate_for_new_connections_only() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start();
    let mut before = daemon.client("admin").await;
    put(&mut before, "kept", b"value").await;

    // Another CA and a server certificate it signed, put in place of the daemon's.
    let other = pki::PkiDir::new(sandbox.root().join("other-pki"));
    other
        .create(&["localhost".into(), "127.0.0.1".into()])
        .expect("another CA");
    let tls = sandbox.pki();
    let read = |path: std::path::PathBuf| std::fs::read(path).expect("read a PEM file");
    let trusting_other = || {
        tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(read(
                other.ca_cert(),
            )))
            .identity(tonic::transport::Identity::from_pem(
                read(tls.client_cert("admin")),
                read(tls.client_key("admin")),
            ))
    };
    assert!(
        common::handshake_outcome(&daemon, trusting_other())
            .await
            .is_err(),
        "a client trusting only the other CA got in before the reload"
    );
    std::fs::copy(other.server_cert(), tls.server_cert()).expect("replace server.pem");
    std::fs::copy(other.server_key(), tls.server_key()).expect("replace server.key");
    hup_and_wait(&daemon, "configuration reloaded", 1).await;

    assert_eq!(
        common::handshake_outcome(&daemon, trusting_other()).await,
        Ok(Code::Ok),
        "a new connection does not get the new certificate"
    );
    assert!(
        common::handshake_outcome(&daemon, daemon.tls_for("admin"))
            .await
            .is_err(),
        "a new connection still gets the old certificate"
    );
    // The connection opened before the reload goes on.
    let got = get(&mut before, "kept").await.expect("the old connection");
    assert_eq!(got.into_inner().value, b"value");

    // A broken key is refused; the certificate in force stays.
    std::fs::write(tls.server_key(), "not a key\n").expect("break server.key");
    let stderr = hup_and_wait(&daemon, "reload refused", 1).await;
    assert!(stderr.contains("server key"), "{stderr}");
    assert_eq!(
        common::handshake_outcome(&daemon, trusting_other()).await,
        Ok(Code::Ok)
    );
    assert!(daemon.terminate().success());
}
