//! A second home for the audit log's records: a store that replicas share keeps a copy of
//! each daemon's records (see [`super::replicas`]), written in the batch that makes them
//! durable. A record is acknowledged only once the mirror holds it too.

use crate::Error;

/// One record as the mirror receives it: its seq, its MAC and its canonical line (no
/// newline), exactly as in the log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirroredRecord {
    /// The record's seq in the log.
    pub seq: u64,
    /// Its MAC.
    pub mac: String,
    /// Its canonical line.
    pub line: String,
    /// Whether its caller waits for it to be fsynced (a state change's records), rather than
    /// only written (a read's outcome): the mirror may hold the latter the way the file does
    /// before its fsync, safe from a crash of this process, not from the store's.
    pub fsync: bool,
}

/// Where an [`super::AuditLog`] copies its records.
pub trait AuditMirror: Send + Sync + std::fmt::Debug {
    /// The log opened with `seq` records, the newest with MAC `mac` (0 and zeros if empty):
    /// the mirror's copy begins after it.
    fn start(&self, seq: u64, mac: &str) -> Result<(), Error>;

    /// Holds `records` (in order, right after the previous ones) durably before returning;
    /// waits out a store that is away for a while. An error closes the log for appends.
    fn append(&self, records: &[MirroredRecord]) -> Result<(), Error>;

    /// The log is closing: an append waiting for the store gives up instead.
    fn closing(&self);

    /// The log closed (its last records are in): background work finishes and stops.
    fn close(&self);
}
