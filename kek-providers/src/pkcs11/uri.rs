//! Parsing RFC 7512 PKCS#11 URIs: `pkcs11:<path attributes>[?<query attributes>]`.
//!
//! Path attributes are `name=value` separated by `;`, query attributes `name=value` separated
//! by `&`. Values are percent-decoded; `%` must start a valid escape, and characters RFC 7512
//! does not allow literally (spaces, `#`, `/` in the path, non-ASCII, ...) must be escaped.
//! Decoded values must be UTF-8, except `id`, which is raw bytes.
//!
//! Strictness beyond the RFC, so that a mistyped URI fails instead of matching the wrong
//! object: attribute names are case-sensitive; an attribute given twice, an empty attribute
//! (`;;`, a trailing `;`) and `pin-source` together with `pin-value` are refused. RFC 7512
//! lets vendors define their own attributes; this parser accepts (and ignores) only vendor
//! attributes named `x-...` (keeping this vault's `x-mechanism`), and refuses any other unknown name (e.g. the RFC's example
//! `vendor-aaa=value-a`) with an error naming it, so a typo such as `objet=` never passes
//! silently. Bounds: the URI is at most [`MAX_PKCS11_URI_LEN`] bytes, each value as written
//! at most [`MAX_PKCS11_VALUE_LEN`].

use std::fmt;
use std::path::PathBuf;

use envelope::SecretBytes;
use zeroize::Zeroizing;

use crate::Error;
use crate::error::shorten;

/// Longest PKCS#11 URI accepted, in bytes.
pub const MAX_PKCS11_URI_LEN: usize = 4096;
/// Longest attribute value accepted, in bytes as written (before percent-decoding).
pub const MAX_PKCS11_VALUE_LEN: usize = 1024;

const SCHEME: &str = "pkcs11:";
const PATH_ATTRIBUTES: &str = "token, manufacturer, serial, model, library-manufacturer, \
     library-description, library-version, slot-description, slot-manufacturer, slot-id, \
     object, type, id";
const QUERY_ATTRIBUTES: &str = "pin-source, pin-value, module-name, module-path, x-mechanism";

/// An object class, the `type` path attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectType {
    /// `public`: CKO_PUBLIC_KEY.
    Public,
    /// `private`: CKO_PRIVATE_KEY.
    Private,
    /// `cert`: CKO_CERTIFICATE.
    Cert,
    /// `secret-key`: CKO_SECRET_KEY.
    SecretKey,
    /// `data`: CKO_DATA.
    Data,
}

impl ObjectType {
    /// The name used in URIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
            Self::Cert => "cert",
            Self::SecretKey => "secret-key",
            Self::Data => "data",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "public" => Self::Public,
            "private" => Self::Private,
            "cert" => Self::Cert,
            "secret-key" => Self::SecretKey,
            "data" => Self::Data,
            _ => return None,
        })
    }
}

/// A Cryptoki library version, the `library-version` path attribute (`M` means `M.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LibraryVersion {
    /// Major version (CK_VERSION.major).
    pub major: u8,
    /// Minor version (CK_VERSION.minor).
    pub minor: u8,
}

/// A parsed PKCS#11 URI. `None` means the attribute was not given (it matches anything);
/// `Some("")` means it was given empty (e.g. `serial=`).
///
/// `pin-value` is kept in locked, zeroized memory, never in a `String`, and `Debug` shows only
/// whether it was given. [`Pkcs11Uri::to_canonical`] leaves it out.
#[derive(Debug, Default, PartialEq)]
pub struct Pkcs11Uri {
    /// `token`: the token label.
    pub token: Option<String>,
    /// `manufacturer`: the token manufacturer.
    pub manufacturer: Option<String>,
    /// `serial`: the token serial number.
    pub serial: Option<String>,
    /// `model`: the token model.
    pub model: Option<String>,
    /// `library-manufacturer`.
    pub library_manufacturer: Option<String>,
    /// `library-description`.
    pub library_description: Option<String>,
    /// `library-version`.
    pub library_version: Option<LibraryVersion>,
    /// `slot-description`.
    pub slot_description: Option<String>,
    /// `slot-manufacturer`.
    pub slot_manufacturer: Option<String>,
    /// `slot-id`: the decimal slot identifier.
    pub slot_id: Option<u64>,
    /// `object`: the object label (CKA_LABEL).
    pub object: Option<String>,
    /// `type`: the object class.
    pub object_type: Option<ObjectType>,
    /// `id`: the object identifier (CKA_ID), raw bytes.
    pub id: Option<Vec<u8>>,
    /// `pin-source` (query): where to read the PIN from, e.g. `file:/etc/token_pin`.
    pub pin_source: Option<String>,
    /// `module-name` (query): the PKCS#11 module's name, e.g. `softhsm2`.
    pub module_name: Option<String>,
    /// `module-path` (query): the PKCS#11 module's path.
    pub module_path: Option<PathBuf>,
    /// `x-mechanism` (query, this vault's vendor attribute): the wrapping mechanism to use,
    /// e.g. `aes-gcm` or `aes-key-wrap-pad`. Kept in the canonical form.
    pub mechanism: Option<String>,
    /// `pin-value` (query), in locked memory.
    pin_value: Option<PinValue>,
}

