//! The TLS side of the listener: every accepted TCP connection gets its handshake on a task
//! of its own, with a deadline, so a client that connects and sends nothing (or trickles)
//! never holds up the accept loop or anyone else's handshake, and is disconnected when the
//! deadline passes. Completed handshakes go to tonic as `TlsStream`s, whose connect info
//! gives requests their peer certificates and remote address.

use std::cell::RefCell;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use super::refused::{HandshakeRefusal, HandshakeRefusalHook};
use super::verifier::{PRESENTED, Presented};

/// Handshakes in progress at once; a connection beyond them is closed at once. Each holds a
/// socket and a few KiB until it completes or its deadline passes.
pub const MAX_HANDSHAKES_IN_PROGRESS: usize = 512;
/// Completed handshakes waiting for tonic to take them.
const READY_QUEUE: usize = 64;
/// How long, at most, a refused connection is drained after its alert before it is closed
/// (a client closes at once when it reads the alert). A TLS 1.3 client sends its first data
/// right after its Finished, before it reads the alert: arriving at a closed socket it gets
/// an RST, which discards the unread alert. On a loaded host that data came more than
/// 250 ms late; the slot is held no longer than a handshake that stalls (the deadline).
const ALERT_LINGER: Duration = Duration::from_secs(2);
/// Pause after an accept error such as EMFILE, so a full descriptor table is not spun on.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The stream of TLS connections tonic serves (`serve_with_incoming_shutdown`).
pub type Incoming = ReceiverStream<io::Result<TlsStream<TcpStream>>>;

/// How new connections are handshaken: the acceptor (certificates, verifier) and the
/// deadline. A reload swaps it whole; a connection keeps the one it was accepted with.
#[derive(Clone)]
pub struct Handshakes {
    /// The acceptor of new connections.
    pub acceptor: TlsAcceptor,
    /// How long a handshake may take.
    pub deadline: Duration,
}

impl std::fmt::Debug for Handshakes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshakes")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// The handshake settings in force, read once per accepted connection.
pub type SharedHandshakes = Arc<ArcSwap<Handshakes>>;

/// Accepts connections on `listener` and runs their handshakes with `acceptor`, each within
/// `deadline`; refused handshakes go to `hook`. Stops, closing the listener, when the
/// returned stream is dropped (tonic drops it when shutdown begins).
pub fn incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    hook: Arc<dyn HandshakeRefusalHook>,
    deadline: Duration,
) -> Incoming {
    let settings = Arc::new(ArcSwap::from_pointee(Handshakes { acceptor, deadline }));
    incoming_with(listener, settings, hook)
}

/// Like [`incoming`], with the acceptor and deadline read from `settings` for each new
/// connection, so that replacing them changes how the next connections are handshaken.
pub fn incoming_with(
    listener: TcpListener,
    settings: SharedHandshakes,
    hook: Arc<dyn HandshakeRefusalHook>,
) -> Incoming {
    let (ready, incoming) = mpsc::channel(READY_QUEUE);
    tokio::spawn(accept_loop(listener, settings, hook, ready));
    ReceiverStream::new(incoming)
}

type Ready = mpsc::Sender<io::Result<TlsStream<TcpStream>>>;

async fn accept_loop(
    listener: TcpListener,
    settings: SharedHandshakes,
    hook: Arc<dyn HandshakeRefusalHook>,
    ready: Ready,
) {
    let in_progress = Arc::new(Semaphore::new(MAX_HANDSHAKES_IN_PROGRESS));
    loop {
        let (tcp, peer) = tokio::select! {
            () = ready.closed() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    log::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        if let Err(turned) = hook.admit(peer) {
            let hook = Arc::clone(&hook);
            tokio::spawn(async move {
                tokio::time::sleep(turned.hold).await;
                drop(tcp);
                hook.handshake_refused(peer, None, None, &turned.why);
            });
            continue;
        }
        let Ok(permit) = Arc::clone(&in_progress).try_acquire_owned() else {
            drop(tcp);
            let why = HandshakeRefusal::Busy {
                in_progress: MAX_HANDSHAKES_IN_PROGRESS,
            };
            hook.handshake_refused(peer, None, None, &why);
            continue;
        };
        // Set on the connections that get a handshake, as tonic's own listener does: a call's
        // response goes out when written, not after the client's delayed ACK of the previous
        // segment (Nagle's algorithm).
        if let Err(e) = tcp.set_nodelay(true) {
            log::debug!("TCP_NODELAY on a connection from {peer}: {e}");
        }
        let (settings, hook, ready) = (settings.load_full(), Arc::clone(&hook), ready.clone());
        tokio::spawn(async move {
            let outcome = handshake(&settings.acceptor, tcp, settings.deadline).await;
            drop(permit);
            match outcome {
                Ok(stream) => {
                    // Fails only when the server stopped: the connection is then dropped.
                    let _ = ready.send(Ok(stream)).await;
                }
                Err((presented, why)) => hook.handshake_refused(
                    peer,
                    presented.fingerprint.as_deref(),
                    presented.principal.as_deref(),
                    &why,
                ),
            }
        });
    }
}

/// One handshake within `deadline`; on failure, what the client presented and why.
async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    deadline: Duration,
) -> Result<TlsStream<TcpStream>, (Presented, HandshakeRefusal)> {
    let (outcome, presented) = PRESENTED
        .scope(RefCell::new(Presented::default()), async {
            let outcome =
                tokio::time::timeout(deadline, acceptor.accept(tcp).into_fallible()).await;
            (outcome, PRESENTED.with(|slot| slot.take()))
        })
        .await;
    match outcome {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err((error, tcp))) => {
            close_after_alert(tcp).await;
            let why = match presented.refusal.clone() {
                Some(refusal) => refusal,
                None => refusal_of(&error),
            };
            Err((presented, why))
        }
        Err(_elapsed) => Err((presented, HandshakeRefusal::TimedOut(deadline))),
    }
}

/// Closes a refused connection so that its client reads the alert (`certificate_revoked`,
/// ...) rather than a reset: a socket closed while the client's last flight is still unread
/// sends an RST, which can overtake the alert. Sends FIN after the alert, then reads and
/// discards what the client still sends until it closes or `ALERT_LINGER` passes (while
/// the handshake's slot is held, so refused clients cannot pile up sockets).
async fn close_after_alert(mut tcp: TcpStream) {
    let _ = tokio::time::timeout(ALERT_LINGER, async {
        if tcp.shutdown().await.is_ok() {
            let mut discard = [0u8; 4096];
            while matches!(tcp.read(&mut discard).await, Ok(n) if n > 0) {}
        }
    })
    .await;
}

/// The refusal a failed handshake's error stands for, when the verifier gave none.
fn refusal_of(error: &io::Error) -> HandshakeRefusal {
    let tls = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::NoCertificatesPresented) => HandshakeRefusal::NoCertificate,
        _ => HandshakeRefusal::Failed(error.to_string()),
    }
}
