//! An audit record, its canonical JSON line and its MAC.

use ring::hmac;
use serde::{Deserialize, Serialize};

use super::escape::{escape_bounded, is_escaped};
use super::key::{mac_hex, mac_matches};
use super::{AuditDefect, AuditEvent, AuditKey, Decision, Stage};

/// Text fields (principal, cert, peer, op, scope, key, status, reason) are escaped (see
/// [`super::escape_text`]) and cut to this many bytes (never inside an escape), so a record
/// always fits a line of bounded length.
pub const MAX_FIELD_LEN: usize = 1024;

/// Domain separation of the record MAC, format version 2 (keyed). Version 1 was an unkeyed
/// SHA-256 chain under `"vault audit v1\n"`.
pub(crate) const MAC_DOMAIN: &[u8] = b"vault audit v2\n";

/// `prev` of the first record.
pub(crate) const ZERO_MAC: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// One parsed line of the audit log. The field order is the canonical order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// When the record was made (Unix milliseconds).
    pub ts_ms: i64,
    /// Which record of a call this is.
    pub stage: Stage,
    /// For the records that end a call (`outcome` after `started`, `outcome-unknown`,
    /// `late`): the seq of the call's `started` record. `null` otherwise.
    pub call: Option<u64>,
    /// Who asked.
    pub principal: String,
    /// Lowercase hex SHA-256 of the caller's certificate, if it presented one.
    pub cert: Option<String>,
    /// The caller's address (`ip:port`), if known.
    pub peer: Option<String>,
    /// The operation.
    pub op: String,
    /// The scope named, if any.
    pub scope: Option<String>,
    /// The key name named, if any.
    pub key: Option<String>,
    /// The secret version a Put wrote (or the epoch a Rotate started), once known.
    pub version: Option<u64>,
    /// Allowed or denied.
    pub decision: Decision,
    /// The gRPC status name answered.
    pub status: String,
    /// A short reason, if any.
    pub reason: Option<String>,
    /// The previous record's `mac` (64 zeros for seq 1).
    pub prev: String,
    /// HMAC-SHA256 (lowercase hex) under the audit key over the domain string and the record
    /// without `mac`.
    pub mac: String,
}

/// The record without its MAC, borrowed: what the MAC covers. Same field order as
/// [`AuditRecord`], so its JSON is the record's line up to `,"mac"`.
#[derive(Serialize)]
struct Body<'a> {
    seq: u64,
    ts_ms: i64,
    stage: Stage,
    call: Option<u64>,
    principal: &'a str,
    cert: Option<&'a str>,
    peer: Option<&'a str>,
    op: &'a str,
    scope: Option<&'a str>,
    key: Option<&'a str>,
    version: Option<u64>,
    decision: Decision,
    status: &'a str,
    reason: Option<&'a str>,
    prev: &'a str,
}

impl AuditRecord {
    /// The record for `event` at `seq`, chained to `prev`, its text fields escaped and
    /// bounded, with its MAC computed under `key` (the writer uses [`AuditRecord::encode`]).
    #[cfg(test)]
    pub(crate) fn new(
        event: &AuditEvent,
        seq: u64,
        ts_ms: i64,
        prev: &str,
        key: &hmac::Key,
    ) -> Self {
        let mut record = AuditRecord::new_unsigned(event, seq, ts_ms, prev);
        record.mac = mac_hex(key, &[MAC_DOMAIN, &record.body_json()]);
        record
    }

    fn new_unsigned(event: &AuditEvent, seq: u64, ts_ms: i64, prev: &str) -> Self {
        let text = |t: &str| escape_bounded(t, MAX_FIELD_LEN);
        AuditRecord {
            seq,
            ts_ms,
            stage: event.stage,
            call: event.call,
            principal: text(&event.principal),
            cert: event.cert.as_deref().map(text),
            peer: event.peer.as_deref().map(text),
            op: text(&event.op),
            scope: event.scope.as_deref().map(text),
            key: event.key.as_deref().map(text),
            version: event.version,
            decision: event.decision,
            status: text(event.status),
            reason: event.reason.as_deref().map(text),
            prev: prev.to_owned(),
            mac: String::new(),
        }
    }

    /// The record for `event` (as [`AuditRecord::new`] makes it) as its MAC and its canonical
    /// line without the newline, serialized once: the line is the body's JSON with `mac`
    /// added as its last field, which is exactly serde's serialization of the record.
    pub(crate) fn encode(
        event: &AuditEvent,
        seq: u64,
        ts_ms: i64,
        prev: &str,
        key: &hmac::Key,
    ) -> (String, Vec<u8>) {
        let mut record = AuditRecord::new_unsigned(event, seq, ts_ms, prev);
        let mut line = record.body_json();
        record.mac = mac_hex(key, &[MAC_DOMAIN, &line]);
        line.pop();
        line.extend_from_slice(b",\"mac\":\"");
        line.extend_from_slice(record.mac.as_bytes());
        line.extend_from_slice(b"\"}");
        (record.mac, line)
    }

