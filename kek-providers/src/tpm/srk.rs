//! The storage root key the sealed objects live under: the key at the URI's persistent
//! handle when there is one, else an ECC P-256 primary in the owner hierarchy made from a
//! fixed template (deterministic: the same key every time until the TPM is cleared; 1.2 ms
//! on swtpm, where an RSA primary takes 30-85 ms and real chips take seconds).

use tss_esapi::Context;
use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::constants::CapabilityType;
use tss_esapi::handles::{KeyHandle, ObjectHandle, PersistentTpmHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::dynamic_handles::Persistent;
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::resource_handles::{Hierarchy, Provision};
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::CapabilityData;
use tss_esapi::structures::{
    Auth, EccPoint, Public, PublicBuilder, PublicEccParametersBuilder, SymmetricDefinitionObject,
};

use super::call::{Command, Failure};
use super::worker::State;
use crate::{Error, SecretSource};

/// A loaded storage root key.
#[derive(Debug, Clone)]
pub(super) struct Srk {
    /// Its ESAPI handle on the current context.
    pub(super) handle: KeyHandle,
    /// Its TPM name (name algorithm id + digest of the public area).
    pub(super) name: Vec<u8>,
    /// The persistent handle it was found at; `None` for the transient primary.
    pub(super) persistent: Option<u32>,
}

/// Which SRK a KEK uses, and the owner authorisation for making the primary.
#[derive(Debug, Clone, Copy)]
pub(super) struct SrkChoice<'a> {
    /// The URI's `srk=`.
    pub(super) handle: Option<u32>,
    /// The URI's `owner-auth=`.
    pub(super) owner_auth: Option<&'a SecretSource>,
}

/// The fixed SRK template: ECC NIST P-256, SHA-256 name, AES-128-CFB for children; fixedTPM,
/// fixedParent, sensitiveDataOrigin, userWithAuth (empty auth), noDA, restricted, decrypt.
/// The TCG provisioning guidance's ECC SRK template, so other tools derive the same key.
pub(super) fn template() -> Result<Public, Failure> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build()
        .cmd("(SRK template)")?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new_restricted_decryption_key(
                SymmetricDefinitionObject::AES_128_CFB,
                EccCurve::NistP256,
            )
            .build()
            .cmd("(SRK template)")?,
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
        .cmd("(SRK template)")
}

/// The SRK for `choice` on this context: the key at its persistent handle (which must be
/// there: `vaultctl kek create` puts it there), else the primary made from the template;
/// cached for the context's life.
pub(super) fn resolve(
    context: &mut Context,
    state: &mut State,
    choice: &SrkChoice<'_>,
) -> Result<Srk, Failure> {
    if let Some(handle) = choice.handle {
        if let Some(srk) = state.persistent.get(&handle) {
            return Ok(srk.clone());
        }
        let srk = load_persistent(context, handle)?.ok_or(Error::TpmSrkMissing { handle })?;
        state.persistent.insert(handle, srk.clone());
        return Ok(srk);
    }
    if let Some(srk) = &state.primary {
        return Ok(srk.clone());
    }
    let srk = create_primary(context, choice.owner_auth)?;
    state.primary = Some(srk.clone());
    Ok(srk)
}

/// The storage key at a persistent handle; `None` when the handle is empty.
pub(super) fn load_persistent(context: &mut Context, handle: u32) -> Result<Option<Srk>, Failure> {
    if !persistent_exists(context, handle)? {
        return Ok(None);
    }
    let tpm_handle = PersistentTpmHandle::new(handle).cmd("(persistent handle)")?;
    // No session may be set here: with one, tpm2-tss 3.2 crashes in Esys_TR_FromTPMPublic.
    let object = context
        .execute_without_session(|ctx| ctx.tr_from_tpm_public(TpmHandle::Persistent(tpm_handle)))
        .cmd("ReadPublic")?;
    let key = KeyHandle::from(object);
    let (public, name, _) = context
        .execute_without_session(|ctx| ctx.read_public(key))
        .cmd("ReadPublic")?;
    let attributes = public.object_attributes();
    let storage_key = attributes.restricted()
        && attributes.decrypt()
        && !attributes.sign_encrypt()
        && matches!(public, Public::Ecc { .. } | Public::Rsa { .. });
    if !storage_key {
        return Err(Error::TpmSrkUnusable {
            handle,
            what: format!(
                "a {:?} object that is not a restricted decryption key",
                public_kind(&public)
            ),
        }
        .into());
    }
    Ok(Some(Srk {
        handle: key,
        name: name.value().to_vec(),
        persistent: Some(handle),
    }))
}

