//! Walking a whole log: its closed segments in order of their number, then the current one,
//! as one chain; a missing, misplaced or stray segment file is named.

use std::path::Path;

use super::Anchor;
use super::AuditDefect;
use super::chain::{
    Chain, Each, Link, Macs, check_segment, damaged, finish, first_record, first_record_in,
    open_reader,
};
use super::head::read_head;
use super::segment::{self, closed_segments, file_name, identity, identity_at, number_of};
use crate::Error;

/// Verifies the whole log at `log`: every closed segment in order of its number, then the
/// current one, as one chain from seq 1 (see [`check_segment`]), against its head checkpoint
/// and `anchor`. A missing, misplaced or stray segment file is named. Every other problem is
/// an error, and one found after the records (such as a log shorter than its head) is
/// reported rather than a torn tail.
pub(crate) fn check(
    log: &Path,
    live: bool,
    macs: Macs<'_>,
    anchor: Option<&Anchor>,
    each: &mut Each<'_>,
) -> Result<Chain, Error> {
    // The head first: a writer only moves it after the log, so the log read next reaches it.
    // Without the key its tag cannot be checked, so it proves nothing and is not read.
    let head = match macs {
        Macs::Keyed(_) => read_head(log, macs)?,
        Macs::Unchecked => None,
    };
    // The current segment is opened before the closed ones are listed: if a rotation closes
    // it meanwhile, it is found among them (same file) and read once, as the current one.
    let current = open_reader(log)?;
    let current_id = match &current {
        Some(reader) => Some(identity(reader.get_ref(), log)?),
        None => None,
    };
    let mut closed = closed_segments(log)?;
    for at in 0..closed.len() {
        if current_id.is_some() && identity_at(&closed[at].1)? == current_id {
            closed.truncate(at);
            break;
        }
    }
    let current_number = current
        .as_ref()
        .and_then(|reader| first_record_in(reader.get_ref()))
        .as_ref()
        .and_then(number_of)
        .unwrap_or_else(|| closed.last().map_or(1, |(n, _)| n + 1));
    let mut link = Link::start();
    let mut expected = 1u64;
    for (number, path) in &closed {
        if *number >= current_number {
            return Err(damaged(
                path,
                None,
                AuditDefect::SegmentStray {
                    file: file_name(path),
                    current: current_number,
                },
            ));
        }
        if *number > expected {
            return Err(missing_segment(log, expected, &link, path));
        }
        if let Some(found) = first_record(path).as_ref().and_then(number_of)
            && found != *number
        {
            return Err(damaged(
                path,
                Some(1),
                AuditDefect::SegmentMisplaced {
                    file: file_name(path),
                    expected: *number,
                    found,
                },
            ));
        }
        let segment = check_segment(
            path,
            open_reader(path)?,
            false,
            macs,
            Some(&link),
            head.as_ref(),
            anchor,
            each,
        )?;
        if let Some(torn) = segment.torn {
            let defect = AuditDefect::TornTail { bytes: torn.bytes };
            return Err(damaged(path, Some(torn.line), defect));
        }
        link = segment.last;
        expected = number + 1;
    }
    if current.is_some() && current_number > expected {
        return Err(missing_segment(log, expected, &link, log));
    }
    let segment = check_segment(
        log,
        current,
        live,
        macs,
        Some(&link),
        head.as_ref(),
        anchor,
        each,
    )?;
    finish(log, macs, segment, current_number, head, anchor)
}

/// Segment `number` is missing: the records between `before` and the first of `next` (the
/// segment file found after the gap) went with it.
fn missing_segment(log: &Path, number: u64, before: &Link, next: &Path) -> Error {
    let records = first_record(next)
        .filter(|r| r.seq > before.seq + 1)
        .map(|r| (before.seq + 1, r.seq - 1));
    let path = segment::segment_path(log, number);
    damaged(
        &path,
        None,
        AuditDefect::SegmentMissing {
            file: file_name(&path),
            segment: number,
            records,
        },
    )
}