/// The PIN from `pin-value`, compared in constant time and never printed.
struct PinValue(SecretBytes);

impl fmt::Debug for PinValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl PartialEq for PinValue {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

/// Which part of the URI an attribute is in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Path,
    Query,
}

impl Pkcs11Uri {
    /// Parses a whole `pkcs11:` URI.
    pub fn parse(text: &str) -> Result<Self, Error> {
        if text.len() > MAX_PKCS11_URI_LEN {
            return Err(Error::UriTooLong {
                len: text.len(),
                max: MAX_PKCS11_URI_LEN,
            });
        }
        let Some(rest) = text.strip_prefix(SCHEME) else {
            return Err(invalid(
                "it must start with pkcs11:, e.g. pkcs11:token=my-token;object=my-key;type=private",
            ));
        };
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        let mut uri = Self::default();
        if !path.is_empty() {
            for attribute in path.split(';') {
                uri.path_attribute(attribute)?;
            }
        }
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            for attribute in query.split('&') {
                uri.query_attribute(attribute)?;
            }
        }
        if uri.pin_source.is_some() && uri.pin_value.is_some() {
            return Err(invalid(
                "pin-source and pin-value are both given; give one of them",
            ));
        }
        Ok(uri)
    }

    /// Whether the URI carried `pin-value` (callers may warn that the PIN sits in the URI).
    pub fn pin_value_given(&self) -> bool {
        self.pin_value.is_some()
    }

    /// The PIN from `pin-value`, if given.
    pub fn pin_value(&self) -> Option<&SecretBytes> {
        self.pin_value.as_ref().map(|pin| &pin.0)
    }

    /// Drops the `pin-value` (zeroizing it), e.g. before comparing with a canonical form.
    pub fn clear_pin_value(&mut self) {
        self.pin_value = None;
    }

    /// The URI with attributes in a fixed order, only the characters RFC 7512 does not allow
    /// literally percent-encoded, `x-` vendor attributes other than
    /// `x-mechanism` dropped, and without `pin-value`.
    /// [`Pkcs11Uri::parse`] of it gives `self` back (without the PIN), and it is no longer than
    /// the URI `self` was parsed from.
    pub fn to_canonical(&self) -> String {
        let mut path: Vec<String> = Vec::new();
        let mut text = |name: &str, value: &Option<String>| {
            if let Some(value) = value {
                path.push(format!("{name}={}", encode(value.as_bytes(), Part::Path)));
            }
        };
        text("token", &self.token);
        text("manufacturer", &self.manufacturer);
        text("serial", &self.serial);
        text("model", &self.model);
        text("library-manufacturer", &self.library_manufacturer);
        text("library-description", &self.library_description);
        text("slot-description", &self.slot_description);
        text("slot-manufacturer", &self.slot_manufacturer);
        text("object", &self.object);
        match self.library_version {
            // `M` and `M.0` are the same version; the shorter form keeps the canonical URI
            // no longer than the one it came from.
            Some(LibraryVersion { major, minor: 0 }) => {
                path.push(format!("library-version={major}"));
            }
            Some(LibraryVersion { major, minor }) => {
                path.push(format!("library-version={major}.{minor}"));
            }
            None => {}
        }
        if let Some(slot_id) = self.slot_id {
            path.push(format!("slot-id={slot_id}"));
        }
        if let Some(object_type) = self.object_type {
            path.push(format!("type={}", object_type.as_str()));
        }
        if let Some(id) = &self.id {
            path.push(format!("id={}", encode(id, Part::Path)));
        }
        let mut query: Vec<String> = Vec::new();
        if let Some(source) = &self.pin_source {
            query.push(format!(
                "pin-source={}",
                encode(source.as_bytes(), Part::Query)
            ));
        }
        if let Some(name) = &self.module_name {
            query.push(format!(
                "module-name={}",
                encode(name.as_bytes(), Part::Query)
            ));
        }
        if let Some(module) = &self.module_path {
            // Parsed module paths are UTF-8; a non-UTF-8 one set by hand is encoded lossily.
            let module = module.to_string_lossy();
            query.push(format!(
                "module-path={}",
                encode(module.as_bytes(), Part::Query)
            ));
        }
        if let Some(mechanism) = &self.mechanism {
            query.push(format!(
                "x-mechanism={}",
                encode(mechanism.as_bytes(), Part::Query)
            ));
        }
        let mut out = format!("{SCHEME}{}", path.join(";"));
        if !query.is_empty() {
            out.push('?');
            out.push_str(&query.join("&"));
        }
        out
    }

    fn path_attribute(&mut self, attribute: &str) -> Result<(), Error> {
        let (name, value) = split_attribute(attribute, Part::Path)?;
        match name {
            "token" => set_text(&mut self.token, "token", value, Part::Path),
            "manufacturer" => set_text(&mut self.manufacturer, "manufacturer", value, Part::Path),
            "serial" => set_text(&mut self.serial, "serial", value, Part::Path),
            "model" => set_text(&mut self.model, "model", value, Part::Path),
            "library-manufacturer" => set_text(
                &mut self.library_manufacturer,
                "library-manufacturer",
                value,
                Part::Path,
            ),
            "library-description" => set_text(
                &mut self.library_description,
                "library-description",
                value,
                Part::Path,
            ),
            "slot-description" => set_text(
                &mut self.slot_description,
                "slot-description",
                value,
                Part::Path,
            ),
            "slot-manufacturer" => set_text(
                &mut self.slot_manufacturer,
                "slot-manufacturer",
                value,
                Part::Path,
            ),
            "object" => set_text(&mut self.object, "object", value, Part::Path),
            "library-version" => {
                let text = decode_text("library-version", value, Part::Path)?;
                set_once(
                    &mut self.library_version,
                    "library-version",
                    parse_version(&text)?,
                )
            }
            "slot-id" => {
                let text = decode_text("slot-id", value, Part::Path)?;
                set_once(&mut self.slot_id, "slot-id", parse_slot_id(&text)?)
            }
            "type" => {
                let text = decode_text("type", value, Part::Path)?;
                let object_type =
                    ObjectType::parse(&text).ok_or_else(|| Error::Pkcs11InvalidAttribute {
                        name: "type",
                        reason: "must be one of public, private, cert, secret-key, data".into(),
                    })?;
                set_once(&mut self.object_type, "type", object_type)
            }
            "id" => {
                let bytes = decode("id", value, Part::Path)?;
                set_once(&mut self.id, "id", bytes)
            }
            _ => vendor_or_unknown(name, value, Part::Path),
        }
    }

    fn query_attribute(&mut self, attribute: &str) -> Result<(), Error> {
        let (name, value) = split_attribute(attribute, Part::Query)?;
        match name {
            "pin-source" => set_text(&mut self.pin_source, "pin-source", value, Part::Query),
            "module-name" => set_text(&mut self.module_name, "module-name", value, Part::Query),
            "x-mechanism" => set_text(&mut self.mechanism, "x-mechanism", value, Part::Query),
            "module-path" => {
                let text = decode_text("module-path", value, Part::Query)?;
                set_once(&mut self.module_path, "module-path", PathBuf::from(text))
            }
            "pin-value" => {
                if self.pin_value.is_some() {
                    return Err(Error::Pkcs11DuplicateAttribute { name: "pin-value" });
                }
                let bytes = Zeroizing::new(decode("pin-value", value, Part::Query)?);
                if std::str::from_utf8(&bytes).is_err() {
                    return Err(not_utf8("pin-value"));
                }
                self.pin_value = Some(PinValue(SecretBytes::from_slice(&bytes)?));
                Ok(())
            }
            _ => vendor_or_unknown(name, value, Part::Query),
        }
    }
}

