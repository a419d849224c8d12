//! The TPM KEK: each DEK sealed in a keyed-hash data object under the TPM's storage root
//! key, optionally bound to PCR values; the object's blobs are the stanza.

use std::fmt;
use std::sync::Arc;

use envelope::{Assurance, Dek, Health, KekId, KekProvider, StanzaRef};
use ring::digest::{SHA256, digest};
use subtle::ConstantTimeEq;
use tss_esapi::constants::PropertyTag;
use tss_esapi::constants::response_code::Tss2ResponseCodeKind as Kind;
use tss_esapi::structures::{Private, Public};
use tss_esapi::traits::{Marshall, UnMarshall};
use zeroize::Zeroizing;

use super::body::SealedBody;
use super::call::{Command, Failure, is_rejected_object};
use super::seal::{self, SessionPolicy, selection_list};
use super::srk::{SrkChoice, hex};
use super::uri::{PcrSelection, Tpm2Uri};
use super::worker::Worker;
use crate::Error;

/// What is sealed: the DEK, then SHA-256 of the AAD (the object has no AAD of its own).
const SEALED_LEN: usize = envelope::DEK_LEN + 32;

/// A KEK held by a TPM 2.0. Built by the registry from a `tpm2:` URI.
pub struct TpmKek {
    id: KekId,
    uri: Tpm2Uri,
    worker: Arc<Worker>,
    assurance: Assurance,
}

impl fmt::Debug for TpmKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TpmKek")
            .field("id", &self.id)
            .field("uri", &self.uri.to_canonical())
            .field("assurance", &self.assurance)
            .finish_non_exhaustive()
    }
}

impl TpmKek {
    /// Connects to the TPM, loads or makes the SRK, and checks the PCR bank.
    pub(crate) fn open(uri: Tpm2Uri) -> Result<Self, Error> {
        let id = KekId::new("tpm2", &uri.label, 1)?;
        let worker = Worker::shared(&uri.tcti);
        let choice = choice(&uri);
        let hardware = worker
            .with_srk(&choice, |context, _, _| {
                if let Some(pcrs) = &uri.pcrs {
                    check_bank(context, pcrs)?;
                }
                let (manufacturer, vendor) = vendor(context)?;
                Ok(!uri.tcti.is_simulator() && !is_software_tpm(&manufacturer, &vendor))
            })
            .map_err(Failure::into_error)?;
        Ok(Self {
            id,
            assurance: Assurance {
                hardware,
                non_exportable: true,
                platform_bound: uri.pcrs.is_some(),
                user_presence: false,
            },
            uri,
            worker,
        })
    }

    /// The canonical URI.
    pub fn uri(&self) -> &Tpm2Uri {
        &self.uri
    }

    fn sessions(&self) -> SessionPolicy {
        SessionPolicy {
            encrypt: self.uri.encrypt,
        }
    }

    fn wrap_inner(&self, dek: &Dek, aad: &[u8]) -> Result<Vec<u8>, Error> {
        let mut secret = Zeroizing::new([0u8; SEALED_LEN]);
        secret[..envelope::DEK_LEN].copy_from_slice(dek.expose_secret());
        secret[envelope::DEK_LEN..].copy_from_slice(digest(&SHA256, aad).as_ref());
        let pcrs = self.uri.pcrs.as_ref();
        let (public, private, srk_name) = self
            .worker
            .with_srk(&choice(&self.uri), |context, srk, sessions| {
                let (public, private) = seal::seal(
                    context,
                    srk,
                    sessions,
                    pcrs,
                    self.sessions(),
                    secret.as_slice(),
                )?;
                Ok((public, private, srk.name.clone()))
            })
            .map_err(Failure::into_error)?;
        let public = public
            .marshall()
            .cmd("(marshalling the public part)")
            .map_err(Failure::into_error)?;
        SealedBody {
            srk_name: &srk_name,
            pcrs: self.uri.pcrs,
            public: &public,
            private: private.value(),
        }
        .encode()
        .ok_or_else(|| Error::TpmCall {
            command: "Create",
            rc: "the sealed object is larger than a stanza holds".into(),
            hint: "report this TPM's make and firmware",
        })
    }

