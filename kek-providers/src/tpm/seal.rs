//! Sealing and unsealing: TPM2_Create of a keyed-hash data object under the SRK, and
//! TPM2_Load + TPM2_Unseal + TPM2_FlushContext of it. Sessions are set only around the
//! commands that need authorisation; every loaded object is flushed, also on error paths, and
//! so is every session but the two [`Sessions`] keeps open for the next operation.

use tss_esapi::Context;
use tss_esapi::attributes::{ObjectAttributesBuilder, SessionAttributesBuilder};
use tss_esapi::constants::SessionType;
use tss_esapi::handles::{KeyHandle, ObjectHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    Digest, KeyedHashScheme, PcrSelectionList, PcrSelectionListBuilder, PcrSlot, Private, Public,
    PublicBuilder, PublicKeyedHashParameters, SensitiveData, SymmetricDefinition,
};
use zeroize::Zeroizing;

use super::call::{Command, Failure};
use super::srk::Srk;
use super::uri::{PcrBank, PcrSelection};

/// How the sessions of one operation are set up.
#[derive(Debug, Clone, Copy)]
pub(super) struct SessionPolicy {
    /// Salted sessions with parameter encryption (`encrypt` in the URI).
    pub(super) encrypt: bool,
}

/// The sessions kept open on a context between operations: starting a salted session costs
/// an ECDH on both sides (3 ms on swtpm, far more on a chip), and even an unsalted policy
/// session a few commands. A session that took part in a failed command is flushed and
/// started again next time.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    /// A salted HMAC session, for parameter encryption of Create and Unseal.
    hmac: Option<AuthSession>,
    /// A policy session for PolicyPCR + Unseal (the TPM resets a policy session after each
    /// command it authorises), and whether it is salted (for parameter encryption).
    policy: Option<(AuthSession, bool)>,
}

impl Sessions {
    /// The salted HMAC session, with these parameter-encryption attributes.
    fn hmac(
        &mut self,
        context: &mut Context,
        srk: &Srk,
        decrypt: bool,
        encrypt: bool,
    ) -> Result<AuthSession, Failure> {
        let session = match self.hmac {
            Some(session) => session,
            None => {
                let session = start_session(context, Some(srk.handle), SessionType::Hmac, true)?;
                self.hmac = Some(session);
                session
            }
        };
        self.set_attributes(context, session, SessionType::Hmac, decrypt, encrypt)
    }

    /// The policy session, salted when `encrypt` (then it encrypts the response).
    fn policy(
        &mut self,
        context: &mut Context,
        srk: &Srk,
        encrypt: bool,
    ) -> Result<AuthSession, Failure> {
        let session = match self.policy {
            Some((session, salted)) if salted == encrypt => session,
            _ => {
                self.discard(context, SessionType::Policy);
                let salt = encrypt.then_some(srk.handle);
                let session = start_session(context, salt, SessionType::Policy, encrypt)?;
                self.policy = Some((session, encrypt));
                session
            }
        };
        self.set_attributes(context, session, SessionType::Policy, false, encrypt)
    }

    fn set_attributes(
        &mut self,
        context: &mut Context,
        session: AuthSession,
        kind: SessionType,
        decrypt: bool,
        encrypt: bool,
    ) -> Result<AuthSession, Failure> {
        let (attributes, mask) = SessionAttributesBuilder::new()
            .with_continue_session(true)
            .with_decrypt(decrypt)
            .with_encrypt(encrypt)
            .build();
        match context.tr_sess_set_attributes(session, attributes, mask) {
            Ok(()) => Ok(session),
            Err(error) => {
                self.discard(context, kind);
                Err(Failure::Tpm {
                    command: "(session attributes)",
                    error,
                })
            }
        }
    }

    /// Flushes the kept session of `kind` (after a failure it took part in).
    fn discard(&mut self, context: &mut Context, kind: SessionType) {
        let session = match kind {
            SessionType::Policy => self.policy.take().map(|(session, _)| session),
            _ => self.hmac.take(),
        };
        if let Some(session) = session {
            flush_session(context, session);
        }
    }
}

/// Seals `secret` under the SRK: bound to the current values of `pcrs` when given (then
/// only a PolicyPCR session unseals it), else unsealable with an empty authorisation.
pub(super) fn seal(
    context: &mut Context,
    srk: &Srk,
    sessions: &mut Sessions,
    pcrs: Option<&PcrSelection>,
    policy: SessionPolicy,
    secret: &[u8],
) -> Result<(Public, Private), Failure> {
    let digest = match pcrs {
        Some(pcrs) => Some(pcr_policy_digest(context, pcrs)?),
        None => None,
    };
    let public = sealed_template(digest)?;
    let data = SensitiveData::try_from(secret).cmd("(sealed data)")?;
    let session = if policy.encrypt {
        // decrypt: the TPM receives the first parameter (the sensitive data) encrypted.
        sessions.hmac(context, srk, true, false)?
    } else {
        AuthSession::Password
    };
    let created = context
        .execute_with_session(Some(session), |ctx| {
            ctx.create(srk.handle, public, None, Some(data), None, None)
        })
        .cmd("Create");
    if created.is_err() && policy.encrypt {
        sessions.discard(context, SessionType::Hmac);
    }
    let created = created?;
    Ok((created.out_public, created.out_private))
}

