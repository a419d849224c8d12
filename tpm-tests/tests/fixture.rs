//! The fixture's own tests: swtpms start side by side and answer, PCR 16 can be broken and
//! restored, a restart keeps the TPM's state and a clear loses it, nothing keeps running after
//! the fixture is gone, and the skip rule holds.

use std::env;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use test_support::stdout_of;
use tpm_tests::Swtpm;

/// An NV index in the owner range for the tests' data.
const NV_INDEX: &str = "0x01500016";
const ZEROS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn run(command: &mut Command) -> Output {
    command.output().expect("run the command")
}

/// Eight random bytes from `tpm`, as 16 hex digits.
fn random_hex(tpm: &Swtpm) -> String {
    let hex = stdout_of(tpm.command("tpm2_getrandom").args(["8", "--hex"]));
    assert_eq!(hex.trim().len(), 16, "{hex:?}");
    hex.trim().to_owned()
}

/// Whether a swtpm process with this pid exists.
fn swtpm_running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "swtpm")
}

/// Runs `command` with `data` on its stdin; panics if it fails.
fn feed(command: &mut Command, data: &[u8]) {
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the command");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(data)
        .expect("write to its stdin");
    let output = child.wait_with_output().expect("the command ends");
    assert!(output.status.success(), "{command:?} failed: {output:?}");
}

/// Defines the test NV index (owner-authorised, 16 bytes) and writes `data` to it.
fn write_nv(tpm: &Swtpm, data: &str) {
    stdout_of(tpm.command("tpm2_nvdefine").args([
        NV_INDEX,
        "--hierarchy=o",
        "--size=16",
        "--attributes=ownerread|ownerwrite",
    ]));
    feed(
        tpm.command("tpm2_nvwrite")
            .args([NV_INDEX, "--hierarchy=o", "--input=-"]),
        data.as_bytes(),
    );
}

fn read_nv(tpm: &Swtpm, len: usize) -> Output {
    run(tpm
        .command("tpm2_nvread")
        .args([NV_INDEX, "--hierarchy=o", &format!("--size={len}")]))
}

#[test]
fn swtpms_started_side_by_side_each_answer() {
    let tpms: Vec<Option<Swtpm>> = thread::scope(|scope| {
        let starts: Vec<_> = (0..4).map(|_| scope.spawn(Swtpm::start)).collect();
        starts
            .into_iter()
            .map(|start| start.join().expect("start does not panic"))
            .collect()
    });
    let Some(tpms) = tpms.into_iter().collect::<Option<Vec<Swtpm>>>() else {
        return;
    };
    let mut ports: Vec<u16> = tpms
        .iter()
        .flat_map(|tpm| [tpm.port(), tpm.ctrl_port()])
        .collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 2 * tpms.len(), "{tpms:?}");
    let (low, high) = {
        let range = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .expect("read the ephemeral port range");
        let mut numbers = range.split_whitespace().map(|n| n.parse::<u16>().unwrap());
        (numbers.next().unwrap(), numbers.next().unwrap())
    };
    for tpm in &tpms {
        for port in [tpm.port(), tpm.ctrl_port()] {
            assert!(!(low..=high).contains(&port), "{port} is ephemeral");
            assert!(![35963, 35964].contains(&port), "{port} is vpcd's");
        }
        assert_eq!(
            tpm.tcti(),
            format!("swtpm:host=127.0.0.1,port={}", tpm.port())
        );
        assert!(tpm.state_dir().join("tpm2-00.permall").is_file());
        assert!(tpm.dir().is_dir());
        assert!(tpm.state_dir().starts_with(tpm.dir()));
        println!("{}: started in {:?}", tpm.tcti(), tpm.started_in());
    }
    // Each answers, at the same time as the others.
    let randoms: Vec<String> = thread::scope(|scope| {
        let calls: Vec<_> = tpms
            .iter()
            .map(|tpm| scope.spawn(|| random_hex(tpm)))
            .collect();
        calls.into_iter().map(|call| call.join().unwrap()).collect()
    });
    let mut distinct = randoms.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), randoms.len(), "{randoms:?}");
}