    fn unwrap_inner(&self, body: &[u8], aad: &[u8]) -> Result<Dek, Unwrap> {
        let body = SealedBody::parse(body).map_err(|_| Unwrap::Rejected)?;
        let public = Public::unmarshall(body.public).map_err(|_| Unwrap::Rejected)?;
        let private = Private::try_from(body.private).map_err(|_| Unwrap::Rejected)?;
        if !matches!(public, Public::KeyedHash { .. }) {
            return Err(Unwrap::Rejected);
        }
        let pcrs = body.pcrs.as_ref();
        let plain = self
            .worker
            .with_srk(&choice(&self.uri), |context, srk, sessions| {
                if srk.name != body.srk_name {
                    return Err(Error::TpmOtherSrk {
                        sealed_under: short_hex(body.srk_name),
                        current: short_hex(&srk.name),
                    }
                    .into());
                }
                let mut unseal = |context: &mut _| {
                    seal::unseal(
                        context,
                        srk,
                        sessions,
                        pcrs,
                        self.sessions(),
                        public.clone(),
                        private.clone(),
                    )
                };
                match unseal(context) {
                    // A PCR changed between PolicyPCR and Unseal: once more.
                    Err(failure) if failure.kind() == Some(Kind::PcrChanged) => unseal(context),
                    result => result,
                }
            })
            .map_err(|failure| match (&failure, pcrs) {
                (
                    Failure::Tpm {
                        command: "Load", ..
                    },
                    _,
                ) if is_rejected_object(&failure) => Unwrap::Rejected,
                (
                    Failure::Tpm {
                        command: "Unseal", ..
                    },
                    Some(pcrs),
                ) if failure.kind() == Some(Kind::PolicyFail) => {
                    Unwrap::Failed(Error::TpmPcrMismatch {
                        pcrs: pcrs.to_string(),
                    })
                }
                _ => Unwrap::Failed(failure.into_error()),
            })?;
        if plain.len() != SEALED_LEN {
            return Err(Unwrap::Rejected);
        }
        let (dek, digest_sealed) = plain.split_at(envelope::DEK_LEN);
        let expected = digest(&SHA256, aad);
        if !bool::from(digest_sealed.ct_eq(expected.as_ref())) {
            return Err(Unwrap::Rejected);
        }
        Dek::from_slice(dek).map_err(|e| Unwrap::Failed(e.into()))
    }

    fn failed(&self, error: &Error) -> envelope::Error {
        envelope::Error::Kek {
            kek: self.id.to_string(),
            reason: error.to_string(),
        }
    }
}

/// An unwrap failure: the stanza is not one this TPM can have written (tampered, another
/// secret's), or the TPM failed.
enum Unwrap {
    Rejected,
    Failed(Error),
}

impl KekProvider for TpmKek {
    fn id(&self) -> &KekId {
        &self.id
    }

    fn wrap(&self, dek: &Dek, aad: &[u8]) -> Result<Vec<u8>, envelope::Error> {
        self.wrap_inner(dek, aad).map_err(|e| self.failed(&e))
    }

    fn unwrap(&self, stanza: &StanzaRef<'_>, aad: &[u8]) -> Option<Result<Dek, envelope::Error>> {
        if !stanza.is_for(&self.id) {
            return None;
        }
        Some(self.unwrap_inner(stanza.body, aad).map_err(|e| match e {
            Unwrap::Rejected => envelope::Error::StanzaRejected {
                kek: self.id.to_string(),
            },
            Unwrap::Failed(e) => self.failed(&e),
        }))
    }

