//! Reading an audit log back: verifying the chain of each segment, across segments, against
//! the head checkpoint and the anchor.

use std::fs::{File, TryLockError};
use std::io::{self, BufRead, BufReader, ErrorKind, Read};
use std::path::Path;

use ring::{digest, hmac};
use serde::Deserialize;

use super::head::Head;
use super::record::{AuditRecord, ZERO_MAC};
use super::segment::number_of;
use super::walk::check;
use super::{Anchor, AuditAnchor, AuditDefect, AuditKey, VerifyReport};
use crate::Error;

/// No record line is longer: text fields are escaped and cut to `MAX_FIELD_LEN`, and JSON
/// escapes at most double them.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// A record's place in the chain: its seq and MAC (seq 0 and zeros before the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) seq: u64,
    pub(crate) mac: String,
}

impl Link {
    /// Before the log's first record.
    pub(crate) fn start() -> Self {
        Link {
            seq: 0,
            mac: ZERO_MAC.to_owned(),
        }
    }
}

/// A segment (or a log) that verified: what appending continues from.
pub(crate) struct Chain {
    /// Records in the log (the newest seq).
    pub(crate) records: u64,
    /// The newest record's MAC (zeros if none).
    pub(crate) last_mac: String,
    /// The current segment's first record's MAC: names it in checkpoints.
    pub(crate) first_mac: Option<String>,
    /// The current segment's number.
    pub(crate) segment: u64,
    /// The head checkpoint as found.
    pub(crate) head: Option<Head>,
    /// SHA-256 of the current segment's complete lines (what checkpoints sign).
    pub(crate) digest: digest::Context,
    /// A last line without a newline after the records (not read when the log is live).
    pub(crate) torn: Option<TornTail>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("records", &self.records)
            .field("segment", &self.segment)
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

/// What every verified record is shown to: the record, the SHA-256 of its segment up to and
/// including its line, and the MAC of its segment's first record.
pub(crate) type Each<'e> =
    dyn FnMut(&AuditRecord, &digest::Context, &str) -> Result<(), Error> + 'e;

pub(crate) fn damaged(log: &Path, line: Option<u64>, defect: AuditDefect) -> Error {
    Error::AuditDamaged {
        path: log.to_path_buf(),
        line,
        defect,
    }
}

pub(crate) enum Line {
    End,
    Complete,
    /// At the end of the file without a newline.
    Unterminated,
    TooLong,
}

/// Reads the next line into `buf` (without its newline), reading at most [`MAX_LINE`] + 1 bytes.
pub(crate) fn next_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Line> {
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

/// The first record of the segment at `path`, if it has a complete, parseable one.
pub(crate) fn first_record(path: &Path) -> Option<AuditRecord> {
    let mut reader = open_reader(path).ok()??;
    let mut buf = Vec::new();
    match next_line(&mut reader, &mut buf).ok()? {
        Line::Complete => AuditRecord::parse_line(&buf).ok(),
        _ => None,
    }
}

/// The first record of an open segment file (read at its start, whatever the file's
/// position), if it has a complete, parseable one.
pub(crate) fn first_record_in(file: &File) -> Option<AuditRecord> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; MAX_LINE + 1];
    let mut filled = 0usize;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], u64::try_from(filled).ok()?) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(_) => return None,
        }
    }
    let end = buf[..filled].iter().position(|b| *b == b'\n')?;
    AuditRecord::parse_line(&buf[..end]).ok()
}

/// One segment that verified.
pub(crate) struct Segment {
    /// Its first record, if it has one.
    pub(crate) first: Option<AuditRecord>,
    /// Its newest record (the link it continued from if it is empty).
    pub(crate) last: Link,
    /// SHA-256 of its complete lines.
    pub(crate) digest: digest::Context,
    /// An incomplete last line (see [`check`]).
    pub(crate) torn: Option<TornTail>,
}

