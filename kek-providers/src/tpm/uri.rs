//! Parsing `tpm2:` KEK URIs: `tpm2:` then `;`-separated parameters, each at most once.
//!
//! ```text
//! tpm2:tcti=device:/dev/tpmrm0
//! tpm2:tcti=swtpm:host=127.0.0.1,port=2321;srk=0x81000001;pcrs=sha256:7,16;encrypt;label=boot
//! ```
//! - `tcti=KIND[:CONFIG]`: how to reach the TPM. `device[:/path]` (default
//!   `device:/dev/tpmrm0`, the kernel's resource manager), `swtpm[:host=H,port=P]` and
//!   `mssim[:host=H,port=P]` (a software TPM; defaults `localhost`, 2321; the port above is its
//!   control or platform port), `tabrmd[:bus_name=N,bus_type=system|session]`.
//! - `srk=0x81xxxxxx`: the persistent handle of the storage root key (owner range), put there
//!   by `vaultctl kek create`. Without it the SRK is an ECC P-256 primary from a fixed
//!   template, derived again at each start (the same key until the TPM is cleared).
//! - `pcrs=BANK:I,J,...`: seal to the current values of these PCRs (bank `sha256` or `sha1`,
//!   indices 0 to 23).
//! - `encrypt`: salted sessions with parameter encryption, so the DEK never crosses the bus
//!   in the clear.
//! - `owner-auth=env:NAME` or `owner-auth=file:/PATH`: the owner hierarchy's authorisation, for
//!   creating the primary SRK and persisting it (most TPMs have none).
//! - `label=NAME`: the KEK's label in stanzas (default `tpm`), 1 to 64 of `A-Za-z0-9._-`.
//!
//! Strict: unknown, empty or repeated parameters are refused, as are values outside their
//! domain. The canonical form ([`Tpm2Uri::to_canonical`]) spells every default out, in a
//! fixed order, and parses back to the same URI.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::error::shorten;
use crate::passphrase::ENV_NAME_RULE;
use crate::{Error, SecretSource};

/// Longest `tpm2:` URI accepted, in bytes.
pub const MAX_TPM2_URI_LEN: usize = 1024;
/// Longest device path, bus name or file path accepted, in bytes.
const MAX_PATH_LEN: usize = 255;
/// Longest label.
const MAX_LABEL_LEN: usize = 64;
/// Longest environment variable name in `owner-auth=env:`.
const MAX_ENV_NAME_LEN: usize = 128;

const SCHEME: &str = "tpm2:";
const PARAMETERS: &str = "tcti, srk, pcrs, encrypt, owner-auth, label";
const EXAMPLE: &str = "e.g. tpm2:tcti=device:/dev/tpmrm0;pcrs=sha256:7";

/// The resource manager device, the default TCTI.
pub const DEFAULT_DEVICE: &str = "/dev/tpmrm0";
/// The default port of the swtpm and mssim TCTIs.
const DEFAULT_PORT: u16 = 2321;
const DEFAULT_HOST: &str = "localhost";
const DEFAULT_BUS_NAME: &str = "com.intel.tss2.Tabrmd";
/// The default label.
pub const DEFAULT_LABEL: &str = "tpm";
/// The highest PCR index accepted (a PC client TPM has 24 PCRs).
pub const MAX_PCR_INDEX: u8 = 23;

/// The owner range of persistent handles (TCG handle registry).
const PERSISTENT_OWNER_FIRST: u32 = 0x8100_0000;
const PERSISTENT_OWNER_LAST: u32 = 0x817F_FFFF;

/// How to reach the TPM: a TCTI (TPM command transmission interface) and its configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Tcti {
    /// A character device: `/dev/tpmrm0` (the kernel's resource manager) or `/dev/tpm0`.
    Device {
        /// The device path, absolute.
        path: PathBuf,
    },
    /// swtpm's socket interface.
    Swtpm {
        /// Host name or IP address.
        host: String,
        /// Command port (the control port is the next one).
        port: u16,
    },
    /// The Microsoft/IBM simulator protocol.
    Mssim {
        /// Host name or IP address.
        host: String,
        /// Command port (the platform port is the next one).
        port: u16,
    },
    /// The TPM2 access broker and resource manager daemon, over D-Bus.
    Tabrmd {
        /// The daemon's bus name.
        bus_name: String,
        /// `system` or `session`.
        session_bus: bool,
    },
}

