//! The audit log: one JSON line per decision (allow or deny) the daemon makes, chained by
//! HMAC-SHA256 under the vault's audit key, checkpointed in a MACed head file, anchored in
//! the vault's metadata and, optionally, in signed checkpoints sent outside the vault, so that
//! edited, deleted, reordered or truncated records are detected, also when made on purpose
//! by someone who can write the log's directory but does not hold the audit key.
//!
//! # What a record holds
//! Names only: the principal, the certificate fingerprint and address of the caller, the
//! operation, the scope and key name it was about, the version written, the decision, the
//! gRPC status name and a short reason. [`AuditEvent`] has no field for a secret value and
//! none may be added: the log is readable by operators who must not see secrets. Text fields
//! are escaped (control, format, bidirectional and invisible characters become visible
//! `\u{...}` text, see [`escape_text`]) and cut to [`MAX_FIELD_LEN`] bytes.
//!
//! # Calls
//! A call that changes state has a `started` record, durable before the change can happen,
//! and an `outcome` record whose `call` is the `started` record's seq (and whose `version` is
//! the version a Put wrote). A call that ran past its deadline while its work went on gets
//! `outcome-unknown` (the caller was answered UNAVAILABLE), then `late` with what it did. A
//! read or a denial has one `outcome` record.
//!
//! # File format 2 (`audit.jsonl` and its closed segments, mode 0600)
//! One record per line, its fields always present and in this order (absent optional fields
//! are `null`):
//! `seq` (u64, 1, 2, 3... without gaps, across segments), `ts_ms` (i64, Unix milliseconds), `stage`
//! (`"started"`, `"outcome"`, `"outcome-unknown"`, `"late"`), `call` (u64 or null),
//! `principal`, `cert`, `peer`, `op`, `scope`, `key`, `version` (u64 or null), `decision`
//! (`"allow"` or `"deny"`), `status` (a gRPC status name such as `"OK"` or
//! `"PERMISSION_DENIED"`), `reason`, `prev` (the `mac` of the previous record; 64 zeros for
//! seq 1), `mac`. The line is exactly serde_json's compact serialization of the record (its
//! canonical form); `mac` is the lowercase hex HMAC-SHA256, under the audit key, of
//! `"vault audit v2\n" || canonical JSON of the record without "mac"`.
//!
//! Format 1 (an unkeyed SHA-256 chain: a `hash` field instead of `mac`, no `stage`, `call`,
//! `cert`, `peer`, `version`) is recognised and refused ([`AuditDefect::Legacy`]): anyone can
//! recompute such a chain, so it cannot be verified as keyed. Keep such a log as evidence and
//! start a new one.
//!
//! # Segments
//! The log is a chain of segments. The current one is `audit.jsonl`; [`AuditLog::rotate`]
//! (or [`AuditOptions::max_segment_bytes`]) closes it, keeping it as `audit.jsonl.000001`,
//! `audit.jsonl.000002`... (its own number, zero-padded to six digits; the first segment is
//! number 1), and starts the next one. Seqs and the MAC chain run on across segments: the
//! first record of segment N (N >= 2) has the seq after the last of segment N-1 and its
//! `prev` is that record's `mac`; it is an `outcome` record of op [`SEGMENT_OP`]
//! (`audit-segment`) with `version` N and a `reason` naming the closed segment's file, last
//! seq and MAC and why it was rotated. [`verify`] reads every segment in order of its number
//! and names a missing one ([`AuditDefect::SegmentMissing`]), a file holding another segment
//! than its name says ([`AuditDefect::SegmentMisplaced`]) and a stray one; opening (a daemon's
//! start) reads only the current segment and the head, never the closed segments. A signed
//! checkpoint covers one segment: `log_start` is its first record's MAC and `log_sha256` the
//! digest of its bytes. Before closing a segment, its last record is anchored and
//! checkpointed; after starting one, its first record is.
//!
//! A failed rotation leaves the current segment current, with an `audit-segment` record
//! (decision `deny`, status `INTERNAL`) saying why. Copy closed segments elsewhere to archive
//! them, but keep them (or put them back) for [`verify`]: it needs every one.
//!
//! # Head checkpoint (`audit.jsonl.head`)
//! `{"seq":N,"mac":"...","tag":"..."}`: the newest record known durable and its MAC, with
//! `tag` the HMAC-SHA256 of `"vault audit head v2\n" || N || "\n" || mac`; replaced atomically
//! (synced temporary file + rename) at most every [`HEAD_INTERVAL`]. A log shorter than its
//! head was truncated. After a crash between the log's fsync and the head's update the log may
//! extend past the head; that verifies (the head's record must be in the chain) and
//! [`AuditLog::open`] re-checkpoints.
//!
//! # Anchor and signed checkpoints
//! Every [`CHECKPOINT_INTERVAL`] while records arrive, and when the log closes, the head's
//! seq and MAC are written through an [`AuditAnchor`] (for a vault, the `audit_anchor` field
//! of `vault.json`), and a [`Checkpoint`] signed with an Ed25519 key derived from the audit
//! key goes to each [`CheckpointSink`] (an append-only file, syslog). A log that does not
//! reach the anchor, or differs from it, is refused; a missing log the anchor says held
//! records is [`crate::Error::AuditMissing`]. [`verify_checkpoints`] checks a log against a
//! file of checkpoints with the public key alone.
//!
//! # After a crash
//! A crash or power loss in the middle of a batch can leave the log ending in an incomplete
//! line (no newline). Nobody was told that write happened (appends return only after the whole
//! batch is fsynced), so [`AuditLog::open`] trims it back to the last complete line, with a
//! warning, and goes on; [`verify`] reports it as [`AuditDefect::TornTail`] and changes
//! nothing. Complete records past the head are kept and re-checkpointed (above). Anything else
//! (a bad line before the last, a complete last line that does not verify, a log shorter than
//! its head or its anchor) is refused as damage.
//!
//! # What the chain does not catch
//! Records newer than the last anchor and the last checkpoint a sink received can be cut by
//! someone who kept an older head file; a rollback of the whole vault directory (log, head and
//! `vault.json` together) to an older copy is consistent, and only a sink's checkpoints show
//! it. Whoever holds the audit key (the vault's KEKs) can forge anything.
//!
//! # A second home: the mirror
//! With [`AuditOptions::mirror`] (a vault on a store replicas share: [`replicas`]) every
//! record also goes to the mirror, in the batch that writes it: the writer thread (the only
//! one that writes batches then, so that no caller's thread waits for the store) appends the
//! batch there after writing it to the file, and a record counts as written (and, after the
//! fsync, durable) only once the mirror holds it. A mirror that cannot take records waits for
//! its store to come back; one that finds its copy changed by someone else closes the log, as
//! a failed write does.
//!
//! # Writing
//! [`AuditLog::append`] returns after the record is written and fsynced. Concurrent callers are
//! group-committed: whoever finds no write in progress writes every queued record with one
//! `write` and one `fsync`, then wakes the callers of that batch. A failed write closes the log
//! for appends ([`crate::Error::AuditFailed`]): the daemon then refuses requests (fail closed)
//! until it is restarted, and opening verifies the log again.

