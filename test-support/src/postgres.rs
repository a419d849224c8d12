//! A real PostgreSQL server for tests: [`database`] gives a test a fresh database on a server
//! that the test process shares; [`PgServer`] is a server of a test's own, for tests that stop,
//! restart or kill it.
//!
//! The server runs from the installed PostgreSQL programs (`/usr/lib/postgresql/<newest>/bin`,
//! else `initdb` on `PATH`; `VAULT_TEST_PG_BIN` names another directory), as the `postgres`
//! user when the tests run as root (`initdb` and `postgres` refuse root), in a private
//! directory under [`std::env::temp_dir`], listening on 127.0.0.1 only, on a free port. A
//! supervisor shell stops it and removes its directory once the test process is gone, however
//! it ends, so no server outlives its tests.
//!
//! Roles: `postgres` (superuser) and [`TEST_ROLE`] log in from 127.0.0.1 without a password;
//! [`PASSWORD_ROLE`] must give [`TEST_PASSWORD`] (SCRAM-SHA-256) and has [`TEST_ROLE`]'s
//! rights, so that clients' password authentication can be tested.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::DirBuilderExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};
use std::{fmt, thread};

use crate::{find_program, is_executable_file, skip_unless_installed};

/// The non-superuser role that owns every test database; it logs in from 127.0.0.1 without a
/// password (its password is [`TEST_PASSWORD`] all the same).
pub const TEST_ROLE: &str = "vault_test";
/// A role that must log in with [`TEST_PASSWORD`] (SCRAM-SHA-256); a member of [`TEST_ROLE`],
/// so it may do what the databases' owner may.
pub const PASSWORD_ROLE: &str = "vault_pw";
/// The password of [`TEST_ROLE`] and [`PASSWORD_ROLE`].
pub const TEST_PASSWORD: &str = "vault-test-password";
/// Names a directory holding the PostgreSQL programs to use instead of the installed ones.
pub const BIN_ENV: &str = "VAULT_TEST_PG_BIN";

const SUPERUSER: &str = "postgres";
/// The programs the fixture runs; without any of them PostgreSQL counts as not installed.
const PROGRAMS: [&str; 4] = ["initdb", "pg_ctl", "postgres", "psql"];
/// Seconds `pg_ctl` waits for the server to accept connections (or to stop).
const WAIT_SECS: &str = "30";
/// How many ports to try when another program takes the free port before the server binds it.
const PORT_ATTEMPTS: usize = 10;
/// Identifiers longer than this are truncated by PostgreSQL.
const MAX_NAME_LEN: usize = 63;

/// Blocks until its stdin reaches end of file, which happens when the fixture closes its end
/// of the pipe or when the test process dies in any way (the kernel closes the last writer),
/// then stops the server of `$1/data` and removes `$1`. The arguments after `$1` run `pg_ctl`.
const SUPERVISOR: &str = r#"
root=$1
shift
read -r _
"$@" stop -D "$root/data" -m immediate -w -t 10 >/dev/null 2>&1
rm -rf "$root"
"#;

static SHARED: OnceLock<Arc<Server>> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty database owned by [`TEST_ROLE`] on the PostgreSQL server of this test
/// process (started on the first call); dropping it drops the database.
///
/// Without PostgreSQL it returns `None`, after printing
/// `<test>: skipped: PostgreSQL not installed (run scripts/install-deps.sh): <what is missing>`
/// to the process's stderr, or panics saying so if `VAULT_REQUIRE_HW` is set. Panics, showing
/// the server log, if the server does not start.
#[track_caller]
pub fn database(test: &str) -> Option<PgDatabase> {
    let bin = installed(test)?;
    let server = SHARED.get_or_init(|| Arc::new(Server::start(bin, test)));
    Some(PgDatabase::create(Arc::clone(server), test))
}

/// Whether PostgreSQL is installed, by the project's skip rule: `false` after printing the
/// skip line (or a panic with `VAULT_REQUIRE_HW` set) when it is not. For a test runner that
/// decides before it makes the databases its tests use.
#[track_caller]
pub fn available(test: &str) -> bool {
    installed(test).is_some()
}

