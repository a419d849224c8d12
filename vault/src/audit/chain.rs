//! Reading an audit log back: verifying its chain against its head checkpoint, and its tail.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::{File, TryLockError};
use std::io::{self, BufRead, BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::record::{AuditRecord, ZERO_HASH, is_hash};
use super::{AuditDefect, VerifyReport};
use crate::Error;

/// No record line is longer: text fields are cut to `MAX_FIELD_LEN`, escaped at most 6x.
const MAX_LINE: usize = 64 * 1024;
/// A head file is a few dozen bytes.
const MAX_HEAD_LEN: u64 = 4096;

/// The head checkpoint: the newest record known durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Head {
    pub(crate) seq: u64,
    pub(crate) hash: String,
}

/// A log that verified: what appending continues from.
#[derive(Debug)]
pub(crate) struct Chain {
    /// Records in the log (the newest seq).
    pub(crate) records: u64,
    /// The newest record's hash (zeros if none).
    pub(crate) last_hash: String,
    /// The head checkpoint as found.
    pub(crate) head: Option<Head>,
    /// A last line without a newline after the records (not read when the log is live).
    pub(crate) torn: Option<TornTail>,
}

/// A last line without a newline: a batch write cut short by a crash, never acknowledged
/// (appends return only after the whole batch, each line with its newline, is fsynced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TornTail {
    /// Its line number.
    pub(crate) line: u64,
    /// Where it starts: the length of the log's complete lines.
    pub(crate) offset: u64,
    /// Its length.
    pub(crate) bytes: u64,
}

/// `<log>.head`.
pub(crate) fn head_path(log: &Path) -> PathBuf {
    let mut name = OsString::from(log.as_os_str());
    name.push(".head");
    PathBuf::from(name)
}

fn damaged(log: &Path, line: Option<u64>, defect: AuditDefect) -> Error {
    Error::AuditDamaged {
        path: log.to_path_buf(),
        line,
        defect,
    }
}

/// Reads the head checkpoint of `log`; `None` if the file does not exist.
pub(crate) fn read_head(log: &Path) -> Result<Option<Head>, Error> {
    let path = head_path(log);
    let head_damaged = |reason: String| damaged(log, None, AuditDefect::HeadDamaged { reason });
    let text = match std::fs::metadata(&path) {
        Ok(meta) if meta.len() > MAX_HEAD_LEN => {
            return Err(head_damaged(format!("it is {} bytes long", meta.len())));
        }
        Ok(_) => std::fs::read(&path).map_err(Error::io(format!("reading {}", path.display())))?,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()))(e)),
    };
    let head: Head = serde_json::from_slice(&text).map_err(|e| head_damaged(e.to_string()))?;
    if !is_hash(&head.hash) {
        return Err(head_damaged(
            "its hash is not 64 lowercase hex digits".into(),
        ));
    }
    if head.seq == 0 && head.hash != ZERO_HASH {
        return Err(head_damaged("seq 0 with a hash other than zeros".into()));
    }
    Ok(Some(head))
}

/// Replaces the head checkpoint of `log` atomically (synced temporary file + rename).
pub(crate) fn write_head(log: &Path, seq: u64, hash: &str) -> Result<(), Error> {
    let path = head_path(log);
    let dir = crate::config::parent_dir(log);
    let text = serde_json::to_vec(&Head {
        seq,
        hash: hash.to_owned(),
    })
    .unwrap_or_default();
    let temp = crate::config::synced_temp_file(dir, &text)?;
    temp.persist(&path)
        .map_err(|e| Error::io(format!("replacing {}", path.display()))(e.error))?;
    Ok(())
}

enum Line {
    End,
    Complete,
    /// At the end of the file without a newline.
    Unterminated,
    TooLong,
}

/// Reads the next line into `buf` (without its newline), reading at most [`MAX_LINE`] + 1 bytes.
fn next_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Line> {
    buf.clear();
    let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 1;
    if reader.by_ref().take(limit).read_until(b'\n', buf)? == 0 {
        return Ok(Line::End);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        Ok(Line::Complete)
    } else if buf.len() > MAX_LINE {
        Ok(Line::TooLong)
    } else {
        Ok(Line::Unterminated)
    }
}

fn open_reader(log: &Path) -> Result<Option<BufReader<File>>, Error> {
    match File::open(log) {
        Ok(file) => Ok(Some(BufReader::with_capacity(1 << 16, file))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("opening {}", log.display()))(e)),
    }
}

