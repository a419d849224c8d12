//! The real vaultctl in remote mode against stand-ins for vaultd on loopback: a port that
//! accepts TCP and never answers the TLS handshake, a closed port, and a gRPC server that
//! answers every call UNAVAILABLE or never answers. Nothing here waits without end: each run
//! is killed (and the test fails) if it outlives a minute.

mod common;

use std::convert::Infallible;
use std::io::Read as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Sandbox;
use tonic::body::Body;
use tonic::codegen::{Context, Future, Pin, Poll, Service, http};
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};

/// Longer than any run here may take; a run still going then has hung.
const HUNG: Duration = Duration::from_secs(60);

/// What one vaultctl run did, and how long it took.
struct Ran {
    code: Option<i32>,
    stderr: String,
    took: Duration,
}

/// A PKI made by `vaultctl pki`: a CA, a server certificate for 127.0.0.1, a client.
struct Pki {
    sb: Sandbox,
    dir: PathBuf,
}

impl Pki {
    fn new() -> Self {
        let sb = Sandbox::new();
        let dir = sb.path("tls");
        let dir_s = dir.to_str().expect("utf-8 path").to_owned();
        sb.ok(&["pki", "init", "--pki-dir", &dir_s], b"");
        sb.ok(
            &["pki", "issue", "--principal", "admin", "--pki-dir", &dir_s],
            b"",
        );
        Pki { sb, dir }
    }

    /// Runs vaultctl against `addr` with `args` (and `env`), feeding `stdin`.
    fn run(&self, addr: SocketAddr, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Ran {
        let url = format!("https://{addr}");
        let mut remote = vec!["--addr", &url];
        let files: Vec<String> = ["ca.pem", "clients/admin.pem", "clients/admin.key"]
            .iter()
            .map(|f| self.dir.join(f).display().to_string())
            .collect();
        remote.extend(["--cacert", &files[0]]);
        remote.extend(["--client-cert", &files[1]]);
        remote.extend(["--client-key", &files[2]]);
        remote.extend(args);
        let mut cmd = self.sb.cmd(&remote);
        cmd.envs(env.iter().copied());
        run_bounded(cmd, stdin)
    }

    fn server_identity(&self) -> Identity {
        let read = |f: &str| std::fs::read(self.dir.join(f)).expect("read the server's files");
        Identity::from_pem(read("server.pem"), read("server.key"))
    }
}

/// Runs `cmd`, killing it if it outlives [`HUNG`].
fn run_bounded(mut cmd: Command, stdin: &[u8]) -> Ran {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vaultctl");
    {
        use std::io::Write as _;
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin).expect("write stdin");
    }
    let mut stderr_pipe = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stderr_pipe.read_to_string(&mut text).expect("read stderr");
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for vaultctl") {
            break status;
        }
        if start.elapsed() > HUNG {
            child.kill().expect("kill vaultctl");
            child.wait().expect("reap vaultctl");
            panic!("vaultctl hung for {HUNG:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = start.elapsed();
    let stderr = reader.join().expect("stderr reader");
    assert!(!stderr.contains("panicked"), "vaultctl panicked: {stderr}");
    Ran {
        code: status.code(),
        stderr,
        took,
    }
}

/// A loopback port that accepts connections and never says a word on them.
fn silent_listener() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    addr
}

#[test]
fn a_listener_that_never_answers_the_handshake_fails_within_the_connect_timeout() {
    let pki = Pki::new();
    let addr = silent_listener();

    // The default connect timeout: 5 s.
    let ran = pki.run(addr, &["status"], &[], b"");
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains(&format!("cannot reach vaultd at https://{addr}: "))
            && ran.stderr.contains("within 5s"),
        "{}",
        ran.stderr
    );
    assert!(ran.took >= Duration::from_secs(5), "took {:?}", ran.took);
    assert!(ran.took < Duration::from_secs(30), "took {:?}", ran.took);

    // Shorter, by flag and by variable.
    for (args, env) in [
        (&["--connect-timeout", "1s", "list"][..], &[][..]),
        (&["list"][..], &[("VAULTCTL_CONNECT_TIMEOUT", "300ms")][..]),
    ] {
        let ran = pki.run(addr, args, env, b"");
        assert_eq!(ran.code, Some(1), "{}", ran.stderr);
        assert!(
            ran.stderr.contains(&format!("https://{addr}")),
            "{}",
            ran.stderr
        );
        assert!(ran.took < Duration::from_secs(5), "took {:?}", ran.took);
    }
}

#[test]
fn a_closed_port_fails_at_once_naming_the_address() {
    let pki = Pki::new();
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.local_addr().expect("local addr")
    };
    let ran = pki.run(addr, &["status"], &[], b"");
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains(&format!("cannot reach vaultd at https://{addr}: "))
            && ran.stderr.to_lowercase().contains("refused"),
        "{}",
        ran.stderr
    );
    // Refused is an answer: no waiting for the connect timeout.
    assert!(ran.took < Duration::from_secs(4), "took {:?}", ran.took);
}