/// A database of a test's own on a running PostgreSQL server; dropping it drops the database
/// (`DROP DATABASE ... WITH (FORCE)`, which ends its connections; errors are ignored).
#[derive(Debug)]
pub struct PgDatabase {
    server: Arc<Server>,
    name: String,
    url: String,
}

impl PgDatabase {
    #[track_caller]
    fn create(server: Arc<Server>, test: &str) -> Self {
        let name = database_name(COUNTER.fetch_add(1, Ordering::Relaxed), test);
        // template0 is empty whatever a test did to template1.
        let create = format!("CREATE DATABASE \"{name}\" OWNER {TEST_ROLE} TEMPLATE template0");
        if let Err(error) = server.psql(SUPERUSER, &create) {
            panic!("test-support: cannot create database {name}: {error}");
        }
        let url = format!("postgres://{TEST_ROLE}@127.0.0.1:{}/{name}", server.port);
        Self { server, name, url }
    }

    /// `postgres://vault_test@127.0.0.1:<port>/<name>`: [`TEST_ROLE`], which needs no password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `postgres://vault_pw:<TEST_PASSWORD>@127.0.0.1:<port>/<name>`: [`PASSWORD_ROLE`], which
    /// the server authenticates with SCRAM-SHA-256.
    pub fn password_url(&self) -> String {
        format!(
            "postgres://{PASSWORD_ROLE}:{TEST_PASSWORD}@127.0.0.1:{}/{}",
            self.port(),
            self.name
        )
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// The database's name: `t_<n>_<test name, sanitized>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `sql` (one or more statements) on this database as the superuser through `psql`,
    /// stopping at the first error; returns what the statements printed, unaligned and
    /// without headers (`SELECT 1, 2` gives `1|2\n`). Panics with psql's stderr if it fails.
    #[track_caller]
    pub fn psql(&self, sql: &str) -> String {
        self.server
            .psql(&self.name, sql)
            .unwrap_or_else(|error| panic!("test-support: psql on {}: {error}", self.name))
    }

    /// `program` (`psql`, `pg_dump`...) from the server's PostgreSQL installation, with
    /// `PGHOST`, `PGPORT`, `PGDATABASE` and `PGUSER` ([`TEST_ROLE`]) naming this database and
    /// stdin from `/dev/null`.
    pub fn client(&self, program: &str) -> Command {
        let mut command = self.server.client(program);
        command
            .env("PGDATABASE", &self.name)
            .env("PGUSER", TEST_ROLE);
        command
    }

    /// The data directory of the server the database is on (shared with the process's other
    /// tests' databases), for tests that look at what lands on disk.
    pub fn data_dir(&self) -> &Path {
        &self.server.data
    }

    /// Restarts the server (`pg_ctl restart -m fast`), ending every connection; a stopped
    /// server starts. Every database of the server sees it: on the shared server of
    /// [`database`] that disturbs the tests running beside this one, so a test that restarts
    /// the server had better use a [`PgServer`]. Panics, showing the server log, on failure.
    #[track_caller]
    pub fn restart_server(&self) {
        self.server.restart();
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let drop = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let _ = self.server.psql(SUPERUSER, &drop);
    }
}

/// A PostgreSQL server of a test's own, not the shared one of [`database`]: for tests that
/// stop, restart or kill it. Its databases come from [`database`](Self::database). It stops
/// (`pg_ctl stop -m fast`) and its directory is removed when it and all its databases are
/// dropped, or when the test process ends.
#[derive(Debug)]
pub struct PgServer {
    server: Arc<Server>,
    test: String,
}

impl PgServer {
    /// Starts a server for `test`; `None` (or a panic) without PostgreSQL, as for [`database`].
    /// Panics, showing the server log, if the server does not start.
    #[track_caller]
    pub fn start(test: &str) -> Option<Self> {
        let bin = installed(test)?;
        Some(Self {
            server: Arc::new(Server::start(bin, test)),
            test: test.to_owned(),
        })
    }

