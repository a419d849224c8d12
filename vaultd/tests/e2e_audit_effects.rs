//! End to end: nothing changes without an audit record. Puts and deletes sent with client
//! deadlines of 0.5 to 5 ms (so that tonic drops many handlers while their work runs): every
//! version in the store has its `started` record and its outcome (or `outcome-unknown` and
//! `late`), and `vaultctl audit verify` passes.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::Duration;

use common::{Client, Sandbox, vaultctl};
use proto::v1 as pb;
use tonic::Request;
use vault::audit::{AuditRecord, Decision, Stage};

const CLIENTS: usize = 8;
const OPS: usize = 1000;
/// Keys each client writes and never deletes (their versions never repeat), and keys it
/// writes and deletes.
const KEPT_KEYS: usize = 3;
const DELETED_KEYS: usize = 2;

/// A small deterministic generator (xorshift), so a failing run can be repeated by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn kept(client: usize, k: usize) -> String {
    format!("c{client}-kept-{k}")
}

fn deleted(client: usize, k: usize) -> String {
    format!("c{client}-gone-{k}")
}

/// Sends this client's share of the operations, each with a deadline of 0.5 to 5 ms.
async fn run_client(client: usize, mut api: Client, seed: u64) {
    let mut rng = Rng(seed ^ (client as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    for n in 0..OPS / CLIENTS {
        let deadline = Duration::from_micros(500 + rng.next() % 4500);
        let pick = rng.next() % 10;
        let result = if pick < 6 {
            let key = kept(client, (rng.next() as usize) % KEPT_KEYS);
            let mut request = Request::new(pb::PutRequest {
                scope: "global".into(),
                key,
                value: format!("client {client} op {n}").into_bytes(),
                expected_version: None,
            });
            request.set_timeout(deadline);
            api.put(request).await.map(drop)
        } else {
            let key = deleted(client, (rng.next() as usize) % DELETED_KEYS);
            if pick < 8 {
                let mut request = Request::new(pb::PutRequest {
                    scope: "global".into(),
                    key,
                    value: b"to be deleted".to_vec(),
                    expected_version: None,
                });
                request.set_timeout(deadline);
                api.put(request).await.map(drop)
            } else {
                let mut request = Request::new(pb::DeleteRequest {
                    scope: "global".into(),
                    key,
                });
                request.set_timeout(deadline);
                api.delete(request).await.map(drop)
            }
        };
        // Deadline exceeded, cancelled, not found: all fine; what matters is the log.
        drop(result);
    }
}

/// Every version of every secret in the store: (key, version).
fn stored_versions(sandbox: &Sandbox) -> Vec<(String, u64)> {
    let vault = sandbox.open_vault();
    let mut versions = Vec::new();
    for info in vault.list(Some("global")).expect("list") {
        for v in 1..=info.version {
            match vault.get_versioned("global", &info.key, Some(v)) {
                Ok(_) => versions.push((info.key.clone(), v)),
                Err(vault::Error::NotFound { .. }) => {}
                Err(e) => panic!("{} version {v}: {e}", info.key),
            }
        }
    }
    versions
}

/// The record that ends the call started at `started` with what it did: its `outcome`, or its
/// `late` record after an `outcome-unknown`.
fn end_of(records: &[AuditRecord], started: u64) -> Option<&AuditRecord> {
    let ends: Vec<&AuditRecord> = records.iter().filter(|r| r.call == Some(started)).collect();
    match ends.as_slice() {
        [one] if one.stage == Stage::Outcome => Some(one),
        [unknown, late] if unknown.stage == Stage::OutcomeUnknown && late.stage == Stage::Late => {
            Some(late)
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stored_version_has_its_started_and_outcome_records() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("seed {seed}");
    // On disk: the fsyncs of the started records are part of what the deadlines cut short.
    let sandbox = Sandbox::new();
    let daemon = sandbox
        .daemon()
        .env("VAULTD_RATE_PER_SECOND", 1_000_000)
        .env("VAULTD_BURST", 1_000_000)
        .start();
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let api = daemon.client("admin").await;
        clients.push(tokio::spawn(run_client(client, api, seed)));
    }
    for client in clients {
        client.await.expect("a client panicked");
    }
    // SIGTERM waits for calls still running detached from their requests, then closes the
    // log: every record is written.
    assert!(daemon.terminate().success());

    let records = sandbox.audit_records();
    let versions = stored_versions(&sandbox);
    assert!(!versions.is_empty(), "no put took effect");
    let by_seq: HashMap<u64, &AuditRecord> = records.iter().map(|r| (r.seq, r)).collect();
    let cut_short = records
        .iter()
        .filter(|r| r.stage == Stage::OutcomeUnknown)
        .count();
    eprintln!(
        "{} records, {} stored versions, {cut_short} outcome-unknown",
        records.len(),
        versions.len()
    );

    // Every started call has its end, and every end names a started call of the same kind.
    for started in records.iter().filter(|r| r.stage == Stage::Started) {
        let end = end_of(&records, started.seq)
            .unwrap_or_else(|| panic!("started record {} has no outcome", started.seq));
        assert_eq!((&end.op, &end.key), (&started.op, &started.key));
        assert_eq!(started.decision, Decision::Allow);
    }
    for end in records.iter().filter(|r| r.call.is_some()) {
        let started = by_seq[&end.call.expect("call")];
        assert_eq!(
            started.stage,
            Stage::Started,
            "record {} names {}",
            end.seq,
            started.seq
        );
    }

    // Every stored version was written by a put with both records, naming that version.
    let writes: Vec<(&str, u64)> = records
        .iter()
        .filter(|r| {
            r.op == "put" && r.status == "OK" && matches!(r.stage, Stage::Outcome | Stage::Late)
        })
        .map(|r| {
            let started = by_seq[&r.call.expect("a put's outcome names its start")];
            assert_eq!(started.stage, Stage::Started);
            (
                r.key.as_deref().expect("key"),
                r.version.expect("a put's outcome names its version"),
            )
        })
        .collect();
    let written: HashSet<(&str, u64)> = writes.iter().copied().collect();
    for (key, version) in &versions {
        assert!(
            written.contains(&(key.as_str(), *version)),
            "{key} version {version} is stored, but no put record names it (seed {seed})"
        );
    }
    // Keys never deleted: exactly one put record per stored version, and no other.
    for client in 0..CLIENTS {
        for k in 0..KEPT_KEYS {
            let key = kept(client, k);
            let mut recorded: Vec<u64> = writes
                .iter()
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| *v)
                .collect();
            recorded.sort_unstable();
            let stored: Vec<u64> = versions
                .iter()
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| *v)
                .collect();
            assert_eq!(recorded, stored, "{key} (seed {seed})");
        }
    }

    let verify = Command::new(vaultctl())
        .arg("--vault")
        .arg(sandbox.vault_dir())
        .args(["audit", "verify"])
        .output()
        .expect("run vaultctl audit verify");
    assert!(verify.status.success(), "vaultctl audit verify: {verify:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_past_the_pool_deadline_is_recorded_unknown_then_late() {
    let sandbox = Sandbox::new();
    // A deadline shorter than a store write with its fsync: the callers are answered before
    // their writes end.
    let daemon = sandbox.daemon().env("VAULTD_REQUEST_TIMEOUT_MS", 1).start();
    let mut api = daemon.client("admin").await;
    for n in 0..40 {
        let result = api
            .put(pb::PutRequest {
                scope: "global".into(),
                key: "slow".into(),
                value: format!("write {n}").into_bytes(),
                expected_version: None,
            })
            .await;
        drop(result);
    }
    assert!(daemon.terminate().success());
    let records = sandbox.audit_records();
    let unknown: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| r.stage == Stage::OutcomeUnknown)
        .collect();
    assert!(!unknown.is_empty(), "no write overran a 1 ms deadline");
    for r in &unknown {
        assert_eq!(r.status, "UNAVAILABLE");
        let late = end_of(&records, r.call.expect("call")).expect("a late record");
        assert_eq!(late.stage, Stage::Late);
    }
    let stored: Vec<u64> = stored_versions(&sandbox)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    let mut recorded: Vec<u64> = records
        .iter()
        .filter(|r| r.status == "OK" && matches!(r.stage, Stage::Outcome | Stage::Late))
        .filter_map(|r| r.version)
        .collect();
    recorded.sort_unstable();
    assert_eq!(recorded, stored);
}
