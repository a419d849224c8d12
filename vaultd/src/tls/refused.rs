//! The one hook for a refused TLS handshake.
//!
//! Every handshake the daemon does not complete ends here, once, with the peer's address,
//! the certificate it presented (its fingerprint, and its principal when it names one) and
//! why. Today the hook logs a warning ([`LogRefusedHandshakes`]); a recorder that audits
//! such denials implements [`HandshakeRefusalHook`] and is passed to `crate::tls::incoming`
//! in its place.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// A connection closed without a handshake: why, and after how long (holding it slows a
/// client that reconnects in a loop, which would otherwise spin as fast as it can).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnedAway {
    /// What to report.
    pub why: HandshakeRefusal,
    /// How long the connection is held, unanswered, before it is closed.
    pub hold: Duration,
}

/// Why the TLS handshake turned a client away.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeRefusal {
    /// The client presented no certificate.
    NoCertificate,
    /// The certificate is not one the vault's CA issued for client use, or not now (the
    /// chain check's verdict: unknown issuer, expired, bad signature, wrong key usage...).
    Untrusted(String),
    /// The certificate is revoked by this entry of the revocation list.
    Revoked(pki::RevocationEntry),
    /// The certificate is the CA's, but names no valid principal.
    NoPrincipal(String),
    /// The handshake failed otherwise (not TLS, a protocol error, the client could not
    /// prove it holds the certificate's key, the client gave up).
    Failed(String),
    /// The handshake did not finish within the deadline.
    TimedOut(Duration),
    /// Too many handshakes were in progress: the connection was closed unanswered.
    Busy {
        /// How many were in progress.
        in_progress: usize,
    },
    /// The address had too many handshakes refused in the last second: the connection was
    /// closed unanswered (no handshake is spent on it).
    CoolingDown {
        /// Refused handshakes from the address in this second.
        refused: u32,
    },
}

impl fmt::Display for HandshakeRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeRefusal::NoCertificate => f.write_str("no client certificate"),
            HandshakeRefusal::Untrusted(why) => write!(f, "certificate not trusted: {why}"),
            HandshakeRefusal::Revoked(entry) => write!(f, "certificate revoked ({entry})"),
            HandshakeRefusal::NoPrincipal(why) => {
                write!(f, "certificate names no principal: {why}")
            }
            HandshakeRefusal::Failed(why) => write!(f, "handshake failed: {why}"),
            HandshakeRefusal::TimedOut(after) => {
                write!(f, "no complete handshake within {} ms", after.as_millis())
            }
            HandshakeRefusal::Busy { in_progress } => write!(
                f,
                "{in_progress} handshakes already in progress; connection closed"
            ),
            HandshakeRefusal::CoolingDown { refused } => write!(
                f,
                "{refused} handshakes from this address refused in the last second; connection closed without a handshake"
            ),
        }
    }
}

/// What is told about every refused handshake (see the module documentation).
pub trait HandshakeRefusalHook: Send + Sync + fmt::Debug {
    /// A handshake from `peer` was refused. `fingerprint` is the lowercase hex SHA-256 of
    /// the certificate it presented (`None`: none was seen), and `principal` whom that
    /// certificate names if it passed the chain check (`None`: no certificate, one the
    /// vault's CA did not issue, or one naming no valid principal). Called on the task of
    /// that handshake (for [`HandshakeRefusal::Busy`], on the accept loop's): return
    /// quickly.
    fn handshake_refused(
        &self,
        peer: SocketAddr,
        fingerprint: Option<&str>,
        principal: Option<&str>,
        why: &HandshakeRefusal,
    );

    /// Whether a connection from `peer` may start a handshake now; if not, the refusal to
    /// report and how long to hold the connection before closing it unanswered. Called on the
    /// accept loop: return quickly.
    fn admit(&self, peer: SocketAddr) -> Result<(), TurnedAway> {
        let _ = peer;
        Ok(())
    }
}

/// The hook for now: a warning in the daemon's log.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogRefusedHandshakes;

impl HandshakeRefusalHook for LogRefusedHandshakes {
    fn handshake_refused(
        &self,
        peer: SocketAddr,
        fingerprint: Option<&str>,
        principal: Option<&str>,
        why: &HandshakeRefusal,
    ) {
        log::warn!(
            "TLS handshake refused: peer {peer}, certificate {}, principal {}: {why}",
            fingerprint.unwrap_or("-"),
            principal.unwrap_or(principal_id::NO_PRINCIPAL),
        );
    }
}
