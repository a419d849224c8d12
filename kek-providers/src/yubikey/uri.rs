//! Parsing `yubikey:serial=N;slot=9d;pin-source=...;touch=...`: strict and bounded.

use std::path::PathBuf;

use crate::error::shorten;
use crate::{Error, SecretSource};

/// The parameters a yubikey URI takes, for messages.
const KNOWN_PARAMETERS: &str =
    "serial=N, slot=9a|9c|9d|9e|82..95, pin-source=file:/path|env:NAME, touch=never|always|cached";
/// The slot when the URI gives none (PIV key management).
pub(crate) const DEFAULT_SLOT: u8 = 0x9d;
/// Longest pin-source accepted.
const MAX_SOURCE_LEN: usize = 1024;

/// A parsed `yubikey:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct YubikeyKekSpec {
    /// The card's serial; `None`: the only card plugged in.
    pub(crate) serial: Option<u32>,
    /// The PIV slot (its key reference, e.g. 0x9d).
    pub(crate) slot: u8,
    /// Where the PIN comes from (the terminal when the URI names no source).
    pub(crate) pin: SecretSource,
    /// The touch policy of a key `create` generates; `None`: the slot's default (never).
    pub(crate) touch: Option<Touch>,
}

/// A touch policy to generate a key with (the card keeps it with the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Touch {
    /// No touch.
    Never,
    /// A touch for every operation.
    Always,
    /// A touch that the card keeps for 15 seconds.
    Cached,
}

impl Touch {
    fn name(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::Always => "always",
            Self::Cached => "cached",
        }
    }
}

impl YubikeyKekSpec {
    /// Parses what follows `yubikey:`: `name=value` parts separated by `;`, each at most once.
    pub(crate) fn parse(rest: &str) -> Result<Self, Error> {
        let mut serial = None;
        let mut slot = None;
        let mut pin = None;
        let mut touch = None;
        if !rest.is_empty() {
            for part in rest.split(';') {
                let Some((name, value)) = part.split_once('=') else {
                    return Err(Error::InvalidUri {
                        reason: format!(
                            "yubikey KEK parameters are name=value separated by ';' ({KNOWN_PARAMETERS}), e.g. yubikey:serial=15000001;slot=9d;pin-source=file:/run/vault/pin"
                        ),
                    });
                };
                match name {
                    "serial" => {
                        if serial.is_some() {
                            return Err(Error::DuplicateParameter { name: "serial" });
                        }
                        serial = Some(parse_serial(value)?);
                    }
                    "slot" => {
                        if slot.is_some() {
                            return Err(Error::DuplicateParameter { name: "slot" });
                        }
                        slot = Some(parse_slot(value)?);
                    }
                    "pin-source" => {
                        if pin.is_some() {
                            return Err(Error::DuplicateParameter { name: "pin-source" });
                        }
                        pin = Some(parse_pin_source(value)?);
                    }
                    "touch" => {
                        if touch.is_some() {
                            return Err(Error::DuplicateParameter { name: "touch" });
                        }
                        touch = Some(parse_touch(value)?);
                    }
                    _ => {
                        return Err(Error::UnknownParameter {
                            kind: "yubikey",
                            name: shorten(name, 32),
                            known: KNOWN_PARAMETERS,
                        });
                    }
                }
            }
        }
        Ok(Self {
            serial,
            slot: slot.unwrap_or(DEFAULT_SLOT),
            pin: pin.unwrap_or(SecretSource::Prompt),
            touch,
        })
    }

    /// `yubikey:serial=N;slot=S;pin-source=...;touch=...` for the card with `serial`.
    #[cfg_attr(not(feature = "yubikey"), allow(dead_code))]
    pub(crate) fn canonical_uri(&self, serial: u32) -> String {
        let pin = match &self.pin {
            SecretSource::Env(name) => format!(";pin-source=env:{name}"),
            SecretSource::File(path) => format!(";pin-source=file:{}", path.display()),
            SecretSource::Prompt => String::new(),
        };
        let touch = self
            .touch
            .map(|touch| format!(";touch={}", touch.name()))
            .unwrap_or_default();
        format!("yubikey:serial={serial};slot={:02x}{pin}{touch}", self.slot)
    }
}

fn parse_serial(value: &str) -> Result<u32, Error> {
    let valid = !value.is_empty() && value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit());
    valid
        .then(|| value.parse::<u32>().ok())
        .flatten()
        .ok_or_else(|| Error::InvalidParameter {
            name: "serial",
            reason: "must be the card's decimal serial number, e.g. serial=15000001".into(),
        })
}

fn parse_slot(value: &str) -> Result<u8, Error> {
    let slot = (value.len() == 2)
        .then(|| u8::from_str_radix(&value.to_ascii_lowercase(), 16).ok())
        .flatten()
        .filter(|s| matches!(s, 0x9a | 0x9c | 0x9d | 0x9e | 0x82..=0x95));
    slot.ok_or_else(|| Error::InvalidParameter {
        name: "slot",
        reason: "must be a PIV key slot: 9a, 9c, 9d, 9e or 82 to 95 (hex), e.g. slot=9d".into(),
    })
}

