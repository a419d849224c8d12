//! Recording denials without letting a denied caller fill the disk or slow the others.
//!
//! Every denial costs a record, and a record an fsync. A caller that is refused in a loop (a
//! revoked certificate, a principal unknown to the ACL, a client over its rate limit) would
//! make the audit log grow as fast as it can send, and other callers' records would queue
//! behind its fsyncs. So denials are counted per one-second window: each certificate (or
//! principal) and each peer address gets [`RECORDS_PER_SOURCE`] records of its own, all of
//! them together [`RECORDS_PER_WINDOW`]; past that, identical denials (same source, address,
//! operation, scope, key and status) are counted and written as one record when the window
//! ends: "N more denials of <what> for <who> from <addr> in the last second". Those denials
//! wait for no write; instead they are paced ([`DenialRecorder::pace`]): a source past its
//! budget gets one answer per [`PACE`], [`PARKED_PER_SOURCE`] waiting at most, so that a
//! client refused in a loop gets slower instead of taking the daemon's processors from the
//! callers that are let in.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tonic::Status;
use vault::audit::{AuditEvent, AuditLog, Decision};

use crate::gates::{Ask, audit_unavailable, code_name};

/// Length of a counting window.
pub const WINDOW: Duration = Duration::from_secs(1);
/// Records of their own per certificate (or principal, or anonymous caller) and per peer
/// address in a window.
pub const RECORDS_PER_SOURCE: u32 = 5;
/// Records of their own for all denials together in a window.
pub const RECORDS_PER_WINDOW: u32 = 100;
/// A source past its budget is answered once per this (at most 500 denials a second).
pub const PACE: Duration = Duration::from_millis(2);
/// Denials of one source waiting for their pace at once; more are answered at once (so that
/// waiting denials cannot hold all of the daemon's request slots).
pub const PARKED_PER_SOURCE: u32 = 16;
/// Sources whose pace is remembered; beyond it, the ones idle for a second are forgotten.
const MAX_PACED: usize = 4096;
/// Distinct kinds of denial counted per source in a window; further kinds are counted as
/// "any request".
const KINDS_PER_SOURCE: usize = 4;
/// Distinct counters in a window; further denials are counted in one "any" counter.
const MAX_COUNTERS: usize = 1024;

/// What a denied caller asked for: an operation, and the scope and key it named, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied<'a> {
    /// The operation (`get`, `put`, ..., or `handshake` for a refused TLS handshake).
    pub op: &'a str,
    /// The scope named.
    pub scope: Option<&'a str>,
    /// The key (or transit context) named.
    pub key: Option<&'a str>,
}

impl Denied<'static> {
    /// A TLS handshake refused before any request (no scope, no key).
    pub fn handshake() -> Self {
        Denied {
            op: "handshake",
            scope: None,
            key: None,
        }
    }
}

impl<'a> From<Ask<'a>> for Denied<'a> {
    fn from(ask: Ask<'a>) -> Self {
        Denied {
            op: ask.rpc,
            scope: Some(ask.scope),
            key: Some(ask.key),
        }
    }
}

/// Records denials in the audit log, rate-limited and aggregated (see the module docs). One
/// per daemon, shared by the gates and the TLS accept loop.
#[derive(Debug)]
pub struct DenialRecorder {
    audit: Arc<AuditLog>,
    window: Mutex<Window>,
    paces: Mutex<HashMap<String, Pace>>,
}

/// When a paced source's next denial may be answered, and how many wait for it.
#[derive(Debug)]
struct Pace {
    next: tokio::time::Instant,
    parked: u32,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    /// Records written per source (certificate, principal or anonymous) in this window.
    by_source: HashMap<String, u32>,
    /// Records written per peer address in this window.
    by_peer: HashMap<Option<IpAddr>, u32>,
    /// Records written in this window.
    written: u32,
    /// Denials over the budget, per kind, to be written as one record each.
    counted: HashMap<Kind, Counted>,
    /// Kinds counted per source (to bound them).
    kinds: HashMap<String, usize>,
}

/// Identical denials: who, from where, asking what, answered how.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Kind {
    source: String,
    cert: Option<String>,
    principal: Option<String>,
    peer: Option<IpAddr>,
    op: String,
    scope: Option<String>,
    key: Option<String>,
    status: &'static str,
}

