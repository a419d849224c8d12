//! The PostgreSQL fixture: databases of the shared server, servers of a test's own, the skip
//! rule and the supervisor that stops a server whose test process died.

use std::env;
use std::fs;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use test_support::postgres::{self, PASSWORD_ROLE, PgServer, TEST_PASSWORD, TEST_ROLE};

/// Set in the child process that `a_killed_test_process_leaves_no_server_running` starts.
const HELPER_ENV: &str = "TEST_SUPPORT_PG_HELPER";

/// Whether a PostgreSQL process with this pid runs (a zombie, which nobody may reap in a
/// container, does not).
fn postgres_running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let Some((comm, rest)) = stat.split_once(") ") else {
            return false;
        };
        comm.ends_with("(postgres") && !rest.starts_with('Z')
    })
}

/// Whether `name` is a database of the server `witness` is on.
fn exists(witness: &postgres::PgDatabase, name: &str) -> bool {
    let count = witness.psql(&format!(
        "SELECT count(*) FROM pg_database WHERE datname = '{name}'"
    ));
    count.trim() == "1"
}

/// A child process killed if the test fails before it does.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits up to 10 s for `done`.
fn within_10s(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn databases_are_distinct_empty_and_dropped() {
    let test = "databases_are_distinct_empty_and_dropped";
    let Some(first) = postgres::database(test) else {
        return;
    };
    let second = postgres::database(test).unwrap();
    let witness = postgres::database(test).unwrap();
    assert_ne!(first.name(), second.name());
    assert_eq!(first.port(), second.port(), "one server per test process");
    for db in [&first, &second] {
        assert!(db.name().starts_with("t_"), "{}", db.name());
        assert!(db.name().ends_with(&format!("_{test}")), "{}", db.name());
        let url = format!(
            "postgres://vault_test@127.0.0.1:{}/{}",
            db.port(),
            db.name()
        );
        assert_eq!(db.url(), url);
        assert_eq!(
            db.psql("SELECT current_database(), 1"),
            format!("{}|1\n", db.name())
        );
        let owner = "SELECT pg_get_userbyid(datdba) FROM pg_database \
                     WHERE datname = current_database()";
        assert_eq!(db.psql(owner), format!("{TEST_ROLE}\n"));
        let tables = "SELECT count(*) FROM pg_class c JOIN pg_namespace n \
                      ON n.oid = c.relnamespace WHERE n.nspname = 'public'";
        assert_eq!(db.psql(tables), "0\n", "{} is not empty", db.name());
    }
    first.psql("CREATE TABLE only_in_first (x int); INSERT INTO only_in_first VALUES (1);");
    let error = second
        .client("psql")
        .args(["-X", "-c", "SELECT * FROM only_in_first"])
        .output()
        .unwrap();
    assert!(!error.status.success(), "{error:?}");

    let (first_name, second_name) = (first.name().to_owned(), second.name().to_owned());
    assert!(exists(&witness, &first_name));
    drop(first);
    assert!(!exists(&witness, &first_name));
    assert!(exists(&witness, &second_name));
    drop(second);
    assert!(!exists(&witness, &second_name));
}

#[test]
fn the_test_role_needs_no_password_and_the_password_role_needs_one() {
    let Some(db) =
        postgres::database("the_test_role_needs_no_password_and_the_password_role_needs_one")
    else {
        return;
    };
    let whoami = |user: &str, password: Option<&str>| {
        let mut psql = db.client("psql");
        psql.args(["-X", "-w", "-At", "-c", "SELECT current_user"])
            .env("PGUSER", user)
            .env_remove("PGPASSWORD");
        if let Some(password) = password {
            psql.env("PGPASSWORD", password);
        }
        psql.output().unwrap()
    };
    let trusted = whoami(TEST_ROLE, None);
    assert_eq!(
        String::from_utf8_lossy(&trusted.stdout),
        format!("{TEST_ROLE}\n")
    );
    let refused = whoami(PASSWORD_ROLE, None);
    assert!(!refused.status.success(), "{refused:?}");
    let wrong = whoami(PASSWORD_ROLE, Some("wrong"));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("password authentication failed"),
        "{wrong:?}"
    );
    let admitted = whoami(PASSWORD_ROLE, Some(TEST_PASSWORD));
    assert_eq!(
        String::from_utf8_lossy(&admitted.stdout),
        format!("{PASSWORD_ROLE}\n")
    );
    // What the password URL says works, and the role may do what the owner may.
    let url_login = db
        .client("psql")
        .args([
            "-X",
            "-w",
            "-d",
            &db.password_url(),
            "-c",
            "CREATE TABLE t (x int)",
        ])
        .env_remove("PGPASSWORD")
        .output()
        .unwrap();
    assert!(url_login.status.success(), "{url_login:?}");
}

