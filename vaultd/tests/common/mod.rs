//! Harness of the end-to-end tests: the real `vaultd` binary in `--dev` mode on loopback,
//! clients over mutual TLS (the generated tonic client), and the real `vaultctl` binary.
//!
//! Readiness is the daemon's own "vaultd listening on https://ADDR" line, never a sleep.
//! A `Daemon` that is dropped gets SIGTERM and is waited for (SIGKILL after a deadline).
#![allow(dead_code)]

pub mod certs;
pub mod http;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

use proto::v1::vault_service_client::VaultServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use vault::audit::{AuditKey, AuditRecord, VerifyReport};

/// The generated client on a mutual-TLS channel.
pub type Client = VaultServiceClient<Channel>;

/// How long a daemon may take to exit after a signal before it is killed.
const EXIT_DEADLINE: Duration = Duration::from_secs(20);
/// Connect and per-call deadline of the test clients: a hang fails the test instead of
/// stalling the suite.
const CALL_DEADLINE: Duration = Duration::from_secs(20);

/// A temporary directory holding one development vault (`dev/`), the daemons' stderr logs
/// and configuration files. Outlives the daemons started on it, so a test can restart one.
pub struct Sandbox {
    root: tempfile::TempDir,
    started: AtomicUsize,
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox {
            root: tempfile::tempdir().expect("tempdir"),
            started: AtomicUsize::new(0),
        }
    }

    /// A sandbox on a memory file system (`/dev/shm`) where there is one, so that fsync
    /// costs nothing: for tests about concurrency rather than durability, which would
    /// otherwise measure the disk. Falls back to the default temporary directory.
    pub fn in_memory() -> Self {
        let shm = Path::new("/dev/shm");
        let root = if shm.is_dir() {
            tempfile::tempdir_in(shm).or_else(|_| tempfile::tempdir())
        } else {
            tempfile::tempdir()
        };
        Sandbox {
            root: root.expect("tempdir"),
            started: AtomicUsize::new(0),
        }
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The `--dev-dir` of the daemons started here.
    pub fn dev_dir(&self) -> PathBuf {
        self.root.path().join("dev")
    }

    /// The audit log of the development vault.
    pub fn audit_log(&self) -> PathBuf {
        self.dev_dir().join("data").join("audit.jsonl")
    }

    /// The vault directory of the development vault.
    pub fn vault_dir(&self) -> PathBuf {
        self.dev_dir().join("data")
    }

    /// The development vault, opened with its file KEK (as `vaultctl --vault` would).
    pub fn open_vault(&self) -> vault::Vault {
        let dir = self.vault_dir();
        let keks = vault::Kek::build_all(&dir, &[]).expect("the development KEK");
        vault::Vault::open(&dir, None, keks).expect("open the development vault")
    }

    /// The development vault's audit key.
    pub fn audit_key(&self) -> AuditKey {
        self.open_vault().audit_key().expect("the audit key")
    }

    /// Verifies the audit log with the vault's key and anchor.
    pub fn verify_audit(&self) -> Result<VerifyReport, vault::Error> {
        let vault = self.open_vault();
        vault::audit::verify(
            &self.audit_log(),
            &vault.audit_key()?,
            &vault.audit_anchor()?,
        )
    }

    /// The TLS directory of the development vault.
    pub fn pki(&self) -> pki::PkiDir {
        pki::PkiDir::new(self.dev_dir().join("tls"))
    }

    /// Writes a configuration file (mode 0600, as the daemon demands) and returns its path.
    pub fn write_config(&self, text: &str) -> PathBuf {
        let path = self.root.path().join("vaultd.toml");
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .expect("create the configuration file");
        file.write_all(text.as_bytes())
            .expect("write the configuration");
        path
    }

    /// A daemon with default settings.
    pub fn start(&self) -> Daemon {
        self.daemon().start()
    }

    /// Settings for a daemon on this sandbox's development vault.
    pub fn daemon(&self) -> DaemonBuilder<'_> {
        DaemonBuilder {
            sandbox: self,
            env: Vec::new(),
            config: None,
            args: Vec::new(),
        }
    }

    /// Every record of the audit log, oldest first (parsed, not verified).
    pub fn audit_records(&self) -> Vec<AuditRecord> {
        vault::audit::tail(&self.audit_log(), 1_000_000).expect("read the audit log")
    }
}

/// Options of a daemon to start.
pub struct DaemonBuilder<'a> {
    sandbox: &'a Sandbox,
    env: Vec<(String, String)>,
    config: Option<PathBuf>,
    args: Vec<String>,
}

