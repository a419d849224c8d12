//! TPM 2.0: the `tpm2:` URI parser and the stanza body codec (in every build) and, behind the
//! `tpm` feature, the KEK provider on tss-esapi (tpm2-tss).
//!
//! Each DEK is sealed in its own keyed-hash data object under the TPM's storage root key
//! (SRK): `DEK || SHA-256(AAD)` is the sealed data, so a stanza moved to another envelope
//! fails the digest check after unsealing. With `pcrs=` the object's policy is PolicyPCR over
//! the PCR values at sealing time. The object's public and private blobs are the stanza body
//! ([`SealedBody`]); nothing is stored in the TPM but the optional persistent SRK.
//!
//! The SRK is the key at the URI's persistent handle (`srk=0x81000001`, made with
//! `vaultctl kek create`), else an ECC P-256 primary from a fixed template, derived again
//! on every start. All KEKs on one TPM in a process share one ESAPI context (the TPM runs
//! one command at a time); see [`Tpm2Uri`] for the URI.

mod body;
mod uri;

#[cfg(feature = "tpm")]
mod call;
#[cfg(feature = "tpm")]
mod info;
#[cfg(feature = "tpm")]
mod kek;
#[cfg(feature = "tpm")]
mod seal;
#[cfg(feature = "tpm")]
mod srk;
#[cfg(feature = "tpm")]
mod worker;

pub use body::{BodyError, MAX_PRIVATE_LEN, MAX_PUBLIC_LEN, MAX_SRK_NAME_LEN, SealedBody};
pub use uri::{
    DEFAULT_DEVICE, DEFAULT_LABEL, MAX_PCR_INDEX, MAX_TPM2_URI_LEN, PcrBank, PcrSelection, Tcti,
    Tpm2Uri,
};

#[cfg(feature = "tpm")]
pub use info::TpmInfo;
#[cfg(feature = "tpm")]
pub use kek::TpmKek;
#[cfg(feature = "tpm")]
pub use srk::Persisted;

/// Opens the KEK a `tpm2:` URI names (what the registry builds, with the concrete type).
#[cfg(feature = "tpm")]
pub fn open_kek(uri: &str) -> Result<TpmKek, crate::Error> {
    TpmKek::open(Tpm2Uri::parse(uri)?)
}

/// `vaultctl kek create`: makes the template's ECC P-256 primary SRK persistent at the URI's
/// `srk=` handle (TPM2_EvictControl in the owner hierarchy). Succeeds without change when the
/// same key is there already; refuses when another key is. Without `srk=` there is nothing to
/// create (the primary is derived at each start): the SRK's name is returned.
#[cfg(feature = "tpm")]
pub fn persist_srk(uri: &str) -> Result<Persisted, crate::Error> {
    let uri = Tpm2Uri::parse(uri)?;
    let worker = worker::Worker::shared(&uri.tcti);
    // The primary, never the key at the handle: that is what is to be compared and persisted.
    let primary = srk::SrkChoice {
        handle: None,
        owner_auth: uri.owner_auth.as_ref(),
    };
    worker
        .with_srk(&primary, |context, primary, _| match uri.srk {
            Some(handle) => srk::persist(context, primary, handle),
            None => Ok(Persisted::Transient {
                name: srk::hex(&primary.name),
            }),
        })
        .map_err(call::Failure::into_error)
}

/// What the TPM says about the SRK and PCRs of the KEK a `tpm2:` URI names.
#[cfg(feature = "tpm")]
pub fn key_info(uri: &str) -> Result<TpmInfo, crate::Error> {
    TpmInfo::read(&Tpm2Uri::parse(uri)?)
}
