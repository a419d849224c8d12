//! What the tests of `--kek auto` share: a TPM that does not answer, and the notes auto
//! prints for the candidates it skipped.

use std::net::TcpListener;

use crate::Vaultctl;

/// A swtpm TCTI on a local port nothing listens on (bound, then released), so auto finds
/// the TPM unreachable whatever this machine has in /dev/tpmrm0.
pub fn closed_tpm_tcti() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a free port")
        .port();
    format!("swtpm:host=127.0.0.1,port={port}")
}

/// The `note: auto: skipped ...` lines of a run's stderr, in order.
pub fn skip_notes(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|line| line.starts_with("note: auto: skipped "))
        .map(str::to_owned)
        .collect()
}

impl Vaultctl<'_> {
    /// From now on, every run has `tcti` as VAULTCTL_TPM_TCTI, with tpm2-tss's own log
    /// silenced (TSS2_LOG): a TPM that does not answer is what these runs expect, not news.
    pub fn set_tpm_tcti(&self, tcti: &str) {
        self.set_env("TSS2_LOG", "all+none");
        self.set_env("VAULTCTL_TPM_TCTI", tcti);
    }
}
