//! The daemon's TLS listener in process (`vaultd::tls`): what tonic gets from a completed
//! handshake (peer certificates, remote address), what the refusal hook is told for each
//! refused one, and that a silent client neither blocks others nor stays connected.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::StreamExt;
use tonic::transport::server::Connected;
use vaultd::revocation::Revocations;
use vaultd::tls::{HandshakeRefusal, HandshakeRefusalHook};

/// One call of the hook.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refused {
    peer: SocketAddr,
    fingerprint: Option<String>,
    principal: Option<String>,
    why: HandshakeRefusal,
}

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Refused>>);

impl HandshakeRefusalHook for Recorder {
    fn handshake_refused(
        &self,
        peer: SocketAddr,
        fingerprint: Option<&str>,
        principal: Option<&str>,
        why: &HandshakeRefusal,
    ) {
        self.0.lock().expect("the recorder's lock").push(Refused {
            peer,
            fingerprint: fingerprint.map(str::to_owned),
            principal: principal.map(str::to_owned),
            why: why.clone(),
        });
    }
}

impl Recorder {
    /// The first refusal of `peer`, waiting for it up to 20 s.
    async fn of(&self, peer: SocketAddr) -> Refused {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(found) = self
                .0
                .lock()
                .expect("the recorder's lock")
                .iter()
                .find(|r| r.peer == peer)
            {
                return found.clone();
            }
            assert!(Instant::now() < deadline, "no refusal reported for {peer}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

struct Listener {
    _tmp: tempfile::TempDir,
    pki: pki::PkiDir,
    revocations: Arc<Revocations>,
    addr: SocketAddr,
    incoming: vaultd::tls::Incoming,
    hook: Arc<Recorder>,
}

/// A PKI directory with `revoked` principals revoked, and the daemon's listener on it.
async fn listener(deadline: Duration, revoked: &[&str]) -> Listener {
    let tmp = tempfile::tempdir().expect("test setup");
    let pki = pki::PkiDir::new(tmp.path().join("tls"));
    pki.create(&["localhost".into()]).expect("test setup");
    for principal in revoked {
        let issued = pki.issue_client(principal).expect("test setup");
        pki.revoke(issued.cert.to_str().expect("test setup"))
            .expect("test setup");
    }
    let revocations = Arc::new(Revocations::load(pki.revoked()).expect("test setup"));
    let acceptor = vaultd::tls::acceptor(&pki, Arc::clone(&revocations)).expect("test setup");
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("test setup");
    let addr = tcp.local_addr().expect("test setup");
    let hook = Arc::new(Recorder::default());
    let incoming = vaultd::tls::incoming(tcp, acceptor, hook.clone(), deadline);
    Listener {
        _tmp: tmp,
        pki,
        revocations,
        addr,
        incoming,
        hook,
    }
}

/// A rustls client configuration trusting the listener's CA, with `client` as its identity
/// if given (and rustls' default in-memory session cache, so it resumes when it can).
fn client_config(listener: &Listener, client: Option<(&Path, &Path)>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(listener.pki.ca_cert()).expect("test setup"))
        .expect("test setup");
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("test setup")
        .with_root_certificates(roots);
    let mut config = match client {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_file(cert).expect("test setup")],
                PrivateKeyDer::from_pem_file(key).expect("test setup"),
            )
            .expect("test setup"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// Connects with a rustls client trusting the listener's CA, with `client` as its identity
/// if given.
async fn connect(
    listener: &Listener,
    client: Option<(&Path, &Path)>,
) -> (
    SocketAddr,
    std::io::Result<tokio_rustls::client::TlsStream<TcpStream>>,
) {
    connect_with(listener, client_config(listener, client)).await
}

/// Connects with `config`; a refusal that comes after the client's side of the handshake
/// (TLS 1.3) is met by writing and reading once.
async fn connect_with(
    listener: &Listener,
    config: Arc<rustls::ClientConfig>,
) -> (
    SocketAddr,
    std::io::Result<tokio_rustls::client::TlsStream<TcpStream>>,
) {
    let tcp = TcpStream::connect(listener.addr).await.expect("test setup");
    let local = tcp.local_addr().expect("test setup");
    let connector = tokio_rustls::TlsConnector::from(config);
    let server = ServerName::try_from("localhost").expect("test setup");
    let mut result = connector.connect(server, tcp).await;
    // TLS 1.3: the server's verdict on the client's certificate comes after the client's
    // side finished; write and read once to meet it.
    if let Ok(stream) = &mut result {
        let _ = stream.write_all(b"x").await;
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(500), stream.read(&mut byte)).await;
        if let Ok(Err(e)) = read {
            result = Err(e);
        }
    }
    (local, result)
}

#[tokio::test]
async fn a_completed_handshake_gives_tonic_the_peer_certificate_and_address() {
    let mut listener = listener(Duration::from_secs(10), &[]).await;
    let alice = listener.pki.issue_client("alice").unwrap();
    let (local, client) = connect(&listener, Some((&alice.cert, &alice.key))).await;
    let _client = client.expect("alice's handshake");
    let server_side = tokio::time::timeout(Duration::from_secs(20), listener.incoming.next())
        .await
        .expect("a connection within 20 s")
        .expect("the stream goes on")
        .expect("a TLS stream");
    assert_eq!(server_side.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));

    // What tonic inserts into every request of this connection, and reads back through
    // `Request::remote_addr` and `Request::peer_certs` (the gates identify callers so).
    let mut request = tonic::Request::new(());
    request.extensions_mut().insert(server_side.connect_info());
    assert_eq!(request.remote_addr(), Some(local));
    let certs = request.peer_certs().expect("peer certificates");
    assert_eq!(
        pki::fingerprint(certs[0].as_ref()),
        alice.fingerprint,
        "the leaf is alice's certificate"
    );
    assert!(listener.hook.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn every_refused_handshake_reaches_the_hook_with_peer_certificate_and_why() {
    let listener = listener(Duration::from_secs(10), &["mallory"]).await;

    let (local, result) = connect(&listener, None).await;
    assert!(result.is_err(), "no certificate: {result:?}");
    let refused = listener.hook.of(local).await;
    assert_eq!(
        (refused.fingerprint, refused.principal, refused.why),
        (None, None, HandshakeRefusal::NoCertificate)
    );

    let mallory = (
        listener.pki.client_cert("mallory"),
        listener.pki.client_key("mallory"),
    );
    let (local, result) = connect(&listener, Some((&mallory.0, &mallory.1))).await;
    let error = result.expect_err("a revoked certificate");
    assert!(error.to_string().contains("CertificateRevoked"), "{error}");
    let refused = listener.hook.of(local).await;
    let der = CertificateDer::from_pem_file(&mallory.0).unwrap();
    let ids = pki::certificate_ids(der.as_ref()).unwrap();
    assert_eq!(
        refused,
        Refused {
            peer: local,
            fingerprint: Some(pki::fingerprint(der.as_ref())),
            principal: Some("mallory".into()),
            why: HandshakeRefusal::Revoked(pki::RevocationEntry::Key(ids.key)),
        }
    );

    // A certificate of another CA.
    let other = tempfile::tempdir().unwrap();
    let other_pki = pki::PkiDir::new(other.path().join("tls"));
    other_pki.create(&["localhost".into()]).unwrap();
    let stranger = other_pki.issue_client("admin").unwrap();
    let (local, result) = connect(&listener, Some((&stranger.cert, &stranger.key))).await;
    assert!(result.is_err(), "another CA: {result:?}");
    let refused = listener.hook.of(local).await;
    assert_eq!(
        refused.fingerprint.as_deref(),
        Some(stranger.fingerprint.as_str())
    );
    // Its name is the vault CA's, its signature not: refused by the chain check, and the
    // principal it claims is not reported (only the CA's certificates name principals).
    assert!(
        matches!(&refused.why, HandshakeRefusal::Untrusted(why) if why.contains("BadSignature")),
        "{refused:?}"
    );
    assert_eq!(refused.principal, None);

    // Not TLS at all.
    let mut plain = TcpStream::connect(listener.addr).await.unwrap();
    let local = plain.local_addr().unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let refused = listener.hook.of(local).await;
    assert!(
        matches!(refused.why, HandshakeRefusal::Failed(_)),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_silent_client_blocks_no_one_and_is_dropped_at_the_deadline() {
    let deadline = Duration::from_millis(300);
    let mut listener = listener(deadline, &[]).await;
    // Connections that never say a word.
    let mut silent = Vec::new();
    for _ in 0..8 {
        silent.push(TcpStream::connect(listener.addr).await.unwrap());
    }
    // Meanwhile a real client completes its handshake.
    let alice = listener.pki.issue_client("alice").unwrap();
    let (_, client) = connect(&listener, Some((&alice.cert, &alice.key))).await;
    let _client = client.expect("alice's handshake while others are silent");
    tokio::time::timeout(Duration::from_secs(20), listener.incoming.next())
        .await
        .expect("alice's connection is handed on while the silent ones wait")
        .expect("the stream goes on")
        .expect("a TLS stream");
    // The silent ones are closed once the deadline passes, and reported.
    for stream in &mut silent {
        let local = stream.local_addr().unwrap();
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut byte))
            .await
            .expect("the daemon closes a silent connection");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert_eq!(
            listener.hook.of(local).await.why,
            HandshakeRefusal::TimedOut(deadline)
        );
    }
}

#[tokio::test]
async fn dropping_the_stream_closes_the_listener() {
    let listener = listener(Duration::from_secs(10), &[]).await;
    let addr = listener.addr;
    drop(listener.incoming);
    let deadline = Instant::now() + Duration::from_secs(20);
    // The accept loop notices at its next turn; a connection attempt gives it one.
    while TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting on {addr}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_session_from_before_a_revocation_is_not_resumed_after_it() {
    let mut listener = listener(Duration::from_secs(10), &[]).await;
    let carol = listener.pki.issue_client("carol").unwrap();
    let config = client_config(&listener, Some((&carol.cert, &carol.key)));
    let (_, first) = connect_with(&listener, Arc::clone(&config)).await;
    let first = first.expect("carol's first handshake");
    tokio::time::timeout(Duration::from_secs(20), listener.incoming.next())
        .await
        .expect("carol's connection")
        .expect("the stream goes on")
        .expect("a TLS stream");
    drop(first);

    listener.pki.revoke(carol.cert.to_str().unwrap()).unwrap();
    assert!(matches!(
        listener.revocations.poll(),
        vaultd::revocation::Polled::Reloaded(2)
    ));
    // The client offers to resume its session: a resumed session would skip the
    // certificate check, so there is none to resume.
    let (local, second) = connect_with(&listener, config).await;
    let error = second.expect_err("a revoked certificate in a resumed session");
    assert!(error.to_string().contains("CertificateRevoked"), "{error}");
    assert!(matches!(
        listener.hook.of(local).await.why,
        HandshakeRefusal::Revoked(_)
    ));
}
