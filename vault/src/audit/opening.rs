//! Opening an audit log: creating it, refusing a missing or damaged one, starting a new one
//! on request, and trimming a torn last line.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::anchor::Anchor;
use super::chain::{Chain, Macs, TornTail, check_segment, finish, open_reader};
use super::head::{head_path, read_head};
use super::segment::{closed_segments, identity, identity_at, next_path, number_of, segment_path};
use super::{AuditDefect, AuditEvent, AuditKey, Decision};
use crate::Error;
use crate::config::{parent_dir, sync_dir};

/// The first record of a log started with `--new-audit-log` (or by a restore: `note`).
pub(super) fn new_log_event(previous: Option<&Anchor>, note: Option<&str>) -> AuditEvent {
    let mut reason = match previous {
        Some(a) => format!(
            "a new audit log was started (vaultd --new-audit-log) where the vault's anchor says the previous log held {} records (the last anchored one with mac {})",
            a.seq, a.mac
        ),
        None => "a new audit log was started (vaultd --new-audit-log); the vault had no anchor of an earlier one".to_owned(),
    };
    if let Some(note) = note {
        reason.push_str("; ");
        reason.push_str(note);
    }
    AuditEvent {
        principal: "vaultd".into(),
        op: "new-audit-log".into(),
        reason: Some(reason),
        ..AuditEvent::new(Decision::Allow, "OK")
    }
}

/// Verifies the current segment of the log at `path` (see `chain::check_segment`) against
/// the head and the `anchor` where they fall in it or at the record before it; the closed
/// segments are not read (only their names, for the number of an empty current segment).
pub(super) fn check_current(
    path: &Path,
    key: &ring::hmac::Key,
    anchor: Option<&Anchor>,
) -> Result<Chain, Error> {
    let macs = Macs::Keyed(key);
    let head = read_head(path, macs)?;
    let segment = check_segment(
        path,
        open_reader(path)?,
        false,
        macs,
        None,
        head.as_ref(),
        anchor,
        &mut |_, _, _| Ok(()),
    )?;
    let number = match segment.first.as_ref().and_then(number_of) {
        Some(number) => number,
        None => closed_segments(path)?.last().map_or(1, |(n, _)| n + 1),
    };
    finish(path, macs, segment, number, head, anchor)
}

/// Undoes a rotation cut short before its new segment took over: removes `<log>.next` and
/// the closed name the current segment `number` (open as `file`) was given.
pub(super) fn finish_cut_rotation(path: &Path, number: u64, file: &File) -> Result<(), Error> {
    let next = next_path(path);
    match std::fs::remove_file(&next) {
        Ok(()) => log::warn!(
            "audit log {}: removed {}, the next segment of a rotation cut short",
            path.display(),
            next.display()
        ),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("removing {}", next.display()))(e)),
    }
    let closed = segment_path(path, number);
    if identity_at(&closed)? == Some(identity(file, path)?) {
        std::fs::remove_file(&closed)
            .map_err(Error::io(format!("removing {}", closed.display())))?;
        log::warn!(
            "audit log {}: removed {}, a second name the current segment got from a rotation cut short",
            path.display(),
            closed.display()
        );
        sync_dir(parent_dir(path))?;
    }
    Ok(())
}

/// Opens `path` for appending, or creates it (0600, directory synced) if neither it exists nor
/// its head or the vault's anchor says records were written (then the log was deleted, and
/// that is reported).
pub(super) fn open_or_create(
    path: &Path,
    key: &AuditKey,
    anchor: Option<&Anchor>,
) -> Result<File, Error> {
    let mut options = OpenOptions::new();
    options.read(true).append(true);
    match options.open(path) {
        Ok(file) => return Ok(file),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("opening {}", path.display()))(e)),
    }
    let hmac = key.hmac();
    let head = read_head(path, Macs::Keyed(&hmac)).map_err(refused)?;
    match (head, anchor) {
        (Some(head), _) if head.seq > 0 => {
            return Err(refused(Error::AuditDamaged {
                path: path.to_path_buf(),
                line: None,
                defect: AuditDefect::Truncated {
                    log_seq: 0,
                    head_seq: head.seq,
                },
            }));
        }
        (_, Some(anchor)) if anchor.seq > 0 => {
            return Err(Error::AuditMissing {
                path: path.to_path_buf(),
                anchor_seq: anchor.seq,
            });
        }
        _ => {}
    }
    let file = options
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(Error::io(format!("creating {}", path.display())))?;
    sync_dir(parent_dir(path))?;
    Ok(file)
}

/// Creates a new, empty log at `path` for `--new-audit-log`, removing a head checkpoint left
/// of a deleted one; refuses if a log exists.
pub(super) fn create_new_log(path: &Path) -> Result<File, Error> {
    if let Some((_, closed)) = closed_segments(path)?.first() {
        return Err(Error::Unsupported(format!(
            "--new-audit-log starts a log only where there is none, and {} (a closed segment of one) exists: move every {}.* file aside first (keep them as evidence)",
            closed.display(),
            path.display()
        )));
    }
    if path.exists() {
        return Err(Error::Unsupported(format!(
            "--new-audit-log starts a log only where there is none, and {} exists: start vaultd without --new-audit-log, or move it and {} aside first (keep them as evidence)",
            path.display(),
            head_path(path).display()
        )));
    }
    let head = head_path(path);
    match std::fs::remove_file(&head) {
        Ok(()) => log::warn!(
            "--new-audit-log: removed {}, the head checkpoint of a log that is gone",
            head.display()
        ),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("removing {}", head.display()))(e)),
    }
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(Error::io(format!("creating {}", path.display())))?;
    sync_dir(parent_dir(path))?;
    Ok(file)
}

/// Drops `torn` (the log's incomplete last line) from `file`, the log at `path`, locked by us,
/// and fsyncs it. Only if the file still ends there: bytes after it would mean another writer.
pub(super) fn trim_torn_tail(file: &File, path: &Path, torn: TornTail) -> Result<(), Error> {
    let len = file
        .metadata()
        .map_err(Error::io(format!("reading the size of {}", path.display())))?
        .len();
    if len != torn.offset.saturating_add(torn.bytes) {
        return Err(Error::AuditInUse {
            path: path.to_path_buf(),
        });
    }
    file.set_len(torn.offset)
        .and_then(|()| file.sync_all())
        .map_err(Error::io(format!(
            "trimming the incomplete last line of {}",
            path.display()
        )))?;
    log::warn!(
        "audit log {}: dropped {} byte(s) of an incomplete last line (line {}), a write cut short by a crash and never acknowledged",
        path.display(),
        torn.bytes,
        torn.line
    );
    Ok(())
}

pub(super) fn refused(e: Error) -> Error {
    match e {
        Error::AuditDamaged {
            path,
            defect: AuditDefect::LogMissing { anchor_seq },
            ..
        } => Error::AuditMissing { path, anchor_seq },
        Error::AuditDamaged { path, line, defect } => Error::AuditRefused { path, line, defect },
        other => other,
    }
}
