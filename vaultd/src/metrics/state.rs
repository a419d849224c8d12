//! The values read at each scrape rather than counted on the request path: lock state and
//! readiness, pool saturation, cache lookups, the audit log's queue, and the epoch wraps.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use vault::audit::AuditLog;
use vault::{Vault, WrapMode};

use crate::health::Readiness;
use crate::pool::KekPool;

/// Reads the daemon's state at each scrape.
pub struct StateCollector {
    vault: Arc<Vault>,
    audit: Arc<AuditLog>,
    pool: KekPool,
    readiness: Arc<Readiness>,
}

impl StateCollector {
    /// A collector of these parts' state.
    pub fn new(
        vault: Arc<Vault>,
        audit: Arc<AuditLog>,
        pool: KekPool,
        readiness: Arc<Readiness>,
    ) -> Self {
        StateCollector {
            vault,
            audit,
            pool,
            readiness,
        }
    }
}

impl fmt::Debug for StateCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateCollector").finish_non_exhaustive()
    }
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> fmt::Result {
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let counter = ConstCounter::new(value);
    counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)
}

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let e = &mut encoder;
        gauge(
            e,
            "vaultd_locked",
            "1 while the vault is locked (its keys dropped), else 0",
            i64::from(self.vault.is_locked()),
        )?;
        gauge(
            e,
            "vaultd_ready",
            "1 while the daemon is ready to serve (unlocked, a root KEK answers, the audit log \
             takes records), else 0; /readyz says why not",
            i64::from(self.readiness.check().is_ok()),
        )?;

        if let Some(leads) = self.vault.leads() {
            gauge(
                e,
                "vaultd_leader",
                "1 while this replica holds the leader lease of a shared store (it runs the \
                 singleton jobs), else 0",
                i64::from(leads),
            )?;
        }

        let load = self.pool.load();
        gauge(
            e,
            "vaultd_kek_pool_threads",
            "Slots of the pool that runs store and KEK calls",
            clamp(load.threads as u64),
        )?;
        gauge(
            e,
            "vaultd_kek_pool_busy",
            "Pool slots in use (a call past its deadline keeps its slot until it returns)",
            clamp(load.busy as u64),
        )?;
        gauge(
            e,
            "vaultd_kek_pool_waiting",
            "Calls waiting for a pool slot",
            clamp(load.waiting as u64),
        )?;

        let (lookups, hits) = self.vault.cache_stats();
        counter(
            e,
            "vaultd_cache_lookups",
            "Lookups in the cache of opened secrets",
            lookups,
        )?;
        counter(
            e,
            "vaultd_cache_hits",
            "Cache lookups that found a fresh value (no store read, no KEK call)",
            hits,
        )?;

        let audit = self.audit.status();
        gauge(
            e,
            "vaultd_audit_queue_depth",
            "Audit records queued and not yet written and fsynced",
            clamp(audit.queued),
        )?;
        gauge(
            e,
            "vaultd_audit_failed",
            "1 once the audit log could not be written (requests fail until a restart), else 0",
            i64::from(audit.failed.is_some()),
        )?;

        // Tiered mode: how far the newest epoch key is through its wrap limit.
        let config = match Vault::read_config(self.vault.dir()) {
            Ok(config) => config,
            Err(e) => {
                tracing::debug!("metrics: cannot read the vault configuration: {e}");
                return Ok(());
            }
        };
        let newest = config
            .epochs
            .last()
            .filter(|_| config.mode == WrapMode::Tiered);
        if let Some(epoch) = newest {
            gauge(
                e,
                "vaultd_epoch_current",
                "The newest epoch (tiered mode)",
                i64::from(epoch.number),
            )?;
            gauge(
                e,
                "vaultd_epoch_wraps_used",
                "DEK wraps counted against the newest epoch's limit (processes lease them in \
                 blocks, so this runs up to a block ahead of the wraps done)",
                clamp(epoch.wraps_reserved),
            )?;
            gauge(
                e,
                "vaultd_epoch_wraps_limit",
                "DEK wraps after which an epoch closes and a new one starts",
                clamp(config.epoch_policy.max_wraps),
            )?;
        }
        Ok(())
    }
}
