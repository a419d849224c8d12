//! The leader's checkpoints of the replica chains: what one holds, its MAC, and the thread
//! that adds one every interval while this daemon leads.

use std::sync::Weak;
use std::time::{Duration, Instant};

use ring::hmac;

use super::{ReplicaChain, Stop, head_verifies};
use crate::Error;
use crate::audit::key::{mac_hex, mac_matches};
use crate::audit::record::ZERO_MAC;
use crate::store::{AuditChains, StoredCheckpoint, now_ms};

/// Domain separation of a checkpoint's MAC.
const CHECKPOINT_DOMAIN: &[u8] = b"vault audit replicas checkpoint v1\n";

/// How often a failing checkpoint is reported again.
const REPORT_EVERY: Duration = Duration::from_secs(60);

/// What a checkpoint's MAC covers: everything but the MAC, its heads by chain name.
fn body(checkpoint: &StoredCheckpoint) -> Vec<u8> {
    let mut heads: Vec<_> = checkpoint.heads.iter().collect();
    heads.sort();
    serde_json::to_vec(&(
        checkpoint.number,
        checkpoint.ts_ms,
        checkpoint.term,
        &checkpoint.prev,
        heads,
    ))
    .expect("a checkpoint serializes")
}

/// The MAC of `checkpoint` under the audit key.
pub(super) fn checkpoint_mac(key: &hmac::Key, checkpoint: &StoredCheckpoint) -> String {
    mac_hex(key, &[CHECKPOINT_DOMAIN, &body(checkpoint)])
}

/// Whether `checkpoint`'s MAC is its own under the audit key.
pub(super) fn checkpoint_verifies(key: &hmac::Key, checkpoint: &StoredCheckpoint) -> bool {
    mac_matches(
        key,
        &[CHECKPOINT_DOMAIN, &body(checkpoint)],
        &checkpoint.mac,
    )
}

/// Adds a checkpoint of every chain that moved since one last named it, if this process
/// leads: its number, `None` if it does not lead or nothing moved. A head whose tag does not
/// verify is left out (and reported): a checkpoint vouches only for what the vault wrote.
pub(super) fn checkpoint(chains: &dyn AuditChains, key: &hmac::Key) -> Result<Option<u64>, Error> {
    let Some(term) = chains.leader_term() else {
        return Ok(None);
    };
    let heads: Vec<_> = chains
        .unchecked_heads()?
        .into_iter()
        .filter(|head| {
            let genuine = head_verifies(key, head);
            if !genuine {
                log::error!(
                    "audit chain {}: its head row does not verify under the audit key (written by someone else); not checkpointed: run `vaultctl audit verify`",
                    head.chain
                );
            }
            genuine
        })
        .map(|head| (head.chain, head.seq, head.mac))
        .collect();
    if heads.is_empty() {
        return Ok(None);
    }
    let (number, prev) = match chains.last_checkpoint()? {
        Some((number, mac)) => (number + 1, mac),
        None => (1, ZERO_MAC.to_owned()),
    };
    let mut checkpoint = StoredCheckpoint {
        number,
        ts_ms: now_ms(),
        term,
        prev,
        mac: String::new(),
        heads,
    };
    checkpoint.mac = checkpoint_mac(key, &checkpoint);
    Ok(chains.add_checkpoint(&checkpoint)?.then_some(number))
}

/// The checkpoint thread: every `interval` until stopped, a checkpoint if this daemon leads.
pub(super) fn run(chain: &Weak<ReplicaChain>, stop: &Stop, interval: Duration) {
    let mut reported: Option<Instant> = None;
    while !stop.wait(interval, 2) {
        let Some(chain) = chain.upgrade() else {
            return;
        };
        match chain.checkpoint_now() {
            Ok(_) => reported = None,
            Err(e) => {
                if reported.is_none_or(|at| at.elapsed() >= REPORT_EVERY) {
                    log::warn!("audit: checkpointing the replica chains failed: {e}");
                    reported = Some(Instant::now());
                }
            }
        }
    }
}
