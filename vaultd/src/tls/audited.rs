//! Refused handshakes on the audit record: each one goes to the daemon's denial recorder
//! (rate-limited and aggregated per certificate and peer address like every denial, so a
//! revoked certificate that reconnects in a loop cannot fill the disk), and to the log.
//!
//! A handshake costs the daemon a key exchange and a signature before it even sees the
//! client's certificate, so a client refused in a loop would take the processors from the
//! callers that are let in. An address with more than [`REFUSED_PER_ADDRESS`] handshakes
//! refused in a second therefore has its new connections closed without a handshake for the
//! rest of that second, paced like denied requests: one closed per [`PACE`] (each held
//! unanswered until its turn), [`PARKED_PER_SOURCE`] held at most, further ones closed at
//! once. So a client that reconnects in a loop slows down instead of spinning. Connections
//! already open are not touched; a client behind the same address (a NAT) that connects
//! meanwhile is turned away too and connects again after.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tonic::Status;

use super::refused::{HandshakeRefusal, HandshakeRefusalHook, TurnedAway};
use crate::denials::{DenialRecorder, Denied, PACE, PARKED_PER_SOURCE, WINDOW};
use crate::metrics::{DenialReason, Metrics};

/// Refused handshakes an address may have in a second before its connections are closed
/// unanswered for the rest of it: enough for someone trying a few bad certificates to go
/// on connecting, few enough that a client refused in a loop costs little processor time.
pub const REFUSED_PER_ADDRESS: u32 = 20;
/// Addresses counted in a second; beyond it, new addresses are not counted (and not turned
/// away), so the map cannot grow without bound.
const MAX_ADDRESSES: usize = 4096;

/// Sends refused handshakes to a [`DenialRecorder`], and cools down addresses refused in a
/// loop.
#[derive(Debug)]
pub struct AuditRefusedHandshakes {
    recorder: Arc<DenialRecorder>,
    metrics: Arc<Metrics>,
    refused: Mutex<Second>,
}

/// One second's refused handshakes per address, and when each cooling address's next held
/// connection is closed.
#[derive(Debug)]
struct Second {
    started: Instant,
    refused: HashMap<IpAddr, u32>,
    next_close: HashMap<IpAddr, Instant>,
}

impl Second {
    fn new() -> Self {
        Second {
            started: Instant::now(),
            refused: HashMap::new(),
            next_close: HashMap::new(),
        }
    }
}

impl AuditRefusedHandshakes {
    /// Refused handshakes go to `recorder`, and are counted in `metrics`.
    pub fn new(recorder: Arc<DenialRecorder>, metrics: Arc<Metrics>) -> Self {
        AuditRefusedHandshakes {
            recorder,
            metrics,
            refused: Mutex::new(Second::new()),
        }
    }

    /// This second's counts (a new second starts empty).
    fn second(&self) -> std::sync::MutexGuard<'_, Second> {
        let mut second = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        if second.started.elapsed() >= WINDOW {
            *second = Second::new();
        }
        second
    }
}

impl HandshakeRefusalHook for AuditRefusedHandshakes {
    fn handshake_refused(
        &self,
        peer: SocketAddr,
        fingerprint: Option<&str>,
        principal: Option<&str>,
        why: &HandshakeRefusal,
    ) {
        self.metrics.denied(DenialReason::Handshake);
        // Logged like any other refusal, but for the connections of an address that is
        // cooling down: those come as fast as a looping client sends them.
        let cooling = matches!(why, HandshakeRefusal::CoolingDown { .. });
        let level = if cooling {
            log::Level::Debug
        } else {
            log::Level::Warn
        };
        log::log!(
            level,
            "TLS handshake refused: peer {peer}, certificate {}, principal {}: {why}",
            fingerprint.unwrap_or("-"),
            principal.unwrap_or(principal_id::NO_PRINCIPAL),
        );
        if !cooling {
            let mut second = self.second();
            if second.refused.len() < MAX_ADDRESSES || second.refused.contains_key(&peer.ip()) {
                *second.refused.entry(peer.ip()).or_default() += 1;
            }
        }
        let recorder = Arc::clone(&self.recorder);
        let (fingerprint, principal) =
            (fingerprint.map(str::to_owned), principal.map(str::to_owned));
        let status = Status::unauthenticated(format!("TLS handshake refused: {why}"));
        // The hook must return at once; the record (if within budget) is written meanwhile.
        tokio::spawn(async move {
            recorder
                .record(
                    fingerprint.as_deref(),
                    principal.as_deref(),
                    Some(peer),
                    Denied::handshake(),
                    status,
                )
                .await;
        });
    }

    fn admit(&self, peer: SocketAddr) -> Result<(), TurnedAway> {
        let mut second = self.second();
        let refused = match second.refused.get(&peer.ip()) {
            Some(&refused) if refused > REFUSED_PER_ADDRESS => refused,
            _ => return Ok(()),
        };
        let why = HandshakeRefusal::CoolingDown { refused };
        let now = Instant::now();
        let next = second.next_close.entry(peer.ip()).or_insert(now);
        let turn = (*next).max(now);
        let hold = turn - now;
        if hold >= PACE * PARKED_PER_SOURCE {
            // Enough of its connections wait already: this one is closed at once.
            return Err(TurnedAway {
                why,
                hold: std::time::Duration::ZERO,
            });
        }
        *next = turn + PACE;
        Err(TurnedAway { why, hold })
    }
}