#[test]
fn pcr16_extend_changes_it_and_reset_restores_zeros() {
    let Some(tpm) = Swtpm::start() else { return };
    assert_eq!(tpm.pcr16(), ZEROS);
    tpm.extend_pcr16(b"abc");
    // SHA-256(zeros || SHA-256("abc")), as the TPM computed it when this test was written.
    let once = "589f9ffed4c477966bfb8d41f37895b08c69047df8f911d6f3b57fbe08faee8d";
    assert_eq!(tpm.pcr16(), once);
    tpm.extend_pcr16(b"abc");
    let twice = tpm.pcr16();
    assert_ne!(twice, once);
    assert_ne!(twice, ZEROS);
    tpm.reset_pcr16();
    assert_eq!(tpm.pcr16(), ZEROS);
    // The other banks' PCR 16 were left alone by the SHA-256 extends.
    let sha1 = stdout_of(tpm.command("tpm2_pcrread").arg("sha1:16"));
    assert!(
        sha1.contains(&format!("16: 0x{}", "0".repeat(40))),
        "{sha1}"
    );
}

#[test]
fn restart_keeps_the_state_and_clear_loses_it() {
    let Some(mut tpm) = Swtpm::start() else {
        return;
    };
    let (port, tcti) = (tpm.port(), tpm.tcti());
    write_nv(&tpm, "survives reboots");
    tpm.extend_pcr16(b"boot 1");
    let first_pid = tpm.pid();

    tpm.restart();
    assert_eq!((tpm.port(), tpm.tcti()), (port, tcti.clone()));
    assert_ne!(tpm.pid(), first_pid);
    assert!(!swtpm_running(first_pid));
    println!("restart: ready in {:?}", tpm.started_in());
    let read = read_nv(&tpm, 16);
    assert!(read.status.success(), "{read:?}");
    assert_eq!(read.stdout, b"survives reboots");
    // A reboot: TPM2_Startup(CLEAR) resets the PCRs.
    assert_eq!(tpm.pcr16(), ZEROS);
    assert_eq!(tpm.lockout_counter(), 0);

    tpm.crash_restart();
    assert_eq!(read_nv(&tpm, 16).stdout, b"survives reboots");

    tpm.clear();
    assert_eq!(tpm.tcti(), tcti);
    println!("clear: ready in {:?}", tpm.started_in());
    let read = read_nv(&tpm, 16);
    assert!(!read.status.success(), "{read:?}");
    let public = stdout_of(&mut tpm.command("tpm2_nvreadpublic"));
    assert!(!public.contains("0x1500016"), "{public}");
    // The new TPM works: the index can be defined again.
    write_nv(&tpm, "a new TPM");
    assert_eq!(read_nv(&tpm, 9).stdout, b"a new TPM");
}

/// The trap `crash_restart` documents: a TPM stopped without TPM2_Shutdown after a
/// DA-protected authorisation counts a dictionary-attack failure; `restart` shuts it down first
/// and does not.
#[test]
fn only_a_crash_after_da_protected_use_counts_a_lockout_failure() {
    let Some(mut tpm) = Swtpm::start() else {
        return;
    };
    // An index authorised by its own (empty) auth value and without noDA: DA-protected.
    stdout_of(tpm.command("tpm2_nvdefine").args([
        NV_INDEX,
        "--hierarchy=o",
        "--size=8",
        "--attributes=authread|authwrite",
    ]));
    let use_index = |tpm: &Swtpm| {
        stdout_of(
            tpm.command("tpm2_nvread")
                .args([NV_INDEX, "--size=8", "--hierarchy", NV_INDEX]),
        );
    };
    feed(
        tpm.command("tpm2_nvwrite")
            .args([NV_INDEX, "--hierarchy", NV_INDEX, "--input=-"]),
        b"8 bytes!",
    );

    use_index(&tpm);
    tpm.restart();
    assert_eq!(tpm.lockout_counter(), 0);
    // No DA-protected use since the last startup: a crash is harmless.
    tpm.crash_restart();
    assert_eq!(tpm.lockout_counter(), 0);
    use_index(&tpm);
    tpm.crash_restart();
    assert_eq!(tpm.lockout_counter(), 1);
}

#[test]
fn drop_leaves_no_swtpm_running() {
    let Some(tpm) = Swtpm::start() else { return };
    let (pid, dir) = (tpm.pid(), tpm.dir().to_owned());
    let mode = fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{}", dir.display());
    assert!(swtpm_running(pid), "no swtpm with pid {pid}");
    let debug = format!("{tpm:?}");
    assert!(debug.contains(&tpm.tcti()), "{debug}");
    drop(tpm);
    assert!(!swtpm_running(pid), "swtpm {pid} still runs");
    assert!(!fs::exists(format!("/proc/{pid}")).unwrap(), "pid {pid}");
    assert!(!dir.exists());
}