mod anchor;
mod chain;
mod checkpoint;
mod escape;
mod head;
mod key;
mod log;
mod mirror;
mod opening;
mod record;
pub mod replicas;
mod rotation;
mod segment;
mod sync;
mod tail;
mod walk;
mod writer;

pub use anchor::{Anchor, AuditAnchor, NoAnchor, VaultAnchor};
pub use chain::{is_live, verify};
pub use checkpoint::{
    CHECKPOINT_FORMAT, Checkpoint, CheckpointReport, CheckpointSink, FileSink, verify_checkpoints,
};
pub use escape::{display_text, escape_text, json_printable, needs_escape};
pub use head::{head_path, verified_head};
pub use key::{AUDIT_KEY_LEN, AuditKey};
pub use log::{AuditLog, AuditOptions, AuditStatus, CHECKPOINT_INTERVAL, Durable, HEAD_INTERVAL};
pub use mirror::{AuditMirror, MirroredRecord};
pub use record::{AuditRecord, MAX_FIELD_LEN};
pub use rotation::Rotated;
pub use segment::{SEGMENT_OP, segment_path};
pub use tail::{tail, tail_verified};

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

/// Which record of a call a record is. A call that changes state has two records (three
/// when its outcome came late); a read or a denial has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Written (and fsynced) before a state change may happen.
    Started,
    /// What happened: the one record of a read or a denial, or the end of a started call.
    Outcome,
    /// The call ran past its deadline and its caller was answered UNAVAILABLE while the work
    /// went on: whether it took effect was not known then. A `late` record follows.
    OutcomeUnknown,
    /// What a call whose outcome was unknown did in the end.
    Late,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Started => "started",
            Stage::Outcome => "outcome",
            Stage::OutcomeUnknown => "outcome-unknown",
            Stage::Late => "late",
        })
    }
}

