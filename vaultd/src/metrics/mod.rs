//! The daemon's metrics, made once at start-up and shared by `Arc`: typed handles for what the
//! request path counts (requests, gate denials, KEK calls, audit writes), and a collector of
//! what is read at each scrape (lock state, pool, cache, audit queue, epoch wraps). They are
//! served in the Prometheus text format by [`crate::ops`] when `metrics_listen` is set.
//!
//! Every metric, with its labels:
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `vaultd_requests_total` | counter | `method`, `code` |
//! | `vaultd_request_duration_seconds` | histogram | `method`, `code` |
//! | `vaultd_gate_denials_total` | counter | `reason` |
//! | `vaultd_kek_call_duration_seconds` | histogram | `provider`, `op` |
//! | `vaultd_kek_call_failures_total` | counter | `provider`, `op` |
//! | `vaultd_audit_write_duration_seconds` | histogram | |
//! | `vaultd_audit_queue_depth`, `vaultd_audit_failed` | gauge | |
//! | `vaultd_locked`, `vaultd_ready` | gauge | |
//! | `vaultd_leader` | gauge (a store replicas share) | |
//! | `vaultd_kek_pool_threads`, `_busy`, `_waiting` | gauge | |
//! | `vaultd_cache_lookups_total`, `vaultd_cache_hits_total` | counter | |
//! | `vaultd_epoch_current`, `vaultd_epoch_wraps_used`, `_limit` | gauge (tiered mode) | |

mod kek;
mod request;
mod state;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use kek::{KekMetrics, MeteredKek};
pub use request::{Method, RequestMetrics, RequestTimer};
pub use state::StateCollector;

/// Why a gate refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialReason {
    /// The vault is locked.
    Locked,
    /// No valid client certificate, or a revoked one.
    Unauthenticated,
    /// A principal the ACL does not know.
    UnknownPrincipal,
    /// Over the principal's rate limit.
    RateLimited,
    /// The ACL does not allow it.
    Acl,
    /// A scope or key name that is not valid.
    InvalidName,
    /// A TLS handshake refused (a revoked, unknown or expired certificate, none at all, or
    /// an address cooling down): no request was ever read.
    Handshake,
}

impl DenialReason {
    const ALL: [DenialReason; 7] = [
        DenialReason::Locked,
        DenialReason::Unauthenticated,
        DenialReason::UnknownPrincipal,
        DenialReason::RateLimited,
        DenialReason::Acl,
        DenialReason::InvalidName,
        DenialReason::Handshake,
    ];

    fn as_str(self) -> &'static str {
        match self {
            DenialReason::Locked => "locked",
            DenialReason::Unauthenticated => "unauthenticated",
            DenialReason::UnknownPrincipal => "unknown_principal",
            DenialReason::RateLimited => "rate_limited",
            DenialReason::Acl => "acl",
            DenialReason::InvalidName => "invalid_name",
            DenialReason::Handshake => "handshake",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DenialLabels {
    reason: &'static str,
}

/// Audit write latency buckets, in seconds: 100 µs (a memory file system) to 2.5 s.
const AUDIT_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// The handles the request path uses.
#[derive(Debug)]
pub struct Metrics {
    /// Requests by method and code.
    pub requests: RequestMetrics,
    /// KEK calls by provider.
    pub keks: KekMetrics,
    /// One counter per denial reason, in [`DenialReason::ALL`] order.
    denials: Vec<Counter>,
    audit_writes: Histogram,
}

impl Metrics {
    /// The handles, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let denial_family = Family::<DenialLabels, Counter>::default();
        registry.register(
            "vaultd_gate_denials",
            "Requests refused by the gates, by reason",
            denial_family.clone(),
        );
        // Every reason is shown from the start, at 0.
        let denials = DenialReason::ALL
            .iter()
            .map(|reason| {
                denial_family
                    .get_or_create(&DenialLabels {
                        reason: reason.as_str(),
                    })
                    .clone()
            })
            .collect();
        let audit_writes = Histogram::new(AUDIT_BUCKETS);
        registry.register(
            "vaultd_audit_write_duration_seconds",
            "Time a request waits for its audit record: written (a read), or written and fsynced (a change)",
            audit_writes.clone(),
        );
        Metrics {
            requests: RequestMetrics::register(registry),
            keks: KekMetrics::register(registry),
            denials,
            audit_writes,
        }
    }

    /// Handles registered nowhere (for gates built without a metrics registry).
    pub fn unregistered() -> Self {
        Metrics::register(&mut Registry::default())
    }

    /// Counts a request refused by a gate.
    pub fn denied(&self, reason: DenialReason) {
        // ALL is in declaration order.
        if let Some(counter) = self.denials.get(reason as usize) {
            counter.inc();
        }
    }

    /// Observes an audit write that was queued at `queued` and is durable now.
    pub fn audit_written(&self, queued: std::time::Instant) {
        self.audit_writes.observe(queued.elapsed().as_secs_f64());
    }

    /// The histogram of audit write waits (a shared handle, for futures that outlive
    /// a borrow).
    pub fn audit_writes(&self) -> Histogram {
        self.audit_writes.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_are_counted_by_reason_and_every_reason_is_shown() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        metrics.denied(DenialReason::RateLimited);
        metrics.denied(DenialReason::RateLimited);
        metrics.denied(DenialReason::InvalidName);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        for line in [
            r#"vaultd_gate_denials_total{reason="rate_limited"} 2"#,
            r#"vaultd_gate_denials_total{reason="invalid_name"} 1"#,
            r#"vaultd_gate_denials_total{reason="locked"} 0"#,
            r#"vaultd_gate_denials_total{reason="acl"} 0"#,
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
    }
}
