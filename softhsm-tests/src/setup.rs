//! Creating a private token: directory, configuration, PIN file, `softhsm2-util --init-token`.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;

use tempfile::TempDir;

use test_support::child::show_output;

use crate::softhsm::SoftHsm;

/// A private token directory with an initialised token; removed on drop.
pub(crate) struct PrivateToken {
    // Dropped after `hsm`, which only names paths inside it.
    hsm: SoftHsm,
    _dir: TempDir,
}

impl PrivateToken {
    /// Creates the directory (mode 0700), `softhsm2.conf`, `tokens/` and `user.pin`, and
    /// initialises one token with [`SoftHsm`]'s label and PINs. Panics with what went wrong.
    #[track_caller]
    pub(crate) fn create() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("vault-softhsm-")
            .tempdir()
            .unwrap_or_else(|e| panic!("softhsm-tests: cannot create a private token dir: {e}"));
        let hsm = SoftHsm::at(dir.path());
        let tokens = hsm.tokens_dir();
        fs::create_dir(&tokens)
            .unwrap_or_else(|e| panic!("softhsm-tests: cannot create {}: {e}", tokens.display()));
        // An unset or unreadable SOFTHSM2_CONF would silently fall back to the system token
        // dir, so every setting the tests rely on is written out.
        let conf = format!(
            "directories.tokendir = {}/\n\
             objectstore.backend = file\n\
             log.level = ERROR\n\
             slots.removable = false\n",
            tokens.display()
        );
        fs::write(hsm.conf(), conf).unwrap_or_else(|e| {
            panic!("softhsm-tests: cannot write {}: {e}", hsm.conf().display())
        });
        write_pin_file(&hsm);
        init_token(&hsm);
        Self { hsm, _dir: dir }
    }

    pub(crate) fn hsm(&self) -> &SoftHsm {
        &self.hsm
    }
}

#[track_caller]
fn write_pin_file(hsm: &SoftHsm) {
    let path = hsm.pin_file();
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut file| file.write_all(hsm.user_pin().as_bytes()))
        .unwrap_or_else(|e| panic!("softhsm-tests: cannot write {}: {e}", path.display()));
}

#[track_caller]
fn init_token(hsm: &SoftHsm) {
    let output = hsm
        .command("softhsm2-util")
        .args(["--init-token", "--free", "--label", hsm.token_label()])
        .args(["--pin", hsm.user_pin(), "--so-pin", hsm.so_pin()])
        .output()
        .unwrap_or_else(|e| panic!("softhsm-tests: cannot run softhsm2-util: {e}"));
    if !output.status.success() {
        panic!(
            "softhsm-tests: softhsm2-util --init-token failed ({}) with SOFTHSM2_CONF={}\n{}",
            output.status,
            hsm.conf().display(),
            show_output(&output)
        );
    }
}
