//! Reading an audit log back: verifying its chain against its head checkpoint and its
//! anchor, and its tail.

use std::collections::VecDeque;
use std::fs::{File, TryLockError};
use std::io::{self, BufRead, BufReader, ErrorKind, Read};
use std::path::Path;

use ring::{digest, hmac};
use serde::Deserialize;

use super::head::{Head, read_head};
use super::record::{AuditRecord, ZERO_MAC};
use super::{Anchor, AuditAnchor, AuditDefect, AuditKey, VerifyReport};
use crate::Error;

/// No record line is longer: text fields are escaped and cut to `MAX_FIELD_LEN`, and JSON
/// escapes at most double them.
const MAX_LINE: usize = 64 * 1024;

/// A log that verified: what appending continues from.
pub(crate) struct Chain {
    /// Records in the log (the newest seq).
    pub(crate) records: u64,
    /// The newest record's MAC (zeros if none).
    pub(crate) last_mac: String,
    /// The first record's MAC: names this log in checkpoints.
    pub(crate) first_mac: Option<String>,
    /// The head checkpoint as found.
    pub(crate) head: Option<Head>,
    /// SHA-256 of the complete lines read (what checkpoints sign).
    pub(crate) digest: digest::Context,
    /// A last line without a newline after the records (not read when the log is live).
    pub(crate) torn: Option<TornTail>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("records", &self.records)
            .field("head", &self.head)
            .field("torn", &self.torn)
            .finish_non_exhaustive()
    }
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

/// How much of a record can be checked.
#[derive(Clone, Copy)]
pub(crate) enum Macs<'a> {
    /// With the audit key: every record's MAC and the head's.
    Keyed(&'a hmac::Key),
    /// Without it (an auditor holding signed checkpoints only): form, seq and chain links.
    Unchecked,
}

pub(crate) fn damaged(log: &Path, line: Option<u64>, defect: AuditDefect) -> Error {
    Error::AuditDamaged {
        path: log.to_path_buf(),
        line,
        defect,
    }
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

pub(crate) fn open_reader(log: &Path) -> Result<Option<BufReader<File>>, Error> {
    match File::open(log) {
        Ok(file) => Ok(Some(BufReader::with_capacity(1 << 16, file))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("opening {}", log.display()))(e)),
    }
}

/// Verifies `log` against its head checkpoint and `anchor`, calling `each` with every record
/// that verified and the SHA-256 of the log up to and including its line. A last line
/// without a newline is not read: if `live` (a writer holds the log) it is a write in
/// progress and is ignored, else it is returned as [`Chain::torn`] for the caller to report
/// or trim. Every other problem is an error, and one found after the records (such as a log
/// shorter than its head) is reported rather than the torn tail.
pub(crate) fn check(
    log: &Path,
    live: bool,
    macs: Macs<'_>,
    anchor: Option<&Anchor>,
    mut each: impl FnMut(&AuditRecord, &digest::Context) -> Result<(), Error>,
) -> Result<Chain, Error> {
    // The head first: a writer only moves it after the log, so the log read next reaches it.
    // Without the key its tag cannot be checked, so it proves nothing and is not read.
    let head = match macs {
        Macs::Keyed(_) => read_head(log, macs)?,
        Macs::Unchecked => None,
    };
    let keyed = matches!(macs, Macs::Keyed(_));
    let mut records = 0u64;
    let mut last_mac = ZERO_MAC.to_owned();
    let mut first_mac = None;
    let mut torn = None;
    let mut digest = digest::Context::new(&digest::SHA256);
    let Some(mut reader) = open_reader(log)? else {
        return finish(
            log, keyed, records, last_mac, first_mac, head, digest, torn, anchor,
        );
    };
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
        record.check_form(&buf).map_err(at)?;
        if let Macs::Keyed(key) = macs {
            record.check_mac(key).map_err(at)?;
        }
        if record.prev != last_mac {
            return Err(at(AuditDefect::ChainBroken { seq: record.seq }));
        }
        if let Some(h) = head.as_ref().filter(|h| h.seq == record.seq)
            && h.mac != record.mac
        {
            return Err(at(AuditDefect::HeadMismatch { seq: h.seq }));
        }
        if let Some(a) = anchor.filter(|a| a.seq == record.seq)
            && a.mac != record.mac
        {
            return Err(at(AuditDefect::AnchorMismatch { seq: a.seq }));
        }
        digest.update(&buf);
        digest.update(b"\n");
        each(&record, &digest)?;
        records = record.seq;
        if first_mac.is_none() {
            first_mac = Some(record.mac.clone());
        }
        last_mac = record.mac;
    }
    finish(
        log, keyed, records, last_mac, first_mac, head, digest, torn, anchor,
    )
}

