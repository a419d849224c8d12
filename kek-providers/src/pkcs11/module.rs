//! Loading PKCS#11 modules: one `C_Initialize` per module per process, shared by every KEK
//! on it (a second `C_Initialize` fails, and two contexts would fight over logins).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use envelope::SecretBytes;

use super::call::call_error;
use crate::Error;

/// Where `module-name=NAME` is looked for, as `NAME`, `NAME.so` or `libNAME.so`.
const MODULE_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/pkcs11",
    "/usr/lib/aarch64-linux-gnu/pkcs11",
    "/usr/lib/pkcs11",
    "/usr/lib64/pkcs11",
    "/usr/lib/softhsm",
    "/usr/local/lib/softhsm",
    "/usr/local/lib/pkcs11",
];

/// The module for `module-path`, or found by `module-name`.
pub(super) fn resolve(path: Option<&Path>, name: Option<&str>) -> Result<PathBuf, Error> {
    if let Some(path) = path {
        return Ok(path.to_path_buf());
    }
    let Some(name) = name else {
        return Err(Error::Pkcs11InvalidUri {
            reason: "a KEK URI names its module: add ?module-path=/path/to/module.so \
                     (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so) or ?module-name=NAME"
                .into(),
        });
    };
    if name.contains('/') {
        return Err(Error::Pkcs11InvalidAttribute {
            name: "module-name",
            reason: "is a name, not a path; give a path with module-path=".into(),
        });
    }
    let candidates = [
        name.to_owned(),
        format!("{name}.so"),
        format!("lib{name}.so"),
    ];
    MODULE_DIRS
        .iter()
        .flat_map(|dir| candidates.iter().map(move |file| Path::new(dir).join(file)))
        .find(|path| path.is_file())
        .ok_or_else(|| Error::Pkcs11Module {
            path: PathBuf::from(name),
            reason: format!(
                "no module of that name in {}; give its path with module-path=",
                MODULE_DIRS.join(", ")
            ),
        })
}

/// The initialised context of the module at `path`, loading it on first use.
pub(super) fn load(path: &Path) -> Result<Pkcs11, Error> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut modules = MODULES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(context) = modules.get(path) {
        return Ok(context.clone());
    }
    let failed = |reason: String| Error::Pkcs11Module {
        path: path.to_path_buf(),
        reason,
    };
    if !path.is_file() {
        return Err(failed("no such file".into()));
    }
    let context = Pkcs11::new(path).map_err(|e| failed(e.to_string()))?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Initialised by other code in this process: its context is usable as well.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(call_error(e)),
    }
    modules.insert(path.to_path_buf(), context.clone());
    Ok(context)
}

/// SHA-256 of the PIN this process logged in to each token (module, slot) with, in locked
/// memory. A token that is already logged in answers C_Login with CKR_USER_ALREADY_LOGGED_IN
/// without checking the PIN, so a second KEK on the token compares its PIN with this instead:
/// a mistyped PIN must fail when the KEK is opened, not at the next token reset.
type Logins = HashMap<(PathBuf, u64), SecretBytes>;

fn logins() -> MutexGuard<'static, Logins> {
    static LOGINS: OnceLock<Mutex<Logins>> = OnceLock::new();
    LOGINS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

fn pin_digest(pin: &[u8]) -> Result<SecretBytes, Error> {
    Ok(SecretBytes::from_slice(
        ring::digest::digest(&ring::digest::SHA256, pin).as_ref(),
    )?)
}

/// Records that `pin` logged this process in to the token in `slot` of `module`.
pub(super) fn remember_login(module: &Path, slot: u64, pin: &[u8]) -> Result<(), Error> {
    let digest = pin_digest(pin)?;
    logins().insert((module.to_path_buf(), slot), digest);
    Ok(())
}

/// Whether `pin` is the one this process logged in with; `None` when the login was not made
/// by this provider (nothing to compare with).
pub(super) fn is_login_pin(module: &Path, slot: u64, pin: &[u8]) -> Result<Option<bool>, Error> {
    let digest = pin_digest(pin)?;
    Ok(logins()
        .get(&(module.to_path_buf(), slot))
        .map(|known| known == &digest))
}