impl Tcti {
    /// Whether the TPM behind this TCTI is a simulator by the protocol alone.
    pub fn is_simulator(&self) -> bool {
        matches!(self, Self::Swtpm { .. } | Self::Mssim { .. })
    }

    fn parse(value: &str) -> Result<Self, Error> {
        let (kind, config) = match value.split_once(':') {
            Some((kind, config)) => (kind, Some(config)),
            None => (value, None),
        };
        if config == Some("") {
            return Err(invalid(
                "tcti",
                format!(
                    "{:?} has nothing after its colon: leave the colon out for the defaults",
                    shorten(kind, 32)
                ),
            ));
        }
        match kind {
            "device" => {
                let path = config.unwrap_or(DEFAULT_DEVICE);
                check_path(path, "tcti")?;
                Ok(Self::Device {
                    path: PathBuf::from(path),
                })
            }
            "swtpm" | "mssim" => {
                let (host, port) = parse_network(config.unwrap_or_default())?;
                Ok(if kind == "swtpm" {
                    Self::Swtpm { host, port }
                } else {
                    Self::Mssim { host, port }
                })
            }
            "tabrmd" => parse_tabrmd(config.unwrap_or_default()),
            _ => Err(invalid(
                "tcti",
                format!(
                    "{:?} is not a TCTI this vault knows; use device:/dev/tpmrm0, swtpm:host=H,port=P, mssim:host=H,port=P or tabrmd",
                    shorten(kind, 32)
                ),
            )),
        }
    }
}

/// The TCTI configuration string tpm2-tss reads, e.g. `swtpm:host=127.0.0.1,port=2321`.
impl fmt::Display for Tcti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Device { path } => write!(f, "device:{}", path.display()),
            Self::Swtpm { host, port } => write!(f, "swtpm:host={host},port={port}"),
            Self::Mssim { host, port } => write!(f, "mssim:host={host},port={port}"),
            Self::Tabrmd {
                bus_name,
                session_bus,
            } => {
                let bus_type = if *session_bus { "session" } else { "system" };
                write!(f, "tabrmd:bus_name={bus_name},bus_type={bus_type}")
            }
        }
    }
}

/// A PCR bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PcrBank {
    /// SHA-1 (TPM_ALG_SHA1), for old firmware that has no other bank active.
    Sha1,
    /// SHA-256 (TPM_ALG_SHA256).
    Sha256,
}

impl PcrBank {
    /// The name used in `pcrs=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
        }
    }

    /// The TPM_ALG_ID.
    pub fn alg_id(self) -> u16 {
        match self {
            Self::Sha1 => 0x0004,
            Self::Sha256 => 0x000B,
        }
    }

    /// The bank of a TPM_ALG_ID.
    pub fn from_alg_id(id: u16) -> Option<Self> {
        match id {
            0x0004 => Some(Self::Sha1),
            0x000B => Some(Self::Sha256),
            _ => None,
        }
    }
}

/// PCRs of one bank: what a sealed DEK is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PcrSelection {
    bank: PcrBank,
    /// Bit `i` selects PCR `i`; only bits 0 to 23, at least one.
    mask: u32,
}

impl PcrSelection {
    /// A selection; `None` when `mask` is empty or selects a PCR above 23.
    pub fn new(bank: PcrBank, mask: u32) -> Option<Self> {
        (mask != 0 && mask >> (MAX_PCR_INDEX + 1) == 0).then_some(Self { bank, mask })
    }

    /// The bank.
    pub fn bank(&self) -> PcrBank {
        self.bank
    }

    /// Bit `i` selects PCR `i`.
    pub fn mask(&self) -> u32 {
        self.mask
    }