/// Loads the sealed object under the SRK, unseals it and flushes it.
pub(super) fn unseal(
    context: &mut Context,
    srk: &Srk,
    sessions: &mut Sessions,
    pcrs: Option<&PcrSelection>,
    policy: SessionPolicy,
    public: Public,
    private: Private,
) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let object = context
        .execute_with_session(Some(AuthSession::Password), |ctx| {
            ctx.load(srk.handle, private, public)
        })
        .cmd("Load")?;
    let result = unseal_loaded(context, srk, sessions, object, pcrs, policy);
    if let Err(e) = context.flush_context(object.into()) {
        log::warn!("could not flush a sealed object from the TPM: {e}");
    }
    result
}

fn unseal_loaded(
    context: &mut Context,
    srk: &Srk,
    sessions: &mut Sessions,
    object: KeyHandle,
    pcrs: Option<&PcrSelection>,
    policy: SessionPolicy,
) -> Result<Zeroizing<Vec<u8>>, Failure> {
    // encrypt: the TPM sends the first response parameter (the sealed data) encrypted.
    let (kind, session) = match pcrs {
        Some(_) => (
            Some(SessionType::Policy),
            sessions.policy(context, srk, policy.encrypt)?,
        ),
        None if policy.encrypt => (
            Some(SessionType::Hmac),
            sessions.hmac(context, srk, false, true)?,
        ),
        None => (None, AuthSession::Password),
    };
    let result = (|| {
        if let Some(pcrs) = pcrs {
            let policy = PolicySession::try_from(session).cmd("(policy session)")?;
            context
                .execute_without_session(|ctx| {
                    ctx.policy_pcr(policy, Digest::default(), selection_list(pcrs)?)
                })
                .cmd("PolicyPCR")?;
        }
        context
            .execute_with_session(Some(session), |ctx| ctx.unseal(ObjectHandle::from(object)))
            .cmd("Unseal")
    })();
    if let (Err(_), Some(kind)) = (&result, kind) {
        sessions.discard(context, kind);
    }
    result.map(|data| Zeroizing::new(data.value().to_vec()))
}

/// The policy digest of PolicyPCR over the current values of `pcrs`, from a trial session.
fn pcr_policy_digest(context: &mut Context, pcrs: &PcrSelection) -> Result<Digest, Failure> {
    let trial = start_session(context, None, SessionType::Trial, false)?;
    let digest = (|| {
        let policy = PolicySession::try_from(trial).cmd("(trial session)")?;
        context
            .execute_without_session(|ctx| {
                ctx.policy_pcr(policy, Digest::default(), selection_list(pcrs)?)
            })
            .cmd("PolicyPCR")?;
        context
            .execute_without_session(|ctx| ctx.policy_get_digest(policy))
            .cmd("PolicyGetDigest")
    })();
    flush_session(context, trial);
    digest
}

/// The sealed data object: keyed-hash with no scheme, fixed to this TPM and SRK, noDA; with
/// a policy it is usable only through it (userWithAuth off), else with its empty auth.
fn sealed_template(policy: Option<Digest>) -> Result<Public, Failure> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_no_da(true)
        .with_user_with_auth(policy.is_none())
        .with_admin_with_policy(policy.is_some())
        .build()
        .cmd("(sealed object template)")?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::KeyedHash)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_auth_policy(policy.unwrap_or_default())
        .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
        .with_keyed_hash_unique_identifier(Digest::default())
        .build()
        .cmd("(sealed object template)")
}

fn start_session(
    context: &mut Context,
    salt_key: Option<KeyHandle>,
    kind: SessionType,
    cipher: bool,
) -> Result<AuthSession, Failure> {
    let symmetric = if cipher {
        SymmetricDefinition::AES_128_CFB
    } else {
        SymmetricDefinition::Null
    };
    context
        .execute_without_session(|ctx| {
            ctx.start_auth_session(
                salt_key,
                None,
                None,
                kind,
                symmetric,
                HashingAlgorithm::Sha256,
            )
        })
        .cmd("StartAuthSession")?
        .ok_or(Failure::Tpm {
            command: "StartAuthSession",
            error: tss_esapi::Error::WrapperError(tss_esapi::WrapperErrorKind::WrongValueFromTpm),
        })
}

/// Flushes a session (sessions are started with continueSession, so the TPM keeps them).
fn flush_session(context: &mut Context, session: AuthSession) {
    let handle = tss_esapi::handles::SessionHandle::from(session);
    if let Err(e) = context.flush_context(ObjectHandle::from(handle)) {
        log::warn!("could not flush a TPM session: {e}");
    }
}

/// The selection as tss-esapi takes it.
pub(super) fn selection_list(pcrs: &PcrSelection) -> tss_esapi::Result<PcrSelectionList> {
    let bank = match pcrs.bank() {
        PcrBank::Sha1 => HashingAlgorithm::Sha1,
        PcrBank::Sha256 => HashingAlgorithm::Sha256,
    };
    let slots = pcrs
        .indices()
        .into_iter()
        .map(|i| PcrSlot::try_from(1u32 << i))
        .collect::<tss_esapi::Result<Vec<_>>>()?;
    PcrSelectionListBuilder::new()
        .with_selection(bank, &slots)
        .build()
}