#[allow(clippy::too_many_arguments)]
fn finish(
    log: &Path,
    keyed: bool,
    records: u64,
    last_mac: String,
    first_mac: Option<String>,
    head: Option<Head>,
    digest: digest::Context,
    torn: Option<TornTail>,
    anchor: Option<&Anchor>,
) -> Result<Chain, Error> {
    if let Some(a) = anchor.filter(|a| records < a.seq) {
        let defect = if records == 0 && head.is_none() {
            AuditDefect::LogMissing { anchor_seq: a.seq }
        } else {
            AuditDefect::AnchorTruncated {
                log_seq: records,
                anchor_seq: a.seq,
            }
        };
        return Err(damaged(log, None, defect));
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
        None if keyed && records > 0 => {
            Err(damaged(log, None, AuditDefect::HeadMissing { records }))
        }
        _ => Ok(Chain {
            records,
            last_mac,
            first_mac,
            head,
            digest,
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
pub(crate) fn is_live(log: &Path) -> Result<bool, Error> {
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

/// Verifies the audit log at `path` with its `key`: every line a canonical record with its
/// text escaped, seqs from 1 without gaps, each record's MAC over its contents, each `prev`
/// the previous record's MAC, the head checkpoint's MAC and its record present with the same
/// MAC, and the log reaching the `anchor` (the vault's copy of an earlier head) with the same
/// MAC there. The first problem found is returned as [`Error::AuditDamaged`] with its line
/// number. Safe while a daemon appends to the log.
///
/// Read-only and strict: a last line without a newline, left by a crash in the middle of a
/// write, is [`AuditDefect::TornTail`] (after every record before it verified) unless a
/// daemon holds the log (then it is a write in progress and is ignored). Only
/// [`super::AuditLog::open`] repairs it, by trimming it.
pub fn verify(
    path: &Path,
    key: &AuditKey,
    anchor: &dyn AuditAnchor,
) -> Result<VerifyReport, Error> {
    let anchor = anchor.read()?;
    let hmac = key.hmac();
    let chain = check(
        path,
        is_live(path)?,
        Macs::Keyed(&hmac),
        anchor.as_ref(),
        |_, _| Ok(()),
    )?;
    report(path, &chain, anchor.as_ref())
}

pub(crate) fn report(
    path: &Path,
    chain: &Chain,
    anchor: Option<&Anchor>,
) -> Result<VerifyReport, Error> {
    if let Some(torn) = chain.torn {
        return Err(damaged(
            path,
            Some(torn.line),
            AuditDefect::TornTail { bytes: torn.bytes },
        ));
    }
    Ok(VerifyReport {
        records: chain.records,
        head_seq: chain.head.as_ref().map_or(0, |h| h.seq),
        anchor_seq: anchor.map(|a| a.seq),
    })
}

/// The last `n` records of the audit log at `path`, oldest first, after verifying the whole
/// log as [`verify`] does.
pub fn tail_verified(
    path: &Path,
    key: &AuditKey,
    anchor: &dyn AuditAnchor,
    n: usize,
) -> Result<Vec<AuditRecord>, Error> {
    let anchor = anchor.read()?;
    let hmac = key.hmac();
    let mut last = VecDeque::with_capacity(n.min(4096));
    let chain = check(
        path,
        is_live(path)?,
        Macs::Keyed(&hmac),
        anchor.as_ref(),
        |record, _| {
            if n > 0 {
                if last.len() == n {
                    last.pop_front();
                }
                last.push_back(record.clone());
            }
            Ok(())
        },
    )?;
    report(path, &chain, anchor.as_ref())?;
    Ok(last.into())
}

/// The last `n` records of the audit log at `path`, oldest first. Parses them but does not
/// verify the chain (use [`verify`] or [`tail_verified`]); a last line without a newline (a
/// write in progress) is skipped. Reads the whole file.
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
            AuditRecord::parse_line(&bytes).map_err(|defect| damaged(path, Some(line_no), defect))
        })
        .collect()
}