/// One decision to record. Names only: there is no field for a secret value, by design. Text
/// fields are escaped and bounded when the record is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Which record of a call this is.
    pub stage: Stage,
    /// The seq of the call's `started` record, for the records that end it.
    pub call: Option<u64>,
    /// Who asked (the principal from the client certificate, or the local user).
    pub principal: String,
    /// The SHA-256 (hex) of the caller's certificate, if it presented one.
    pub cert: Option<String>,
    /// The caller's address, if known.
    pub peer: Option<String>,
    /// The operation: `get`, `put`, `delete`, `list`, `seal`, `open`, `unlock`...
    pub op: String,
    /// The scope the request named, if any.
    pub scope: Option<String>,
    /// The key name the request named, if any.
    pub key: Option<String>,
    /// The secret version a Put wrote (or the epoch a Rotate started).
    pub version: Option<u64>,
    /// Allowed or denied.
    pub decision: Decision,
    /// The gRPC status name answered: `OK`, `PERMISSION_DENIED`, `NOT_FOUND`...
    pub status: &'static str,
    /// A short reason, mostly for denials (`"locked"`, `"acl"`, `"rate limit"`).
    pub reason: Option<String>,
}

impl AuditEvent {
    /// An `outcome` record of `decision` and `status`, by principal `-`, of no operation:
    /// fill in the rest with struct update syntax.
    pub fn new(decision: Decision, status: &'static str) -> Self {
        AuditEvent {
            stage: Stage::Outcome,
            call: None,
            principal: "-".into(),
            cert: None,
            peer: None,
            op: String::new(),
            scope: None,
            key: None,
            version: None,
            decision,
            status,
            reason: None,
        }
    }
}