    /// The selected indices, ascending.
    pub fn indices(&self) -> Vec<u8> {
        (0..=MAX_PCR_INDEX)
            .filter(|i| self.mask & (1 << i) != 0)
            .collect()
    }

    fn parse(value: &str) -> Result<Self, Error> {
        let bad = |reason: String| invalid("pcrs", reason);
        let Some((bank, list)) = value.split_once(':') else {
            return Err(bad(
                "must be BANK:INDEX,INDEX,... e.g. pcrs=sha256:7,16".into()
            ));
        };
        let bank = match bank {
            "sha256" => PcrBank::Sha256,
            "sha1" => PcrBank::Sha1,
            _ => {
                return Err(bad(format!(
                    "bank {:?} is not sha256 or sha1",
                    shorten(bank, 16)
                )));
            }
        };
        let mut mask = 0u32;
        for index in list.split(',') {
            let i = parse_decimal(index, u32::from(MAX_PCR_INDEX)).ok_or_else(|| {
                bad(format!(
                    "{:?} is not a PCR index from 0 to {MAX_PCR_INDEX}",
                    shorten(index, 16)
                ))
            })?;
            if mask & (1 << i) != 0 {
                return Err(bad(format!("PCR {i} is listed twice")));
            }
            mask |= 1 << i;
        }
        Self::new(bank, mask).ok_or_else(|| bad("selects no PCR".into()))
    }
}

/// `sha256:7,16`.
impl fmt::Display for PcrSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.indices().iter().map(u8::to_string).collect();
        write!(f, "{}:{}", self.bank.as_str(), list.join(","))
    }
}

/// A parsed `tpm2:` KEK URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tpm2Uri {
    /// `tcti=`: how to reach the TPM.
    pub tcti: Tcti,
    /// `srk=`: the SRK's persistent handle.
    pub srk: Option<u32>,
    /// `pcrs=`: the PCRs sealed DEKs are bound to.
    pub pcrs: Option<PcrSelection>,
    /// `encrypt`: parameter encryption on the sessions.
    pub encrypt: bool,
    /// `owner-auth=`: where the owner hierarchy's authorisation comes from.
    pub owner_auth: Option<SecretSource>,
    /// `label=`: the KEK's label.
    pub label: String,
}

impl Tpm2Uri {
    /// Parses a whole `tpm2:` URI.
    pub fn parse(text: &str) -> Result<Self, Error> {
        if text.len() > MAX_TPM2_URI_LEN {
            return Err(Error::UriTooLong {
                len: text.len(),
                max: MAX_TPM2_URI_LEN,
            });
        }
        let Some(rest) = text.strip_prefix(SCHEME) else {
            return Err(Error::InvalidUri {
                reason: format!("a TPM KEK URI starts with tpm2:, {EXAMPLE}"),
            });
        };
        let mut tcti = None;
        let mut srk = None;
        let mut pcrs = None;
        let mut encrypt = None;
        let mut owner_auth = None;
        let mut label = None;
        if !rest.is_empty() {
            for parameter in rest.split(';') {
                let (name, value) = match parameter.split_once('=') {
                    Some((name, value)) => (name, Some(value)),
                    None => (parameter, None),
                };
                match name {
                    "tcti" => set(&mut tcti, "tcti", Tcti::parse(needs(value, "tcti")?)?)?,
                    "srk" => set(&mut srk, "srk", parse_handle(needs(value, "srk")?)?)?,
                    "pcrs" => set(
                        &mut pcrs,
                        "pcrs",
                        PcrSelection::parse(needs(value, "pcrs")?)?,
                    )?,
                    "encrypt" => {
                        if value.is_some() {
                            return Err(invalid(
                                "encrypt",
                                "takes no value: write ;encrypt".into(),
                            ));
                        }
                        set(&mut encrypt, "encrypt", true)?;
                    }
                    "owner-auth" => set(
                        &mut owner_auth,
                        "owner-auth",
                        parse_owner_auth(needs(value, "owner-auth")?)?,
                    )?,
                    "label" => set(&mut label, "label", parse_label(needs(value, "label")?)?)?,
                    "" => {
                        return Err(Error::InvalidUri {
                            reason: format!(
                                "it has an empty parameter (;; or a trailing ;), {EXAMPLE}"
                            ),
                        });
                    }
                    _ => {
                        return Err(Error::UnknownParameter {
                            kind: "tpm2",
                            name: shorten(name, 32),
                            known: PARAMETERS,
                        });
                    }
                }
            }
        }
        Ok(Self {
            tcti: tcti.unwrap_or_else(|| Tcti::Device {
                path: PathBuf::from(DEFAULT_DEVICE),
            }),
            srk,
            pcrs,
            encrypt: encrypt.unwrap_or(false),
            owner_auth,
            label: label.unwrap_or_else(|| DEFAULT_LABEL.to_owned()),
        })
    }

