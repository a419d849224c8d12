//! Signed checkpoints: what the log sends to sinks outside the vault (an append-only file,
//! syslog), and how an auditor checks a log against them without the audit key.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ring::signature::{self, Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};

use super::chain::{Macs, damaged, is_live};
use super::key::unhex;
use super::record::hex;
use super::walk::check;
use super::{AuditDefect, AuditKey};
use crate::Error;

/// The `format` of a checkpoint line.
pub const CHECKPOINT_FORMAT: &str = "vault-audit-checkpoint/2";
/// Domain separation of the checkpoint signature.
const SIGNATURE_DOMAIN: &[u8] = b"vault audit checkpoint v2\n";
/// A checkpoint line is a few hundred bytes.
const MAX_CHECKPOINT_LINE: usize = 4096;

/// One signed checkpoint, a JSON line with its fields in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// [`CHECKPOINT_FORMAT`].
    pub format: String,
    /// The vault's id.
    pub vault: String,
    /// The MAC of the first record of the log's segment the checkpoint is of: names the
    /// segment (a new log, or the next segment, has another).
    pub log_start: String,
    /// The newest record's seq.
    pub seq: u64,
    /// Its MAC.
    pub mac: String,
    /// SHA-256 (lowercase hex) of the segment's bytes from its start through record `seq` and
    /// its newline: lets an auditor without the audit key check every record up to here.
    pub log_sha256: String,
    /// When the checkpoint was made (Unix milliseconds).
    pub ts_ms: i64,
    /// The Ed25519 public key (lowercase hex) that verifies `sig`.
    pub public_key: String,
    /// Ed25519 signature (lowercase hex) over the domain string and this line without `sig`
    /// (its JSON up to `,"sig"`, closed with `}`).
    pub sig: String,
}

#[derive(Serialize)]
struct Signed<'a> {
    format: &'a str,
    vault: &'a str,
    log_start: &'a str,
    seq: u64,
    mac: &'a str,
    log_sha256: &'a str,
    ts_ms: i64,
    public_key: &'a str,
}

impl Checkpoint {
    fn signed_bytes(&self) -> Vec<u8> {
        let signed = Signed {
            format: &self.format,
            vault: &self.vault,
            log_start: &self.log_start,
            seq: self.seq,
            mac: &self.mac,
            log_sha256: &self.log_sha256,
            ts_ms: self.ts_ms,
            public_key: &self.public_key,
        };
        let mut bytes = SIGNATURE_DOMAIN.to_vec();
        bytes.extend_from_slice(&serde_json::to_vec(&signed).expect("a checkpoint serializes"));
        bytes
    }

    /// A checkpoint of record `seq` (with `mac`) signed by `pair`.
    pub(crate) fn sign(
        pair: &Ed25519KeyPair,
        vault: &str,
        log_start: &str,
        seq: u64,
        mac: &str,
        log_sha256: &str,
        ts_ms: i64,
    ) -> Checkpoint {
        let mut checkpoint = Checkpoint {
            format: CHECKPOINT_FORMAT.to_owned(),
            vault: vault.to_owned(),
            log_start: log_start.to_owned(),
            seq,
            mac: mac.to_owned(),
            log_sha256: log_sha256.to_owned(),
            ts_ms,
            public_key: hex(pair.public_key().as_ref()),
            sig: String::new(),
        };
        checkpoint.sig = hex(pair.sign(&checkpoint.signed_bytes()).as_ref());
        checkpoint
    }

    /// Whether the signature verifies under `public_key` (hex) and names it.
    pub fn verify_signature(&self, public_key: &str) -> bool {
        let (Some(key), Some(sig)) = (unhex(public_key), unhex(&self.sig)) else {
            return false;
        };
        self.public_key == public_key
            && self.format == CHECKPOINT_FORMAT
            && signature::UnparsedPublicKey::new(&signature::ED25519, key)
                .verify(&self.signed_bytes(), &sig)
                .is_ok()
    }

    /// The JSON line, without its newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a checkpoint serializes")
    }
}

/// Where signed checkpoints go, besides the vault's own anchor.
pub trait CheckpointSink: Send + Sync + std::fmt::Debug {
    /// Sends one checkpoint; an error is logged and shown in the log's status, and the next
    /// checkpoint is sent all the same.
    fn publish(&self, checkpoint: &Checkpoint) -> Result<(), Error>;
}

/// Appends each checkpoint as a JSON line to a file (created 0600), fsynced. Point it at a
/// file another party keeps (another disk, a log shipper's input, an append-only mount).
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    file: Mutex<File>,
}

