//! `vaultctl kek info tpm2:...`: what the TPM is, which SRK the KEK uses, and the current
//! values of the PCRs it binds to.

use std::fmt;

use tss_esapi::constants::PropertyTag;

use super::call::{Command, Failure};
use super::kek::{choice, is_software_tpm, vendor};
use super::seal::selection_list;
use super::srk::hex;
use super::uri::{PcrSelection, Tpm2Uri};
use super::worker::Worker;
use crate::Error;

/// What the TPM says about a KEK's SRK and PCRs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmInfo {
    /// The TCTI, e.g. `device:/dev/tpmrm0`.
    pub tcti: String,
    /// TPM_PT_MANUFACTURER, e.g. `IFX`, `INTC`, `IBM` (swtpm).
    pub manufacturer: String,
    /// TPM_PT_VENDOR_STRING_1..4.
    pub vendor: String,
    /// TPM_PT_FIRMWARE_VERSION_1 and _2, hex.
    pub firmware: String,
    /// Whether the vault counts it as dedicated hardware (not a simulator).
    pub hardware: bool,
    /// The SRK's persistent handle, or `None` for the transient ECC P-256 primary.
    pub srk_handle: Option<u32>,
    /// The SRK's TPM name, hex.
    pub srk_name: String,
    /// The PCR selection and each selected PCR's current value (hex).
    pub pcrs: Option<(PcrSelection, Vec<(u8, String)>)>,
}

impl TpmInfo {
    pub(super) fn read(uri: &Tpm2Uri) -> Result<Self, Error> {
        let worker = Worker::shared(&uri.tcti);
        worker
            .with_srk(&choice(uri), |context, srk, _| {
                let (manufacturer, vendor) = vendor(context)?;
                let firmware = [PropertyTag::FirmwareVersion1, PropertyTag::FirmwareVersion2]
                    .into_iter()
                    .map(|tag| context.get_tpm_property(tag).cmd("GetCapability"))
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .map(|v| format!("{:08x}", v.unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(".");
                let pcrs = match &uri.pcrs {
                    Some(pcrs) => Some((*pcrs, read_pcrs(context, pcrs)?)),
                    None => None,
                };
                Ok(Self {
                    tcti: worker.tcti().to_string(),
                    hardware: !uri.tcti.is_simulator() && !is_software_tpm(&manufacturer, &vendor),
                    manufacturer,
                    vendor,
                    firmware,
                    srk_handle: srk.persistent,
                    srk_name: hex(&srk.name),
                    pcrs,
                })
            })
            .map_err(Failure::into_error)
    }
}

fn read_pcrs(
    context: &mut tss_esapi::Context,
    pcrs: &PcrSelection,
) -> Result<Vec<(u8, String)>, Failure> {
    let list = selection_list(pcrs).cmd("(PCR selection)")?;
    // A TPM answers at most 8 PCRs per read, the lowest first.
    let (_, _, digests) = context
        .execute_without_session(|ctx| ctx.pcr_read(list))
        .cmd("PCR_Read")?;
    Ok(pcrs
        .indices()
        .into_iter()
        .zip(digests.value().iter().map(|d| hex(d.value())))
        .collect())
}

/// One line per fact.
impl fmt::Display for TpmInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "tcti:                   {}", self.tcti)?;
        writeln!(f, "manufacturer:           {}", self.manufacturer)?;
        writeln!(f, "vendor:                 {}", self.vendor)?;
        writeln!(f, "firmware:               {}", self.firmware)?;
        let kind = if self.hardware {
            "hardware TPM"
        } else {
            "software TPM (simulator): not dedicated hardware"
        };
        writeln!(f, "kind:                   {kind}")?;
        match self.srk_handle {
            Some(handle) => writeln!(f, "srk:                    persistent at {handle:#010x}")?,
            None => writeln!(
                f,
                "srk:                    transient ECC P-256 primary (derived at each start; `kek create` with srk= persists it)"
            )?,
        }
        write!(f, "srk name:               {}", self.srk_name)?;
        if let Some((selection, values)) = &self.pcrs {
            write!(f, "\npcrs:                   {selection}")?;
            for (index, value) in values {
                write!(f, "\n  pcr {index:<2}               {value}")?;
            }
        }
        Ok(())
    }
}
