//! Test support for the YubiKey PIV KEK provider: the emulated card (from `piv-card`) and a
//! PIN file for the KEK URIs that name it.
//!
//! Without pcscd or vsmartcard-vpcd a test skips, saying so on stderr, unless
//! `VAULT_REQUIRE_HW` is set, when it fails (the rule of `piv-card`'s fixture).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::fs;
use std::path::Path;

pub use piv_card::{DEFAULT_PIN, PivCards};

/// A PIN file in a private directory, removed on drop.
#[derive(Debug)]
pub struct PinFile {
    dir: tempfile::TempDir,
}

impl PinFile {
    /// A file holding `pin` (followed by a newline).
    pub fn new(pin: &[u8]) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut content = pin.to_vec();
        content.push(b'\n');
        fs::write(dir.path().join("pin"), content).expect("write the PIN file");
        Self { dir }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The KEK URI of `slot` on the card `serial` (none: the only card), PIN from this file.
    pub fn uri(&self, serial: Option<u32>, slot: &str) -> String {
        let pin = self.dir.path().join("pin");
        match serial {
            Some(serial) => format!(
                "yubikey:serial={serial};slot={slot};pin-source=file:{}",
                pin.display()
            ),
            None => format!("yubikey:slot={slot};pin-source=file:{}", pin.display()),
        }
    }
}