impl FileSink {
    /// Opens (or creates) the file at `path` for appending.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(Error::io(format!("opening {}", path.display())))?;
        Ok(FileSink {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }
}

impl CheckpointSink for FileSink {
    fn publish(&self, checkpoint: &Checkpoint) -> Result<(), Error> {
        let mut line = checkpoint.to_line().into_bytes();
        line.push(b'\n');
        let file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        (&*file)
            .write_all(&line)
            .and_then(|()| file.sync_data())
            .map_err(Error::io(format!("appending to {}", self.path.display())))
    }
}

/// What [`verify_checkpoints`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointReport {
    /// Records in the log.
    pub records: u64,
    /// Checkpoints of this log that matched it.
    pub checked: u64,
    /// The newest checkpoint's seq.
    pub newest_seq: u64,
    /// Checkpoints of no segment of this log (of earlier logs of the vault, before a
    /// `--new-audit-log`), not compared.
    pub other_logs: u64,
}

/// Checks the log at `log` (every segment) against the signed checkpoints in `file`, each of
/// which must verify under `public_key` (hex; `vaultctl audit public-key` prints it). A
/// checkpoint names its segment by the MAC of the segment's first record (`log_start`). Every
/// checkpoint of one of this log's segments must name a record of that segment with the same
/// MAC, and the SHA-256 of the segment up to that record must be the signed one; the newest
/// checkpoint must be of this log. With `key`, every record's MAC is verified too; without it,
/// the records' form and chain links are, and the signed digests stand for their contents.
pub fn verify_checkpoints(
    log: &Path,
    file: &Path,
    public_key: &str,
    key: Option<&AuditKey>,
) -> Result<CheckpointReport, Error> {
    let checkpoints = read_checkpoints(file, public_key)?;
    let Some(newest) = checkpoints.last() else {
        return Err(damaged(file, None, AuditDefect::NoCheckpoint));
    };
    let hmac = key.map(AuditKey::hmac);
    let macs = hmac.as_ref().map_or(Macs::Unchecked, Macs::Keyed);
    let mut checked = vec![false; checkpoints.len()];
    let mut starts = HashSet::new();
    // Without the key the head's tag is not checked either: the checkpoints stand for it.
    let chain = check(
        log,
        is_live(log)?,
        macs,
        None,
        &mut |record, digest, start| {
            starts.insert(start.to_owned());
            for (at, c) in checkpoints.iter().enumerate() {
                if c.seq != record.seq || c.log_start != start {
                    continue;
                }
                if c.mac != record.mac || c.log_sha256 != hex(digest.clone().finish().as_ref()) {
                    return Err(damaged(
                        log,
                        None,
                        AuditDefect::CheckpointMismatch { seq: c.seq },
                    ));
                }
                checked[at] = true;
            }
            Ok(())
        },
    )?;
    if !starts.contains(&newest.log_start) {
        return Err(damaged(log, Some(1), AuditDefect::CheckpointOtherLog));
    }
    let mut other_logs = 0u64;
    for (at, c) in checkpoints.iter().enumerate() {
        if !starts.contains(&c.log_start) {
            other_logs += 1;
        } else if !checked[at] {
            // Of one of this log's segments, yet no record of it has its seq: cut.
            let defect = if c.seq > chain.records {
                AuditDefect::CheckpointTruncated {
                    log_seq: chain.records,
                    checkpoint_seq: c.seq,
                }
            } else {
                AuditDefect::CheckpointMismatch { seq: c.seq }
            };
            return Err(damaged(log, None, defect));
        }
    }
    Ok(CheckpointReport {
        records: chain.records,
        checked: checked.iter().filter(|c| **c).count() as u64,
        newest_seq: newest.seq,
        other_logs,
    })
}

/// The checkpoints in `file`, each verified under `public_key`.
fn read_checkpoints(file: &Path, public_key: &str) -> Result<Vec<Checkpoint>, Error> {
    let reader =
        BufReader::new(File::open(file).map_err(Error::io(format!("opening {}", file.display())))?);
    let mut checkpoints = Vec::new();
    for (at, line) in reader.lines().enumerate() {
        let line_no = u64::try_from(at + 1).unwrap_or(u64::MAX);
        let line = line.map_err(Error::io(format!("reading {}", file.display())))?;
        let bad = |reason: String| damaged(file, Some(line_no), AuditDefect::Malformed { reason });
        if line.len() > MAX_CHECKPOINT_LINE {
            return Err(bad(format!("longer than {MAX_CHECKPOINT_LINE} bytes")));
        }
        let checkpoint: Checkpoint = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        if !checkpoint.verify_signature(public_key) {
            return Err(damaged(file, Some(line_no), AuditDefect::CheckpointForged));
        }
        checkpoints.push(checkpoint);
    }
    Ok(checkpoints)
}
