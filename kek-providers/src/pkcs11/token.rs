//! One token as the vault uses it: the slot found by the URI's token attributes, a pool of
//! logged-in sessions (one per concurrent caller), and the key's object handle. After a
//! session or login is lost (token reset, HSM restarted, another application logged out)
//! the pool starts over and the call is retried a bounded number of times.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::RawAuthPin;

use super::call::{call_error, is_recoverable, rv_name};
use super::module;
use super::spec::{Pin, Pkcs11KekSpec};
use crate::Error;

/// Pauses before the 2nd and 3rd attempt of a call whose session was lost.
const RETRY_BACKOFF: [Duration; 2] = [Duration::from_millis(20), Duration::from_millis(200)];

/// A token and the pool of sessions on it.
#[derive(Debug)]
pub(super) struct Token {
    context: Pkcs11,
    module: PathBuf,
    spec: Pkcs11KekSpec,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Bumped whenever the pool starts over; sessions of an older generation are dropped.
    generation: u64,
    slot: Option<Slot>,
    logged_in: bool,
    /// The token refused the PIN: no more logins until the KEK is opened again, so that a
    /// wrong PIN is never repeated until the token locks.
    pin_refused: Option<String>,
    key: Option<ObjectHandle>,
    idle: Vec<Session>,
}

/// Whether a call needs the key on the token (every call but `kek create`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NeedKey {
    Yes,
    No,
}

impl Token {
    /// Loads the module and connects: finds the token, opens a session and logs in.
    pub(super) fn connect(spec: Pkcs11KekSpec) -> Result<Self, Error> {
        let (path, name) = spec.module();
        let module = module::resolve(path, name)?;
        let context = module::load(&module)?;
        if matches!(spec.pin, Pin::Value(_)) {
            log::warn!(
                "the PIN for PKCS#11 token {} is given with pin-value in the KEK URI, where \
                 process listings, shell history and configuration files show it; use \
                 pin-source=file:/path instead (the vault never stores pin-value)",
                spec.token_name()
            );
        }
        let token = Self {
            context,
            module,
            spec,
            state: Mutex::new(State::default()),
        };
        token.with_session(NeedKey::No, |_, _| Ok(()))?;
        Ok(token)
    }

    /// The URI this token was opened from.
    pub(super) fn spec(&self) -> &Pkcs11KekSpec {
        &self.spec
    }

    /// The module's context (for slot and token information).
    pub(super) fn context(&self) -> &Pkcs11 {
        &self.context
    }

    /// Runs `call` on a pooled, logged-in session (with the key's handle when `need` says so),
    /// starting the pool over and retrying when the session or login was lost.
    pub(super) fn with_session<T>(
        &self,
        need: NeedKey,
        mut call: impl FnMut(&Session, Option<ObjectHandle>) -> Result<T, CkError>,
    ) -> Result<T, Error> {
        let mut attempt = 0;
        loop {
            let retry = attempt < RETRY_BACKOFF.len();
            let (session, key, generation) = match self.checkout(need) {
                Ok(checked_out) => checked_out,
                Err(Failure::Call(e)) if retry && is_recoverable(&e) => {
                    self.start_over(None);
                    self.pause(&e, attempt);
                    attempt += 1;
                    continue;
                }
                Err(failure) => return Err(failure.into()),
            };
            match call(&session, key) {
                Ok(value) => {
                    self.checkin(session, generation);
                    return Ok(value);
                }
                Err(e) if retry && (is_recoverable(&e) || login_lost(&session, &e)) => {
                    drop(session);
                    self.start_over(Some(generation));
                    self.pause(&e, attempt);
                    attempt += 1;
                }
                Err(e) => {
                    self.checkin(session, generation);
                    return Err(call_error(e));
                }
            }
        }
    }

    /// Logs a lost session or login and waits before the next attempt.
    fn pause(&self, error: &CkError, attempt: usize) {
        let what = match error {
            CkError::Pkcs11(rv, function) => format!("C_{function:?} returned {}", rv_name(*rv)),
            other => other.to_string(),
        };
        log::info!(
            "PKCS#11 token {}: {what}; reopening sessions",
            self.spec.token_name()
        );
        std::thread::sleep(RETRY_BACKOFF[attempt]);
    }