/// What [`verify`] found in a log that verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records in the log (equal to the newest record's seq).
    pub records: u64,
    /// The seq the head checkpoint names (below `records` if the log is ahead of it).
    pub head_seq: u64,
    /// The seq the vault's anchor names, if it has one.
    pub anchor_seq: Option<u64>,
    /// Segments verified (the current segment's number: 1 for a log never rotated).
    pub segments: u64,
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
    /// The record's `mac` does not match its contents under the audit key: it was edited (or
    /// written without the key).
    MacMismatch {
        /// The record's seq.
        seq: u64,
    },
    /// The record's `prev` is not the previous record's `mac`.
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
    /// The head checkpoint names a record whose MAC is not the one in the log.
    HeadMismatch {
        /// The seq it names.
        seq: u64,
    },
    /// The head checkpoint's tag does not verify under the audit key: it was written by
    /// someone without the key.
    HeadForged {
        /// The seq it names.
        seq: u64,
    },
    /// The head checkpoint file is not `{"seq":N,"mac":"<64 hex>","tag":"<64 hex>"}`.
    HeadDamaged {
        /// What is wrong.
        reason: String,
    },
    /// The log ends before the record the vault's anchor names.
    AnchorTruncated {
        /// The newest seq in the log.
        log_seq: u64,
        /// The seq the anchor names.
        anchor_seq: u64,
    },
    /// The record at the anchor's seq has another MAC: the log was replaced.
    AnchorMismatch {
        /// The seq the anchor names.
        seq: u64,
    },
    /// The log and its head are gone (or empty) but the vault's anchor says records existed.
    LogMissing {
        /// The seq the anchor names.
        anchor_seq: u64,
    },
    /// The log (or its head) is in the unkeyed format 1 of older versions.
    Legacy,
    /// A closed segment's file is gone (`records`: the seqs it held, when the segments
    /// around it show them).
    SegmentMissing {
        /// The file it should be in.
        file: String,
        /// Its number.
        segment: u64,
        /// The first and last seq it held.
        records: Option<(u64, u64)>,
    },
    /// A segment file holds another segment than its name says: segment files were renamed,
    /// reordered or replaced.
    SegmentMisplaced {
        /// The file.
        file: String,
        /// The segment its name says.
        expected: u64,
        /// The segment its first record says.
        found: u64,
    },
    /// A closed segment's file is numbered at or after the current segment: it is not part
    /// of this log.
    SegmentStray {
        /// The file.
        file: String,
        /// The current segment's number.
        current: u64,
    },
    /// The head checkpoint names a record before the current segment, which the writer never
    /// leaves it at: an older head file was put back.
    HeadBehind {
        /// The seq it names.
        head_seq: u64,
        /// The current segment's first seq.
        segment_start: u64,
    },
    /// A checkpoint's signature does not verify under the given public key.
    CheckpointForged,
    /// A signed checkpoint names a record the log holds with another MAC, or the log's bytes
    /// up to it are not the signed digest: records up to it were changed.
    CheckpointMismatch {
        /// The seq the checkpoint names.
        seq: u64,
    },
    /// The log ends before the record a signed checkpoint names.
    CheckpointTruncated {
        /// The newest seq in the log.
        log_seq: u64,
        /// The seq the checkpoint names.
        checkpoint_seq: u64,
    },
    /// The newest signed checkpoint is of another log than this one (another first record).
    CheckpointOtherLog,
    /// The checkpoint file holds no checkpoint.
    NoCheckpoint,
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
            AuditDefect::MacMismatch { seq } => write!(
                f,
                "record seq {seq} does not match its MAC under the audit key: the record was edited, or written without the key"
            ),
            AuditDefect::ChainBroken { seq } => write!(
                f,
                "record seq {seq} does not chain to the record before it (its prev is not that record's mac)"
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
                "the head checkpoint's mac for seq {seq} is not that record's mac: the log or its head was replaced"
            ),
            AuditDefect::HeadForged { seq } => write!(
                f,
                "the head checkpoint (seq {seq}) does not verify under the audit key: it was written without the key"
            ),
            AuditDefect::HeadDamaged { reason } => {
                write!(f, "the head checkpoint file is damaged ({reason})")
            }
            AuditDefect::AnchorTruncated { log_seq, anchor_seq } => write!(
                f,
                "the log ends at seq {log_seq} but the vault's anchor (in vault.json) says seq {anchor_seq}: records were cut and the head rewritten"
            ),
            AuditDefect::AnchorMismatch { seq } => write!(
                f,
                "record seq {seq} is not the record the vault's anchor (in vault.json) names: the log was replaced"
            ),
            AuditDefect::LogMissing { anchor_seq } => write!(
                f,
                "the log and its head checkpoint are gone, but the vault's anchor (in vault.json) says the log held {anchor_seq} records: they were deleted"
            ),
            AuditDefect::SegmentMissing {
                file,
                segment,
                records,
            } => {
                write!(f, "segment {segment} ({file}) is missing")?;
                match records {
                    Some((first, last)) => write!(
                        f,
                        ": records {first}..{last} were deleted with it (put the file back to verify the whole log)"
                    ),
                    None => f.write_str(" (put the file back to verify the whole log)"),
                }
            }
            AuditDefect::SegmentMisplaced {
                file,
                expected,
                found,
            } => write!(
                f,
                "{file} holds segment {found}, not segment {expected}: segment files were renamed, reordered or replaced"
            ),
            AuditDefect::SegmentStray { file, current } => write!(
                f,
                "{file} is numbered at or after the current segment ({current}): it is not a closed segment of this log; move it away"
            ),
            AuditDefect::HeadBehind {
                head_seq,
                segment_start,
            } => write!(
                f,
                "the head checkpoint names seq {head_seq}, before the current segment, which starts at seq {segment_start}: an older head file was put back"
            ),
            AuditDefect::Legacy => f.write_str(
                "it is in the unkeyed format 1 of older versions (records with a \"hash\", no \"mac\"), which cannot be told apart from a forgery"
            ),
            AuditDefect::CheckpointForged => f.write_str(
                "the checkpoint's signature does not verify under the given public key"
            ),
            AuditDefect::CheckpointMismatch { seq } => write!(
                f,
                "a signed checkpoint names record seq {seq} with another mac, or another digest of the log up to it: records up to seq {seq} were changed"
            ),
            AuditDefect::CheckpointTruncated {
                log_seq,
                checkpoint_seq,
            } => write!(
                f,
                "the log ends at seq {log_seq} but a signed checkpoint names seq {checkpoint_seq}: records were cut"
            ),
            AuditDefect::CheckpointOtherLog => f.write_str(
                "the newest signed checkpoint is of another log (another first record): this log was replaced"
            ),
            AuditDefect::NoCheckpoint => f.write_str("it holds no checkpoint"),
        }
    }
}