    fn health(&self) -> Health {
        // A real command on the SRK: a cached handle alone would not notice a cleared TPM.
        let probe = self.worker.with_srk(&choice(&self.uri), |context, srk, _| {
            context
                .execute_without_session(|ctx| ctx.read_public(srk.handle))
                .cmd("ReadPublic")
                .map(drop)
        });
        match probe.map_err(Failure::into_error) {
            Ok(()) => Health::Ok,
            Err(e @ Error::TpmUnreachable { .. }) => Health::Unreachable(e.to_string()),
            Err(e) => Health::Failed(e.to_string()),
        }
    }

    fn assurance(&self) -> Assurance {
        self.assurance
    }

    /// TPM2_Create needs no secret: whoever can send this TPM commands can seal a DEK of
    /// their choosing under the SRK.
    fn wraps_without_secret(&self) -> bool {
        true
    }
}

impl Tpm2Uri {
    /// Opens the KEK and pairs it with its canonical URI.
    pub(crate) fn build(self) -> Result<crate::BuiltKek, Error> {
        Ok(crate::BuiltKek {
            uri: self.to_canonical(),
            provider: Arc::new(TpmKek::open(self)?),
            created: None,
        })
    }
}

/// The SRK a URI asks for.
pub(super) fn choice(uri: &Tpm2Uri) -> SrkChoice<'_> {
    SrkChoice {
        handle: uri.srk,
        owner_auth: uri.owner_auth.as_ref(),
    }
}

/// The manufacturer (TPM_PT_MANUFACTURER) and vendor string (TPM_PT_VENDOR_STRING_1..4).
pub(super) fn vendor(context: &mut tss_esapi::Context) -> Result<(String, String), Failure> {
    let manufacturer = context
        .get_tpm_property(PropertyTag::Manufacturer)
        .cmd("GetCapability")?
        .map(ascii)
        .unwrap_or_default();
    let vendor = tss_esapi::utils::get_tpm_vendor(context).cmd("GetCapability")?;
    Ok((manufacturer, vendor.trim().to_owned()))
}

/// Four ASCII characters packed in a property value, without the padding.
fn ascii(value: u32) -> String {
    value
        .to_be_bytes()
        .iter()
        .filter(|b| b.is_ascii_graphic())
        .map(|b| char::from(*b))
        .collect()
}

/// swtpm and the IBM simulator say manufacturer "IBM" and vendor "SW TPM": software, not
/// dedicated hardware, whatever the TCTI.
pub(super) fn is_software_tpm(manufacturer: &str, vendor: &str) -> bool {
    let vendor: String = vendor
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    manufacturer.trim() == "IBM" || vendor.contains("SWTPM")
}

/// Checks that the TPM has the PCRs: a bank that is not allocated reads back empty.
fn check_bank(context: &mut tss_esapi::Context, pcrs: &PcrSelection) -> Result<(), Failure> {
    let list = selection_list(pcrs).cmd("(PCR selection)")?;
    let (_, read, _) = context
        .execute_without_session(|ctx| ctx.pcr_read(list))
        .cmd("PCR_Read")?;
    if read.is_empty() {
        return Err(Error::TpmPcrs {
            pcrs: pcrs.to_string(),
            reason: format!(
                "the TPM has no active {} bank; choose another bank in pcrs= (tpm2_pcrread lists them)",
                pcrs.bank().as_str()
            ),
        }
        .into());
    }
    Ok(())
}

/// The first 16 hex digits of a name, for messages.
fn short_hex(name: &[u8]) -> String {
    let full = hex(name);
    if full.len() > 20 {
        format!("{}...", &full[..20])
    } else {
        full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulators_are_not_counted_as_hardware() {
        // swtpm 0.7 (libtpms) and the IBM simulator.
        assert!(is_software_tpm("IBM", "SW   TPM"));
        assert!(is_software_tpm("", "swtpm"));
        for (manufacturer, vendor) in [("IFX", "SLB9670"), ("INTC", ""), ("NTC", "rls NPCT")] {
            assert!(!is_software_tpm(manufacturer, vendor), "{manufacturer}");
        }
        assert_eq!(ascii(0x4942_4d00), "IBM");
        assert_eq!(ascii(0x5357_2020), "SW");
    }
}
