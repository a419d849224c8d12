//! End to end: the metrics listener (`metrics_listen`) counts every call made under load,
//! and readiness (`/readyz` and the gRPC health service) follows lock and unlock.

mod common;

use std::time::{Duration, Instant};

use common::http::{get, metrics_addr, sample, scrape, until_status};
use common::{Daemon, Sandbox, code, handshake_outcome};
use proto::v1 as pb;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const CLIENTS: usize = 8;
const GETS_PER_CLIENT: usize = 40;
const SEALS_PER_CLIENT: usize = 10;

fn started(sandbox: &Sandbox) -> Daemon {
    sandbox
        .daemon()
        .env("VAULTD_METRICS_LISTEN", "127.0.0.1:0")
        .start()
}

fn requests(exposition: &str, method: &str, code: &str) -> f64 {
    let series = format!(r#"vaultd_requests_total{{method="{method}",code="{code}"}}"#);
    sample(exposition, &series).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_counters_equal_the_calls_made_under_load() {
    let sandbox = Sandbox::in_memory();
    let daemon = started(&sandbox);
    let addr = metrics_addr(&daemon);
    assert!(addr.ip().is_loopback(), "{addr}");
    let before = scrape(addr);
    assert_eq!(requests(&before, "get", "OK"), 0.0, "{before}");
    assert_eq!(sample(&before, "vaultd_locked"), Some(0.0), "{before}");

    let mut admin = daemon.client("admin").await;
    let puts = 3;
    for n in 0..puts {
        admin
            .put(pb::PutRequest {
                scope: "global".into(),
                key: format!("k{n}"),
                value: format!("value {n}").into_bytes(),
                expected_version: None,
            })
            .await
            .expect("put");
    }
    // Each key read once before the load, so that every get of the load is a cache hit
    // (eight clients starting at once would otherwise race to fill the cache).
    for n in 0..puts {
        admin
            .get(pb::GetRequest {
                scope: "global".into(),
                key: format!("k{n}"),
                version: None,
            })
            .await
            .expect("warm-up get");
    }

    // Load from several connections, scraped all the while.
    let mut load = Vec::new();
    for client in 0..CLIENTS {
        let mut admin = daemon.client("admin").await;
        load.push(tokio::spawn(async move {
            for n in 0..GETS_PER_CLIENT {
                admin
                    .get(pb::GetRequest {
                        scope: "global".into(),
                        key: format!("k{}", (client + n) % 3),
                        version: None,
                    })
                    .await
                    .expect("get");
            }
            for _ in 0..SEALS_PER_CLIENT {
                admin
                    .seal(pb::SealRequest {
                        context: "load".into(),
                        plaintext: b"payload".to_vec(),
                    })
                    .await
                    .expect("seal");
            }
        }));
    }
    let scraper = tokio::task::spawn_blocking(move || {
        let mut scrapes = 0;
        let mut last = 0.0;
        let deadline = Instant::now() + Duration::from_secs(60);
        while last < (CLIENTS * GETS_PER_CLIENT) as f64 && Instant::now() < deadline {
            let seen = requests(&scrape(addr), "get", "OK");
            assert!(seen >= last, "the counter went back from {last} to {seen}");
            last = seen;
            scrapes += 1;
        }
        scrapes
    });
    for task in load {
        task.await.expect("a load client");
    }
    assert!(scraper.await.expect("the scraper") > 0);

    // One refused caller: a principal the ACL does not know.
    let mut stranger = daemon.client("stranger").await;
    let refused = stranger
        .list(pb::ListRequest {
            scope: None,
            ..Default::default()
        })
        .await;
    assert_eq!(code(&refused), Code::Unauthenticated, "{refused:?}");

    // Refused handshakes: a client without a certificate (its channel may try more than
    // once). The daemon counts each as it refuses, which the client may learn first.
    let anonymous = daemon.tls_without_identity();
    assert!(handshake_outcome(&daemon, anonymous).await.is_err());
    let handshake = r#"vaultd_gate_denials_total{reason="handshake"}"#;
    let refused_handshakes = || sample(&scrape(addr), handshake).unwrap_or(0.0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while refused_handshakes() < 1.0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let after = scrape(addr);
    assert!(sample(&after, handshake).unwrap_or(0.0) >= 1.0, "{after}");
    let gets = (CLIENTS * GETS_PER_CLIENT + puts as usize) as f64;
    assert_eq!(requests(&after, "get", "OK"), gets, "{after}");
    assert_eq!(requests(&after, "put", "OK"), f64::from(puts), "{after}");
    let seals = (CLIENTS * SEALS_PER_CLIENT) as f64;
    assert_eq!(requests(&after, "seal", "OK"), seals, "{after}");
    assert_eq!(requests(&after, "list", "UNAUTHENTICATED"), 1.0, "{after}");
    assert_eq!(
        sample(
            &after,
            r#"vaultd_request_duration_seconds_count{method="get",code="OK"}"#
        ),
        Some(gets),
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            r#"vaultd_gate_denials_total{reason="unknown_principal"}"#
        ),
        Some(1.0),
        "{after}"
    );
    // Repeated reads of three keys read once already: all answered from the cache.
    let hits = sample(&after, "vaultd_cache_hits_total").expect("cache hits");
    let load_gets = (CLIENTS * GETS_PER_CLIENT) as f64;
    assert!(
        hits >= load_gets,
        "{hits} hits for {load_gets} gets:\n{after}"
    );
    // The development vault's file KEK wraps each DEK (direct mode): every put and seal.
    let wraps: f64 = after
        .lines()
        .filter(|l| l.starts_with("vaultd_kek_call_duration_seconds_count{"))
        .filter(|l| l.contains(r#"op="wrap""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(wraps >= f64::from(puts) + seals, "{wraps} wraps:\n{after}");
    assert!(
        sample(&after, "vaultd_audit_write_duration_seconds_count").unwrap_or(0.0) >= gets,
        "{after}"
    );
    assert_eq!(sample(&after, "vaultd_kek_pool_threads"), Some(4.0));
    assert_eq!(sample(&after, "vaultd_audit_failed"), Some(0.0));
    assert_eq!(sample(&after, "vaultd_ready"), Some(1.0));
}

async fn health_of(daemon: &Daemon, service: &str) -> ServingStatus {
    let channel = daemon
        .connect(daemon.tls_for("admin"))
        .await
        .expect("connect");
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .expect("health check")
        .into_inner();
    ServingStatus::try_from(answer.status).expect("a serving status")
}

/// Polls the gRPC health of `service` until it is `want` (at most 10 s).
async fn until_health(daemon: &Daemon, service: &str, want: ServingStatus) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = health_of(daemon, service).await;
        if status == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "health of {service:?} is still {status:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_and_grpc_health_follow_lock_and_unlock() {
    let sandbox = Sandbox::new();
    let daemon = started(&sandbox);
    let addr = metrics_addr(&daemon);
    let service = pb::vault_service_server::SERVICE_NAME;

    assert_eq!(get(addr, "/healthz"), (200, "ok\n".to_owned()));
    assert_eq!(until_status(addr, "/readyz", 200), "ready\n");
    until_health(&daemon, "", ServingStatus::Serving).await;
    until_health(&daemon, service, ServingStatus::Serving).await;

    let mut admin = daemon.client("admin").await;
    admin.lock(pb::LockRequest {}).await.expect("lock");
    let why = until_status(addr, "/readyz", 503);
    assert!(why.contains("locked"), "{why}");
    until_health(&daemon, "", ServingStatus::NotServing).await;
    until_health(&daemon, service, ServingStatus::NotServing).await;
    let metrics = scrape(addr);
    assert_eq!(sample(&metrics, "vaultd_locked"), Some(1.0), "{metrics}");
    assert_eq!(sample(&metrics, "vaultd_ready"), Some(0.0), "{metrics}");
    // The process is up all the same.
    assert_eq!(get(addr, "/healthz").0, 200);

    admin
        .unlock(pb::UnlockRequest::default())
        .await
        .expect("unlock");
    assert_eq!(until_status(addr, "/readyz", 200), "ready\n");
    until_health(&daemon, "", ServingStatus::Serving).await;
    until_health(&daemon, service, ServingStatus::Serving).await;
    assert_eq!(sample(&scrape(addr), "vaultd_locked"), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_listener_is_off_unless_configured() {
    let sandbox = Sandbox::new();
    let daemon = sandbox.start();
    assert!(
        !daemon.printed.iter().any(|l| l.contains("metrics on")),
        "{:?}",
        daemon.printed
    );
}
