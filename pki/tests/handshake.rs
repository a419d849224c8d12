//! The files work with rustls (ring provider), the TLS stack under tonic: a server that
//! requires client certificates from the CA accepts an issued one in an in-memory handshake,
//! sees its principal, and refuses a client of another CA.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::created;
use pki::{PkiDir, principal_of};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

fn certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .expect("test setup")
        .map(|c| c.expect("a PEM certificate"))
        .collect()
}

fn key(path: &Path) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_file(path).expect("test setup")
}

fn roots(pki: &PkiDir) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certs(&pki.ca_cert()) {
        roots.add(cert).expect("test setup");
    }
    Arc::new(roots)
}

fn server(pki: &PkiDir) -> ServerConnection {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(pki), provider.clone())
        .build()
        .expect("test setup");
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("test setup")
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&pki.server_cert()), key(&pki.server_key()))
        .expect("test setup");
    ServerConnection::new(Arc::new(config)).expect("test setup")
}

/// A client trusting `trust`'s CA, presenting `principal`'s certificate from `issuer`.
fn client(trust: &PkiDir, issuer: &PkiDir, principal: &str, host: &str) -> ClientConnection {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("test setup")
        .with_root_certificates(roots(trust))
        .with_client_auth_cert(
            certs(&issuer.client_cert(principal)),
            key(&issuer.client_key(principal)),
        )
        .expect("test setup");
    let name = ServerName::try_from(host.to_owned()).expect("test setup");
    ClientConnection::new(Arc::new(config), name).expect("test setup")
}

/// Moves TLS records both ways until both sides finish the handshake or one fails.
fn handshake(client: &mut ClientConnection, server: &mut ServerConnection) -> Result<(), String> {
    for _ in 0..20 {
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf).expect("test setup");
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            server.read_tls(&mut rd).expect("test setup");
        }
        server
            .process_new_packets()
            .map_err(|e| format!("server: {e}"))?;
        let mut buf = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buf).expect("test setup");
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            client.read_tls(&mut rd).expect("test setup");
        }
        client
            .process_new_packets()
            .map_err(|e| format!("client: {e}"))?;
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
    }
    Err("handshake did not finish".into())
}

#[test]
fn an_issued_client_certificate_passes_mutual_tls_and_names_its_principal() {
    let (_tmp, pki) = created();
    pki.issue_client("alice").unwrap();
    for host in ["localhost", "127.0.0.1", "::1"] {
        let mut server = server(&pki);
        let mut client = client(&pki, &pki, "alice", host);
        handshake(&mut client, &mut server).unwrap();
        let peer = server
            .peer_certificates()
            .expect("the client presented a certificate");
        assert_eq!(principal_of(&peer[0]).unwrap(), "alice");
        let issued = common::der_of(&pki.client_cert("alice"));
        assert_eq!(pki::fingerprint(&peer[0]), pki::fingerprint(&issued));
    }
}

#[test]
fn a_client_of_another_ca_is_refused() {
    let (_tmp, pki) = created();
    let (_tmp2, other) = created();
    other.issue_client("mallory").unwrap();
    let mut server = server(&pki);
    let mut client = client(&pki, &other, "mallory", "localhost");
    let err = handshake(&mut client, &mut server).unwrap_err();
    assert!(err.starts_with("server:"), "{err}");
}

#[test]
fn a_host_not_in_the_server_certificate_is_refused_by_the_client() {
    let (_tmp, pki) = created();
    pki.issue_client("alice").unwrap();
    let mut server = server(&pki);
    let mut client = client(&pki, &pki, "alice", "vault.example.org");
    let err = handshake(&mut client, &mut server).unwrap_err();
    assert!(err.starts_with("client:"), "{err}");
}

#[test]
fn a_renewed_server_certificate_is_new_and_serves_its_new_hosts_only() {
    let (_tmp, pki) = created();
    pki.issue_client("alice").unwrap();
    let old_cert = common::der_of(&pki.server_cert());
    pki.renew_server(&["vault.example.org".to_string()])
        .unwrap();
    assert_ne!(common::der_of(&pki.server_cert()), old_cert);
    assert_eq!(common::mode(&pki.server_key()), 0o600);

    let (mut srv, mut cli) = (
        server(&pki),
        client(&pki, &pki, "alice", "vault.example.org"),
    );
    handshake(&mut cli, &mut srv).unwrap();
    // The old names are gone with the old certificate.
    let (mut srv, mut cli) = (server(&pki), client(&pki, &pki, "alice", "localhost"));
    let err = handshake(&mut cli, &mut srv).unwrap_err();
    assert!(err.starts_with("client:"), "{err}");
}
