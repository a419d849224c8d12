//! End to end: many concurrent clients. 64 clients, each on its own mutual-TLS connection,
//! run 1000 mixed operations each (put/get on their own keys and on shared keys, seal/open;
//! `E2E_LOAD_OPS=N` for another size); every answer is checked against what the clients
//! wrote, then the final state and the audit log.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::{Client, Sandbox, code};
use proto::v1 as pb;
use tonic::Code;
use vault::audit::Stage;

const CLIENTS: usize = 64;
/// Operations per client: the size the acceptance names (about 50 s on a 2-core machine
/// with a debug build: some 0.5 ms of CPU per call, client and daemon together).
const DEFAULT_OPS: usize = 1000;
const OWN_KEYS: usize = 4;
const SHARED_KEYS: usize = 4;

/// A small deterministic generator (xorshift64*), one per client.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Every value any client sent to a shared key (inserted before the put is sent, so a get
/// that sees a write in flight finds it here).
type Sent = Arc<Mutex<HashSet<Vec<u8>>>>;

/// What one client knows at the end.
struct Outcome {
    /// Per own key: the last value written and its version.
    own: Vec<Option<(Vec<u8>, u64)>>,
    /// Per shared key: the last value this client wrote to it.
    shared: Vec<Option<Vec<u8>>>,
    /// Calls made.
    calls: u64,
}