    /// A fresh, empty database on this server, as [`database`] gives on the shared one.
    #[track_caller]
    pub fn database(&self) -> PgDatabase {
        PgDatabase::create(Arc::clone(&self.server), &self.test)
    }

    /// The server's port on 127.0.0.1 (it keeps it across restarts).
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// The postmaster's process id, from `postmaster.pid`; `None` while the server is stopped.
    pub fn pid(&self) -> Option<u32> {
        let pid_file = fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        pid_file.lines().next()?.trim().parse().ok()
    }

    /// The server's data directory (removed with the server).
    pub fn data_dir(&self) -> &Path {
        &self.server.data
    }

    /// Stops the server (`pg_ctl stop -m fast`), keeping its data: clients see it go away.
    /// [`restart`](Self::restart) starts it again. Panics, showing the server log, on failure.
    #[track_caller]
    pub fn stop(&self) {
        let server = &self.server;
        server.pg_ctl(&["stop", "-m", "fast"], "stop");
    }

    /// Restarts the server (`pg_ctl restart -m fast`), or starts it if it is stopped.
    #[track_caller]
    pub fn restart(&self) {
        self.server.restart();
    }
}

/// A running server and its private directory.
struct Server {
    bin: PathBuf,
    /// Whether the server-side programs run as the `postgres` user (the tests run as root).
    as_postgres: bool,
    root: PathBuf,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    // Held for its drop, which comes after Drop::drop stopped the server: it then removes the
    // directory.
    _supervisor: Supervisor,
}

impl Server {
    #[track_caller]
    fn start(bin: PathBuf, test: &str) -> Self {
        let as_postgres = running_as_root();
        let root = private_dir(as_postgres);
        // First, so that nothing is left behind whatever happens next.
        let supervisor = Supervisor::spawn(&root, server_argv(&bin, as_postgres, "pg_ctl"));
        let mut server = Self {
            data: root.join("data"),
            log: root.join("server.log"),
            bin,
            as_postgres,
            root,
            port: 0,
            _supervisor: supervisor,
        };
        server.init();
        for attempt in 1.. {
            server.port = free_port();
            let log_start = fs::metadata(&server.log).map_or(0, |meta| meta.len());
            let port_option = format!("-p {}", server.port);
            let started = server.server_tool("pg_ctl", &["start", "-o", &port_option]);
            if started.is_ok() {
                break;
            }
            // Another program may have taken the port since we found it free.
            let log = read_from(&server.log, log_start);
            if !(log.contains("Address already in use") && attempt < PORT_ATTEMPTS) {
                panic!("test-support: PostgreSQL did not start for {test}: {started:?}\n{log}");
            }
        }
        let roles = format!(
            "CREATE ROLE {TEST_ROLE} LOGIN PASSWORD '{TEST_PASSWORD}';\n\
             CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{TEST_PASSWORD}' IN ROLE {TEST_ROLE};"
        );
        if let Err(error) = server.psql(SUPERUSER, &roles) {
            panic!("test-support: cannot create the test roles: {error}");
        }
        server
    }

    /// Creates the cluster, tuned for tests, with the authentication rules of the module doc.
    #[track_caller]
    fn init(&self) {
        let data = self.data.to_string_lossy();
        let initdb = [
            "-D",
            &data,
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        ];
        if let Err(error) = self.server_tool("initdb", &initdb) {
            panic!("test-support: initdb failed: {error}");
        }
        // Durability is worth nothing in a directory removed after the tests.
        let settings = format!(
            "\n# test-support\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
             shared_buffers = 32MB\nmax_connections = 200\n",
            self.root.display()
        );
        // The first line that matches a connection decides: the roles that need no password
        // come before the catch-all that demands one.
        let hba = format!(
            "host all {SUPERUSER},{TEST_ROLE} 127.0.0.1/32 trust\n\
             host all all 127.0.0.1/32 scram-sha-256\n"
        );
        let written = fs::OpenOptions::new()
            .append(true)
            .open(self.data.join("postgresql.conf"))
            .and_then(|mut conf| conf.write_all(settings.as_bytes()))
            .and_then(|()| fs::write(self.data.join("pg_hba.conf"), hba));
        if let Err(error) = written {
            panic!(
                "test-support: cannot configure {}: {error}",
                self.data.display()
            );
        }
    }

