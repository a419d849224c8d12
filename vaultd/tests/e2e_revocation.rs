//! End to end: revocation that the holder of a certificate cannot sidestep, enforced in the
//! TLS handshake and failing closed; the files it depends on; principals from the SAN URI.
//!
//! Every test drives the real vaultd (and vaultctl) over mutual TLS on loopback.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::certs::{
    Subject, hex, ids_of, new_key, raw_tls_attempt, re_encoded_copy, sign_with_vault_ca,
};
use common::{
    Daemon, Sandbox, assert_handshake_refused, client_on, code, handshake_outcome, vaultctl,
};
use proto::v1 as pb;
use tonic::Code;

const ACL: &str = r#"
[[acl]]
principal = "admin"
scopes = ["*"]
operations = ["read", "write", "list", "admin"]

[[acl]]
principal = "*"
scopes = ["global"]
operations = ["read"]
"#;

/// How long a change to the revocation list may take to be in force: the daemon looks every
/// 500 ms; the margin is for a loaded machine.
const RELOAD_DEADLINE: Duration = Duration::from_secs(10);

fn started(sandbox: &Sandbox) -> Daemon {
    sandbox.daemon().config(ACL).start()
}

fn get_motd() -> pb::GetRequest {
    pb::GetRequest {
        scope: "global".into(),
        key: "motd".into(),
        version: None,
    }
}

/// Whether a client with this certificate and key can read global/motd now.
async fn reads(daemon: &Daemon, cert: &Path, key: &Path) -> Result<Code, String> {
    let channel = daemon
        .connect(daemon.tls_with(cert, key))
        .await
        .map_err(|e| format!("{e:?}"))?;
    let result = client_on(channel).get(get_motd()).await;
    match &result {
        Err(status) if std::error::Error::source(status).is_some() => Err(format!("{status:?}")),
        _ => Ok(code(&result)),
    }
}