fn invalid(reason: &str) -> Error {
    Error::Pkcs11InvalidUri {
        reason: reason.into(),
    }
}

fn not_utf8(name: &'static str) -> Error {
    Error::Pkcs11InvalidAttribute {
        name,
        reason: "its percent-decoded value is not valid UTF-8".into(),
    }
}

/// Splits `name=value`, checking the name's characters and the value's length. Neither the
/// attribute nor the value is echoed in errors: a stray piece may be a PIN.
fn split_attribute(attribute: &str, part: Part) -> Result<(&str, &str), Error> {
    let separator = if part == Part::Path { ';' } else { '&' };
    if attribute.is_empty() {
        return Err(invalid(&format!(
            "it has an empty attribute (two '{separator}' in a row, or one at an end)"
        )));
    }
    let Some((name, value)) = attribute.split_once('=') else {
        return Err(invalid(&format!(
            "attributes are name=value separated by '{separator}'"
        )));
    };
    if name.is_empty() {
        return Err(invalid("an attribute has an empty name (=value)"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid(
            "attribute names are made of letters, digits, '-' and '_'",
        ));
    }
    if value.len() > MAX_PKCS11_VALUE_LEN {
        return Err(Error::Pkcs11InvalidAttribute {
            name: static_name(name),
            reason: format!(
                "its value is {} bytes long, over the limit of {MAX_PKCS11_VALUE_LEN}",
                value.len()
            ),
        });
    }
    Ok((name, value))
}

/// The attribute's name as a `'static` string for errors, or `"x-..."`/`"(unknown)"`.
fn static_name(name: &str) -> &'static str {
    const NAMES: [&str; 18] = [
        "token",
        "manufacturer",
        "serial",
        "model",
        "library-manufacturer",
        "library-description",
        "library-version",
        "slot-description",
        "slot-manufacturer",
        "slot-id",
        "object",
        "type",
        "id",
        "pin-source",
        "pin-value",
        "module-name",
        "module-path",
        "x-mechanism",
    ];
    NAMES
        .iter()
        .find(|known| **known == name)
        .copied()
        .unwrap_or("(vendor or unknown)")
}