/// Verifies `log` against its head checkpoint. A last line without a newline is not read: if
/// `live` (a writer holds the log) it is a write in progress and is ignored, else it is
/// returned as [`Chain::torn`] for the caller to report or trim. Every other problem is an
/// error, and one found after the records (such as a log shorter than its head) is reported
/// rather than the torn tail.
pub(crate) fn check(log: &Path, live: bool) -> Result<Chain, Error> {
    // The head first: a writer only moves it after the log, so the log read next reaches it.
    let head = read_head(log)?;
    let mut records = 0u64;
    let mut last_hash = ZERO_HASH.to_owned();
    let mut torn = None;
    if let Some(mut reader) = open_reader(log)? {
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        // The length of the complete lines read so far.
        let mut offset = 0u64;
        loop {
            let line = next_line(&mut reader, &mut buf)
                .map_err(Error::io(format!("reading {}", log.display())))?;
            line_no += 1;
            let at = |defect| damaged(log, Some(line_no), defect);
            let len = u64::try_from(buf.len()).unwrap_or(u64::MAX);
            match line {
                Line::End => break,
                Line::Unterminated if live => break,
                Line::Unterminated => {
                    torn = Some(TornTail {
                        line: line_no,
                        offset,
                        bytes: len,
                    });
                    break;
                }
                Line::TooLong => {
                    return Err(at(AuditDefect::Malformed {
                        reason: format!("longer than {MAX_LINE} bytes"),
                    }));
                }
                Line::Complete => offset += len + 1,
            }
            let record = AuditRecord::parse_line(&buf).map_err(at)?;
            let expected = records + 1;
            if record.seq != expected {
                return Err(at(seq_defect(log, line_no, expected, record.seq)));
            }
            record.check_line(&buf).map_err(at)?;
            if record.prev != last_hash {
                return Err(at(AuditDefect::ChainBroken { seq: record.seq }));
            }
            if let Some(h) = head.as_ref().filter(|h| h.seq == record.seq)
                && h.hash != record.hash
            {
                return Err(at(AuditDefect::HeadMismatch { seq: h.seq }));
            }
            records = record.seq;
            last_hash = record.hash;
        }
    }
    match &head {
        Some(h) if records < h.seq => Err(damaged(
            log,
            None,
            AuditDefect::Truncated {
                log_seq: records,
                head_seq: h.seq,
            },
        )),
        None if records > 0 => Err(damaged(log, None, AuditDefect::HeadMissing { records })),
        _ => Ok(Chain {
            records,
            last_hash,
            head,
            torn,
        }),
    }
}

/// Why line `line_no` has seq `found` instead of `expected`: records deleted, or reordered
/// (seq `expected` is further down, or `found` went backwards). Reads the file again; only
/// on this error path.
fn seq_defect(log: &Path, line_no: u64, expected: u64, found: u64) -> AuditDefect {
    let expected_at_line = find_seq(log, line_no, expected);
    if found > expected && expected_at_line.is_none() {
        AuditDefect::Missing { expected, found }
    } else {
        AuditDefect::OutOfOrder {
            expected,
            found,
            expected_at_line,
        }
    }
}

/// The line after `after` holding a record with `seq`, if any (lines read leniently).
fn find_seq(log: &Path, after: u64, seq: u64) -> Option<u64> {
    #[derive(Deserialize)]
    struct SeqOnly {
        seq: u64,
    }
    let mut reader = open_reader(log).ok()??;
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        match next_line(&mut reader, &mut buf).ok()? {
            Line::End => return None,
            Line::Complete | Line::Unterminated | Line::TooLong => line_no += 1,
        }
        if line_no > after && serde_json::from_slice::<SeqOnly>(&buf).is_ok_and(|r| r.seq == seq) {
            return Some(line_no);
        }
    }
}

/// Whether another open file holds `log` locked: an [`super::AuditLog`] is writing it.
fn is_live(log: &Path) -> Result<bool, Error> {
    let file = match File::open(log) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(format!("opening {}", log.display()))(e)),
    };
    // Dropping `file` releases the shared lock at once: a writer starting now is not held up.
    match file.try_lock_shared() {
        Ok(()) => Ok(false),
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(e)) => Err(Error::io(format!("locking {}", log.display()))(e)),
    }
}

/// Verifies the audit log at `path`: every line a canonical record, seqs from 1 without gaps,
/// each record's hash over its contents, each `prev` the previous record's hash, and the head
/// checkpoint's record present with the same hash. The first problem found is returned as
/// [`Error::AuditDamaged`] with its line number. Safe while a daemon appends to the log.
///
/// Read-only and strict: a last line without a newline, left by a crash in the middle of a
/// write, is [`AuditDefect::TornTail`] (after every record before it verified) unless a
/// daemon holds the log (then it is a write in progress and is ignored). Only
/// [`super::AuditLog::open`] repairs it, by trimming it.
pub fn verify(path: &Path) -> Result<VerifyReport, Error> {
    let chain = check(path, is_live(path)?)?;
    if let Some(torn) = chain.torn {
        return Err(damaged(
            path,
            Some(torn.line),
            AuditDefect::TornTail { bytes: torn.bytes },
        ));
    }
    Ok(VerifyReport {
        records: chain.records,
        head_seq: chain.head.map_or(0, |h| h.seq),
    })
}

/// The last `n` records of the audit log at `path`, oldest first. Parses them but does not
/// verify the chain (use [`verify`]); a last line without a newline (a write in progress) is
/// skipped. Reads the whole file.
pub fn tail(path: &Path, n: usize) -> Result<Vec<AuditRecord>, Error> {
    let file = File::open(path).map_err(Error::io(format!("opening {}", path.display())))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut last: VecDeque<(u64, Vec<u8>)> = VecDeque::with_capacity(n.min(4096));
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        let line = next_line(&mut reader, &mut buf)
            .map_err(Error::io(format!("reading {}", path.display())))?;
        line_no += 1;
        match line {
            Line::End | Line::Unterminated => break,
            Line::TooLong => {
                let reason = format!("longer than {MAX_LINE} bytes");
                return Err(damaged(
                    path,
                    Some(line_no),
                    AuditDefect::Malformed { reason },
                ));
            }
            Line::Complete if n == 0 => {}
            Line::Complete => {
                let reused = if last.len() == n {
                    last.pop_front().map(|(_, v)| v)
                } else {
                    None
                };
                let mut kept = reused.unwrap_or_default();
                kept.clear();
                kept.extend_from_slice(&buf);
                last.push_back((line_no, kept));
            }
        }
    }
    last.into_iter()
        .map(|(line_no, bytes)| {
            serde_json::from_slice(&bytes).map_err(|e| {
                let reason = e.to_string();
                damaged(path, Some(line_no), AuditDefect::Malformed { reason })
            })
        })
        .collect()
}
