//! TPM and TSS failures as this crate's errors: the command, the response code with its
//! layer and meaning, and what to check; and which failures a reconnect may cure.

use tss_esapi::Error as TssError;
use tss_esapi::constants::response_code::{Tss2ResponseCode, Tss2ResponseCodeKind as Kind};

use crate::Error;

/// A failed step of a TPM operation: a TSS call, or anything else.
#[derive(Debug)]
pub(super) enum Failure {
    /// A TSS call failed.
    Tpm {
        /// The TPM command (or ESAPI step), e.g. `Unseal`.
        command: &'static str,
        /// What the TSS returned.
        error: TssError,
    },
    /// Not a TSS call: already this crate's error.
    Other(Error),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self::Other(error)
    }
}

/// Tags a TSS result with the command it came from.
pub(super) trait Command<T> {
    /// `Err(Failure::Tpm { command, .. })` on error.
    fn cmd(self, command: &'static str) -> Result<T, Failure>;
}

impl<T> Command<T> for Result<T, TssError> {
    fn cmd(self, command: &'static str) -> Result<T, Failure> {
        self.map_err(|error| Failure::Tpm { command, error })
    }
}

impl Failure {
    /// The response code's kind when this is a TPM-layer response.
    pub(super) fn kind(&self) -> Option<Kind> {
        match self {
            Self::Tpm { error, .. } => tpm_kind(error),
            Self::Other(_) => None,
        }
    }

    /// As this crate's error.
    pub(super) fn into_error(self) -> Error {
        match self {
            Self::Tpm { command, error } => Error::TpmCall {
                command,
                rc: describe(&error),
                hint: hint(command, &error),
            },
            Self::Other(error) => error,
        }
    }
}

/// The raw TSS2_RC (the crate shows it only through `Display`).
pub(super) fn raw_rc(error: &TssError) -> Option<u32> {
    let text = match error {
        TssError::Tss2Error(Tss2ResponseCode::FormatZero(rc)) => rc.to_string(),
        TssError::Tss2Error(Tss2ResponseCode::FormatOne(rc)) => rc.to_string(),
        _ => return None,
    };
    let hex = text.rsplit("0x").next()?;
    u32::from_str_radix(hex.trim(), 16).ok()
}

/// The tpm2-tss layer of a response code: 0 for the TPM itself.
fn layer(error: &TssError) -> Option<u32> {
    raw_rc(error).map(|rc| rc >> 16)
}

/// The response code's kind when the TPM itself answered it (other layers reuse the low
/// bits with other meanings).
fn tpm_kind(error: &TssError) -> Option<Kind> {
    match error {
        TssError::Tss2Error(rc) if layer(error) == Some(0) => rc.kind(),
        _ => None,
    }
}

/// `0x0000098e (TPM): the authorization HMAC check failed ...`.
pub(super) fn describe(error: &TssError) -> String {
    let Some(rc) = raw_rc(error) else {
        return format!("{error} (tss-esapi)");
    };
    let (layer, meaning) = match rc >> 16 {
        0 => ("TPM", error.to_string()),
        6 => ("FAPI", tss_base_meaning(rc).to_owned()),
        7 => ("ESAPI", tss_base_meaning(rc).to_owned()),
        8 => ("SAPI", tss_base_meaning(rc).to_owned()),
        9 => ("marshalling", tss_base_meaning(rc).to_owned()),
        10 => ("TCTI", tss_base_meaning(rc).to_owned()),
        11 | 12 => ("resource manager", tss_base_meaning(rc).to_owned()),
        _ => ("TSS", tss_base_meaning(rc).to_owned()),
    };
    format!("{rc:#010x} ({layer}): {meaning}")
}

/// The meaning of the base codes tpm2-tss uses in its own layers (TSS2_BASE_RC_*).
fn tss_base_meaning(rc: u32) -> &'static str {
    match rc & 0xffff {
        0x01 => "general failure",
        0x02 => "not implemented",
        0x03 => "bad context",
        0x04 => "ABI mismatch",
        0x05 => "bad reference",
        0x06 => "insufficient buffer",
        0x07 => "bad sequence (an earlier command did not complete)",
        0x08 => "no connection",
        0x09 => "try again",
        0x0a => "input/output error",
        0x0b => "bad value",
        0x0c => "not permitted",
        0x0d => "invalid sessions",
        0x0e => "no decrypt parameter",
        0x0f => "no encrypt parameter",
        0x10 => "bad size",
        0x11 => "malformed response",
        0x12 => "insufficient context",
        0x13 => "insufficient response",
        0x14 => "incompatible TCTI",
        0x15 => "not supported",
        0x16 => "bad TCTI structure",
        0x17 => "out of memory",
        0x18 => "bad ESYS_TR handle",
        0x19 => "multiple decrypt sessions",
        0x1a => "multiple encrypt sessions",
        0x1b => "the response's authorisation failed",
        _ => "unknown response code",
    }
}

