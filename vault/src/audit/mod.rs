//! The audit log: one JSON line per decision (allow or deny) the daemon makes, hash-chained
//! and checkpointed so that edited, deleted, reordered or truncated records are detected.
//!
//! # What a record holds
//! Names only: the principal, the operation, the scope and key name it was about, the
//! decision, the gRPC status name and a short reason. [`AuditEvent`] has no field for a secret
//! value and none may be added: the log is readable by operators who must not see secrets.
//! Text fields are cut to [`MAX_FIELD_LEN`] bytes.
//!
//! # File format (`audit.jsonl`, mode 0600)
//! One record per line, its fields always present and in this order (absent optional fields
//! are `null`):
//! `seq` (u64, 1, 2, 3... without gaps), `ts_ms` (i64, Unix milliseconds), `principal`, `op`,
//! `scope`, `key`, `decision` (`"allow"` or `"deny"`), `status` (a gRPC status name such as
//! `"OK"` or `"PERMISSION_DENIED"`), `reason`, `prev` (the `hash` of the previous record; 64
//! zeros for seq 1), `hash`. The line is exactly serde_json's compact serialization of the
//! record (its canonical form); `hash` is the lowercase hex SHA-256 of
//! `"vault audit v1\n" || prev || canonical JSON of the record without "hash"`.
//!
//! # Head checkpoint (`audit.jsonl.head`)
//! `{"seq":N,"hash":"..."}`: the newest record known durable, replaced atomically (synced
//! temporary file + rename) after every batch. A log shorter than its head was truncated. After
//! a crash between the log's fsync and the head's update the log may extend past the head; that
//! verifies (the head's record must be in the chain) and [`AuditLog::open`] re-checkpoints.
//!
//! # After a crash
//! A crash or power loss in the middle of a batch can leave the log ending in an incomplete
//! line (no newline). Nobody was told that write happened (appends return only after the whole
//! batch is fsynced), so [`AuditLog::open`] trims it back to the last complete line, with a
//! warning, and goes on; [`verify`] reports it as [`AuditDefect::TornTail`] and changes
//! nothing. Complete records past the head are kept and re-checkpointed (above). Anything else
//! (a bad line before the last, a complete last line that does not verify, a log shorter than
//! its head) is refused as damage.
//!
//! # What the chain does not do
//! It has no key: someone who can rewrite the whole log *and* its head can forge a consistent
//! history. Copy the head (`vaultctl audit tail -n 1`) somewhere else now and then to anchor it.
//!
//! # Writing
//! [`AuditLog::append`] returns after the record is written and fsynced. Concurrent callers are
//! group-committed: whoever finds no write in progress writes every queued record with one
//! `write` and one `fsync`, then wakes the callers of that batch. A failed write closes the log
//! for appends ([`crate::Error::AuditFailed`]): the daemon then refuses requests (fail closed)
//! until it is restarted, and opening verifies the log again.

mod chain;
mod log;
mod record;

pub use chain::{tail, verify};
pub use log::{AuditLog, Durable, HEAD_INTERVAL};
pub use record::{AuditRecord, MAX_FIELD_LEN};

/// What the daemon decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The request went on.
    Allow,
    /// The request was refused.
    Deny,
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        })
    }
}

/// One decision to record. Names only: there is no field for a secret value, by design.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Who asked (the principal from the client certificate, or the local user).
    pub principal: String,
    /// The operation: `get`, `put`, `delete`, `list`, `seal`, `open`, `unlock`...
    pub op: String,
    /// The scope the request named, if any.
    pub scope: Option<String>,
    /// The key name the request named, if any.
    pub key: Option<String>,
    /// Allowed or denied.
    pub decision: Decision,
    /// The gRPC status name answered: `OK`, `PERMISSION_DENIED`, `NOT_FOUND`...
    pub status: &'static str,
    /// A short reason, mostly for denials (`"locked"`, `"acl"`, `"rate limit"`).
    pub reason: Option<String>,
}

/// What [`verify`] found in a log that verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records in the log (equal to the newest record's seq).
    pub records: u64,
    /// The seq the head checkpoint names (below `records` if the log is ahead of it).
    pub head_seq: u64,
}