impl DaemonBuilder<'_> {
    /// Sets an environment variable of the daemon (e.g. `VAULTD_BURST`).
    pub fn env(mut self, name: &str, value: impl ToString) -> Self {
        self.env.push((name.to_owned(), value.to_string()));
        self
    }

    /// Passes another command-line argument (e.g. `--new-audit-log`).
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    /// Passes a configuration file with this text (`--config`).
    pub fn config(mut self, text: &str) -> Self {
        self.config = Some(self.sandbox.write_config(text));
        self
    }

    /// Starts the daemon and waits for its "listening" line; panics with its stderr if it
    /// exits instead.
    pub fn start(self) -> Daemon {
        self.try_start()
            .unwrap_or_else(|failure| panic!("{failure}"))
    }

    /// Starts the daemon; `Err` holds its exit status and stderr if it exits before
    /// listening.
    pub fn try_start(self) -> Result<Daemon, String> {
        let n = self.sandbox.started.fetch_add(1, Ordering::Relaxed);
        let stderr_path = self.sandbox.root().join(format!("vaultd-{n}.stderr"));
        let stderr = File::create(&stderr_path).expect("create the daemon's stderr file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_vaultd"));
        command
            .arg("--dev")
            .arg("--dev-dir")
            .arg(self.sandbox.dev_dir())
            .args(["--listen", "127.0.0.1:0"]);
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        command.args(&self.args);
        // Nothing from the test's own environment changes the daemon's settings.
        command.env_remove("VAULTD_CONFIG");
        for (var, _) in vaultd::config::ENV_VARS {
            command.env_remove(var);
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command.stderr(stderr);
        spawn_listening(command, stderr_path, self.sandbox.dev_dir(), true)
    }
}

/// Spawns a vaultd `command` (its stderr already set) and waits for its "listening" line
/// (and, with `dev_block`, the instructions `--dev` prints after it); `dev_dir` is where the
/// TLS material of its clients is (`<dev_dir>/tls`). `Err` holds its exit status and stderr
/// if it exits before listening.
pub fn spawn_listening(
    mut command: Command,
    stderr_path: PathBuf,
    dev_dir: PathBuf,
    dev_block: bool,
) -> Result<Daemon, String> {
    command.stdin(Stdio::null()).stdout(Stdio::piped());
    let mut child = command.spawn().expect("spawn vaultd");
    let stdout = child.stdout.take().expect("the daemon's stdout");
    let mut lines = BufReader::new(stdout);
    let mut printed = Vec::new();
    let mut addr = None;
    loop {
        let mut line = String::new();
        let read = lines
            .read_line(&mut line)
            .expect("read the daemon's stdout");
        if read == 0 {
            let status = child.wait().expect("wait for vaultd");
            let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            return Err(format!(
                "vaultd exited before it listened ({status}); printed {printed:?}; stderr:\n{stderr}"
            ));
        }
        let line = line.trim_end().to_owned();
        if let Some(rest) = line.strip_prefix("vaultd listening on https://") {
            addr = Some(rest.parse::<SocketAddr>().expect("the listening address"));
        }
        let last = if dev_block {
            line == "vaultctl status"
        } else {
            addr.is_some()
        };
        printed.push(line);
        // In dev mode the block of instructions ends with this line.
        if last {
            break;
        }
    }
    let addr = addr.expect("a 'vaultd listening on' line before the instructions");
    Ok(Daemon {
        pid: child.id(),
        child: Some(child),
        addr,
        dev_dir,
        printed,
        stderr_path,
        _stdout: lines,
    })
}

/// A running vaultd.
pub struct Daemon {
    child: Option<Child>,
    pub pid: u32,
    /// Where it listens.
    pub addr: SocketAddr,
    pub dev_dir: PathBuf,
    /// What it printed on stdout up to and including "vaultctl status".
    pub printed: Vec<String>,
    stderr_path: PathBuf,
    /// Kept open: the daemon must never write to a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl Daemon {
    /// `https://ADDR`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The `export NAME=VALUE` lines it printed, as (NAME, VALUE) in order.
    pub fn exports(&self) -> Vec<(String, String)> {
        self.printed
            .iter()
            .filter_map(|line| line.strip_prefix("export "))
            .map(|assignment| {
                let (name, value) = assignment
                    .split_once('=')
                    .unwrap_or_else(|| panic!("not NAME=VALUE: {assignment:?}"));
                (name.to_owned(), value.to_owned())
            })
            .collect()
    }

