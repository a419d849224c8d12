//! Operations wiring: the metrics registry, the readiness watcher that drives the gRPC health
//! service, and the plain-HTTP listener (`metrics_listen`) serving `/metrics`, `/healthz` and
//! `/readyz` for probes and scrapers that cannot present a client certificate.
//!
//! `/healthz` answers 200 while the process serves; `/readyz` answers 200 `ready` or 503
//! with the reason (locked, no root KEK answers, the audit log cannot be written).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic_health::server::HealthReporter;

use crate::health::Readiness;
use crate::metrics::{Metrics, StateCollector};
use crate::server::StartError;

/// The content type of the OpenMetrics text format that `/metrics` answers in.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metrics registry and the handles registered in it, before the daemon's parts exist.
#[derive(Debug)]
pub struct Telemetry {
    registry: Registry,
    metrics: Arc<Metrics>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry::new()
    }
}

impl Telemetry {
    /// A registry with every handle of [`Metrics`].
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let metrics = Arc::new(Metrics::register(&mut registry));
        Telemetry { registry, metrics }
    }

    /// The handles, for the parts that count.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }
}

/// What runs beside the gRPC server; its tasks stop when this is dropped.
#[derive(Debug)]
pub struct Ops {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Ops {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts the readiness watcher (gRPC health of `service`) and, if `listen` is set, the
/// HTTP listener, printing `vaultd metrics on http://ADDR` once it is bound.
pub async fn start(
    listen: Option<SocketAddr>,
    mut telemetry: Telemetry,
    readiness: Arc<Readiness>,
    state: StateCollector,
    reporter: HealthReporter,
    service: &'static str,
) -> Result<Ops, StartError> {
    let mut tasks = vec![crate::health::watch(
        Arc::clone(&readiness),
        reporter,
        service,
    )];
    if let Some(addr) = listen {
        telemetry.registry.register_collector(Box::new(state));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| StartError::Serve(format!("metrics listener on {addr}: {e}")))?;
        let bound = listener
            .local_addr()
            .map_err(|e| StartError::Serve(e.to_string()))?;
        let shared = Arc::new(Shared {
            registry: telemetry.registry,
            readiness,
        });
        let router = Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(shared);
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!("metrics listener on {bound} stopped: {e}");
            }
        }));
        tracing::info!("metrics, /healthz and /readyz on http://{bound}");
        println!("vaultd metrics on http://{bound}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
    Ok(Ops { tasks })
}

#[derive(Debug)]
struct Shared {
    registry: Registry,
    readiness: Arc<Readiness>,
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let mut text = String::with_capacity(16 << 10);
    match prometheus_client::encoding::text::encode(&mut text, &shared.registry) {
        Ok(()) => (StatusCode::OK, [(header::CONTENT_TYPE, OPENMETRICS)], text),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "cannot encode the metrics\n".to_owned(),
        ),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(shared): State<Arc<Shared>>) -> (StatusCode, String) {
    match shared.readiness.check() {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        ),
    }
}