fn ops() -> usize {
    std::env::var("E2E_LOAD_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_OPS)
}

fn own_key(client: usize, k: usize) -> String {
    format!("c{client}-k{k}")
}

fn shared_key(s: usize) -> String {
    format!("shared-{s}")
}

/// A value that names its writer and write, padded to a varying length.
fn value(rng: &mut Rng, tag: String) -> Vec<u8> {
    let mut v = tag.into_bytes();
    v.push(b'|');
    let pad = rng.below(200);
    v.extend(std::iter::repeat_n(b'x', pad));
    v
}

async fn run_client(i: usize, mut api: Client, sent: Sent) -> Outcome {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((i as u64 + 1) * 0x1000_0001));
    let mut own: Vec<Option<(Vec<u8>, u64)>> = vec![None; OWN_KEYS];
    let mut shared: Vec<Option<Vec<u8>>> = vec![None; SHARED_KEYS];
    let mut calls = 0u64;
    for n in 0..ops() {
        let roll = rng.below(100);
        if roll < 30 {
            let k = rng.below(OWN_KEYS);
            let v = value(&mut rng, format!("c{i}-k{k}-n{n}"));
            let reply = api
                .put(pb::PutRequest {
                    scope: "global".into(),
                    key: own_key(i, k),
                    value: v.clone(),
                    expected_version: None,
                })
                .await
                .unwrap_or_else(|s| panic!("client {i} op {n}: put: {s:?}"));
            calls += 1;
            let version = reply.into_inner().version;
            let expected = own[k].as_ref().map_or(1, |(_, v)| v + 1);
            assert_eq!(version, expected, "client {i} op {n}: version of its put");
            own[k] = Some((v, version));
        } else if roll < 60 {
            let k = rng.below(OWN_KEYS);
            let result = api
                .get(pb::GetRequest {
                    scope: "global".into(),
                    key: own_key(i, k),
                    version: None,
                })
                .await;
            calls += 1;
            match &own[k] {
                None => assert_eq!(code(&result), Code::NotFound, "client {i} op {n}"),
                Some((v, version)) => {
                    let reply = result
                        .unwrap_or_else(|s| panic!("client {i} op {n}: get: {s:?}"))
                        .into_inner();
                    assert_eq!(
                        (&reply.value, reply.version),
                        (v, *version),
                        "client {i} op {n}: get returned {:?}",
                        String::from_utf8_lossy(&reply.value)
                    );
                }
            }
        } else if roll < 70 {
            let s = rng.below(SHARED_KEYS);
            let v = value(&mut rng, format!("shared-c{i}-n{n}"));
            sent.lock().expect("sent").insert(v.clone());
            api.put(pb::PutRequest {
                scope: "global".into(),
                key: shared_key(s),
                value: v.clone(),
                expected_version: None,
            })
            .await
            .unwrap_or_else(|st| panic!("client {i} op {n}: shared put: {st:?}"));
            calls += 1;
            shared[s] = Some(v);
        } else if roll < 80 {
            let s = rng.below(SHARED_KEYS);
            let result = api
                .get(pb::GetRequest {
                    scope: "global".into(),
                    key: shared_key(s),
                    version: None,
                })
                .await;
            calls += 1;
            match result {
                Ok(reply) => {
                    let got = reply.into_inner().value;
                    assert!(
                        sent.lock().expect("sent").contains(&got),
                        "client {i} op {n}: shared get returned a value nobody wrote: {:?}",
                        String::from_utf8_lossy(&got)
                    );
                }
                Err(status) => {
                    assert_eq!(status.code(), Code::NotFound, "client {i} op {n}");
                    assert!(shared[s].is_none(), "client {i} op {n}: its write vanished");
                }
            }
        } else {
            let len = rng.below(300);
            let plaintext: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let context = format!("client-{i}");
            let sealed = api
                .seal(pb::SealRequest {
                    context: context.clone(),
                    plaintext: plaintext.clone(),
                })
                .await
                .unwrap_or_else(|s| panic!("client {i} op {n}: seal: {s:?}"))
                .into_inner()
                .envelope;
            let opened = api
                .open(pb::OpenRequest {
                    context,
                    envelope: sealed,
                })
                .await
                .unwrap_or_else(|s| panic!("client {i} op {n}: open: {s:?}"))
                .into_inner()
                .plaintext;
            calls += 2;
            assert_eq!(opened, plaintext, "client {i} op {n}: seal/open round trip");
        }
    }
    Outcome { own, shared, calls }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_see_their_own_writes_and_no_corruption() {
    // In memory: this test is about concurrency, not about the disk's fsync latency (the
    // crash tests use the disk).
    let sandbox = Sandbox::in_memory();
    let daemon = sandbox
        .daemon()
        .env("VAULTD_RATE_PER_SECOND", 10_000_000)
        .env("VAULTD_BURST", 10_000_000)
        .start();
    let started = Instant::now();
    let sent: Sent = Arc::default();
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let api = daemon.client("admin").await;
        tasks.push(tokio::spawn(run_client(i, api, Arc::clone(&sent))));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("a client task panicked"));
    }
    eprintln!(
        "{CLIENTS} clients x {} operations in {:.1} s",
        ops(),
        started.elapsed().as_secs_f64()
    );

    let mut admin = daemon.client("admin").await;
    let mut calls: u64 = outcomes.iter().map(|o| o.calls).sum();
    for (i, outcome) in outcomes.iter().enumerate() {
        for (k, last) in outcome.own.iter().enumerate() {
            let result = admin
                .get(pb::GetRequest {
                    scope: "global".into(),
                    key: own_key(i, k),
                    version: None,
                })
                .await;
            calls += 1;
            match last {
                None => assert_eq!(code(&result), Code::NotFound),
                Some((v, version)) => {
                    let reply = result.expect("final get").into_inner();
                    assert_eq!(
                        (&reply.value, reply.version),
                        (v, *version),
                        "{}",
                        own_key(i, k)
                    );
                }
            }
        }
    }
    for s in 0..SHARED_KEYS {
        let lasts: HashSet<&Vec<u8>> = outcomes
            .iter()
            .filter_map(|o| o.shared[s].as_ref())
            .collect();
        let result = admin
            .get(pb::GetRequest {
                scope: "global".into(),
                key: shared_key(s),
                version: None,
            })
            .await;
        calls += 1;
        if lasts.is_empty() {
            assert_eq!(code(&result), Code::NotFound);
        } else {
            let got = result.expect("final shared get").into_inner().value;
            assert!(
                lasts.contains(&got),
                "{} holds {:?}, which is no client's last write",
                shared_key(s),
                String::from_utf8_lossy(&got)
            );
        }
    }
    let status = admin
        .status(pb::StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    calls += 1;
    let written = outcomes
        .iter()
        .flat_map(|o| o.own.iter())
        .filter(|o| o.is_some())
        .count()
        + (0..SHARED_KEYS)
            .filter(|s| outcomes.iter().any(|o| o.shared[*s].is_some()))
            .count();
    assert_eq!(status.secrets, written as u64);

    // Every call was audited exactly once with its outcome (a write also as started before
    // it, named by its outcome), and the chain verifies while the daemon runs.
    let report = sandbox.verify_audit().expect("the audit log verifies");
    let records = sandbox.audit_records();
    assert_eq!(report.records, records.len() as u64);
    let outcomes = records.iter().filter(|r| r.stage == Stage::Outcome).count();
    assert_eq!(outcomes as u64, calls);
    let started: HashSet<u64> = records
        .iter()
        .filter(|r| r.stage == Stage::Started)
        .map(|r| r.seq)
        .collect();
    let ended: HashSet<u64> = records.iter().filter_map(|r| r.call).collect();
    assert_eq!(
        started, ended,
        "every started write has its outcome, and only those"
    );
    assert!(daemon.terminate().success());
}