    /// The slot of the token, found again after every start-over (slot ids can change when
    /// a token is re-initialised or an HSM restarts).
    pub(super) fn slot(&self) -> Result<Slot, Error> {
        let mut state = self.lock();
        self.find_slot(&mut state)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn checkout(&self, need: NeedKey) -> Result<(Session, Option<ObjectHandle>, u64), Failure> {
        let mut state = self.lock();
        if let Some(rv) = &state.pin_refused {
            return Err(self.pin_error(rv.clone()).into());
        }
        let slot = self.find_slot(&mut state)?;
        let session = match state.idle.pop() {
            Some(session) => session,
            None => self.context.open_rw_session(slot)?,
        };
        if !state.logged_in {
            self.login(&session, &mut state)?;
        }
        let key = match (need, state.key) {
            (NeedKey::No, _) => None,
            (NeedKey::Yes, Some(key)) => Some(key),
            (NeedKey::Yes, None) => {
                let key = self.find_key(&session)?;
                state.key = Some(key);
                Some(key)
            }
        };
        Ok((session, key, state.generation))
    }

    fn checkin(&self, session: Session, generation: u64) {
        let mut state = self.lock();
        if state.generation == generation {
            state.idle.push(session);
        }
    }

    /// Drops every pooled session (closing the last one logs the token out) and forgets the
    /// slot and key handle, unless another caller already started over since `generation`
    /// (`None`: whatever the generation).
    fn start_over(&self, generation: Option<u64>) {
        let mut state = self.lock();
        if generation.is_none_or(|g| g == state.generation) {
            state.generation += 1;
            state.idle.clear();
            state.slot = None;
            state.key = None;
            state.logged_in = false;
        }
    }

    fn find_slot(&self, state: &mut State) -> Result<Slot, Error> {
        if let Some(slot) = state.slot {
            return Ok(slot);
        }
        let slot = super::slots::find(&self.context, &self.spec)?;
        state.slot = Some(slot);
        Ok(slot)
    }

    fn login(&self, session: &Session, state: &mut State) -> Result<(), Error> {
        let slot = self.find_slot(state)?;
        let pin = match &self.spec.pin {
            Pin::Source(source) => Some(
                source
                    .read("PKCS#11 token PIN: ")
                    .map_err(|e| self.pin_source_error(e))?,
            ),
            Pin::Value(value) => Some(value.try_clone()?),
            Pin::None => None,
        };
        let Some(pin) = pin else {
            let info = self.context.get_token_info(slot).map_err(call_error)?;
            if info.login_required() {
                return Err(Error::Pkcs11PinNeeded {
                    token: self.spec.token_name(),
                });
            }
            state.logged_in = true;
            return Ok(());
        };
        let raw = RawAuthPin::new(Box::new(pin.expose_secret().to_vec()));
        let refused = match session.login_with_raw(UserType::User, &raw) {
            Ok(()) => {
                module::remember_login(&self.module, slot.id(), pin.expose_secret())?;
                None
            }
            // The token is logged in already (another KEK on it in this process) and did
            // not look at this PIN: compare it with the one that logged in.
            Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {
                match module::is_login_pin(&self.module, slot.id(), pin.expose_secret())? {
                    Some(false) => {
                        Some("a PIN other than the one this process logged in with".to_owned())
                    }
                    Some(true) | None => None,
                }
            }
            Err(CkError::Pkcs11(
                rv @ (RvError::PinIncorrect
                | RvError::PinLocked
                | RvError::PinExpired
                | RvError::PinInvalid
                | RvError::PinLenRange),
                _,
            )) => Some(rv_name(rv)),
            Err(e) => return Err(call_error(e)),
        };
        match refused {
            None => {
                state.logged_in = true;
                Ok(())
            }
            Some(why) => {
                state.pin_refused = Some(why.clone());
                Err(self.pin_error(why))
            }
        }
    }

    /// A PIN source that cannot be read, in PIN terms (the sources are shared with
    /// passphrases).
    fn pin_source_error(&self, error: Error) -> Error {
        let reason = match error {
            Error::PassphraseFileMissing { path } => format!(
                "PIN file {} does not exist; create it or fix pin-source=file: in the KEK URI",
                path.display()
            ),
            Error::EmptyPassphrase { source_name } => {
                format!("the PIN from {source_name} is empty")
            }
            Error::EnvVarUnset { name } => {
                format!("environment variable {name} is not set; set it to the token's user PIN")
            }
            other => other.to_string(),
        };
        Error::Pkcs11PinSource {
            token: self.spec.token_name(),
            reason,
        }
    }

    fn pin_error(&self, rv: String) -> Error {
        Error::Pkcs11Pin {
            token: self.spec.token_name(),
            source_name: self.spec.pin.describe(),
            rv,
        }
    }

    /// The handle of the URI's secret key (by label, and by id when the URI has one).
    fn find_key(&self, session: &Session) -> Result<ObjectHandle, Failure> {
        let mut template = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(self.spec.object.as_bytes().to_vec()),
        ];
        if let Some(id) = &self.spec.uri.id {
            template.push(Attribute::Id(id.clone()));
        }
        let found = session.find_objects(&template)?;
        let error = match found.as_slice() {
            [key] => return Ok(*key),
            [] => Error::Pkcs11KeyNotFound {
                object: self.spec.object.clone(),
                token: self.spec.token_name(),
            },
            _ => Error::Pkcs11KeyUnusable {
                object: self.spec.object.clone(),
                token: self.spec.token_name(),
                reason: format!(
                    "{} secret keys have that label; add id= to the URI to pick one",
                    found.len()
                ),
            },
        };
        Err(error.into())
    }

    /// Logs every session of this process out of the token, as another thread of the
    /// application (or a token reset) would: the next call must log in again. For tests of
    /// the recovery path.
    pub(super) fn log_out_everywhere(&self) -> Result<(), Error> {
        let slot = self.slot()?;
        let session = self.context.open_ro_session(slot).map_err(call_error)?;
        session.logout().map_err(call_error)
    }
}

/// Why a session could not be checked out: a PKCS#11 call (which may be worth retrying after
/// starting over), or anything else.
#[derive(Debug)]
enum Failure {
    Call(CkError),
    Other(Error),
}

impl From<CkError> for Failure {
    fn from(error: CkError) -> Self {
        Self::Call(error)
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self::Other(error)
    }
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Call(error) => call_error(error),
            Failure::Other(error) => error,
        }
    }
}

/// Whether an ambiguous failure (CKR_GENERAL_ERROR, which SoftHSM2 also gives for a rejected
/// ciphertext) came from a session that lost its login meanwhile: another thread or
/// application logged the token out while the call ran.
fn login_lost(session: &Session, error: &CkError) -> bool {
    matches!(error, CkError::Pkcs11(RvError::GeneralError, _))
        && session.get_session_info().is_ok_and(|info| {
            !matches!(
                info.session_state(),
                SessionState::RoUser | SessionState::RwUser
            )
        })
}
