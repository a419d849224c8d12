//! The `vaultctl` binary for tests of other packages: cargo builds a package's binaries only for
//! that package's own tests.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The vaultctl binary of this build, as a hard link (or copy) named `vaultctl` in
/// `private_dir` (a directory the test owns, such as the token's private directory).
///
/// Under cargo (which sets `CARGO` for the tests it runs) `cargo build -p vaultctl` runs first,
/// once per process, into the target directory and profile this test executable was built for:
/// cargo builds a package's binaries only for that package's own tests, so under
/// `cargo test -p softhsm-tests` the binary could be missing or stale. The build is a no-op
/// when the binary is current (cargo holds no lock while tests run). Run directly, without
/// cargo, the test uses the binary that is there or fails saying how to build it.
///
/// The private link keeps this build's file: if the sources change during the run, another
/// test process's cargo relinks `<profile>/vaultctl` (a new file) while this one runs it.
/// Each call links into its own `private_dir` (once: a link already there is returned), so
/// tests of one process that each own a directory (one swtpm each, say) each get a link that
/// lives as long as their directory.
pub fn vaultctl_binary(private_dir: &Path) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let built = BUILT.get_or_init(build_vaultctl);
    let private = private_dir.join("vaultctl");
    if private.is_file() {
        return private;
    }
    let mut attempts = 0;
    loop {
        let linked = fs::hard_link(built, &private).or_else(|e| match e.kind() {
            ErrorKind::NotFound => Err(e),
            // Another thread of the test linked it meanwhile.
            ErrorKind::AlreadyExists => Ok(()),
            _ => fs::copy(built, &private).map(drop),
        });
        match linked {
            Ok(()) => return private,
            // Another cargo is putting a new build in place.
            Err(e) if e.kind() == ErrorKind::NotFound && attempts < 100 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!(
                "cannot link {} to {}: {e}",
                built.display(),
                private.display()
            ),
        }
    }
}

/// `<target dir>/<profile>/vaultctl`, built first when cargo runs the tests.
fn build_vaultctl() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    // <target dir>/<profile dir>/deps/<test executable>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable is in <target dir>/<profile>/deps");
    let binary = profile_dir.join("vaultctl");
    if let Some(cargo) = std::env::var_os("CARGO") {
        let target_dir = profile_dir
            .parent()
            .expect("the profile directory is in a target directory");
        let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
            Some("debug") => "dev",
            Some(name) => name,
            None => panic!("odd profile directory {}", profile_dir.display()),
        };
        let mut command = Command::new(cargo);
        // What cargo sets for the test it runs describes this package, not the build: build
        // scripts that watch such a variable (ring's watches CARGO_MANIFEST_DIR) would run
        // again, and everything above them would be rebuilt, in every later build.
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(set_by_cargo_for_tests) {
                command.env_remove(&name);
            }
        }
        let output = command
            .args(["build", "--quiet", "-p", "vaultctl", "--bin", "vaultctl"])
            .args(["--profile", profile])
            .arg("--manifest-path")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(target_dir)
            .stdin(Stdio::null())
            .output()
            .expect("cargo runs");
        assert!(
            output.status.success(),
            "`cargo build -p vaultctl` failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert!(
        binary.is_file(),
        "{} does not exist: run `cargo build -p vaultctl` first (or run these tests through \
         cargo, which builds it)",
        binary.display()
    );
    binary
}

/// The variables cargo sets for a test executable about its package and target.
fn set_by_cargo_for_tests(name: &str) -> bool {
    matches!(
        name,
        "CARGO_MANIFEST_DIR"
            | "CARGO_MANIFEST_PATH"
            | "CARGO_CRATE_NAME"
            | "CARGO_BIN_NAME"
            | "CARGO_PRIMARY_PACKAGE"
            | "CARGO_TARGET_TMPDIR"
            | "CARGO_RUSTC_CURRENT_DIR"
            | "OUT_DIR"
    ) || name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_BIN_EXE_")
}