/// Accepts and ignores a well-formed `x-` vendor attribute; refuses any other name.
fn vendor_or_unknown(name: &str, value: &str, part: Part) -> Result<(), Error> {
    if name.len() > 2 && name.starts_with("x-") {
        // Checked like any value, then dropped.
        decode("x- vendor attribute", value, part).map(|_| ())
    } else {
        Err(Error::Pkcs11UnknownAttribute {
            name: shorten(name, 32),
            known: if part == Part::Path {
                PATH_ATTRIBUTES
            } else {
                QUERY_ATTRIBUTES
            },
        })
    }
}

fn set_once<T>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), Error> {
    if slot.is_some() {
        return Err(Error::Pkcs11DuplicateAttribute { name });
    }
    *slot = Some(value);
    Ok(())
}

fn set_text(
    slot: &mut Option<String>,
    name: &'static str,
    value: &str,
    part: Part,
) -> Result<(), Error> {
    if slot.is_some() {
        return Err(Error::Pkcs11DuplicateAttribute { name });
    }
    *slot = Some(decode_text(name, value, part)?);
    Ok(())
}

/// Whether RFC 7512 allows `byte` literally in a value of `part`: unreserved, the sub-delims
/// and `:`, `[`, `]`, `@`, `=`, with `&` in the path and `/`, `?`, `|` in the query.
fn literal_ok(byte: u8, part: Part) -> bool {
    byte.is_ascii_alphanumeric()
        || b"-._~:[]@!$'()*+,=".contains(&byte)
        || match part {
            Part::Path => byte == b'&',
            Part::Query => b"/?|".contains(&byte),
        }
}

fn decode(name: &'static str, value: &str, part: Part) -> Result<Vec<u8>, Error> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'%' {
            let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
            let (Some(high), Some(low)) = (hex(i + 1), hex(i + 2)) else {
                return Err(Error::Pkcs11InvalidAttribute {
                    name,
                    reason: "'%' must start an escape of two hex digits, e.g. %20".into(),
                });
            };
            // Both digits are below 16, so the byte fits.
            out.push(u8::try_from(high * 16 + low).unwrap_or_default());
            i += 3;
        } else if literal_ok(byte, part) {
            out.push(byte);
            i += 1;
        } else {
            return Err(Error::Pkcs11InvalidAttribute {
                name,
                reason: "its value has a character that must be percent-encoded (e.g. a space as %20, '/' in the path as %2F, non-ASCII as %XX bytes)".into(),
            });
        }
    }
    Ok(out)
}

fn decode_text(name: &'static str, value: &str, part: Part) -> Result<String, Error> {
    String::from_utf8(decode(name, value, part)?).map_err(|_| not_utf8(name))
}

fn encode(bytes: &[u8], part: Part) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        if literal_ok(byte, part) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn parse_version(text: &str) -> Result<LibraryVersion, Error> {
    let reason = || Error::Pkcs11InvalidAttribute {
        name: "library-version",
        reason: "must be M or M.N with decimal numbers 0-255, e.g. 1.23".into(),
    };
    let number = |t: &str| -> Result<u8, Error> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(reason());
        }
        t.parse().map_err(|_| reason())
    };
    match text.split_once('.') {
        Some((major, minor)) => Ok(LibraryVersion {
            major: number(major)?,
            minor: number(minor)?,
        }),
        None => Ok(LibraryVersion {
            major: number(text)?,
            minor: 0,
        }),
    }
}

fn parse_slot_id(text: &str) -> Result<u64, Error> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Pkcs11InvalidAttribute {
            name: "slot-id",
            reason: "must be a decimal number".into(),
        });
    }
    text.parse().map_err(|_| Error::Pkcs11InvalidAttribute {
        name: "slot-id",
        reason: "is larger than 18446744073709551615".into(),
    })
}