#[derive(Debug)]
struct Counted {
    count: u64,
    reason: String,
}

impl Window {
    fn new(now: Instant) -> Self {
        Window {
            started: now,
            by_source: HashMap::new(),
            by_peer: HashMap::new(),
            written: 0,
            counted: HashMap::new(),
            kinds: HashMap::new(),
        }
    }
}

impl DenialRecorder {
    /// A recorder writing to `audit`.
    pub fn new(audit: Arc<AuditLog>) -> Self {
        DenialRecorder {
            audit,
            window: Mutex::new(Window::new(Instant::now())),
            paces: Mutex::new(HashMap::new()),
        }
    }

    /// Records that the caller with certificate fingerprint `cert` (lowercase hex SHA-256)
    /// and `principal`, connected from `peer`, was refused `what` with `status`, and returns
    /// the status to answer. Within the caller's budget the record is written and fsynced
    /// before this returns (and a record that cannot be written is answered UNAVAILABLE);
    /// past it the denial is counted and this returns at once. Any of the caller's parts may
    /// be unknown (no certificate, a refused handshake).
    pub async fn record(
        &self,
        cert: Option<&str>,
        principal: Option<&str>,
        peer: Option<SocketAddr>,
        what: Denied<'_>,
        status: Status,
    ) -> Status {
        let code = code_name(status.code());
        let source = source_of(cert, principal);
        let ip = peer.map(|p| p.ip());
        let within_budget = {
            let mut window = self.current_window();
            let own = window.by_source.get(&source).copied().unwrap_or(0);
            let from_peer = window.by_peer.get(&ip).copied().unwrap_or(0);
            if own < RECORDS_PER_SOURCE
                && from_peer < RECORDS_PER_SOURCE
                && window.written < RECORDS_PER_WINDOW
            {
                *window.by_source.entry(source.clone()).or_default() += 1;
                *window.by_peer.entry(ip).or_default() += 1;
                window.written += 1;
                true
            } else {
                count(
                    &mut window,
                    source,
                    cert,
                    principal,
                    ip,
                    what,
                    code,
                    &status,
                );
                false
            }
        };
        if !within_budget {
            return status;
        }
        let event = AuditEvent {
            principal: principal.unwrap_or("-").to_owned(),
            cert: cert.map(str::to_owned),
            peer: peer.map(|p| p.to_string()),
            op: what.op.to_owned(),
            scope: what.scope.map(str::to_owned),
            key: what.key.map(str::to_owned),
            reason: Some(status.message().to_owned()),
            ..AuditEvent::new(Decision::Deny, code)
        };
        match self.audit.append_async(event).await {
            Ok(()) => status,
            Err(e) => audit_unavailable(&e, "the request was refused"),
        }
    }