/// Verifies the records of the segment at `path` (read from `reader`), each record's MAC
/// under `macs`, their seqs and links from `after` (the record before the segment), and the
/// head's and the anchor's MACs where they fall in it. Without `after` (start-up, which reads
/// no older segment) the first record is taken as it is if it opens a segment, and must be
/// the log's first record otherwise. A last line without a newline is not read: if `live` (a
/// writer holds the log) it is a write in progress and is ignored, else it is returned as
/// [`Segment::torn`] for the caller to report or trim.
#[allow(clippy::too_many_arguments)]
pub(crate) fn check_segment(
    path: &Path,
    reader: Option<BufReader<File>>,
    live: bool,
    macs: Macs<'_>,
    after: Option<&Link>,
    head: Option<&Head>,
    anchor: Option<&Anchor>,
    each: &mut Each<'_>,
) -> Result<Segment, Error> {
    let mut last = after.cloned();
    let mut first: Option<AuditRecord> = None;
    let mut torn = None;
    let mut digest = digest::Context::new(&digest::SHA256);
    let Some(mut reader) = reader else {
        return Ok(Segment {
            first,
            last: last.unwrap_or_else(Link::start),
            digest,
            torn,
        });
    };
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    // The length of the complete lines read so far.
    let mut offset = 0u64;
    loop {
        let line = next_line(&mut reader, &mut buf)
            .map_err(Error::io(format!("reading {}", path.display())))?;
        line_no += 1;
        let at = |defect| damaged(path, Some(line_no), defect);
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
        let expected_prev = match &last {
            Some(link) => {
                let expected = link.seq + 1;
                if record.seq != expected {
                    return Err(at(seq_defect(path, line_no, expected, record.seq)));
                }
                link.mac.clone()
            }
            // The first record read at start-up: the log's first, or a segment's.
            None if record.seq == 1 => ZERO_MAC.to_owned(),
            None if number_of(&record).is_some() => record.prev.clone(),
            None => return Err(at(seq_defect(path, line_no, 1, record.seq))),
        };
        record.check_form(&buf).map_err(at)?;
        if let Macs::Keyed(key) = macs {
            record.check_mac(key).map_err(at)?;
        }
        if record.prev != expected_prev {
            return Err(at(AuditDefect::ChainBroken { seq: record.seq }));
        }
        if let Some(h) = head.filter(|h| h.seq == record.seq)
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
        let first_mac = first
            .as_ref()
            .map_or(record.mac.as_str(), |f| f.mac.as_str());
        each(&record, &digest, first_mac)?;
        last = Some(Link {
            seq: record.seq,
            mac: record.mac.clone(),
        });
        if first.is_none() {
            first = Some(record);
        }
    }
    Ok(Segment {
        first,
        last: last.unwrap_or_else(Link::start),
        digest,
        torn,
    })
}

/// Checks a verified chain (the whole log, or its current segment at start-up) against the
/// head and the anchor that fall at or after its start, and returns it.
pub(crate) fn finish(
    log: &Path,
    macs: Macs<'_>,
    segment: Segment,
    number: u64,
    head: Option<Head>,
    anchor: Option<&Anchor>,
) -> Result<Chain, Error> {
    let records = segment.last.seq;
    // The record before the segment's first: its seq and MAC are the first record's claims.
    let before = segment.first.as_ref().map(|f| Link {
        seq: f.seq - 1,
        mac: f.prev.clone(),
    });
    if let Some(a) = anchor {
        if records < a.seq {
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
        if before
            .as_ref()
            .is_some_and(|b| b.seq == a.seq && b.mac != a.mac)
        {
            return Err(damaged(
                log,
                Some(1),
                AuditDefect::AnchorMismatch { seq: a.seq },
            ));
        }
    }
    match (&head, &before) {
        (Some(h), _) if records < h.seq => {
            let defect = AuditDefect::Truncated {
                log_seq: records,
                head_seq: h.seq,
            };
            return Err(damaged(log, None, defect));
        }
        (Some(h), Some(b)) if h.seq == b.seq && h.mac != b.mac => {
            return Err(damaged(
                log,
                Some(1),
                AuditDefect::HeadMismatch { seq: h.seq },
            ));
        }
        (Some(h), Some(b)) if h.seq < b.seq => {
            let defect = AuditDefect::HeadBehind {
                head_seq: h.seq,
                segment_start: b.seq + 1,
            };
            return Err(damaged(log, None, defect));
        }
        (None, _) if matches!(macs, Macs::Keyed(_)) && records > 0 => {
            return Err(damaged(log, None, AuditDefect::HeadMissing { records }));
        }
        _ => {}
    }
    Ok(Chain {
        records,
        last_mac: segment.last.mac,
        first_mac: segment.first.map(|f| f.mac),
        segment: number,
        head,
        digest: segment.digest,
        torn: segment.torn,
    })
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

/// Whether another open file holds `log` locked: an [`super::AuditLog`] (a running vaultd)
/// is writing it. `false` if it does not exist.
pub fn is_live(log: &Path) -> Result<bool, Error> {
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

/// Verifies the audit log at `path` (the current segment) and its closed segments beside it
/// with its `key`: every line a canonical record with its text escaped, seqs from 1 without
/// gaps across the segments in the order of their numbers, each record's MAC over its
/// contents, each `prev` the previous record's MAC (the first record of a segment links to
/// the last of the one before), the head checkpoint's MAC and its record present with the
/// same MAC, and the log reaching the `anchor` (the vault's copy of an earlier head) with the
/// same MAC there. A missing segment file, or one holding another segment than its name
/// says, is named. The first problem found is returned as [`Error::AuditDamaged`] with its
/// file and line number. Safe while a daemon appends to the log and rotates it.
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
        &mut |_, _, _| Ok(()),
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
        segments: chain.segment,
    })
}
