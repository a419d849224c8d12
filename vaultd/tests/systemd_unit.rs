//! The systemd unit in packaging/: `systemd-analyze` verifies it with its hardening, its
//! ExecStart command line (with the vault and configuration paths moved to a temporary
//! directory) starts a daemon that answers, so the unit cannot drift from the binary's flags,
//! and the daemon speaks the notify protocol: READY=1 only once it listens and its vault is
//! unlocked, RELOADING=1 and READY=1 around a reload, STOPPING=1 when it drains.
//!
//! Without systemd-analyze the verification is skipped, unless VAULT_REQUIRE_HW is set (as
//! the test script sets it; scripts/install-deps.sh installs systemd-analyze).

mod common;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Sandbox, spawn_listening};
use proto::v1 as pb;

/// Where the unit puts the binary, the configuration and the vault.
const UNIT_BINARY: &str = "/usr/local/bin/vaultd";
const UNIT_CONFIG_DIR: &str = "/etc/vaultd";
const UNIT_VAULT_DIR: &str = "/var/lib/vaultd";

fn unit_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/vaultd.service")
}

fn unit_text() -> String {
    std::fs::read_to_string(unit_path()).expect("packaging/vaultd.service")
}

/// The values of `key=` in the unit's [Service] section, in order.
fn service_values(text: &str, key: &str) -> Vec<String> {
    let mut in_service = false;
    let mut values = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
        } else if in_service
            && let Some((name, value)) = line.split_once('=')
            && name.trim() == key
        {
            values.push(value.trim().to_owned());
        }
    }
    values
}

/// The ExecStart command line, split into words (double quotes group; no prefix characters).
fn exec_start(text: &str) -> Vec<String> {
    let lines = service_values(text, "ExecStart");
    assert_eq!(lines.len(), 1, "one ExecStart line: {lines:?}");
    let line = lines[0].trim_start_matches(['-', '@', ':', '+', '!']);
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// systemd-analyze, or `None` (after saying so) where it is missing and may be.
fn systemd_analyze() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/bin")])
        .map(|dir| dir.join("systemd-analyze"))
        .find(|tool| tool.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("VAULT_REQUIRE_HW").is_none(),
            "systemd-analyze is missing and VAULT_REQUIRE_HW is set: install Debian's systemd \
             package (scripts/install-deps.sh does)"
        );
        eprintln!("skipped: systemd-analyze is not installed");
    }
    found
}

