//! An audit record, its canonical JSON line and its hash.

use ring::digest;
use serde::{Deserialize, Serialize};

use super::{AuditDefect, AuditEvent, Decision};

/// Text fields (principal, op, scope, key, status, reason) are cut to this many bytes (at a
/// character boundary), so a record always fits a line of bounded length.
pub const MAX_FIELD_LEN: usize = 1024;

/// Domain separation of the record hash, format version 1.
const HASH_DOMAIN: &[u8] = b"vault audit v1\n";

/// `prev` of the first record, and the hash of the empty log's head.
pub(crate) const ZERO_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// One parsed line of the audit log. The field order is the canonical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// When the record was made (Unix milliseconds).
    pub ts_ms: i64,
    /// Who asked.
    pub principal: String,
    /// The operation.
    pub op: String,
    /// The scope named, if any.
    pub scope: Option<String>,
    /// The key name named, if any.
    pub key: Option<String>,
    /// Allowed or denied.
    pub decision: Decision,
    /// The gRPC status name answered.
    pub status: String,
    /// A short reason, if any.
    pub reason: Option<String>,
    /// The previous record's `hash` (64 zeros for seq 1).
    pub prev: String,
    /// SHA-256 (lowercase hex) over the domain string, `prev` and the record without `hash`.
    pub hash: String,
}

/// The record without its hash, borrowed: what the hash covers. Same field order as
/// [`AuditRecord`], so its JSON is the record's line up to `,"hash"`.
#[derive(Serialize)]
struct Body<'a> {
    seq: u64,
    ts_ms: i64,
    principal: &'a str,
    op: &'a str,
    scope: Option<&'a str>,
    key: Option<&'a str>,
    decision: Decision,
    status: &'a str,
    reason: Option<&'a str>,
    prev: &'a str,
}

impl AuditRecord {
    /// The record for `event` at `seq`, chained to `prev`, with its hash computed.
    pub(crate) fn new(event: &AuditEvent, seq: u64, ts_ms: i64, prev: &str) -> Self {
        let mut record = AuditRecord {
            seq,
            ts_ms,
            principal: cut(&event.principal),
            op: cut(&event.op),
            scope: event.scope.as_deref().map(cut),
            key: event.key.as_deref().map(cut),
            decision: event.decision,
            status: cut(event.status),
            reason: event.reason.as_deref().map(cut),
            prev: prev.to_owned(),
            hash: String::new(),
        };
        record.hash = record.computed_hash();
        record
    }

    /// The hash the record's contents call for (whatever its `hash` field says).
    pub(crate) fn computed_hash(&self) -> String {
        let body = Body {
            seq: self.seq,
            ts_ms: self.ts_ms,
            principal: &self.principal,
            op: &self.op,
            scope: self.scope.as_deref(),
            key: self.key.as_deref(),
            decision: self.decision,
            status: &self.status,
            reason: self.reason.as_deref(),
            prev: &self.prev,
        };
        // Serializing plain strings and integers into a Vec cannot fail.
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(HASH_DOMAIN);
        ctx.update(self.prev.as_bytes());
        ctx.update(&json);
        hex(ctx.finish().as_ref())
    }

    /// Parses one line of the log (without its newline) into the record it holds.
    pub fn parse_line(line: &[u8]) -> Result<Self, AuditDefect> {
        serde_json::from_slice(line).map_err(|e| AuditDefect::Malformed {
            reason: e.to_string(),
        })
    }

    /// Checks what one line shows on its own: that `line` is this record's canonical
    /// serialization and that its `hash` is over its contents. Its place in the chain (seq
    /// and prev) is for the reader to check.
    pub fn check_line(&self, line: &[u8]) -> Result<(), AuditDefect> {
        if self.to_line() != line {
            return Err(AuditDefect::NotCanonical);
        }
        if self.computed_hash() != self.hash {
            return Err(AuditDefect::HashMismatch { seq: self.seq });
        }
        Ok(())
    }

    /// The canonical line, without the newline.
    pub(crate) fn to_line(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// `text` cut to [`MAX_FIELD_LEN`] bytes at a character boundary.
fn cut(text: &str) -> String {
    if text.len() <= MAX_FIELD_LEN {
        return text.to_owned();
    }
    let mut end = MAX_FIELD_LEN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Whether `text` is a SHA-256 in lowercase hex.
pub(crate) fn is_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_the_body_plus_the_hash() {
        let event = AuditEvent {
            principal: "svc \"a\"\n".into(),
            op: "get".into(),
            scope: Some("global".into()),
            key: None,
            decision: Decision::Allow,
            status: "OK",
            reason: None,
        };
        let record = AuditRecord::new(&event, 1, 5, ZERO_HASH);
        let line = String::from_utf8(record.to_line()).expect("utf-8");
        assert!(line.starts_with(r#"{"seq":1,"ts_ms":5,"principal":"svc \"a\"\n","#));
        assert!(line.ends_with(&format!(
            r#""prev":"{ZERO_HASH}","hash":"{}"}}"#,
            record.hash
        )));
        assert!(is_hash(&record.hash));
        assert_eq!(record.hash, record.computed_hash());
    }

    #[test]
    fn long_fields_are_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_FIELD_LEN);
        let cut = cut(&long);
        assert!(cut.len() <= MAX_FIELD_LEN && cut.len() >= MAX_FIELD_LEN - 1);
    }
}