    /// The canonical form: every parameter that has a value, defaults spelled out, in the
    /// order tcti, srk, pcrs, encrypt, owner-auth, label.
    pub fn to_canonical(&self) -> String {
        let mut out = format!("{SCHEME}tcti={}", self.tcti);
        if let Some(handle) = self.srk {
            out.push_str(&format!(";srk={handle:#010x}"));
        }
        if let Some(pcrs) = &self.pcrs {
            out.push_str(&format!(";pcrs={pcrs}"));
        }
        if self.encrypt {
            out.push_str(";encrypt");
        }
        match &self.owner_auth {
            Some(SecretSource::Env(name)) => out.push_str(&format!(";owner-auth=env:{name}")),
            Some(SecretSource::File(path)) => {
                out.push_str(&format!(";owner-auth=file:{}", path.display()));
            }
            Some(SecretSource::Prompt) | None => {}
        }
        out.push_str(&format!(";label={}", self.label));
        out
    }
}

impl fmt::Display for Tpm2Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_canonical())
    }
}

fn invalid(name: &'static str, reason: String) -> Error {
    Error::InvalidParameter { name, reason }
}

fn set<T>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), Error> {
    if slot.is_some() {
        return Err(Error::DuplicateParameter { name });
    }
    *slot = Some(value);
    Ok(())
}

fn needs<'a>(value: Option<&'a str>, name: &'static str) -> Result<&'a str, Error> {
    match value {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(invalid(name, format!("needs a value, {EXAMPLE}"))),
    }
}

/// A decimal number without sign or leading zeros, at most `max`.
fn parse_decimal(text: &str, max: u32) -> Option<u32> {
    let digits_only =
        !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse::<u32>().ok().filter(|n| *n <= max)
}

/// `0x` and 8 hex digits in the owner range of persistent handles.
fn parse_handle(text: &str) -> Result<u32, Error> {
    let bad = || {
        invalid(
            "srk",
            format!(
                "must be a persistent handle from 0x81000000 to 0x817fffff written as 0x and 8 hex digits, e.g. srk=0x81000001 (got {:?})",
                shorten(text, 16)
            ),
        )
    };
    let digits = text.strip_prefix("0x").ok_or_else(bad)?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let handle = u32::from_str_radix(digits, 16).map_err(|_| bad())?;
    if !(PERSISTENT_OWNER_FIRST..=PERSISTENT_OWNER_LAST).contains(&handle) {
        return Err(bad());
    }
    Ok(handle)
}

fn parse_label(text: &str) -> Result<String, Error> {
    let valid = text.len() <= MAX_LABEL_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(text.to_owned())
    } else {
        Err(invalid(
            "label",
            format!("must be 1 to {MAX_LABEL_LEN} of A-Z, a-z, 0-9, ., _, -"),
        ))
    }
}

/// An absolute path of `A-Za-z0-9/._+-` without empty, `.` or `..` components.
fn check_path(path: &str, name: &'static str) -> Result<(), Error> {
    let allowed =
        |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-' | b'+');
    let valid = path.len() <= MAX_PATH_LEN
        && path.len() > 1
        && path.starts_with('/')
        && path.bytes().all(allowed)
        && path[1..]
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if valid {
        Ok(())
    } else {
        Err(invalid(
            name,
            format!(
                "needs an absolute path of at most {MAX_PATH_LEN} bytes of A-Z, a-z, 0-9, /, ., _, +, - without empty, . or .. components"
            ),
        ))
    }
}

