//! End to end: SIGTERM. Under load the daemon drains and exits 0; calls in flight complete
//! or fail cleanly; what it acknowledged is durable. A client that stops reading does not
//! keep it from exiting.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::{Client, Sandbox};
use proto::v1 as pb;
use tokio::sync::Notify;
use tonic::Code;

const CLIENTS: usize = 16;
const ACKED_BEFORE_TERM: usize = 150;
/// No call may take longer, before or during the drain.
const SLOWEST_CALL: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Seen {
    /// Acknowledged puts: (key, version) -> value.
    acked: HashMap<(String, u64), Vec<u8>>,
    /// Calls answered OK after SIGTERM was sent.
    ok_after_term: usize,
    /// How calls failed.
    failures: Vec<tonic::Status>,
}

async fn client(
    i: usize,
    mut api: Client,
    seen: Arc<Mutex<Seen>>,
    count: Arc<AtomicUsize>,
    enough: Arc<Notify>,
    termed: Arc<AtomicBool>,
) {
    for n in 0.. {
        let key = format!("c{i}-k{}", n % 2);
        let value = format!("client {i} write {n}").into_bytes();
        let started = Instant::now();
        let result = if n % 3 == 2 {
            api.get(pb::GetRequest {
                scope: "global".into(),
                key,
                version: None,
            })
            .await
            .map(|_| None)
        } else {
            api.put(pb::PutRequest {
                scope: "global".into(),
                key: key.clone(),
                value: value.clone(),
                expected_version: None,
            })
            .await
            .map(|reply| Some((key, reply.into_inner().version, value)))
        };
        assert!(
            started.elapsed() < SLOWEST_CALL,
            "client {i}: a call took {:?}",
            started.elapsed()
        );
        let after_term = termed.load(Ordering::SeqCst);
        let mut seen = seen.lock().expect("seen");
        match result {
            Ok(put) => {
                if after_term {
                    seen.ok_after_term += 1;
                }
                if let Some((key, version, value)) = put {
                    seen.acked.insert((key, version), value);
                    if count.fetch_add(1, Ordering::SeqCst) + 1 == ACKED_BEFORE_TERM {
                        enough.notify_one();
                    }
                }
            }
            Err(status) => {
                assert!(
                    after_term,
                    "client {i}: a call failed before SIGTERM: {status:?}"
                );
                seen.failures.push(status);
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains_and_exits_zero() {
    let sandbox = Sandbox::new();
    let daemon = sandbox
        .daemon()
        .env("VAULTD_RATE_PER_SECOND", 1_000_000)
        .env("VAULTD_BURST", 1_000_000)
        .start();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let count = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(Notify::new());
    let termed = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let api = daemon.client("admin").await;
        tasks.push(tokio::spawn(client(
            i,
            api,
            Arc::clone(&seen),
            Arc::clone(&count),
            Arc::clone(&enough),
            Arc::clone(&termed),
        )));
    }
    enough.notified().await;
    termed.store(true, Ordering::SeqCst);
    daemon.signal("TERM");
    let exit = tokio::task::spawn_blocking(move || daemon.wait())
        .await
        .expect("wait");
    assert!(exit.success(), "vaultd after SIGTERM under load: {exit}");
    for task in tasks {
        task.await.expect("a client panicked");
    }

    let seen = Arc::try_unwrap(seen)
        .expect("clients done")
        .into_inner()
        .expect("seen");
    eprintln!(
        "{} acknowledged puts, {} calls answered after SIGTERM; failures: {:?}",
        seen.acked.len(),
        seen.ok_after_term,
        seen.failures
            .iter()
            .map(|s| (s.code(), s.message().to_owned()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        seen.failures.len(),
        CLIENTS,
        "every client stopped on an error"
    );
    for status in &seen.failures {
        // Refused as the server goes away (GOAWAY, closed connection, no listener): a
        // transport failure or UNAVAILABLE, never an error from the vault itself.
        let transport = std::error::Error::source(status)
            .is_some_and(|e| e.downcast_ref::<tonic::transport::Error>().is_some());
        assert!(
            transport || status.code() == Code::Unavailable,
            "not a clean failure: {status:?}"
        );
    }

    // Everything acknowledged is there after a restart, and the drained log is clean.
    let report = sandbox.verify_audit().expect("the audit log verifies");
    assert_eq!(report.head_seq, report.records);
    let daemon = sandbox.start();
    let mut admin = daemon.client("admin").await;
    for ((key, version), value) in &seen.acked {
        let reply = admin
            .get(pb::GetRequest {
                scope: "global".into(),
                key: key.clone(),
                version: Some(*version),
            })
            .await
            .unwrap_or_else(|s| panic!("{key} version {version} lost: {s:?}"))
            .into_inner();
        assert_eq!(&reply.value, value, "{key} version {version}");
    }
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_does_not_hold_up_sigterm() {
    const REQUEST_TIMEOUT_MS: u64 = 1000;
    let sandbox = Sandbox::new();
    let daemon = sandbox
        .daemon()
        .env("VAULTD_REQUEST_TIMEOUT_MS", REQUEST_TIMEOUT_MS)
        .start();
    // A client on its own runtime, whose thread then blocks: its connection stays open and
    // nothing on it answers the server any more (as with a hung or stopped process).
    let tls = daemon.tls_for("admin");
    let url = daemon.url();
    let (connected_tx, connected_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let stalled = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let channel = tonic::transport::Endpoint::from_shared(url)
                .expect("url")
                .tls_config(tls)
                .expect("tls")
                .connect()
                .await
                .expect("connect");
            let mut api = common::client_on(channel);
            api.status(pb::StatusRequest {}).await.expect("status");
            connected_tx.send(()).expect("connected");
            // Blocks the runtime's only thread: the connection is no longer polled.
            let _ = release_rx.recv();
            drop(api);
        });
    });
    connected_rx.recv().expect("the stalled client connected");

    let started = Instant::now();
    daemon.signal("TERM");
    let exit = tokio::task::spawn_blocking(move || daemon.wait())
        .await
        .expect("wait");
    let took = started.elapsed();
    let _ = release_tx.send(());
    stalled.join().expect("the stalled client's thread");
    assert!(exit.success(), "vaultd after SIGTERM: {exit}");
    assert!(
        took < Duration::from_millis(REQUEST_TIMEOUT_MS) + Duration::from_secs(3),
        "SIGTERM took {took:?} with one stalled client"
    );
}
