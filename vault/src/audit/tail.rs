//! The newest records of a log: from its current segment, and from the closed ones before it
//! when the current one holds fewer.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use super::chain::{Line, Macs, damaged, is_live, next_line, open_reader, report};
use super::record::AuditRecord;
use super::segment::closed_segments;
use super::walk::check;
use super::{AuditAnchor, AuditDefect, AuditKey};
use crate::Error;

/// The last `n` records of the audit log at `path`, oldest first, after verifying the whole
/// log (every segment) as [`super::verify`] does.
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
        &mut |record, _, _| {
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

/// The last `n` records of the audit log at `path`, oldest first: from its current segment,
/// then (when it holds fewer) from its closed segments, newest first. Parses them but does
/// not verify the chain (use [`super::verify`] or [`tail_verified`]); a last line without a
/// newline (a write in progress) is skipped. Reads whole segments.
pub fn tail(path: &Path, n: usize) -> Result<Vec<AuditRecord>, Error> {
    let mut lines = last_lines(path, n, true)?;
    if lines.len() < n {
        for (_, segment) in closed_segments(path)?.into_iter().rev() {
            let mut older = last_lines(&segment, n - lines.len(), false)?;
            older.append(&mut lines);
            lines = older;
            if lines.len() >= n {
                break;
            }
        }
    }
    lines
        .into_iter()
        .map(|(file, line_no, bytes)| {
            AuditRecord::parse_line(&bytes).map_err(|defect| damaged(&file, Some(line_no), defect))
        })
        .collect()
}

/// The last `n` complete lines of the file at `path` with their file and line numbers; none
/// if it does not exist and `required` is false.
fn last_lines(
    path: &Path,
    n: usize,
    required: bool,
) -> Result<VecDeque<(PathBuf, u64, Vec<u8>)>, Error> {
    let mut last: VecDeque<(PathBuf, u64, Vec<u8>)> = VecDeque::with_capacity(n.min(4096));
    let reader = if required {
        let file =
            std::fs::File::open(path).map_err(Error::io(format!("opening {}", path.display())))?;
        Some(std::io::BufReader::with_capacity(1 << 16, file))
    } else {
        open_reader(path)?
    };
    let Some(mut reader) = reader else {
        return Ok(last);
    };
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        let line = next_line(&mut reader, &mut buf)
            .map_err(Error::io(format!("reading {}", path.display())))?;
        line_no += 1;
        match line {
            Line::End | Line::Unterminated => break,
            Line::TooLong => {
                let reason = format!("longer than {} bytes", super::chain::MAX_LINE);
                return Err(damaged(
                    path,
                    Some(line_no),
                    AuditDefect::Malformed { reason },
                ));
            }
            Line::Complete if n == 0 => {}
            Line::Complete => {
                let reused = if last.len() == n {
                    last.pop_front().map(|(_, _, v)| v)
                } else {
                    None
                };
                let mut kept = reused.unwrap_or_default();
                kept.clear();
                kept.extend_from_slice(&buf);
                last.push_back((path.to_path_buf(), line_no, kept));
            }
        }
    }
    Ok(last)
}