#[test]
fn bad_timeouts_and_retries_are_usage_errors() {
    let pki = Pki::new();
    let addr = silent_listener();
    for args in [
        &["--connect-timeout", "0s", "status"][..],
        &["--request-timeout", "soon", "status"][..],
        &["--retries", "11", "status"][..],
    ] {
        let ran = pki.run(addr, args, &[], b"");
        assert_eq!(ran.code, Some(2), "{args:?}: {}", ran.stderr);
    }
}

/// How the stand-in daemon answers.
#[derive(Clone, Copy)]
enum Answer {
    /// UNAVAILABLE to every call.
    Unavailable,
    /// Never.
    Never,
}

/// A gRPC server in vaultd's name that answers every method the same way and records the
/// paths it was called on.
#[derive(Clone)]
struct StandIn {
    answer: Answer,
    calls: Arc<Mutex<Vec<String>>>,
}

impl NamedService for StandIn {
    const NAME: &'static str = "vault.v1.VaultService";
}

impl Service<http::Request<Body>> for StandIn {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        self.calls
            .lock()
            .expect("calls")
            .push(request.uri().path().to_owned());
        let answer = self.answer;
        Box::pin(async move {
            match answer {
                Answer::Unavailable => {
                    Ok(tonic::Status::unavailable("the stand-in is unavailable").into_http())
                }
                Answer::Never => std::future::pending().await,
            }
        })
    }
}

/// A running stand-in: its address and the calls it got.
struct Daemon {
    addr: SocketAddr,
    calls: Arc<Mutex<Vec<String>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Daemon {
    fn start(pki: &Pki, answer: Answer) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let calls = Arc::new(Mutex::new(Vec::new()));
        let service = StandIn {
            answer,
            calls: Arc::clone(&calls),
        };
        let tls = ServerTlsConfig::new().identity(pki.server_identity());
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            Server::builder()
                .tls_config(tls)
                .expect("server TLS")
                .add_service(service)
                .serve_with_incoming(TcpIncoming::from(listener))
                .await
                .expect("serve");
        });
        Daemon {
            addr,
            calls,
            _runtime: runtime,
        }
    }

    /// How many calls of `method` (e.g. `List`) arrived; takes them.
    fn take(&self, method: &str) -> usize {
        let mut calls = self.calls.lock().expect("calls");
        let path = format!("/vault.v1.VaultService/{method}");
        let n = calls.iter().filter(|p| **p == path).count();
        calls.clear();
        n
    }
}

#[test]
fn reads_are_retried_a_bounded_number_of_times_and_writes_never() {
    let pki = Pki::new();
    let daemon = Daemon::start(&pki, Answer::Unavailable);
    let addr = daemon.addr;

    // The default: 2 retries, so 3 tries.
    let ran = pki.run(addr, &["list"], &[], b"");
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("UNAVAILABLE") && ran.stderr.contains("(tried 3 times)"),
        "{}",
        ran.stderr
    );
    assert_eq!(
        ran.stderr.matches("trying again").count(),
        2,
        "{}",
        ran.stderr
    );
    assert_eq!(daemon.take("List"), 3);

    for (args, env, tries) in [
        (&["--retries", "4", "get", "global", "k"][..], &[][..], 5),
        (&["status"][..], &[("VAULTCTL_RETRIES", "0")][..], 1),
    ] {
        let ran = pki.run(addr, args, env, b"");
        assert_eq!(ran.code, Some(1), "{}", ran.stderr);
        let method = if args.contains(&"get") {
            "Get"
        } else {
            "Status"
        };
        assert_eq!(daemon.take(method), tries, "{args:?} {env:?}");
    }

    // A Put is sent once, whatever --retries says, and the error says why.
    let ran = pki.run(
        addr,
        &["--retries", "5", "set", "global", "k"],
        &[],
        b"value",
    );
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("not sent again") && !ran.stderr.contains("trying again"),
        "{}",
        ran.stderr
    );
    assert_eq!(daemon.take("Put"), 1);
}

#[test]
fn a_call_never_answered_fails_at_the_request_timeout() {
    let pki = Pki::new();
    let daemon = Daemon::start(&pki, Answer::Never);
    let ran = pki.run(
        daemon.addr,
        &["get", "global", "k"],
        &[("VAULTCTL_REQUEST_TIMEOUT", "1s")],
        b"",
    );
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("DEADLINE_EXCEEDED")
            && ran.stderr.contains(&format!(
                "no answer from vaultd at https://{} within 1s",
                daemon.addr
            )),
        "{}",
        ran.stderr
    );
    // DEADLINE_EXCEEDED is not UNAVAILABLE: not sent again.
    assert_eq!(daemon.take("Get"), 1);
    assert!(ran.took < Duration::from_secs(20), "took {:?}", ran.took);
}
