//! Requests by method and status code: a counter and a latency histogram per pair, and the
//! span each request runs in.
//!
//! The request path stays cheap: the label sets are `&'static str` pairs, and each pair's
//! handles are looked up in the family (under its lock) once, on first use, then kept in a
//! fixed table indexed by method and code. A request costs two clock reads, an atomic add
//! and a histogram observation, with no allocation and no shared lock but the histogram's own.

use std::sync::OnceLock;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tonic::Code;
use tracing::Span;

use crate::gates::code_name;

/// The RPCs of the vault service, named as the audit log names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Put.
    Put,
    /// Get.
    Get,
    /// Delete.
    Delete,
    /// List.
    List,
    /// Seal.
    Seal,
    /// Open.
    Open,
    /// Rewrap.
    Rewrap,
    /// GenerateDataKey.
    GenerateDataKey,
    /// Status.
    Status,
    /// Unlock.
    Unlock,
    /// Lock.
    Lock,
    /// Rotate.
    Rotate,
    /// KekCheck.
    KekCheck,
    /// AuditTail.
    AuditTail,
    /// AuditVerify.
    AuditVerify,
    /// AuditRotate.
    AuditRotate,
}

impl Method {
    /// Every method.
    pub const ALL: [Method; 16] = [
        Method::Put,
        Method::Get,
        Method::Delete,
        Method::List,
        Method::Seal,
        Method::Open,
        Method::Rewrap,
        Method::GenerateDataKey,
        Method::Status,
        Method::Unlock,
        Method::Lock,
        Method::Rotate,
        Method::KekCheck,
        Method::AuditTail,
        Method::AuditVerify,
        Method::AuditRotate,
    ];

    /// The name in labels, logs and the audit log (`get`, `generate_data_key`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Put => "put",
            Method::Get => "get",
            Method::Delete => "delete",
            Method::List => "list",
            Method::Seal => "seal",
            Method::Open => "open",
            Method::Rewrap => "rewrap",
            Method::GenerateDataKey => "generate_data_key",
            Method::Status => "status",
            Method::Unlock => "unlock",
            Method::Lock => "lock",
            Method::Rotate => "rotate",
            Method::KekCheck => "kek_check",
            Method::AuditTail => "audit_tail",
            Method::AuditVerify => "audit_verify",
            Method::AuditRotate => "audit_rotate",
        }
    }
}

/// gRPC status codes: 0 (OK) to 16 (UNAUTHENTICATED).
const CODES: usize = 17;

/// Request latency buckets, in seconds: 100 µs to 10 s (the request timeout is 5 s by
/// default).
const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    code: &'static str,
}

/// One (method, code) pair's handles.
#[derive(Debug)]
struct Pair {
    count: Counter,
    latency: Histogram,
}

/// Request counts and latencies by method and code.
#[derive(Debug)]
pub struct RequestMetrics {
    counts: Family<RequestLabels, Counter>,
    latencies: Family<RequestLabels, Histogram, fn() -> Histogram>,
    pairs: Box<[OnceLock<Pair>]>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

impl RequestMetrics {
    /// The families, registered in `registry`.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let metrics = RequestMetrics {
            counts: Family::default(),
            latencies: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            pairs: (0..Method::ALL.len() * CODES)
                .map(|_| OnceLock::new())
                .collect(),
        };
        registry.register(
            "vaultd_requests",
            "Requests answered, by method and gRPC status code",
            metrics.counts.clone(),
        );
        registry.register(
            "vaultd_request_duration_seconds",
            "Time from a request's arrival at the service to its answer, by method and code",
            metrics.latencies.clone(),
        );
        metrics
    }

    /// Starts timing a request of `method` that runs in `span`; the returned timer counts
    /// it when finished, or as CANCELLED when dropped first (a deadline or a client that
    /// went away).
    pub fn start(&self, method: Method, span: Span) -> RequestTimer<'_> {
        RequestTimer {
            metrics: self,
            method,
            span,
            started: Instant::now(),
            code: None,
        }
    }

    fn pair(&self, method: Method, code: Code) -> &Pair {
        let code_at = (code as usize).min(CODES - 1);
        let at = method as usize * CODES + code_at;
        self.pairs[at].get_or_init(|| {
            let labels = RequestLabels {
                method: method.as_str(),
                code: code_name(code),
            };
            Pair {
                count: self.counts.get_or_create(&labels).clone(),
                latency: self.latencies.get_or_create(&labels).clone(),
            }
        })
    }
}

/// A request being answered (see [`RequestMetrics::start`]).
#[derive(Debug)]
pub struct RequestTimer<'a> {
    metrics: &'a RequestMetrics,
    method: Method,
    span: Span,
    started: Instant,
    code: Option<Code>,
}

impl RequestTimer<'_> {
    /// The request was answered with `code`.
    pub fn finish(mut self, code: Code) {
        self.code = Some(code);
    }
}

impl Drop for RequestTimer<'_> {
    fn drop(&mut self) {
        let code = self.code.unwrap_or(Code::Cancelled);
        let elapsed = self.started.elapsed();
        let pair = self.metrics.pair(self.method, code);
        pair.count.inc();
        pair.latency.observe(elapsed.as_secs_f64());
        let outcome = code_name(code);
        self.span.record("outcome", outcome);
        tracing::debug!(
            parent: &self.span,
            micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            "answered"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_and_code_has_its_own_pair() {
        let mut registry = Registry::default();
        let metrics = RequestMetrics::register(&mut registry);
        metrics
            .start(Method::Get, Span::none())
            .finish(Code::NotFound);
        metrics
            .start(Method::AuditVerify, Span::none())
            .finish(Code::Unauthenticated);
        drop(metrics.start(Method::Put, Span::none()));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        for line in [
            r#"vaultd_requests_total{method="get",code="NOT_FOUND"} 1"#,
            r#"vaultd_requests_total{method="audit_verify",code="UNAUTHENTICATED"} 1"#,
            r#"vaultd_requests_total{method="put",code="CANCELLED"} 1"#,
            r#"vaultd_request_duration_seconds_count{method="get",code="NOT_FOUND"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
        assert!(!text.contains(r#"code="OK""#), "{text}");
    }
}