/// `host=H,port=P` in any order, each at most once; defaults localhost and 2321.
fn parse_network(config: &str) -> Result<(String, u16), Error> {
    let mut host = None;
    let mut port = None;
    if !config.is_empty() {
        for pair in config.split(',') {
            match pair.split_once('=') {
                Some(("host", value)) => set(&mut host, "tcti host", parse_host(value)?)?,
                Some(("port", value)) => {
                    let p = parse_decimal(value, u32::from(u16::MAX - 1))
                        .filter(|p| *p > 0)
                        .ok_or_else(|| {
                            invalid(
                                "tcti",
                                "port must be a decimal number from 1 to 65534 (the next port is the TPM's control port)".into(),
                            )
                        })?;
                    set(&mut port, "tcti port", p as u16)?;
                }
                _ => {
                    return Err(invalid(
                        "tcti",
                        format!(
                            "{:?} is not host=H or port=P, e.g. tcti=swtpm:host=127.0.0.1,port=2321",
                            shorten(pair, 32)
                        ),
                    ));
                }
            }
        }
    }
    Ok((
        host.unwrap_or_else(|| DEFAULT_HOST.to_owned()),
        port.unwrap_or(DEFAULT_PORT),
    ))
}

/// An IP address (printed in its canonical form) or a DNS host name (lower-cased).
fn parse_host(text: &str) -> Result<String, Error> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if text.len() <= 253 && text.split('.').all(label_ok) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(invalid(
            "tcti",
            format!(
                "host {:?} is not an IP address or a host name",
                shorten(text, 64)
            ),
        ))
    }
}

/// `bus_name=N,bus_type=system|session`, each at most once.
fn parse_tabrmd(config: &str) -> Result<Tcti, Error> {
    let mut bus_name = None;
    let mut session_bus = None;
    if !config.is_empty() {
        for pair in config.split(',') {
            match pair.split_once('=') {
                Some(("bus_name", value)) => {
                    let part_ok = |part: &str| {
                        !part.is_empty()
                            && part
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    };
                    if value.len() > MAX_PATH_LEN
                        || value.split('.').count() < 2
                        || !value.split('.').all(part_ok)
                    {
                        return Err(invalid(
                            "tcti",
                            "bus_name must be a D-Bus name such as com.intel.tss2.Tabrmd".into(),
                        ));
                    }
                    set(&mut bus_name, "tcti bus_name", value.to_owned())?;
                }
                Some(("bus_type", "system")) => set(&mut session_bus, "tcti bus_type", false)?,
                Some(("bus_type", "session")) => set(&mut session_bus, "tcti bus_type", true)?,
                _ => {
                    return Err(invalid(
                        "tcti",
                        format!(
                            "{:?} is not bus_name=N or bus_type=system|session",
                            shorten(pair, 32)
                        ),
                    ));
                }
            }
        }
    }
    Ok(Tcti::Tabrmd {
        bus_name: bus_name.unwrap_or_else(|| DEFAULT_BUS_NAME.to_owned()),
        session_bus: session_bus.unwrap_or(false),
    })
}

/// `env:NAME` or `file:/PATH`.
fn parse_owner_auth(text: &str) -> Result<SecretSource, Error> {
    if let Some(name) = text.strip_prefix("env:") {
        return match SecretSource::env_named(name) {
            Ok(source) if name.len() <= MAX_ENV_NAME_LEN => Ok(source),
            _ => Err(invalid("owner-auth", ENV_NAME_RULE.into())),
        };
    }
    if let Some(path) = text.strip_prefix("file:") {
        check_path(path, "owner-auth")?;
        return Ok(SecretSource::File(PathBuf::from(path)));
    }
    Err(invalid(
        "owner-auth",
        "must be env:NAME or file:/absolute/path".into(),
    ))
}