#[test]
fn the_unit_has_its_hardening() {
    let text = unit_text();
    for (key, value) in [
        ("Type", "notify"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("LimitMEMLOCK", "infinity"),
        ("LimitCORE", "0"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ReadWritePaths", UNIT_VAULT_DIR),
        ("PrivateTmp", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("CapabilityBoundingSet", ""),
        ("DevicePolicy", "closed"),
        ("DeviceAllow", "/dev/tpmrm0 rw"),
    ] {
        assert_eq!(
            service_values(&text, key),
            [value],
            "{key}= in packaging/vaultd.service"
        );
    }
    // The vault directory the daemon is given is the one it may write.
    let argv = exec_start(&text);
    let vault_dir = argv
        .iter()
        .position(|a| a == "--vault-dir")
        .map(|at| argv[at + 1].as_str());
    assert_eq!(vault_dir, Some(UNIT_VAULT_DIR), "{argv:?}");
}

#[test]
fn systemd_analyze_verifies_the_unit_and_rates_its_exposure_low() {
    let Some(tool) = systemd_analyze() else {
        return;
    };
    // verify checks that ExecStart's binary exists: the unit as installed, with the binary
    // under test in its place.
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = dir.path().join("vaultd.service");
    std::fs::write(
        &unit,
        unit_text().replace(UNIT_BINARY, env!("CARGO_BIN_EXE_vaultd")),
    )
    .expect("write the unit");
    let verify = Command::new(&tool)
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("run systemd-analyze verify");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    // An unknown or misspelt directive is only a warning to verify, with exit code 0.
    assert!(
        verify.status.success() && said.trim().is_empty(),
        "systemd-analyze verify ({}):\n{said}",
        verify.status
    );
    // 0 (fully sandboxed) to 100; the flags above give 18 ("1.8 OK").
    let security = Command::new(&tool)
        .args(["security", "--offline=true", "--threshold=20", "--no-pager"])
        .arg(&unit)
        .output()
        .expect("run systemd-analyze security");
    let report = String::from_utf8_lossy(&security.stdout);
    let overall = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or("no overall exposure level");
    assert!(
        security.status.success(),
        "exposure above 2.0: {overall}\n{report}{}",
        String::from_utf8_lossy(&security.stderr)
    );
    eprintln!("{overall}");
}

/// Writes `text` to `path` with mode 0600.
fn write_private(path: &Path, text: &str) {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("create a private file");
    file.write_all(text.as_bytes()).expect("write it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_units_exec_start_line_starts_a_daemon_that_answers() {
    let sandbox = Sandbox::new();
    // A vault and its TLS material, as an operator makes them (the development layout).
    let dev = vaultd::dev::DevDir {
        root: sandbox.dev_dir(),
    };
    dev.prepare(vaultd::config::Config::default())
        .expect("a vault");
    let etc = sandbox.root().join("etc");
    std::fs::create_dir(&etc).expect("the configuration directory");
    write_private(
        &etc.join("vaultd.toml"),
        &format!(
            "listen = \"127.0.0.1:0\"\n[tls]\ndir = \"{}\"\n[[acl]]\nprincipal = \"admin\"\n\
             operations = [\"admin\", \"audit\"]\n",
            dev.tls().display()
        ),
    );
    let moved = |word: &str| {
        word.replace(UNIT_BINARY, env!("CARGO_BIN_EXE_vaultd"))
            .replace(UNIT_CONFIG_DIR, &etc.display().to_string())
            .replace(UNIT_VAULT_DIR, &dev.data().display().to_string())
    };
    let argv: Vec<String> = exec_start(&unit_text()).iter().map(|w| moved(w)).collect();
    assert_eq!(argv[0], env!("CARGO_BIN_EXE_vaultd"), "{argv:?}");
    assert!(
        argv.iter()
            .any(|a| a.starts_with(&etc.display().to_string())),
        "the unit names no configuration under {UNIT_CONFIG_DIR}: {argv:?}"
    );
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]).env_remove("VAULTD_CONFIG");
    for (var, _) in vaultd::config::ENV_VARS {
        command.env_remove(var);
    }
    let stderr_path = sandbox.root().join("unit.stderr");
    command.stderr(File::create(&stderr_path).expect("stderr file"));
    let daemon = spawn_listening(command, stderr_path, sandbox.dev_dir(), false)
        .unwrap_or_else(|e| panic!("the unit's ExecStart {argv:?}: {e}"));
    let status = daemon
        .client("admin")
        .await
        .status(pb::StatusRequest {})
        .await
        .expect("the daemon answers")
        .into_inner();
    assert!(!status.locked);
    assert!(daemon.terminate().success());
}

/// A notification socket the test binds, as systemd would.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    fn bind(dir: &Path, name: &str) -> Self {
        let path = dir.join(name);
        let socket = UnixDatagram::bind(&path).expect("bind the notification socket");
        NotifySocket { socket, path }
    }

    /// The messages that arrived until one has the line `wanted` (20 s at most).
    fn until(&self, wanted: &str) -> Vec<String> {
        self.socket
            .set_nonblocking(false)
            .and_then(|()| self.socket.set_read_timeout(Some(Duration::from_secs(20))))
            .expect("socket options");
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 4096];
        loop {
            let n = self
                .socket
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("no {wanted:?} after {seen:?}: {e}"));
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = message.lines().any(|l| l == wanted);
            seen.push(message);
            if done {
                return seen;
            }
        }
    }

    /// The messages waiting now.
    fn pending(&self) -> Vec<String> {
        self.socket.set_nonblocking(true).expect("non-blocking");
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = self.socket.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        seen
    }
}

fn has_line(messages: &[String], line: &str) -> bool {
    messages.iter().any(|m| m.lines().any(|l| l == line))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_reloading_and_stopping_reach_the_notification_socket() {
    let sandbox = Sandbox::new();
    let first = NotifySocket::bind(sandbox.root(), "first.sock");
    let daemon = sandbox
        .daemon()
        .env("NOTIFY_SOCKET", first.path.display())
        .start();
    let ready = first.until("READY=1");
    assert!(!has_line(&ready, "RELOADING=1"), "{ready:?}");

    daemon.signal("HUP");
    let reload = first.until("READY=1");
    let reloading = reload
        .iter()
        .position(|m| m.lines().any(|l| l == "RELOADING=1"))
        .unwrap_or_else(|| panic!("no RELOADING=1 before READY=1: {reload:?}"));
    assert!(
        reload[reloading]
            .lines()
            .any(|l| l.starts_with("MONOTONIC_USEC=")),
        "RELOADING=1 without MONOTONIC_USEC: {reload:?}"
    );
    assert!(reloading < reload.len() - 1, "{reload:?}");

    // Locked on disk: the next start opens the vault locked.
    let mut admin = daemon.client("admin").await;
    admin.lock(pb::LockRequest {}).await.expect("lock");
    daemon.signal("TERM");
    first.until("STOPPING=1");
    assert!(daemon.wait().success());

    let second = NotifySocket::bind(sandbox.root(), "second.sock");
    let daemon = sandbox
        .daemon()
        .env("NOTIFY_SOCKET", second.path.display())
        .start();
    let mut admin = daemon.client("admin").await;
    let status = admin
        .status(pb::StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert!(status.locked, "the vault should have opened locked");
    // Listening, answering, even reloading: not ready while locked.
    daemon.signal("HUP");
    daemon.wait_for_log("configuration reloaded", 1).await;
    let early = second.pending();
    assert!(
        !has_line(&early, "READY=1") && !has_line(&early, "RELOADING=1"),
        "{early:?}"
    );
    admin
        .unlock(pb::UnlockRequest::default())
        .await
        .expect("unlock");
    let ready = second.until("READY=1");
    assert!(
        ready.iter().any(|m| m.contains("STATUS=serving on")),
        "{ready:?}"
    );
    daemon.signal("TERM");
    second.until("STOPPING=1");
    assert!(daemon.wait().success());
}