    #[track_caller]
    fn restart(&self) {
        self.pg_ctl(&["restart", "-m", "fast"], "restart");
    }

    /// Runs `pg_ctl <args>`; panics, showing the server log, if it fails.
    #[track_caller]
    fn pg_ctl(&self, args: &[&str], what: &str) {
        let log_start = fs::metadata(&self.log).map_or(0, |meta| meta.len());
        if let Err(error) = self.server_tool("pg_ctl", args) {
            let log = read_from(&self.log, log_start);
            panic!("test-support: PostgreSQL {what} failed: {error}\n{log}");
        }
    }

    /// Runs a server-side program (`pg_ctl` gets the data directory, the log and a wait);
    /// `Err` shows its status and output.
    fn server_tool(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let argv = server_argv(&self.bin, self.as_postgres, program);
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]).args(args);
        if program == "pg_ctl" {
            command.arg("-D").arg(&self.data).arg("-l").arg(&self.log);
            command.args(["-w", "-t", WAIT_SECS, "-s"]);
        }
        // The postgres user may not enter the test's working directory.
        let output = command
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {command:?}: {e}"))?;
        if output.status.success() {
            return Ok(());
        }
        Err(format!(
            "{command:?} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }

    /// A client program of the installation, pointed at this server.
    fn client(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.port.to_string())
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null());
        command
    }

    /// Runs `sql` on `database` as the superuser: see [`PgDatabase::psql`].
    fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let mut command = self.client("psql");
        command
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-"])
            .args(["-U", SUPERUSER, "-d", database])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot run {command:?}: {e}"))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let sql = sql.to_owned();
        // From another thread, so that a long script and a long answer cannot block each other.
        let writer = thread::spawn(move || {
            let _ = stdin.write_all(sql.as_bytes());
        });
        let output = child.wait_with_output().map_err(|e| format!("psql: {e}"))?;
        let _ = writer.join();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(format!(
                "psql failed ({}):\n{stderr}{stdout}",
                output.status
            ));
        }
        Ok(stdout)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A clean stop; the supervisor, dropped next, removes the directory.
        let _ = self.server_tool("pg_ctl", &["stop", "-m", "fast"]);
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("port", &self.port)
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

