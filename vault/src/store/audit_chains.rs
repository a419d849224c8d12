//! The replicas' audit chains, kept by a store that replicas share (PostgreSQL): each daemon
//! copies every record of its audit log into a chain of its own, in the batch that makes the
//! record durable, and the leader checkpoints every chain's head. What the records and tags
//! mean, and how they are checked, is `audit::replicas`'s; the store only keeps rows.

use crate::Error;

/// One chain as the store keeps it: the record before its first (where the daemon's audit
/// log stood when the chain started) and its head, with the head's tag under the audit key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// The chain's name: the daemon's replica name (`host:pid:random`), one per process.
    pub chain: String,
    /// When the daemon started it (Unix milliseconds).
    pub started_ms: i64,
    /// The seq and MAC of the audit-log record before the chain's first (0 and zeros for a
    /// new log).
    pub start_seq: u64,
    /// See `start_seq`.
    pub start_mac: String,
    /// The newest record's seq and MAC (the start while the chain is empty).
    pub seq: u64,
    /// See `seq`.
    pub mac: String,
    /// HMAC under the audit key over all of the above.
    pub tag: String,
}

/// One checkpoint: the heads of the chains that moved since the previous one, chained to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// 1, 2, 3... without gaps.
    pub number: u64,
    /// When the leader made it (Unix milliseconds).
    pub ts_ms: i64,
    /// The leader's lease term.
    pub term: i64,
    /// The previous checkpoint's MAC (zeros for the first).
    pub prev: String,
    /// HMAC under the audit key over everything else.
    pub mac: String,
    /// (chain, seq, MAC) of each chain whose head moved, by chain name.
    pub heads: Vec<(String, u64, String)>,
}

/// Where a shared store keeps the audit chains. Rows are only inserted, apart from a chain's
/// head.
pub trait AuditChains: Send + Sync {
    /// This process's name among the replicas (`host:pid:random`): its chain's name.
    fn replica_name(&self) -> &str;

    /// Adds a new, empty chain whose head is its start.
    fn create_chain(&self, head: &ChainHead) -> Result<(), Error>;

    /// Appends `records` (seq and canonical line, in order, the first right after the head)
    /// to `chain` and moves its head to `head`, in one statement, if the head is still at
    /// seq `from`: whether it was (false also when an earlier attempt of this append
    /// committed and its answer was lost; read the head to tell). Unless `flushed`, the
    /// commit need not wait for the store's disk (it must still outlive this process).
    fn append_chain(
        &self,
        chain: &str,
        from: u64,
        records: &[(u64, &str)],
        head: &ChainHead,
        flushed: bool,
    ) -> Result<bool, Error>;

    /// One chain's head row.
    fn chain_head(&self, chain: &str) -> Result<Option<ChainHead>, Error>;

    /// Every chain's head row, by name.
    fn chains(&self) -> Result<Vec<ChainHead>, Error>;

    /// Up to `limit` records of `chain` after seq `after`, by seq.
    fn chain_records(
        &self,
        chain: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, String)>, Error>;

    /// The chains that have records (verification's check for records without a head row).
    fn record_chains(&self) -> Result<Vec<String>, Error>;

    /// The chains whose head is past every checkpoint that named them (or that none named).
    fn unchecked_heads(&self) -> Result<Vec<ChainHead>, Error>;

    /// Up to `limit` checkpoints after number `after`, by number, with their heads.
    fn checkpoints(&self, after: u64, limit: usize) -> Result<Vec<StoredCheckpoint>, Error>;

    /// The newest checkpoint's number and MAC.
    fn last_checkpoint(&self) -> Result<Option<(u64, String)>, Error>;

    /// The lease term this process leads in, if it does.
    fn leader_term(&self) -> Option<i64>;

    /// Adds `checkpoint` and its heads in one transaction, fenced by this process still
    /// holding the leader lease in `checkpoint.term`: whether it was added.
    fn add_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<bool, Error>;
}