    /// Waits before a denial of a source past its budget in this window is answered: one
    /// answer per [`PACE`] for the source, unless [`PARKED_PER_SOURCE`] of its denials wait
    /// already. Returns at once for a source within its budget. For refusals that hold a
    /// request (the gates), not for refused handshakes.
    pub async fn pace(
        &self,
        cert: Option<&str>,
        principal: Option<&str>,
        peer: Option<SocketAddr>,
    ) {
        let source = source_of(cert, principal);
        let ip = peer.map(|p| p.ip());
        {
            let window = self.current_window();
            let own = window.by_source.get(&source).copied().unwrap_or(0);
            let from_peer = window.by_peer.get(&ip).copied().unwrap_or(0);
            if own < RECORDS_PER_SOURCE && from_peer < RECORDS_PER_SOURCE {
                return;
            }
        }
        // An anonymous caller is paced by its address.
        let key = match (cert, principal, ip) {
            (None, None, Some(ip)) => format!("address {ip}"),
            _ => source,
        };
        let now = tokio::time::Instant::now();
        let slot = {
            let mut paces = self.paces.lock().unwrap_or_else(PoisonError::into_inner);
            if paces.len() >= MAX_PACED {
                paces.retain(|_, p| p.parked > 0 || p.next + WINDOW > now);
            }
            let pace = paces.entry(key.clone()).or_insert(Pace {
                next: now,
                parked: 0,
            });
            if pace.parked >= PARKED_PER_SOURCE {
                return;
            }
            let slot = pace.next.max(now);
            pace.next = slot + PACE;
            pace.parked += 1;
            slot
        };
        tokio::time::sleep_until(slot).await;
        let mut paces = self.paces.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pace) = paces.get_mut(&key) {
            pace.parked = pace.parked.saturating_sub(1);
        }
    }

    /// Writes the counts of a window that has ended (a no-op otherwise). Called every
    /// [`WINDOW`] by the daemon, so that counts are written even when denials stop.
    pub fn flush_ended(&self) {
        drop(self.current_window());
    }

    /// Writes every count now (at shutdown).
    pub fn flush(&self) {
        let mut window = self.lock();
        let ended = std::mem::replace(&mut *window, Window::new(Instant::now()));
        drop(window);
        self.write_counts(ended);
    }

    /// The window of now, after writing the counts of one that ended.
    fn current_window(&self) -> MutexGuard<'_, Window> {
        let mut window = self.lock();
        let now = Instant::now();
        if now.duration_since(window.started) >= WINDOW {
            let ended = std::mem::replace(&mut *window, Window::new(now));
            // Queued in the log's memory, not waited for: no caller's answer waits on it.
            self.write_counts(ended);
        }
        window
    }

    fn write_counts(&self, ended: Window) {
        for (kind, counted) in ended.counted {
            let what = match (&kind.scope, &kind.key) {
                (Some(scope), Some(key)) => format!("{} {scope} {key}", kind.op),
                _ => kind.op.clone(),
            };
            let from = kind
                .peer
                .map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
            let reason = format!(
                "{} more denials of {what} for {} from {from} in the last second ({})",
                counted.count, kind.source, counted.reason
            );
            let event = AuditEvent {
                principal: kind.principal.unwrap_or_else(|| "-".to_owned()),
                cert: kind.cert,
                peer: kind.peer.map(|ip| ip.to_string()),
                op: kind.op,
                scope: kind.scope,
                key: kind.key,
                reason: Some(reason),
                ..AuditEvent::new(Decision::Deny, kind.status)
            };
            // A failed log is reported to the next caller whose record is written.
            drop(self.audit.append_async(event));
        }
    }

    fn lock(&self) -> MutexGuard<'_, Window> {
        // Every change to the window is a counter update: a panicking holder leaves it whole.
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Who a denial is counted for: the certificate, else the principal, else nobody known.
fn source_of(cert: Option<&str>, principal: Option<&str>) -> String {
    match (cert, principal) {
        (Some(fp), _) => format!("certificate {fp}"),
        (None, Some(p)) => format!("principal {p}"),
        (None, None) => "an anonymous caller".to_owned(),
    }
}

/// Counts a denial over the budget under its kind (or a coarser one when the source or the
/// window has too many kinds).
#[allow(clippy::too_many_arguments)]
fn count(
    window: &mut Window,
    source: String,
    cert: Option<&str>,
    principal: Option<&str>,
    peer: Option<IpAddr>,
    what: Denied<'_>,
    status_name: &'static str,
    status: &Status,
) {
    let mut kind = Kind {
        source,
        cert: cert.map(str::to_owned),
        principal: principal.map(str::to_owned),
        peer,
        op: what.op.to_owned(),
        scope: what.scope.map(str::to_owned),
        key: what.key.map(str::to_owned),
        status: status_name,
    };
    if !window.counted.contains_key(&kind) {
        let kinds = window.kinds.get(&kind.source).copied().unwrap_or(0);
        if kinds >= KINDS_PER_SOURCE {
            kind.op = "any request".to_owned();
            kind.scope = None;
            kind.key = None;
        }
        if window.counted.len() >= MAX_COUNTERS && !window.counted.contains_key(&kind) {
            kind = Kind {
                source: "any caller".to_owned(),
                cert: None,
                principal: None,
                peer: None,
                op: "any request".to_owned(),
                scope: None,
                key: None,
                status: "DENIED",
            };
        }
        if !window.counted.contains_key(&kind) {
            *window.kinds.entry(kind.source.clone()).or_default() += 1;
        }
    }
    let counted = window.counted.entry(kind).or_insert_with(|| Counted {
        count: 0,
        reason: status.message().chars().take(200).collect(),
    });
    counted.count += 1;
}