/// What is wrong with an audit log; [`crate::Error::AuditDamaged`] says on which line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditDefect {
    /// The line is not a record (not JSON, a missing or unknown field, a bad value, too long).
    Malformed {
        /// What the parser said.
        reason: String,
    },
    /// The last line has no newline: a write cut short by a crash or power loss, never
    /// acknowledged. Every record before it verified; [`AuditLog::open`] trims it.
    TornTail {
        /// The length of the incomplete line.
        bytes: u64,
    },
    /// The record parses but the line is not its canonical serialization.
    NotCanonical,
    /// Records are missing: the seq jumps from `expected` to `found`.
    Missing {
        /// The seq this line should have.
        expected: u64,
        /// The seq it has.
        found: u64,
    },
    /// Records are out of order: this line has seq `found` where `expected` belongs.
    OutOfOrder {
        /// The seq this line should have.
        expected: u64,
        /// The seq it has.
        found: u64,
        /// The line where seq `expected` is, if it is later in the file.
        expected_at_line: Option<u64>,
    },
    /// The record's `hash` does not match its contents: it was edited.
    HashMismatch {
        /// The record's seq.
        seq: u64,
    },
    /// The record's `prev` is not the previous record's `hash`.
    ChainBroken {
        /// The record's seq.
        seq: u64,
    },
    /// The log ends before the record its head checkpoint names.
    Truncated {
        /// The newest seq in the log (0 if empty or missing).
        log_seq: u64,
        /// The seq the head names.
        head_seq: u64,
    },
    /// The log holds records but its head checkpoint file is missing.
    HeadMissing {
        /// Records in the log.
        records: u64,
    },
    /// The head checkpoint names a record whose hash is not the one in the log.
    HeadMismatch {
        /// The seq it names.
        seq: u64,
    },
    /// The head checkpoint file is not `{"seq":N,"hash":"<64 hex>"}`.
    HeadDamaged {
        /// What is wrong.
        reason: String,
    },
}

impl std::fmt::Display for AuditDefect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuditDefect::Malformed { reason } => write!(f, "not a valid audit record ({reason})"),
            AuditDefect::TornTail { bytes } => write!(
                f,
                "the last line is incomplete ({bytes} byte(s) without a newline): a write cut short by a crash, never acknowledged; the records before it verify, and the next daemon start trims it"
            ),
            AuditDefect::NotCanonical => {
                f.write_str("the record is not in its canonical form (the line was edited)")
            }
            AuditDefect::Missing { expected, found } => write!(
                f,
                "seq {found} where {expected} was expected: record(s) {expected}..{} were deleted",
                found.saturating_sub(1)
            ),
            AuditDefect::OutOfOrder {
                expected,
                found,
                expected_at_line,
            } => {
                write!(
                    f,
                    "seq {found} where {expected} was expected: records are out of order"
                )?;
                match expected_at_line {
                    Some(line) => write!(f, " (seq {expected} is on line {line})"),
                    None => Ok(()),
                }
            }
            AuditDefect::HashMismatch { seq } => write!(
                f,
                "record seq {seq} does not match its hash: the record was edited"
            ),
            AuditDefect::ChainBroken { seq } => write!(
                f,
                "record seq {seq} does not chain to the record before it (its prev is not that record's hash)"
            ),
            AuditDefect::Truncated { log_seq, head_seq } => write!(
                f,
                "the log ends at seq {log_seq} but its head checkpoint says seq {head_seq}: the newest records were truncated"
            ),
            AuditDefect::HeadMissing { records } => write!(
                f,
                "the head checkpoint file is missing, though the log holds {records} record(s): truncation cannot be ruled out"
            ),
            AuditDefect::HeadMismatch { seq } => write!(
                f,
                "the head checkpoint's hash for seq {seq} is not that record's hash: the log or its head was replaced"
            ),
            AuditDefect::HeadDamaged { reason } => {
                write!(f, "the head checkpoint file is damaged ({reason})")
            }
        }
    }
}
