//! The compliance store suite through a vault whose root KEK is the TPM KEK, on the SQLite
//! store, on a private swtpm per test: with the transient ECC P-256 primary, and with a
//! persisted SRK and PCR 16 binding.
//!
//! The KEK is built the way `vaultctl` builds it, through the registry
//! (`kek_providers::open`), so the vault pins the canonical `tpm2:` URI; the vault picks its
//! default wrap mode for it (tiered: the TPM is a device KEK).
#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::path::Path;

use kek_providers::KekEnv;
use tpm_tests::Swtpm;

thread_local! {
    /// The TCTI of the test's swtpm, set by the runner for the body (run on the test's thread).
    static TCTI: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The suite's runner: the body runs with a swtpm of its own.
fn on_swtpm(body: impl FnOnce()) {
    let Some(swtpm) = Swtpm::start() else { return };
    TCTI.with_borrow_mut(|tcti| *tcti = Some(swtpm.tcti()));
    body();
    TCTI.with_borrow_mut(|tcti| *tcti = None);
}

fn tcti() -> String {
    TCTI.with_borrow(|tcti| tcti.clone().expect("the fixture runs inside on_swtpm"))
}

/// The vault's root KEK: `tpm2:tcti=<the test's swtpm><extra>`, opened through the registry.
fn tpm_kek(vault_dir: &Path, extra: &str) -> vault::Kek {
    let uri = format!("tpm2:tcti={}{extra}", tcti());
    let built = kek_providers::open(&uri, &KekEnv { vault_dir })
        .unwrap_or_else(|e| panic!("open the TPM KEK {uri}: {e}"));
    // The canonical form spells the default label out.
    assert_eq!(built.uri, format!("{uri};label=tpm"));
    assert_eq!(built.provider.id().to_string(), "tpm2:tpm#v1");
    assert!(
        !built.provider.computes_in_process(),
        "a TPM KEK calls out of the process"
    );
    vault::Kek {
        uri: built.uri,
        provider: built.provider,
    }
}

fn transient_primary(vault_dir: &Path) -> vault::Kek {
    tpm_kek(vault_dir, "")
}

/// Persists the SRK first (as `vaultctl kek create` does), then opens the KEK bound to PCR 16.
fn persisted_srk_and_pcr16(vault_dir: &Path) -> vault::Kek {
    let uri = format!("tpm2:tcti={};srk=0x81000001", tcti());
    kek_providers::tpm::persist_srk(&uri).unwrap_or_else(|e| panic!("persist the SRK: {e}"));
    tpm_kek(vault_dir, ";srk=0x81000001;pcrs=sha256:16")
}

compliance::store_suite!(sqlite_on_tpm, vault::StoreKind::Sqlite, durable,
    kek: transient_primary,
    run: on_swtpm,
);

compliance::store_suite!(sqlite_on_tpm_persisted_srk_pcr16, vault::StoreKind::Sqlite, durable,
    kek: persisted_srk_and_pcr16,
    run: on_swtpm,
);
