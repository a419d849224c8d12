//! The JSON export form: the same fields as the binary form, binary fields in base64. Both
//! format versions have one: `version` is the binary form's version byte.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::codec::{self, EnvelopeRef, MAX_PAYLOAD_LEN, MAX_STANZAS};

const FORMAT_NAME: &str = "vault-envelope";
const AEAD_NAME: &str = "chacha20-poly1305";
/// Largest JSON text accepted: base64 of the largest envelope plus room for the fields.
pub const MAX_JSON_LEN: usize = MAX_PAYLOAD_LEN / 3 * 4 + 1024 * 1024;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonEnvelope {
    format: String,
    version: u8,
    aead: String,
    stanzas: Vec<JsonStanza>,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonStanza {
    kind: String,
    label: String,
    key_version: u32,
    body: String,
}

/// Converts a binary envelope to its JSON export form.
pub fn to_json(envelope: &[u8]) -> Result<String, Error> {
    let parsed = EnvelopeRef::parse(envelope)?;
    let doc = JsonEnvelope {
        format: FORMAT_NAME.to_owned(),
        version: parsed.version(),
        aead: AEAD_NAME.to_owned(),
        stanzas: parsed
            .stanzas()
            .map(|s| JsonStanza {
                kind: s.kind.to_owned(),
                label: s.label.to_owned(),
                key_version: s.version,
                body: B64.encode(s.body),
            })
            .collect(),
        ciphertext: B64.encode(parsed.ciphertext()),
    };
    serde_json::to_string_pretty(&doc).map_err(|e| Error::Json(e.to_string()))
}

/// Converts the JSON export form back to the canonical binary envelope, validating it.
pub fn from_json(text: &str) -> Result<Vec<u8>, Error> {
    if text.len() > MAX_JSON_LEN {
        return Err(Error::FieldTooLong {
            field: "JSON envelope",
            len: text.len(),
            max: MAX_JSON_LEN,
        });
    }
    // serde_json's messages can quote input; report only the position and category.
    let doc: JsonEnvelope = serde_json::from_str(text).map_err(|e| {
        Error::Json(format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    if doc.format != FORMAT_NAME {
        return Err(Error::BadMagic);
    }
    codec::check_version(doc.version)?;
    if doc.aead != AEAD_NAME {
        return Err(Error::Json(
            "unknown aead; expected chacha20-poly1305".to_owned(),
        ));
    }
    let decode = |field: &'static str, b64: &str| {
        B64.decode(b64).map_err(|_| Error::Malformed {
            field,
            reason: "not base64",
        })
    };
    // The same errors as the binary parser gives for the same fields.
    match doc.stanzas.len() {
        0 => {
            return Err(Error::Malformed {
                field: "stanza count",
                reason: "must be at least 1",
            });
        }
        n if n > MAX_STANZAS => {
            return Err(Error::FieldTooLong {
                field: "stanza count",
                len: n,
                max: MAX_STANZAS,
            });
        }
        _ => {}
    }
    let mut out = Vec::new();
    codec::write_fixed_header(&mut out, doc.version, doc.stanzas.len())?;
    for s in &doc.stanzas {
        codec::check_stanza_kind(&s.kind)?;
        codec::check_stanza_label(&s.label)?;
        codec::write_stanza_id(&mut out, &s.kind, &s.label, s.key_version);
        codec::write_stanza_body(&mut out, &decode("stanza body", &s.body)?)?;
    }
    let ciphertext = decode("ciphertext", &doc.ciphertext)?;
    let len = u32::try_from(ciphertext.len()).map_err(|_| Error::FieldTooLong {
        field: "ciphertext",
        len: ciphertext.len(),
        max: MAX_PAYLOAD_LEN,
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&ciphertext);
    EnvelopeRef::parse(&out)?;
    Ok(out)
}