fn parse_touch(value: &str) -> Result<Touch, Error> {
    match value {
        "never" => Ok(Touch::Never),
        "always" => Ok(Touch::Always),
        "cached" => Ok(Touch::Cached),
        _ => Err(Error::InvalidParameter {
            name: "touch",
            reason:
                "must be never, always or cached (the touch policy of the key kek create generates)"
                    .into(),
        }),
    }
}

/// `file:/absolute/path` or `env:NAME`, as the pkcs11 URI's.
fn parse_pin_source(source: &str) -> Result<SecretSource, Error> {
    let bad = |reason: &str| Error::InvalidParameter {
        name: "pin-source",
        reason: reason.into(),
    };
    if source.len() > MAX_SOURCE_LEN {
        return Err(bad("is too long"));
    }
    if let Some(name) = source.strip_prefix("env:") {
        return SecretSource::env_named(name).map_err(bad);
    }
    let Some(path) = source.strip_prefix("file:") else {
        return Err(bad("must be file:/absolute/path or env:NAME"));
    };
    if path.contains(';') {
        return Err(bad("the path must not contain ';'"));
    }
    if !path.starts_with('/') {
        return Err(bad(
            "must be file:/absolute/path (or env:NAME) so that it does not depend on the working directory",
        ));
    }
    Ok(SecretSource::File(PathBuf::from(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(rest: &str) -> Result<YubikeyKekSpec, Error> {
        YubikeyKekSpec::parse(rest)
    }

    #[test]
    fn defaults_and_canonical_form() {
        let spec = parse("").expect("the defaults");
        assert_eq!(spec.canonical_uri(7), "yubikey:serial=7;slot=9d");
        let spec = parse("pin-source=env:PIN").expect("the PIN source only");
        assert_eq!(spec.serial, None);
        assert_eq!(
            spec.canonical_uri(7),
            "yubikey:serial=7;slot=9d;pin-source=env:PIN"
        );
        let spec = parse("slot=9A;pin-source=file:/run/pin;serial=15000001").expect("any order");
        let canonical = spec.canonical_uri(15_000_001);
        assert_eq!(
            canonical,
            "yubikey:serial=15000001;slot=9a;pin-source=file:/run/pin"
        );
        let again = parse(canonical.strip_prefix("yubikey:").unwrap_or_default());
        assert_eq!(again.expect("canonical form parses"), spec);
        let spec = parse("touch=cached;pin-source=env:PIN").expect("a touch policy");
        assert_eq!(spec.touch, Some(Touch::Cached));
        let canonical = spec.canonical_uri(7);
        assert_eq!(
            canonical,
            "yubikey:serial=7;slot=9d;pin-source=env:PIN;touch=cached"
        );
        let again = parse(canonical.strip_prefix("yubikey:").unwrap_or_default());
        let again = again.expect("canonical form parses");
        assert_eq!((again.serial, again.touch), (Some(7), spec.touch));
        assert_eq!(again.canonical_uri(7), canonical);
        for touch in ["never", "always"] {
            assert!(parse(&format!("touch={touch}")).is_ok(), "{touch}");
        }
        for slot in ["82", "95", "9c", "9e"] {
            assert!(
                parse(&format!("slot={slot};pin-source=env:P")).is_ok(),
                "{slot}"
            );
        }
    }

    #[test]
    fn rejects_malformed_uris() {
        for (rest, expect) in [
            ("serial", "name=value"),
            ("pin-source=env:P;", "name=value"),
            ("serial=;pin-source=env:P", "serial is invalid"),
            ("serial=-1;pin-source=env:P", "serial is invalid"),
            ("serial=0x10;pin-source=env:P", "serial is invalid"),
            ("serial=99999999999;pin-source=env:P", "serial is invalid"),
            ("slot=9b;pin-source=env:P", "slot is invalid"),
            ("slot=96;pin-source=env:P", "slot is invalid"),
            ("slot=9d0;pin-source=env:P", "slot is invalid"),
            ("pin-source=relative/pin", "pin-source is invalid"),
            ("pin-source=file:pin", "pin-source is invalid"),
            ("pin-source=env:A-B", "pin-source is invalid"),
            ("slot=9d;slot=9a;pin-source=env:P", "given twice"),
            ("pin=123456", "unknown yubikey KEK parameter \"pin\""),
            ("touch=sometimes", "touch is invalid"),
            ("touch=Always", "touch is invalid"),
            ("touch=", "touch is invalid"),
            ("touch=never;touch=always", "given twice"),
        ] {
            let err = parse(rest).expect_err(rest).to_string();
            assert!(err.contains(expect), "{rest}: {err}");
        }
    }
}