/// Waits until the handshake refuses `cert`, for at most [`RELOAD_DEADLINE`].
async fn until_refused(daemon: &Daemon, cert: &Path, key: &Path, who: &str) {
    let deadline = Instant::now() + RELOAD_DEADLINE;
    while handshake_outcome(daemon, daemon.tls_with(cert, key))
        .await
        .is_ok()
    {
        assert!(
            Instant::now() < deadline,
            "{who} still let in {RELOAD_DEADLINE:?} after the revocation"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `vaultctl pki <args> --pki-dir <the sandbox's TLS dir>`; panics unless it succeeds.
fn vaultctl_pki(sandbox: &Sandbox, args: &[&str]) -> String {
    let out = Command::new(vaultctl())
        .arg("pki")
        .args(args)
        .arg("--pki-dir")
        .arg(&sandbox.pki().dir)
        .output()
        .expect("run vaultctl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "vaultctl pki {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Waits until the daemon's stderr holds `needle` more than `before` times (the daemon logs
/// on its own time: a refused client may see the refusal before it is written down).
async fn until_logged(daemon: &Daemon, needle: &str, before: usize) {
    let deadline = Instant::now() + RELOAD_DEADLINE;
    while daemon.stderr().matches(needle).count() <= before {
        assert!(
            Instant::now() < deadline,
            "no new {needle:?} in the daemon's log: {}",
            daemon.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn daemon_admin_cert(daemon: &Daemon) -> std::path::PathBuf {
    pki::PkiDir::new(daemon.dev_dir.join("tls")).client_cert("admin")
}

fn daemon_admin_key(daemon: &Daemon) -> std::path::PathBuf {
    pki::PkiDir::new(daemon.dev_dir.join("tls")).client_key("admin")
}

/// Opens a health Watch stream on `channel` and reads its first message; on failure the
/// code and whether it was a transport error (the connection failed).
async fn watch_health(channel: tonic::transport::Channel) -> Result<(), (Code, bool)> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let failed = |status: tonic::Status| {
        let transport = std::error::Error::source(&status).is_some();
        (status.code(), transport)
    };
    let mut stream = HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(failed)?
        .into_inner();
    match stream.message().await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err((Code::Unknown, false)),
        Err(status) => Err(failed(status)),
    }
}

async fn put_motd(daemon: &Daemon) {
    daemon
        .client("admin")
        .await
        .put(pb::PutRequest {
            scope: "global".into(),
            key: "motd".into(),
            value: b"hello".to_vec(),
            expected_version: None,
        })
        .await
        .expect("admin writes global/motd");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_encoded_copy_of_a_revoked_certificate_is_refused_in_the_handshake() {
    let sandbox = Sandbox::new();
    let daemon = started(&sandbox);
    put_motd(&daemon).await;
    let carol = sandbox.pki().issue_client("carol").expect("issue carol");
    let copy = re_encoded_copy(&carol.cert, &sandbox.root().join("carol-copy.pem"));
    let copy_fp = pki::fingerprint(&common::certs::der_of(&copy));
    assert_ne!(copy_fp, carol.fingerprint);
    // The copy is as good as the original: the daemon serves it.
    assert_eq!(reads(&daemon, &copy, &carol.key).await, Ok(Code::Ok));
    // A connection opened before the revocation, where a health Watch works.
    let early = daemon
        .connect(daemon.tls_with(&copy, &carol.key))
        .await
        .expect("connect with the copy");
    assert_eq!(watch_health(early.clone()).await, Ok(()));

    // Revoked by the fingerprint `issue` printed, as an operator would.
    vaultctl_pki(&sandbox, &["revoke", &carol.fingerprint]);
    until_refused(&daemon, &carol.cert, &carol.key, "carol").await;

    let refused = assert_handshake_refused(
        &sandbox,
        &daemon,
        daemon.tls_with(&copy, &carol.key),
        "carol's re-encoded certificate",
    )
    .await;
    assert!(!refused.is_empty());
    // What the client is told: the TLS alert certificate_revoked.
    let ca = sandbox.pki().ca_cert();
    let alert = raw_tls_attempt(daemon.addr, &ca, &copy, &carol.key).await;
    assert!(
        alert
            .as_ref()
            .is_err_and(|e| e.contains("CertificateRevoked")),
        "{alert:?}"
    );
    assert_eq!(
        raw_tls_attempt(
            daemon.addr,
            &ca,
            &daemon_admin_cert(&daemon),
            &daemon_admin_key(&daemon)
        )
        .await,
        Ok(()),
        "the raw client works with a good certificate"
    );
    // No health Watch: no new connection for it, and none on the old one.
    if let Ok(channel) = daemon.connect(daemon.tls_with(&copy, &carol.key)).await {
        let watched = watch_health(channel).await;
        assert!(
            matches!(&watched, Err((_, true))),
            "a Watch on a new connection: {watched:?}"
        );
    }
    assert_eq!(
        watch_health(early).await,
        Err((Code::Unauthenticated, false))
    );
    // The refusal went through the hook: peer, fingerprint, principal and why.
    let deadline = Instant::now() + RELOAD_DEADLINE;
    loop {
        let log = daemon.stderr();
        let reported = log.lines().any(|line| {
            line.contains("TLS handshake refused: peer 127.0.0.1:")
                && line.contains(&copy_fp)
                && line.contains("principal carol")
                && line.contains("revoked (spki-sha256:")
        });
        if reported {
            break;
        }
        assert!(Instant::now() < deadline, "{log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And it is a denial in the audit log, under the certificate and its principal (the
    // record is written after the log line, by the denial recorder): a record of its own, or
    // counted in the summary of its window when earlier refusals from this address spent
    // the window's budget (a summary names the address without a port).
    let audited = || {
        sandbox.audit_records().into_iter().any(|r| {
            r.op == "handshake"
                && r.decision == vault::audit::Decision::Deny
                && r.cert.as_deref() == Some(copy_fp.as_str())
                && r.principal == "carol"
                && r.peer
                    .as_deref()
                    .is_some_and(|p| p == "127.0.0.1" || p.starts_with("127.0.0.1:"))
                && r.reason
                    .as_deref()
                    .is_some_and(|why| why.contains("revoked"))
        })
    };
    let deadline = Instant::now() + RELOAD_DEADLINE;
    while !audited() {
        assert!(
            Instant::now() < deadline,
            "the refused handshake is not in the audit log"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nobody else is affected.
    let admin = daemon.tls_for("admin");
    assert_eq!(handshake_outcome(&daemon, admin).await, Ok(Code::Ok));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_certificate_for_a_revoked_key_is_refused() {
    let sandbox = Sandbox::new();
    let daemon = started(&sandbox);
    put_motd(&daemon).await;
    let pki = sandbox.pki();
    let dave = pki.issue_client("dave").expect("issue dave");
    let renewed = sandbox.root().join("dave-renewed.pem");
    let subject = Subject {
        cn: Some("dave"),
        uris: &["urn:vault:principal:dave"],
        dns: &[],
        serial: &[0x5e, 0x01, 0x02],
    };
    sign_with_vault_ca(&pki, &dave.key, &subject, &renewed);
    assert_eq!(ids_of(&renewed).key, ids_of(&dave.cert).key);
    assert_ne!(ids_of(&renewed).serial, ids_of(&dave.cert).serial);
    assert_eq!(reads(&daemon, &renewed, &dave.key).await, Ok(Code::Ok));

    // Revoking the certificate file revokes its key: the renewal goes with it.
    let out = vaultctl_pki(&sandbox, &["revoke", dave.cert.to_str().expect("utf-8")]);
    assert!(out.contains("the certificate of dave"), "{out}");
    until_refused(&daemon, &dave.cert, &dave.key, "dave").await;
    assert_handshake_refused(
        &sandbox,
        &daemon,
        daemon.tls_with(&renewed, &dave.key),
        "a new certificate for dave's revoked key",
    )
    .await;
    // A new key for dave is a new credential: it is let in.
    let new_key = new_key(&sandbox.root().join("dave-new.key"));
    let fresh = sandbox.root().join("dave-new.pem");
    let subject = Subject {
        serial: &[0x5e, 0x01, 0x03],
        ..subject
    };
    sign_with_vault_ca(&pki, &new_key, &subject, &fresh);
    assert_eq!(reads(&daemon, &fresh, &new_key).await, Ok(Code::Ok));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_by_serial_and_by_key_hash_with_vaultctl_takes_effect_while_running() {
    let sandbox = Sandbox::new();
    let daemon = started(&sandbox);
    put_motd(&daemon).await;
    let pki = sandbox.pki();
    let erin = pki.issue_client("erin").expect("issue erin");
    let frank = pki.issue_client("frank").expect("issue frank");
    // Connections opened before the revocations.
    let mut erin_early = client_on(
        daemon
            .connect(daemon.tls_with(&erin.cert, &erin.key))
            .await
            .expect("erin connects"),
    );
    erin_early.get(get_motd()).await.expect("erin reads");

    let serial = ids_of(&erin.cert).serial.as_str().to_uppercase();
    let out = vaultctl_pki(&sandbox, &["revoke", "--serial", &serial]);
    assert!(out.contains("the certificate of erin"), "{out}");
    let started_at = Instant::now();
    until_refused(&daemon, &erin.cert, &erin.key, "erin (by serial)").await;
    // The gates refuse it per request on the connection opened before, too.
    let deadline = Instant::now() + RELOAD_DEADLINE;
    loop {
        let result = erin_early.get(get_motd()).await;
        if code(&result) == Code::Unauthenticated {
            break;
        }
        assert_eq!(code(&result), Code::Ok, "{result:?}");
        assert!(
            Instant::now() < deadline,
            "erin's old connection still served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A copy of erin's certificate is refused as well: a serial names every encoding.
    let copy = re_encoded_copy(&erin.cert, &sandbox.root().join("erin-copy.pem"));
    assert_handshake_refused(
        &sandbox,
        &daemon,
        daemon.tls_with(&copy, &erin.key),
        "erin copy",
    )
    .await;

    let key_hash = hex(&ids_of(&frank.cert).key);
    vaultctl_pki(&sandbox, &["revoke", "--key-hash", &key_hash]);
    until_refused(&daemon, &frank.cert, &frank.key, "frank (by key hash)").await;
    assert!(
        started_at.elapsed() < 2 * RELOAD_DEADLINE,
        "both revocations took {:?}",
        started_at.elapsed()
    );
    let admin = daemon.tls_for("admin");
    assert_eq!(handshake_outcome(&daemon, admin).await, Ok(Code::Ok));
    assert!(daemon.stderr().contains("reloaded"), "{}", daemon.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_emptied_or_garbled_list_unrevokes_nobody() {
    let sandbox = Sandbox::new();
    let daemon = started(&sandbox);
    put_motd(&daemon).await;
    let pki = sandbox.pki();
    let gina = pki.issue_client("gina").expect("issue gina");
    vaultctl_pki(&sandbox, &["revoke", gina.cert.to_str().expect("utf-8")]);
    until_refused(&daemon, &gina.cert, &gina.key, "gina").await;
    let good = std::fs::read(pki.revoked()).expect("read the list");
    let list = pki.revoked();

    let complaint = "revocation list not reloaded";
    let breakages: [(&str, &dyn Fn()); 5] = [
        ("deleted", &|| std::fs::remove_file(&list).expect("delete")),
        ("emptied", &|| std::fs::write(&list, "").expect("empty")),
        ("comments only", &|| {
            std::fs::write(&list, "# nothing revoked\n").expect("write")
        }),
        ("garbage", &|| {
            std::fs::write(&list, "spki-sha256:not hex\n").expect("garble")
        }),
        ("not UTF-8", &|| {
            std::fs::write(&list, b"\xff\xfe\x00").expect("write")
        }),
    ];
    for (what, break_it) in breakages {
        let before = daemon.stderr().matches(complaint).count();
        break_it();
        // The daemon has looked at the broken list once it complains about it.
        until_logged(&daemon, complaint, before).await;
        assert_handshake_refused(
            &sandbox,
            &daemon,
            daemon.tls_with(&gina.cert, &gina.key),
            &format!("gina, with the list {what}"),
        )
        .await;
        std::fs::write(&list, &good).expect("restore the list");
        std::fs::set_permissions(&list, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }

    // A list made writable by others is not read either.
    let before = daemon.stderr().matches(complaint).count();
    std::fs::write(&list, "# nothing revoked\n").expect("write");
    std::fs::set_permissions(&list, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    until_logged(&daemon, complaint, before).await;
    assert!(
        daemon.stderr().contains("chmod go-w"),
        "{}",
        daemon.stderr()
    );
    assert_handshake_refused(
        &sandbox,
        &daemon,
        daemon.tls_with(&gina.cert, &gina.key),
        "gina, with a world-writable list",
    )
    .await;

    // A good change is still taken: another revocation on top of the restored list.
    std::fs::write(&list, &good).expect("restore the list");
    std::fs::set_permissions(&list, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let hal = pki.issue_client("hal").expect("issue hal");
    assert_eq!(reads(&daemon, &hal.cert, &hal.key).await, Ok(Code::Ok));
    vaultctl_pki(&sandbox, &["revoke", hal.cert.to_str().expect("utf-8")]);
    until_refused(&daemon, &hal.cert, &hal.key, "hal").await;
    assert_handshake_refused(
        &sandbox,
        &daemon,
        daemon.tls_with(&gina.cert, &gina.key),
        "gina, after the list was repaired",
    )
    .await;
}

#[test]
fn the_daemon_refuses_to_start_on_trust_files_others_can_write() {
    let sandbox = Sandbox::new();
    // The first start creates the development directory.
    assert!(sandbox.start().terminate().success());
    let pki = sandbox.pki();
    let data = sandbox.dev_dir().join("data");
    for (path, mode) in [
        (pki.ca_cert(), 0o620),
        (pki.revoked(), 0o602),
        (pki.dir.clone(), 0o770),
        (data.clone(), 0o707),
    ] {
        let old = std::fs::metadata(&path).expect("stat").permissions();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let Err(err) = sandbox.daemon().try_start() else {
            panic!("vaultd started with {} of mode {mode:o}", path.display())
        };
        let expected = format!(
            "{} is writable by group or others (mode {mode:04o})",
            path.display()
        );
        assert!(err.contains(&expected), "{err}");
        assert!(
            err.contains(&format!("chmod go-w {}", path.display())),
            "{err}"
        );
        std::fs::set_permissions(&path, old).expect("chmod back");
    }

    // A malformed list stops the start, naming the line; so does a missing one.
    let good = std::fs::read(pki.revoked()).expect("read the list");
    std::fs::write(pki.revoked(), "# one comment\nspki-sha256:XYZ\n").expect("write");
    let Err(err) = sandbox.daemon().try_start() else {
        panic!("vaultd started with a malformed revocation list")
    };
    assert!(err.contains("revoked.txt:2:"), "{err}");
    std::fs::remove_file(pki.revoked()).expect("delete the list");
    let Err(err) = sandbox.daemon().try_start() else {
        panic!("vaultd started without a revocation list")
    };
    assert!(
        err.contains("revoked.txt is missing") && err.contains("install -m 600"),
        "{err}"
    );
    std::fs::write(pki.revoked(), good).expect("restore");
    std::fs::set_permissions(pki.revoked(), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert!(sandbox.start().terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn principals_come_from_the_san_uri_only() {
    let sandbox = Sandbox::new();
    let daemon = started(&sandbox);
    put_motd(&daemon).await;
    let pki = sandbox.pki();
    let key = new_key(&sandbox.root().join("odd.key"));

    // A valid admin CN does not make a certificate whose SAN names no principal an admin.
    let dns_only = sandbox.root().join("dns-only.pem");
    let subject = Subject {
        cn: Some("admin"),
        uris: &[],
        dns: &["localhost"],
        serial: &[0x0d, 0x01],
    };
    sign_with_vault_ca(&pki, &key, &subject, &dns_only);
    assert_handshake_refused(
        &sandbox,
        &daemon,
        daemon.tls_with(&dns_only, &key),
        "DNS-only SAN",
    )
    .await;
    until_logged(&daemon, "names no principal", 0).await;

    // The URN prefix in any case names the principal.
    let upper = sandbox.root().join("upper.pem");
    let subject = Subject {
        cn: Some("admin"),
        uris: &["URN:VAULT:PRINCIPAL:ci-bot"],
        dns: &[],
        serial: &[0x0d, 0x02],
    };
    sign_with_vault_ca(&pki, &key, &subject, &upper);
    assert_eq!(reads(&daemon, &upper, &key).await, Ok(Code::Ok));
    let records = sandbox.audit_records();
    let last = records.last().expect("an audit record");
    assert_eq!(
        (last.principal.as_str(), last.op.as_str()),
        ("ci-bot", "get")
    );

    // Reserved and hidden ids are refused in the handshake.
    for (id, serial) in [("-", 3u8), (".hidden", 4)] {
        let cert = sandbox.root().join(format!("bad-{serial}.pem"));
        let uri = format!("urn:vault:principal:{id}");
        let subject = Subject {
            cn: None,
            uris: &[uri.as_str()],
            dns: &[],
            serial: &[0x0d, serial],
        };
        sign_with_vault_ca(&pki, &key, &subject, &cert);
        assert_handshake_refused(&sandbox, &daemon, daemon.tls_with(&cert, &key), id).await;
    }
}