    /// What the daemon wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Waits until the daemon has logged a line holding `needle` `count` times (polled,
    /// at most 20 s); returns its stderr then. Panics with the stderr if it never does.
    pub async fn wait_for_log(&self, needle: &str, count: usize) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let stderr = self.stderr();
            if stderr.lines().filter(|l| l.contains(needle)).count() >= count {
                return stderr;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {count} line(s) with {needle:?} in the daemon's stderr:\n{stderr}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a signal (`"TERM"`, `"KILL"`, `"HUP"`) with kill(1).
    pub fn signal(&self, signal: &str) {
        send_signal(self.pid, signal);
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit()
    }

    /// SIGKILL, then waits for the exit.
    pub fn kill(mut self) -> ExitStatus {
        self.signal("KILL");
        self.wait_exit()
    }

    /// Waits for an exit already asked for (see `signal`); SIGKILL after a deadline.
    pub fn wait(mut self) -> ExitStatus {
        self.wait_exit()
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self
            .child
            .take()
            .expect("the daemon was already waited for");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = match rx.recv_timeout(EXIT_DEADLINE) {
            Ok(status) => status,
            Err(_) => {
                eprintln!("vaultd {} did not exit in time: SIGKILL", self.pid);
                send_signal(self.pid, "KILL");
                rx.recv().expect("the waiting thread")
            }
        };
        status.expect("wait for vaultd")
    }

    /// The TLS settings of a client with `principal`'s certificate from the development
    /// vault; the certificate is issued if the principal has none.
    pub fn tls_for(&self, principal: &str) -> ClientTlsConfig {
        let pki = pki::PkiDir::new(self.dev_dir.join("tls"));
        if !pki.client_cert(principal).exists() {
            pki.issue_client(principal)
                .expect("issue a client certificate");
        }
        self.tls_with(&pki.client_cert(principal), &pki.client_key(principal))
    }

    /// The TLS settings of a client that trusts this vault's CA and presents `cert`/`key`.
    pub fn tls_with(&self, cert: &Path, key: &Path) -> ClientTlsConfig {
        self.tls_without_identity()
            .identity(Identity::from_pem(read(cert), read(key)))
    }

    /// The TLS settings of a client that trusts this vault's CA and presents no certificate.
    pub fn tls_without_identity(&self) -> ClientTlsConfig {
        let ca = self.dev_dir.join("tls").join("ca.pem");
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(&ca)))
    }

    /// Connects a channel with these TLS settings.
    pub async fn connect(&self, tls: ClientTlsConfig) -> Result<Channel, tonic::transport::Error> {
        Endpoint::from_shared(self.url())?
            .tls_config(tls)?
            .connect_timeout(CALL_DEADLINE)
            .timeout(CALL_DEADLINE)
            .connect()
            .await
    }

    /// A connected client as `principal` (issued a certificate if it has none).
    pub async fn client(&self, principal: &str) -> Client {
        let channel = self
            .connect(self.tls_for(principal))
            .await
            .unwrap_or_else(|e| panic!("connect as {principal}: {e:?}"));
        client_on(channel)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            send_signal(self.pid, "TERM");
            let _ = self.wait_exit();
        }
    }
}

/// The generated client on `channel`, with messages up to 64 MiB either way (so that the
/// daemon's limits, not the client's, are what a test meets).
pub fn client_on(channel: Channel) -> Client {
    VaultServiceClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20)
}

fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    // The process may have exited already: not an error here, the wait tells.
    let _ = status;
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The `vaultctl` binary beside the `vaultd` under test (same profile and target
/// directory). Integration tests of vaultd only get vaultd built: if the binary is missing
/// or older than a source it is built from, the first call runs `cargo build -p vaultctl`.
/// (`cargo test -p vaultd -p vaultctl` builds it up front.)
pub fn vaultctl() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let path = Path::new(env!("CARGO_BIN_EXE_vaultd")).with_file_name("vaultctl");
            if stale(&path) {
                build_vaultctl(&path);
            }
            path
        })
        .clone()
}

/// The vaultctl binary with `exports` (a daemon's `export NAME=VALUE` lines) as its
/// environment and none of the test's own VAULTCTL_* variables.
pub fn vaultctl_command(exports: &[(String, String)]) -> Command {
    let mut command = Command::new(vaultctl());
    for (name, _) in std::env::vars() {
        if name.starts_with("VAULTCTL_") {
            command.env_remove(name);
        }
    }
    command.envs(exports.iter().map(|(k, v)| (k, v)));
    command
}

