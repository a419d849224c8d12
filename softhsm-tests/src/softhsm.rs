//! [`SoftHsm`]: what a test needs to know about its private token.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::availability::softhsm_module_path;
use crate::reexec::FIXTURE_ENV;
use crate::uri::{Part, encode};

/// The environment variable SoftHSM reads, once, at `C_Initialize`, to find its configuration.
pub(crate) const SOFTHSM2_CONF: &str = "SOFTHSM2_CONF";

const TOKEN_LABEL: &str = "vault-test";
// Test PINs, but kept out of Debug all the same.
const USER_PIN: &str = "vault-user-pin-1234";
const SO_PIN: &str = "vault-so-pin-5678";

/// A private SoftHSM2 token with one initialised token, owned by one test process.
///
/// Inside the closure of [`in_private_token`](crate::in_private_token) the process's
/// `SOFTHSM2_CONF` already names [`conf`](Self::conf), so a PKCS#11 library loaded in the test
/// sees this token and nothing else; child processes inherit it, and [`command`](Self::command)
/// sets it explicitly too.
pub struct SoftHsm {
    dir: PathBuf,
    conf: PathBuf,
}

impl SoftHsm {
    /// Describes the token set up in `dir` (does not create anything).
    pub(crate) fn at(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            conf: dir.join("softhsm2.conf"),
        }
    }

    /// The configuration file, the value of `SOFTHSM2_CONF`.
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// The private directory (removed when the test ends); tests may create files in it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The token's label, `vault-test`.
    pub fn token_label(&self) -> &str {
        TOKEN_LABEL
    }

    /// The token's user PIN.
    pub fn user_pin(&self) -> &str {
        USER_PIN
    }

    /// The token's security officer PIN.
    pub fn so_pin(&self) -> &str {
        SO_PIN
    }

    /// The SoftHSM2 PKCS#11 module: `VAULT_SOFTHSM_MODULE` if set, else the installed one.
    pub fn module_path(&self) -> PathBuf {
        softhsm_module_path()
    }

    /// `<dir>/user.pin`: the user PIN (no newline), mode 0600, written at fixture setup.
    pub fn pin_file(&self) -> PathBuf {
        self.dir.join("user.pin")
    }

    /// A PKCS#11 URI (RFC 7512) for the object labelled `object` on this token, with the
    /// module and the PIN file:
    /// `pkcs11:token=vault-test;object=<object>?module-path=<module>&pin-source=file:<pin file>`.
    pub fn kek_uri(&self, object: &str) -> String {
        let module = self.module_path();
        let pin_source = format!("file:{}", self.pin_file().display());
        format!(
            "pkcs11:token={};object={}?module-path={}&pin-source={}",
            encode(self.token_label(), Part::Path),
            encode(object, Part::Path),
            encode(&module.to_string_lossy(), Part::Query),
            encode(&pin_source, Part::Query),
        )
    }

    /// `program` with `SOFTHSM2_CONF` naming this token's configuration (and without the
    /// variable that marks a fixture child, so a test binary started here makes its own token).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        command.env(SOFTHSM2_CONF, self.conf());
        // A test binary started from here must make its own token, not share this one.
        command.env_remove(FIXTURE_ENV);
        command
    }

    /// `pkcs11-tool --module <module>` (from OpenSC) with `SOFTHSM2_CONF` set.
    pub fn pkcs11_tool(&self) -> Command {
        let mut command = self.command("pkcs11-tool");
        command.arg("--module").arg(self.module_path());
        command
    }

    pub(crate) fn tokens_dir(&self) -> PathBuf {
        self.dir.join("tokens")
    }
}

impl fmt::Debug for SoftHsm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftHsm")
            .field("dir", &self.dir)
            .field("conf", &self.conf())
            .field("token_label", &self.token_label())
            .field("user_pin", &"[REDACTED]")
            .field("so_pin", &"[REDACTED]")
            .finish()
    }
}