/// The shell running [`SUPERVISOR`] and the write end of its stdin.
struct Supervisor {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Supervisor {
    #[track_caller]
    fn spawn(root: &Path, pg_ctl: Vec<OsString>) -> Self {
        let mut child = Command::new("sh")
            .args(["-c", SUPERVISOR, "sh"])
            .arg(root)
            .args(pg_ctl)
            .current_dir("/")
            .stdin(Stdio::piped())
            // Holding none of the test process's pipes, it never delays whoever reads them.
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C meant for the tests must not end it before they do.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("test-support: cannot run sh: {e}"));
        let stdin = child.stdin.take();
        Self { child, stdin }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // End of file on its stdin: it stops the server (if still running) and removes the
        // directory; waiting for it means both are done when the drop returns.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// The command line that runs `program` of the installation in `bin`, through `runuser` as
/// the `postgres` user if `as_postgres`.
fn server_argv(bin: &Path, as_postgres: bool, program: &str) -> Vec<OsString> {
    let mut argv: Vec<OsString> = Vec::new();
    if as_postgres {
        argv.extend(["runuser", "-u", SUPERUSER, "--"].map(OsString::from));
    }
    argv.push(bin.join(program).into());
    argv
}

/// The directory of the PostgreSQL programs, or `None` after applying the skip rule for `test`.
#[track_caller]
fn installed(test: &str) -> Option<PathBuf> {
    match bin_dir() {
        Ok(bin) => Some(bin),
        Err(reason) => {
            skip_unless_installed(test, "PostgreSQL", Some(reason));
            None
        }
    }
}

/// `VAULT_TEST_PG_BIN`, else the newest `/usr/lib/postgresql/<version>/bin` (Debian's layout),
/// else the directory of `initdb` on `PATH`, if all of [`PROGRAMS`] are there; else what is
/// missing.
fn bin_dir() -> Result<PathBuf, String> {
    let dir = match env::var_os(BIN_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => newest_debian_bin()
            .or_else(|| find_program("initdb")?.parent().map(Path::to_owned))
            .ok_or("no initdb in /usr/lib/postgresql/*/bin or on PATH")?,
    };
    match PROGRAMS
        .iter()
        .map(|p| dir.join(p))
        .find(|p| !is_executable_file(p))
    {
        Some(missing) => Err(format!("{} is not an executable file", missing.display())),
        None => Ok(dir),
    }
}

fn newest_debian_bin() -> Option<PathBuf> {
    fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|version| is_executable_file(&debian_bin(version).join("initdb")))
        .max_by_key(|version| version_key(version))
        .map(|version| debian_bin(&version))
}

fn debian_bin(version: &str) -> PathBuf {
    Path::new("/usr/lib/postgresql").join(version).join("bin")
}

/// `"9.6"` as `[9, 6]`, so that 10 sorts after 9.6.
fn version_key(version: &str) -> Vec<u32> {
    version
        .split('.')
        .map(|part| part.parse().unwrap_or(0))
        .collect()
}

/// `t_<n>_<test>`, with everything but ASCII letters and digits in `test` made `_`,
/// lowercased (unquoted SQL folds case) and cut to PostgreSQL's identifier length.
fn database_name(n: usize, test: &str) -> String {
    let sanitized = test.chars().map(|c| match c {
        'a'..='z' | '0'..='9' => c,
        'A'..='Z' => c.to_ascii_lowercase(),
        _ => '_',
    });
    let mut name = format!("t_{n}_");
    name.extend(sanitized);
    name.truncate(MAX_NAME_LEN);
    name
}

/// Whether this process's effective user is root (field 2 of `Uid:` in `/proc/self/status`).
fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// A new directory `vault-pg-*` (mode 0700) under the temp dir, owned by `postgres` if the
/// server runs as that user.
#[track_caller]
fn private_dir(as_postgres: bool) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    let dir = loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = env::temp_dir().join(format!("vault-pg-{}-{n}-{nanos}", std::process::id()));
        // Creating it (not finding it) is what makes it ours, as mkdtemp does.
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => break dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("test-support: cannot create {}: {e}", dir.display()),
        }
    };
    if as_postgres {
        let chown = Command::new("chown")
            .arg(format!("{SUPERUSER}:"))
            .arg(&dir)
            .output();
        if !chown.as_ref().is_ok_and(|output| output.status.success()) {
            let _ = fs::remove_dir(&dir);
            panic!(
                "test-support: cannot give {} to {SUPERUSER}: {chown:?}",
                dir.display()
            );
        }
    }
    dir
}

/// A port on 127.0.0.1 that was free a moment ago.
#[track_caller]
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or_else(|e| panic!("test-support: no free port on 127.0.0.1: {e}"))
}

/// `path` from byte `start` on, for an error message.
fn read_from(path: &Path, start: u64) -> String {
    let mut text = Vec::new();
    let read = fs::File::open(path).and_then(|mut file| {
        file.seek(SeekFrom::Start(start))?;
        file.read_to_end(&mut text)
    });
    match read {
        Ok(_) => format!(
            "--- server log ---\n{}",
            String::from_utf8_lossy(&text).trim_end()
        ),
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_identifiers() {
        assert_eq!(database_name(3, "store::Get-It"), "t_3_store__get_it");
        assert_eq!(database_name(0, &"x".repeat(100)).len(), MAX_NAME_LEN);
    }

    #[test]
    fn versions_sort_by_number() {
        assert!(version_key("10") > version_key("9.6"));
        assert!(version_key("16") > version_key("15"));
    }
}