/// The primary SRK from the template, in the owner hierarchy.
pub(super) fn create_primary(
    context: &mut Context,
    owner_auth: Option<&SecretSource>,
) -> Result<Srk, Failure> {
    set_owner_auth(context, owner_auth)?;
    let public = template()?;
    let key = context
        .execute_with_session(Some(AuthSession::Password), |ctx| {
            ctx.create_primary(Hierarchy::Owner, public, None, None, None, None)
        })
        .cmd("CreatePrimary")?
        .key_handle;
    let name = context.tr_get_name(key.into()).cmd("(SRK name)")?;
    Ok(Srk {
        handle: key,
        name: name.value().to_vec(),
        persistent: None,
    })
}

/// What `kek create` (`persist_srk`) found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Persisted {
    /// The template's SRK was made persistent at the handle now.
    Now {
        /// The persistent handle.
        handle: u32,
        /// The SRK's TPM name, hex.
        name: String,
    },
    /// The handle held the template's SRK already.
    Already {
        /// The persistent handle.
        handle: u32,
        /// The SRK's TPM name, hex.
        name: String,
    },
    /// The URI has no `srk=`: the primary SRK is derived at each start, nothing persisted.
    Transient {
        /// The SRK's TPM name, hex.
        name: String,
    },
}

/// Makes the template's primary SRK persistent at `handle` (TPM2_EvictControl, which
/// leaves the transient primary loaded); refuses when another key is there.
pub(super) fn persist(
    context: &mut Context,
    primary: &Srk,
    handle: u32,
) -> Result<Persisted, Failure> {
    let name = hex(&primary.name);
    if let Some(existing) = load_persistent_any(context, handle)? {
        return if existing == primary.name {
            Ok(Persisted::Already { handle, name })
        } else {
            Err(Error::TpmSrkOccupied {
                handle,
                name: hex(&existing),
            }
            .into())
        };
    }
    let tpm_handle = PersistentTpmHandle::new(handle).cmd("(persistent handle)")?;
    let mut persistent = context
        .execute_with_session(Some(AuthSession::Password), |ctx| {
            ctx.evict_control(
                Provision::Owner,
                ObjectHandle::from(primary.handle),
                Persistent::Persistent(tpm_handle),
            )
        })
        .cmd("EvictControl")?;
    if let Err(e) = context.tr_close(&mut persistent) {
        log::debug!("could not close the persistent SRK's ESAPI handle: {e}");
    }
    Ok(Persisted::Now { handle, name })
}

/// The TPM name of whatever object is at a persistent handle, if any.
fn load_persistent_any(context: &mut Context, handle: u32) -> Result<Option<Vec<u8>>, Failure> {
    if !persistent_exists(context, handle)? {
        return Ok(None);
    }
    let tpm_handle = PersistentTpmHandle::new(handle).cmd("(persistent handle)")?;
    // Not closed afterwards: the TSS hands back the ESYS_TR it already has for this TPM
    // handle, and an open KEK may hold that very one as its SRK.
    let object = context
        .execute_without_session(|ctx| ctx.tr_from_tpm_public(TpmHandle::Persistent(tpm_handle)))
        .cmd("ReadPublic")?;
    let name = context.tr_get_name(object).cmd("(name)")?;
    Ok(Some(name.value().to_vec()))
}

/// Whether a persistent handle holds an object (asked with GetCapability rather than found
/// out from a failing ReadPublic, which tss-esapi logs as an error).
fn persistent_exists(context: &mut Context, handle: u32) -> Result<bool, Failure> {
    let (data, _) = context
        .execute_without_session(|ctx| ctx.get_capability(CapabilityType::Handles, handle, 1))
        .cmd("GetCapability")?;
    Ok(match data {
        CapabilityData::Handles(handles) => handles
            .first()
            .is_some_and(|found| u32::from(*found) == handle),
        _ => false,
    })
}

fn set_owner_auth(context: &mut Context, source: Option<&SecretSource>) -> Result<(), Failure> {
    let Some(source) = source else {
        return Ok(());
    };
    let bad = |reason: String| Error::TpmOwnerAuth {
        source_name: source.to_string(),
        reason,
    };
    let secret = source
        .read("TPM owner authorisation: ")
        .map_err(|e| bad(e.to_string()))?;
    let auth = Auth::try_from(secret.expose_secret())
        .map_err(|_| bad("it is longer than 64 bytes".into()))?;
    context
        .tr_set_auth(ObjectHandle::Owner, auth)
        .cmd("(owner authorisation)")?;
    Ok(())
}

fn public_kind(public: &Public) -> &'static str {
    match public {
        Public::Rsa { .. } => "RSA",
        Public::Ecc { .. } => "ECC",
        Public::KeyedHash { .. } => "keyed-hash",
        Public::SymCipher { .. } => "symmetric",
    }
}

/// Lower-case hex.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