    fn body_json(&self) -> Vec<u8> {
        let body = Body {
            seq: self.seq,
            ts_ms: self.ts_ms,
            stage: self.stage,
            call: self.call,
            principal: &self.principal,
            cert: self.cert.as_deref(),
            peer: self.peer.as_deref(),
            op: &self.op,
            scope: self.scope.as_deref(),
            key: self.key.as_deref(),
            version: self.version,
            decision: self.decision,
            status: &self.status,
            reason: self.reason.as_deref(),
            prev: &self.prev,
        };
        // Serializing plain strings and integers into a Vec cannot fail; an empty body
        // would MAC the wrong bytes, so failing loudly is the only safe answer.
        serde_json::to_vec(&body).expect("an audit record body serializes")
    }

    /// Parses one line of the log (without its newline) into the record it holds. A line of
    /// the unkeyed format 1 (with `hash` instead of `mac`) is [`AuditDefect::Legacy`].
    pub fn parse_line(line: &[u8]) -> Result<Self, AuditDefect> {
        serde_json::from_slice(line).map_err(|e| {
            if is_legacy_line(line) {
                AuditDefect::Legacy
            } else {
                AuditDefect::Malformed {
                    reason: e.to_string(),
                }
            }
        })
    }

    /// Checks what one line shows on its own: that `line` is this record's canonical
    /// serialization with its text fields escaped, and that its `mac` is over its contents
    /// under `key`. Its place in the chain (seq and prev) is for the reader to check.
    pub fn check_line(&self, line: &[u8], key: &AuditKey) -> Result<(), AuditDefect> {
        self.check_form(line)?;
        self.check_mac(&key.hmac())
    }

    /// The checks of [`AuditRecord::check_line`] that need no key.
    pub(crate) fn check_form(&self, line: &[u8]) -> Result<(), AuditDefect> {
        if self.to_line() != line || !is_hex_mac(&self.mac) || !self.fields_escaped() {
            return Err(AuditDefect::NotCanonical);
        }
        Ok(())
    }

    /// Whether the MAC is over the record's contents under `key`.
    pub(crate) fn check_mac(&self, key: &hmac::Key) -> Result<(), AuditDefect> {
        if mac_matches(key, &[MAC_DOMAIN, &self.body_json()], &self.mac) {
            Ok(())
        } else {
            Err(AuditDefect::MacMismatch { seq: self.seq })
        }
    }

    fn fields_escaped(&self) -> bool {
        [
            Some(&self.principal),
            self.cert.as_ref(),
            self.peer.as_ref(),
            Some(&self.op),
            self.scope.as_ref(),
            self.key.as_ref(),
            Some(&self.status),
            self.reason.as_ref(),
        ]
        .into_iter()
        .flatten()
        .all(|t| t.len() <= MAX_FIELD_LEN && is_escaped(t))
    }

    /// The canonical line, without the newline.
    pub fn to_line(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an audit record serializes")
    }
}

/// Whether `line` is a record of the unkeyed format 1: a JSON object with a `hash` and no
/// `mac`.
pub(crate) fn is_legacy_line(line: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(line)
        .is_ok_and(|m| m.contains_key("hash") && !m.contains_key("mac"))
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Whether `text` is a 32-byte MAC or hash in lowercase hex.
pub(crate) fn is_hex_mac(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AuditKey {
        AuditKey::from_slice(&[7; 32]).expect("key")
    }

    fn event() -> AuditEvent {
        AuditEvent {
            principal: "svc \"a\"\n".into(),
            op: "get".into(),
            scope: Some("global".into()),
            key: Some("k\u{202e}".into()),
            ..AuditEvent::new(Decision::Allow, "OK")
        }
    }

    #[test]
    fn the_line_is_the_body_plus_the_mac() {
        let key = key();
        let record = AuditRecord::new(&event(), 1, 5, ZERO_MAC, &key.hmac());
        let line = String::from_utf8(record.to_line()).expect("utf-8");
        assert!(
            line.starts_with(
                r#"{"seq":1,"ts_ms":5,"stage":"outcome","call":null,"principal":"svc \"a\"\\u{a}","#
            ),
            "{line}"
        );
        assert!(line.contains(r#""key":"k\\u{202e}""#), "{line}");
        assert!(line.ends_with(&format!(r#""prev":"{ZERO_MAC}","mac":"{}"}}"#, record.mac)));
        record.check_line(line.as_bytes(), &key).expect("checks");
        let (mac, encoded) = AuditRecord::encode(&event(), 1, 5, ZERO_MAC, &key.hmac());
        assert_eq!(
            (mac, encoded),
            (record.mac.clone(), line.clone().into_bytes())
        );
        let other = AuditKey::from_slice(&[8; 32]).expect("key");
        assert_eq!(
            record.check_line(line.as_bytes(), &other),
            Err(AuditDefect::MacMismatch { seq: 1 })
        );
    }

    #[test]
    fn long_fields_are_cut_at_a_character_boundary() {
        let long = AuditEvent {
            key: Some("é".repeat(MAX_FIELD_LEN)),
            ..event()
        };
        let record = AuditRecord::new(&long, 1, 5, ZERO_MAC, &key().hmac());
        let cut = record.key.expect("key");
        assert!(cut.len() <= MAX_FIELD_LEN && cut.len() >= MAX_FIELD_LEN - 1);
    }

    #[test]
    fn format_1_lines_are_recognised() {
        let v1 = br#"{"seq":1,"ts_ms":5,"principal":"a","op":"get","scope":null,"key":null,"decision":"allow","status":"OK","reason":null,"prev":"00","hash":"00"}"#;
        assert_eq!(AuditRecord::parse_line(v1), Err(AuditDefect::Legacy));
    }
}