/// On a server of its own: a restart of the shared one would disturb the tests beside it.
#[test]
fn data_survives_a_server_restart() {
    let Some(server) = PgServer::start("data_survives_a_server_restart") else {
        return;
    };
    let db = server.database();
    db.psql("CREATE TABLE kept (x int); INSERT INTO kept VALUES (42);");
    let pid = server.pid().unwrap();
    db.restart_server();
    assert_ne!(server.pid(), Some(pid), "a new postmaster");
    assert_eq!(db.psql("SELECT x FROM kept"), "42\n");
    assert_eq!(db.port(), server.port());

    server.stop();
    assert_eq!(server.pid(), None);
    within_10s("the stopped postmaster exits", || !postgres_running(pid));
    server.restart();
    assert_eq!(db.psql("SELECT x FROM kept"), "42\n");
}

#[test]
fn a_dropped_server_is_gone_with_its_directory() {
    let Some(server) = PgServer::start("a_dropped_server_is_gone_with_its_directory") else {
        return;
    };
    let db = server.database();
    assert_eq!(db.psql("SELECT 1"), "1\n");
    let pid = server.pid().unwrap();
    let data_dir = server.data_dir().to_owned();
    let root = data_dir.parent().unwrap().to_owned();
    assert!(postgres_running(pid));
    assert!(root.starts_with(env::temp_dir()), "{}", root.display());
    drop(db);
    drop(server);
    // pg_ctl stop -m fast waits for the postmaster; its children follow at once.
    assert!(
        !postgres_running(pid),
        "postmaster {pid} outlived its PgServer"
    );
    assert!(!root.exists(), "{} outlived its PgServer", root.display());
}

/// Runs `databases_are_distinct_empty_and_dropped` in this test binary with the programs
/// looked for in a directory that does not exist.
#[test]
fn without_postgresql_a_test_skips_loudly_or_fails_when_hardware_is_required() {
    test_support::assert_skip_rule(
        "databases_are_distinct_empty_and_dropped",
        "PostgreSQL",
        "/nonexistent/initdb is not an executable file",
        |command| {
            command.env(postgres::BIN_ENV, "/nonexistent");
        },
    );
}

/// Run by `a_killed_test_process_leaves_no_server_running` in a child process: starts the
/// shared server and one of its own, prints their postmasters' pids and directories, then
/// waits to be killed.
#[test]
fn helper_start_servers_and_wait() {
    if env::var_os(HELPER_ENV).is_none() {
        return;
    }
    let Some(db) = postgres::database("helper_start_servers_and_wait") else {
        return;
    };
    let shared_dir = db.psql("SHOW data_directory");
    let shared_dir = Path::new(shared_dir.trim());
    let pid_file = fs::read_to_string(shared_dir.join("postmaster.pid")).unwrap();
    println!(
        "server {} {}",
        pid_file.lines().next().unwrap(),
        shared_dir.display()
    );
    let own = PgServer::start("helper_start_servers_and_wait").unwrap();
    println!("server {} {}", own.pid().unwrap(), own.data_dir().display());
    println!("ready");
    thread::sleep(Duration::from_secs(600));
}

#[test]
fn a_killed_test_process_leaves_no_server_running() {
    if postgres::database("a_killed_test_process_leaves_no_server_running").is_none() {
        return;
    }
    let mut child = KillOnDrop(
        Command::new(env::current_exe().unwrap())
            .arg("helper_start_servers_and_wait")
            .args(test_support::child::CHILD_TEST_ARGS)
            .env(HELPER_ENV, "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut servers = Vec::new();
    for line in BufReader::new(child.0.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == "ready" {
            break;
        }
        // libtest may have written `test <name> ... ` at the start of the first line.
        let server = line
            .split_once("server ")
            .and_then(|(_, s)| s.split_once(' '));
        if let Some((pid, dir)) = server {
            servers.push((pid.parse::<u32>().unwrap(), dir.to_owned()));
        }
    }
    assert_eq!(
        servers.len(),
        2,
        "the helper did not start its servers: {servers:?}"
    );
    for (pid, _) in &servers {
        assert!(postgres_running(*pid), "postmaster {pid}");
    }
    child.0.kill().unwrap(); // SIGKILL: no destructor, no atexit.
    child.0.wait().unwrap();
    for (pid, dir) in servers {
        within_10s(
            &format!("postmaster {pid} outlived its test process"),
            || !postgres_running(pid),
        );
        let root = Path::new(&dir).parent().unwrap().to_owned();
        within_10s(
            &format!("{} outlived its test process", root.display()),
            || !root.exists(),
        );
    }
}