/// Run by `a_test_process_that_dies_leaves_no_swtpm_running` in a child process: starts a
/// swtpm, prints its pid and exits without running any destructor.
#[test]
fn helper_start_and_exit_abruptly() {
    if env::var_os("TPM_TESTS_EXIT_ABRUPTLY").is_none() {
        return;
    }
    let Some(tpm) = Swtpm::start() else { return };
    println!("swtpm pid {}", tpm.pid());
    println!("swtpm dir {}", tpm.dir().display());
    std::io::stdout().flush().unwrap();
    std::process::exit(0);
}

#[test]
fn a_test_process_that_dies_leaves_no_swtpm_running() {
    if !tpm_tests::swtpm_available() {
        return;
    }
    let output = run(Command::new(env::current_exe().unwrap())
        .args([
            "helper_start_and_exit_abruptly",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TPM_TESTS_EXIT_ABRUPTLY", "1"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let pid: u32 = stdout
        .lines()
        .find_map(|line| line.split_once("swtpm pid ").map(|(_, pid)| pid.trim()))
        .unwrap_or_else(|| panic!("no pid in the child's output: {output:?}"))
        .parse()
        .unwrap();
    // Nothing removed the directory; the watchdog is about processes.
    let dir = stdout
        .lines()
        .find_map(|line| line.split_once("swtpm dir ").map(|(_, dir)| dir.trim()))
        .unwrap_or_else(|| panic!("no dir in the child's output: {output:?}"));
    fs::remove_dir_all(dir).unwrap();
    // The watchdog kills swtpm when the pipe from the dead process closes.
    let deadline = Instant::now() + Duration::from_secs(5);
    while swtpm_running(pid) {
        assert!(Instant::now() < deadline, "swtpm {pid} outlived its test");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `drop_leaves_no_swtpm_running` in this test binary with swtpm pointed at a file that
/// does not exist, so it counts as missing.
#[test]
fn without_swtpm_a_test_skips_loudly_or_fails_when_hardware_is_required() {
    test_support::assert_skip_rule(
        "drop_leaves_no_swtpm_running",
        "swtpm",
        "/nonexistent/swtpm is not an executable file or on PATH",
        |command| {
            command.env("VAULT_SWTPM", "/nonexistent/swtpm");
        },
    );
}

/// Runs `drop_leaves_no_swtpm_running` in this test binary with `VAULT_SWTPM` naming a shell
/// script (`body`) that stands in for swtpm; the script finds itself as `$0`.
fn run_with_fake_swtpm(dir: &std::path::Path, body: &str) -> Output {
    let script = dir.join("fake-swtpm");
    fs::write(&script, format!("#!/bin/sh\n{body}\n")).expect("write the script");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod the script");
    run(Command::new(env::current_exe().expect("current exe"))
        .args([
            "drop_leaves_no_swtpm_running",
            "--exact",
            "--test-threads=1",
        ])
        .env("VAULT_SWTPM", &script)
        .env_remove("VAULT_REQUIRE_HW"))
}

/// Another program taking the port between the check and swtpm's bind makes swtpm exit saying
/// so; the fixture tries other ports.
#[test]
fn a_port_taken_under_swtpm_is_retried_elsewhere() {
    if !tpm_tests::swtpm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = run_with_fake_swtpm(
        dir.path(),
        r#"n=$(cat "$0.count" 2>/dev/null || echo 0)
echo $((n + 1)) > "$0.count"
if [ "$n" -lt 2 ]; then
    echo "swtpm: Could not open TCP socket: Address already in use" >&2
    exit 1
fi
exec swtpm "$@""#,
    );
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("1 passed"),
        "{output:?}"
    );
    let count = fs::read_to_string(dir.path().join("fake-swtpm.count")).unwrap();
    assert_eq!(count.trim(), "3");
}

#[test]
fn a_swtpm_that_exits_fails_the_test_with_its_stderr() {
    if !tpm_tests::swtpm_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = run_with_fake_swtpm(dir.path(), "echo 'swtpm: no such option' >&2\nexit 3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("tpm-tests: swtpm did not start: it exited (exit status: 3)")
            && stdout.contains("--- swtpm stderr ---\nswtpm: no such option"),
        "{stdout}"
    );
}
