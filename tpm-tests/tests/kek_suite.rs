//! The compliance KEK suite on the TPM KEK, on a private swtpm per test: with the transient
//! ECC P-256 primary as storage root key, bound to PCR 16 (`pcrs=sha256:16`), under an SRK
//! persisted at `srk=0x81000001` (made by `persist_srk`, what `vaultctl kek create` runs), and
//! with salted sessions and parameter encryption (`encrypt`).
//!
//! The suite's fixture makes a KEK from a test directory; here the directory is not used:
//! `create` opens the `tpm2:` URI on the test's swtpm, `reopen` opens it again (a new
//! instance, which shares the process's context for that TPM), and `other` opens a KEK of
//! another label on the same TPM.
//!
//! `secrets`: a TPM KEK's key material never leaves the TPM, and its URI holds nothing secret;
//! the one secret a `tpm2:` URI can bring is the owner hierarchy's authorisation
//! (`owner-auth=file:PATH`), which the provider reads to make the primary SRK and to persist
//! it. So each test gives its swtpm an owner password (`tpm2_changeauth -c owner`), every URI
//! here names the file holding it, and `secrets` returns it: the KEK's `Debug` must show
//! neither it nor a DEK it wrapped (the suite adds the DEK itself). An empty list would make
//! the suite's Debug check vacuous, and it refuses one.
#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use envelope::KekProvider;
use kek_providers::tpm::{self, Persisted};
use tpm_tests::Swtpm;

/// The persistent handle of the third variant's SRK.
const SRK_HANDLE: &str = "0x81000001";

/// The test's swtpm, as the fixture closures need it.
struct Tpm {
    tcti: String,
    owner_auth_file: PathBuf,
    owner_auth: String,
}

thread_local! {
    /// Set by [`on_swtpm`] for the test body, which runs on the test's own thread.
    static TPM: RefCell<Option<Tpm>> = const { RefCell::new(None) };
}

/// 16 random bytes from the kernel, as hex.
fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The suites' runner: starts a swtpm for the test, gives its owner hierarchy a password,
/// writes it to a 0600 file in the swtpm's private directory, and runs the body with both.
fn on_swtpm(body: impl FnOnce()) {
    let Some(swtpm) = Swtpm::start() else { return };
    let owner_auth = format!("owner-{}", random_hex());
    let output = swtpm
        .command("tpm2_changeauth")
        .args(["--object-context=owner", &owner_auth])
        .output()
        .expect("run tpm2_changeauth");
    assert!(
        output.status.success(),
        "tpm2_changeauth failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let owner_auth_file = swtpm.dir().join("owner.auth");
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&owner_auth_file)
        .and_then(|mut f| f.write_all(owner_auth.as_bytes()))
        .expect("write the owner password file");
    TPM.with_borrow_mut(|tpm| {
        *tpm = Some(Tpm {
            tcti: swtpm.tcti(),
            owner_auth_file,
            owner_auth,
        })
    });
    body();
    TPM.with_borrow_mut(|tpm| *tpm = None);
}

/// `tpm2:tcti=<the test's swtpm>;owner-auth=file:<its password file>;label=<label><extra>`.
fn uri(label: &str, extra: &str) -> String {
    TPM.with_borrow(|tpm| {
        let tpm = tpm.as_ref().expect("the fixture runs inside on_swtpm");
        format!(
            "tpm2:tcti={};owner-auth=file:{};label={label}{extra}",
            tpm.tcti,
            tpm.owner_auth_file.display()
        )
    })
}

fn owner_auth(_: &Path) -> Vec<Vec<u8>> {
    TPM.with_borrow(|tpm| {
        let tpm = tpm.as_ref().expect("the fixture runs inside on_swtpm");
        vec![tpm.owner_auth.as_bytes().to_vec()]
    })
}

/// Opens the KEK `uri` names and checks what it says about itself.
fn open(uri: &str) -> Arc<dyn KekProvider> {
    let kek = tpm::open_kek(uri).unwrap_or_else(|e| panic!("open {uri}: {e}"));
    let assurance = kek.assurance();
    assert!(!assurance.hardware, "swtpm is a simulator: {assurance:?}");
    assert!(assurance.non_exportable, "{assurance:?}");
    assert_eq!(
        assurance.platform_bound,
        uri.contains(";pcrs="),
        "{assurance:?}"
    );
    Arc::new(kek)
}

/// Persists the SRK at [`SRK_HANDLE`] (a fresh TPM has none there) and opens the KEK.
fn persist_and_open(uri: &str) -> Arc<dyn KekProvider> {
    match tpm::persist_srk(uri) {
        Ok(Persisted::Now { handle, .. }) => assert_eq!(handle, 0x8100_0001),
        other => panic!("persist_srk({uri}): {other:?}, expected a new SRK"),
    }
    open(uri)
}

compliance::kek_suite!(transient_primary,
    create: |_: &Path| open(&uri("suite", "")),
    reopen: |_: &Path| open(&uri("suite", "")),
    other: |_: &Path| open(&uri("other", "")),
    secrets: owner_auth,
    run: on_swtpm,
);

compliance::kek_suite!(pcr16_bound,
    create: |_: &Path| open(&uri("suite", ";pcrs=sha256:16")),
    reopen: |_: &Path| open(&uri("suite", ";pcrs=sha256:16")),
    other: |_: &Path| open(&uri("other", ";pcrs=sha256:16")),
    secrets: owner_auth,
    run: on_swtpm,
);

compliance::kek_suite!(persisted_srk,
    create: |_: &Path| persist_and_open(&uri("suite", &format!(";srk={SRK_HANDLE}"))),
    reopen: |_: &Path| open(&uri("suite", &format!(";srk={SRK_HANDLE}"))),
    other: |_: &Path| open(&uri("other", &format!(";srk={SRK_HANDLE}"))),
    secrets: owner_auth,
    run: on_swtpm,
);

compliance::kek_suite!(encrypted_sessions,
    create: |_: &Path| open(&uri("suite", ";encrypt")),
    reopen: |_: &Path| open(&uri("suite", ";encrypt")),
    other: |_: &Path| open(&uri("other", ";encrypt")),
    secrets: owner_auth,
    run: on_swtpm,
);