/// Whether the failure looks like a lost connection or a restarted TPM, after which a new
/// context (and SRK) may succeed: any TCTI failure, ESAPI sequence or I/O trouble, and TPM
/// answers that say it is not ready or that a handle this context holds is gone (transient
/// objects after a restart, a persistent SRK after a clear: looked up again, the SRK's name
/// then tells the caller what happened).
pub(super) fn is_reconnectable(error: &TssError) -> bool {
    let Some(rc) = raw_rc(error) else {
        return false;
    };
    match rc >> 16 {
        10..=12 => true,
        // ...and a bad ESYS_TR (0x18): a handle this context no longer knows; a new
        // context finds the objects again.
        7 | 8 => matches!(rc & 0xffff, 0x07 | 0x08 | 0x09 | 0x0a | 0x11 | 0x13 | 0x18),
        0 => matches!(
            tpm_kind(error),
            Some(
                Kind::Initialize
                    | Kind::Handle
                    | Kind::Retry
                    | Kind::Yielded
                    | Kind::Testing
                    | Kind::ReferenceH0
                    | Kind::ReferenceH1
                    | Kind::ReferenceS0
                    | Kind::ReferenceS1
                    | Kind::ReferenceS2
            )
        ),
        _ => false,
    }
}

/// Whether the TPM refused the sealed object itself (tampered, or sealed by another SRK):
/// its integrity or sensitive part does not check out, or it is not an object of this kind.
pub(super) fn is_rejected_object(failure: &Failure) -> bool {
    matches!(
        failure.kind(),
        Some(
            Kind::Integrity
                | Kind::Sensitive
                | Kind::Size
                | Kind::Value
                | Kind::Attributes
                | Kind::Type
                | Kind::Hash
                | Kind::Symmetric
                | Kind::KeySize
                | Kind::Scheme
                | Kind::Policy
                | Kind::Key
                | Kind::Insufficient
                | Kind::ReservedBits
        )
    )
}

fn hint(command: &'static str, error: &TssError) -> &'static str {
    if layer(error) == Some(10) {
        return "check that the TPM device exists and this user may open it (Debian: group tss), or that the simulator is running; the vault retried a few times";
    }
    match tpm_kind(error) {
        Some(Kind::Lockout) => {
            "the TPM is in dictionary-attack lockout (another application failed authorisations); wait for it to recover or reset it with tpm2_dictionarylockout"
        }
        Some(Kind::ObjectMemory | Kind::SessionMemory | Kind::Memory) => {
            "the TPM is out of object or session slots, held by other applications; use the resource manager (tcti=device:/dev/tpmrm0)"
        }
        Some(Kind::AuthFail | Kind::BadAuth)
            if matches!(command, "CreatePrimary" | "EvictControl") =>
        {
            "the owner hierarchy refused the authorisation; give its password with owner-auth=env:NAME or owner-auth=file:/PATH"
        }
        Some(Kind::Hierarchy) => {
            "the owner hierarchy is disabled on this TPM; enable it in the firmware setup"
        }
        Some(Kind::Handle) => {
            "the TPM holds no object at that handle: the TPM was cleared, or srk= names another handle"
        }
        Some(Kind::NvSpace) => "the TPM has no room for another persistent object",
        _ if command == "Load" => {
            "the sealed object does not load under this SRK: the stanza was tampered with, or it was sealed by another TPM"
        }
        _ => "see the TPM 2.0 specification, part 2, for this response code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rc(code: u32) -> TssError {
        TssError::Tss2Error(Tss2ResponseCode::from(code))
    }

    #[test]
    fn response_codes_are_decoded_with_their_layer() {
        assert_eq!(raw_rc(&rc(0x0000_099d)), Some(0x99d));
        assert_eq!(
            describe(&rc(0x000a_000a)),
            "0x000a000a (TCTI): input/output error"
        );
        let policy = describe(&rc(0x0000_099d));
        assert!(
            policy.starts_with("0x0000099d (TPM): a policy check failed"),
            "{policy}"
        );
        assert!(describe(&rc(0x0007_0007)).contains("(ESAPI): bad sequence"));
    }

    #[test]
    fn lost_connections_and_gone_handles_reconnect_other_failures_do_not() {
        for code in [
            0x000a_000a,
            0x0007_000a,
            0x0000_0100,
            0x0000_0910,
            0x0000_018b,
        ] {
            assert!(is_reconnectable(&rc(code)), "{code:#x}");
        }
        // Policy failure, integrity failure, bad auth, lockout: retrying cannot help.
        for code in [0x0000_099d, 0x0000_01df, 0x0000_09a2, 0x0000_0921] {
            assert!(!is_reconnectable(&rc(code)), "{code:#x}");
        }
    }

    #[test]
    fn a_tampered_object_is_told_from_a_failing_tpm() {
        let load = |code| Failure::Tpm {
            command: "Load",
            error: rc(code),
        };
        // TPM_RC_INTEGRITY on parameter 1, TPM_RC_SIZE on parameter 2.
        assert!(is_rejected_object(&load(0x0000_01df)));
        assert!(is_rejected_object(&load(0x0000_02d5)));
        assert!(!is_rejected_object(&load(0x000a_000a)));
        assert!(!is_rejected_object(&load(0x0000_0902)));
    }
}