/// Runs the vaultctl binary with `exports` (a daemon's `export NAME=VALUE` lines, see
/// [`Daemon::exports`]) as its environment and none of the test's own VAULTCTL_* variables,
/// feeding `stdin`, as a user who pasted what the daemon printed would.
pub fn vaultctl_with(exports: &[(String, String)], args: &[&str], stdin: &[u8]) -> Output {
    let mut command = vaultctl_command(exports);
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn vaultctl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write vaultctl's stdin");
    child.wait_with_output().expect("wait for vaultctl")
}

/// Whether `binary` is missing, or older than a source file, manifest or the lock file of
/// vaultctl and the workspace crates it is built from.
fn stale(binary: &Path) -> bool {
    let Ok(built) = binary.metadata().and_then(|m| m.modified()) else {
        return true;
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace directory");
    let newer = |path: &Path| {
        path.metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|m| m > built)
    };
    if newer(&workspace.join("Cargo.lock")) || newer(&workspace.join("Cargo.toml")) {
        return true;
    }
    let crates = [
        "vaultctl",
        "vault",
        "envelope",
        "kek-providers",
        "pki",
        "proto",
    ];
    let mut dirs = Vec::new();
    for name in crates {
        if newer(&workspace.join(name).join("Cargo.toml")) {
            return true;
        }
        dirs.push(workspace.join(name).join("src"));
    }
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if newer(&path) {
                return true;
            }
        }
    }
    false
}

fn build_vaultctl(path: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // The profile directory is target/<profile>; `debug` is cargo's `dev` profile.
    let profile = path
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .map(|n| if n == "debug" { "dev" } else { n })
        .unwrap_or("dev")
        .to_owned();
    let target_dir = path
        .parent()
        .and_then(Path::parent)
        .expect("the target directory");
    let status = Command::new(cargo)
        .args(["build", "-p", "vaultctl", "--bin", "vaultctl", "--profile"])
        .arg(&profile)
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build -p vaultctl");
    assert!(status.success(), "cargo build -p vaultctl failed: {status}");
    assert!(
        path.exists(),
        "no vaultctl at {} after building",
        path.display()
    );
}

/// The code of a call's result (`Ok` for a success).
pub fn code<T>(result: &Result<tonic::Response<T>, tonic::Status>) -> tonic::Code {
    match result {
        Ok(_) => tonic::Code::Ok,
        Err(status) => status.code(),
    }
}

/// How a call over a new connection with `tls` ended: `Ok(code)` when the daemon answered
/// (the handshake let the client in, whatever the gates said), `Err(why)` when the
/// connection failed: the connect, or (TLS 1.3, where the client finishes its side of the
/// handshake before the server checks its certificate) the first call, with a transport
/// error.
pub async fn handshake_outcome(
    daemon: &Daemon,
    tls: ClientTlsConfig,
) -> Result<tonic::Code, String> {
    let channel = daemon.connect(tls).await.map_err(|e| format!("{e:?}"))?;
    let result = client_on(channel).status(proto::v1::StatusRequest {}).await;
    match result {
        Ok(_) => Ok(tonic::Code::Ok),
        Err(status) => {
            let transport = std::error::Error::source(&status)
                .is_some_and(|e| e.downcast_ref::<tonic::transport::Error>().is_some());
            if transport {
                Err(format!("{status:?}"))
            } else {
                Ok(status.code())
            }
        }
    }
}

/// What a client that the TLS handshake refuses sees: the connection fails, or the first
/// call fails with a transport error, never a status the daemon answered. Nothing reaches
/// the gates: the audit log gets no record but the refused handshake's own (op
/// `handshake`). Returns the client's error.
pub async fn assert_handshake_refused(
    sandbox: &Sandbox,
    daemon: &Daemon,
    tls: ClientTlsConfig,
    who: &str,
) -> String {
    let before = sandbox.audit_records().len();
    let refused = match handshake_outcome(daemon, tls).await {
        Ok(code) => {
            panic!("{who}: the daemon answered ({code:?}) instead of refusing the handshake")
        }
        Err(why) => why,
    };
    // The counts of earlier denials over their budget ("N more denials of ...") are written
    // when their window ends, which may fall in between: they are not this client.
    let reached = sandbox.audit_records()[before..]
        .iter()
        .filter(|r| r.op != "handshake")
        .filter(|r| {
            !r.reason
                .as_deref()
                .is_some_and(|why| why.contains(" more denials of "))
        })
        .count();
    assert_eq!(reached, 0, "{who} reached the gates");
    refused
}
