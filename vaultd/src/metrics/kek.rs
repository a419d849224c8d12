//! KEK call latency and failures by provider: each root KEK the daemon builds is wrapped in
//! a [`MeteredKek`] that times its `wrap` and `unwrap` calls and forwards everything else, so
//! the vault sees the same KEK and the vault crate knows nothing of metrics.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use envelope::{Assurance, Dek, Health, KekId, KekProvider, StanzaRef};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use vault::Kek;

/// KEK call latency buckets, in seconds: 10 µs (a key in memory) to 10 s (a slow device).
const LATENCY_BUCKETS: [f64; 14] = [
    0.00001, 0.000025, 0.0001, 0.00025, 0.001, 0.0025, 0.01, 0.025, 0.1, 0.25, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KekLabels {
    /// The provider kind (`file`, `passphrase`, `pkcs11`, `tpm`, `yubikey`, ...).
    provider: String,
    /// `wrap` or `unwrap`.
    op: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The KEK call families; cheap to clone (the handles are shared).
#[derive(Debug, Clone)]
pub struct KekMetrics {
    latencies: Family<KekLabels, Histogram, fn() -> Histogram>,
    failures: Family<KekLabels, Counter>,
}

impl KekMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let metrics = KekMetrics {
            latencies: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            failures: Family::default(),
        };
        registry.register(
            "vaultd_kek_call_duration_seconds",
            "Time of root KEK wrap and unwrap calls, by provider kind and operation",
            metrics.latencies.clone(),
        );
        registry.register(
            "vaultd_kek_call_failures",
            "Root KEK wrap and unwrap calls that failed, by provider kind and operation",
            metrics.failures.clone(),
        );
        metrics
    }

    /// `keks`, each wrapped so that its calls are timed and its failures counted.
    pub fn instrument(&self, keks: Vec<Kek>) -> Vec<Kek> {
        keks.into_iter()
            .map(|kek| Kek {
                provider: Arc::new(MeteredKek::new(kek.provider, self)),
                uri: kek.uri,
            })
            .collect()
    }

    fn op(&self, provider: &str, op: &'static str) -> OpMetrics {
        let labels = KekLabels {
            provider: provider.to_owned(),
            op,
        };
        OpMetrics {
            latency: self.latencies.get_or_create(&labels).clone(),
            failures: self.failures.get_or_create(&labels).clone(),
        }
    }
}

#[derive(Debug)]
struct OpMetrics {
    latency: Histogram,
    failures: Counter,
}

impl OpMetrics {
    fn observe(&self, started: Instant, failed: bool) {
        self.latency.observe(started.elapsed().as_secs_f64());
        if failed {
            self.failures.inc();
        }
    }
}

/// A KEK whose calls are measured; otherwise it is the KEK it wraps.
pub struct MeteredKek {
    inner: Arc<dyn KekProvider>,
    wrap: OpMetrics,
    unwrap: OpMetrics,
}

impl MeteredKek {
    fn new(inner: Arc<dyn KekProvider>, metrics: &KekMetrics) -> Self {
        let kind = inner.id().kind().to_owned();
        MeteredKek {
            wrap: metrics.op(&kind, "wrap"),
            unwrap: metrics.op(&kind, "unwrap"),
            inner,
        }
    }
}

/// The wrapped KEK's own Debug (which never prints a PIN).
impl fmt::Debug for MeteredKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl KekProvider for MeteredKek {
    fn id(&self) -> &KekId {
        self.inner.id()
    }

    fn wrap(&self, dek: &Dek, aad: &[u8]) -> Result<Vec<u8>, envelope::Error> {
        let started = Instant::now();
        let wrapped = self.inner.wrap(dek, aad);
        self.wrap.observe(started, wrapped.is_err());
        wrapped
    }

    fn unwrap(&self, stanza: &StanzaRef<'_>, aad: &[u8]) -> Option<Result<Dek, envelope::Error>> {
        let started = Instant::now();
        let unwrapped = self.inner.unwrap(stanza, aad);
        // "Not mine" is no call to the KEK's key.
        if let Some(result) = &unwrapped {
            self.unwrap.observe(started, result.is_err());
        }
        unwrapped
    }

    fn health(&self) -> Health {
        self.inner.health()
    }

    fn assurance(&self) -> Assurance {
        self.inner.assurance()
    }

    fn computes_in_process(&self) -> bool {
        self.inner.computes_in_process()
    }

    fn wraps_without_secret(&self) -> bool {
        self.inner.wraps_without_secret()
    }
}
