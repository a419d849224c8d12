//! Verifying the replica chains and their checkpoints: every record's form, MAC, seq and
//! link, every head row's tag and reach, every checkpoint's MAC and link, and that every
//! chain a checkpoint named is still there and reaches what it named. All defects are
//! collected, each naming its chain, so one run shows everything that was done.

use std::collections::{BTreeMap, BTreeSet};

use ring::hmac;

use super::checkpoints::checkpoint_verifies;
use super::head_verifies;
use crate::Error;
use crate::audit::record::{AuditRecord, ZERO_MAC};
use crate::audit::{AuditDefect, AuditKey};
use crate::store::{AuditChains, ChainHead};

/// Records and checkpoints read per query.
const PAGE: usize = 5000;

/// What [`verify_replicas`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicasReport {
    /// Checkpoints read.
    pub checkpoints: u64,
    /// Every chain with a head row, by name.
    pub chains: Vec<ChainReport>,
    /// Everything wrong; empty when all verifies.
    pub defects: Vec<ReplicaDefect>,
}

/// One chain as verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Its name: the replica that wrote it (`host:pid:random`).
    pub chain: String,
    /// When it started (Unix milliseconds).
    pub started_ms: i64,
    /// The seq of its first record (one past the log's newest when it started).
    pub first_seq: u64,
    /// Records read.
    pub records: u64,
    /// The seq its head row names.
    pub head_seq: u64,
    /// The newest seq a checkpoint named, if one did.
    pub checkpointed_seq: Option<u64>,
}

/// What is wrong with the replica chains, naming the chain (or checkpoint) concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplicaDefect {
    /// Checkpoints `from..=to` are gone.
    CheckpointsMissing {
        /// The first missing number.
        from: u64,
        /// The last missing number.
        to: u64,
    },
    /// The checkpoint's `prev` is not the previous checkpoint's MAC.
    CheckpointUnlinked {
        /// Its number.
        number: u64,
    },
    /// The checkpoint's MAC does not verify under the audit key (its heads are not trusted).
    CheckpointForged {
        /// Its number.
        number: u64,
    },
    /// A chain's head row does not verify under the audit key.
    HeadForged {
        /// The chain.
        chain: String,
    },
    /// A chain has records but no head row.
    HeadMissing {
        /// The chain.
        chain: String,
    },
    /// A chain a checkpoint named has neither a head row nor records: dropped whole.
    ChainMissing {
        /// The chain.
        chain: String,
        /// The newest checkpoint that named it.
        number: u64,
        /// The seq that checkpoint named.
        seq: u64,
    },
    /// Records `from..=to` of a chain are gone.
    RecordsMissing {
        /// The chain.
        chain: String,
        /// The first missing seq.
        from: u64,
        /// The last missing seq.
        to: u64,
    },
    /// A record is damaged (edited, not canonical, unlinked, not a record).
    RecordDamaged {
        /// The chain.
        chain: String,
        /// The row's seq.
        seq: u64,
        /// What is wrong with it.
        defect: AuditDefect,
    },
    /// A chain ends before the seq its head row, or a checkpoint, names: its newest records
    /// were cut.
    TailCut {
        /// The chain.
        chain: String,
        /// The newest seq it holds (its start if none).
        ends_at: u64,
        /// The seq it should reach.
        expected: u64,
        /// The checkpoint that names `expected`; `None`: the head row does.
        checkpoint: Option<u64>,
    },
    /// A chain holds records past its head row: added by someone else.
    PastHead {
        /// The chain.
        chain: String,
        /// The seq the head names.
        head_seq: u64,
        /// The newest seq it holds.
        ends_at: u64,
    },
    /// A checkpoint names a record of a chain with another MAC: the record was replaced.
    CheckpointMismatch {
        /// The chain.
        chain: String,
        /// The checkpoint.
        number: u64,
        /// The seq it names.
        seq: u64,
    },
}

impl std::fmt::Display for ReplicaDefect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplicaDefect::CheckpointsMissing { from, to } => {
                write!(f, "checkpoints {from}..{to} were deleted")
            }
            ReplicaDefect::CheckpointUnlinked { number } => write!(
                f,
                "checkpoint {number} does not link to the checkpoint before it"
            ),
            ReplicaDefect::CheckpointForged { number } => write!(
                f,
                "checkpoint {number} does not verify under the audit key: it was edited or written without the key"
            ),
            ReplicaDefect::HeadForged { chain } => write!(
                f,
                "chain {chain}: its head row does not verify under the audit key (edited, or written without the key)"
            ),
            ReplicaDefect::HeadMissing { chain } => write!(
                f,
                "chain {chain}: it has records but its head row was deleted"
            ),
            ReplicaDefect::ChainMissing { chain, number, seq } => write!(
                f,
                "chain {chain} is missing: checkpoint {number} says it reached seq {seq}, but its records and head row were dropped"
            ),
            ReplicaDefect::RecordsMissing { chain, from, to } => {
                write!(f, "chain {chain}: records {from}..{to} were deleted")
            }
            ReplicaDefect::RecordDamaged { chain, seq, defect } => {
                write!(f, "chain {chain}: record seq {seq}: {defect}")
            }
            ReplicaDefect::TailCut {
                chain,
                ends_at,
                expected,
                checkpoint,
            } => {
                write!(
                    f,
                    "chain {chain}: it ends at seq {ends_at} but its newest records were cut: "
                )?;
                match checkpoint {
                    Some(number) => write!(f, "checkpoint {number} says it reached seq {expected}"),
                    None => write!(f, "its head row says seq {expected}"),
                }
            }
            ReplicaDefect::PastHead {
                chain,
                head_seq,
                ends_at,
            } => write!(
                f,
                "chain {chain}: it holds records up to seq {ends_at}, past its head row's seq {head_seq}: they were added by someone else"
            ),
            ReplicaDefect::CheckpointMismatch { chain, number, seq } => write!(
                f,
                "chain {chain}: checkpoint {number} names record seq {seq} with another MAC: the record was replaced"
            ),
        }
    }
}

/// A record a checkpoint named: (seq, MAC, checkpoint number).
type Named = (u64, String, u64);

/// Verifies every replica chain and checkpoint in `chains` under `key`.
pub fn verify_replicas(chains: &dyn AuditChains, key: &AuditKey) -> Result<ReplicasReport, Error> {
    let key = key.hmac();
    let mut defects = Vec::new();
    let (checkpoints, mut named) = read_checkpoints(chains, &key, &mut defects)?;
    let heads = chains.chains()?;
    let mut reports = Vec::with_capacity(heads.len());
    for head in &heads {
        if !head_verifies(&key, head) {
            defects.push(ReplicaDefect::HeadForged {
                chain: head.chain.clone(),
            });
        }
        let named = named.remove(&head.chain).unwrap_or_default();
        reports.push(verify_chain(chains, &key, head, &named, &mut defects)?);
    }
    let with_heads: BTreeSet<&str> = heads.iter().map(|h| h.chain.as_str()).collect();
    let with_records: BTreeSet<String> = chains.record_chains()?.into_iter().collect();
    for chain in with_records
        .iter()
        .filter(|c| !with_heads.contains(c.as_str()))
    {
        defects.push(ReplicaDefect::HeadMissing {
            chain: chain.clone(),
        });
    }
    for (chain, named) in named {
        if with_records.contains(&chain) {
            continue;
        }
        if let Some((seq, _, number)) = named.into_iter().max_by_key(|(seq, _, n)| (*seq, *n)) {
            defects.push(ReplicaDefect::ChainMissing { chain, number, seq });
        }
    }
    Ok(ReplicasReport {
        checkpoints,
        chains: reports,
        defects,
    })
}

/// Reads every checkpoint in order, checking numbers, links and MACs: how many, and the
/// records the verified ones name, by chain (sorted by seq).
fn read_checkpoints(
    chains: &dyn AuditChains,
    key: &hmac::Key,
    defects: &mut Vec<ReplicaDefect>,
) -> Result<(u64, BTreeMap<String, Vec<Named>>), Error> {
    let (mut count, mut expected, mut prev) = (0, 1, ZERO_MAC.to_owned());
    let mut named: BTreeMap<String, Vec<Named>> = BTreeMap::new();
    loop {
        let page = chains.checkpoints(expected - 1, PAGE)?;
        let full = page.len() == PAGE;
        for checkpoint in page {
            count += 1;
            if checkpoint.number > expected {
                defects.push(ReplicaDefect::CheckpointsMissing {
                    from: expected,
                    to: checkpoint.number - 1,
                });
            } else if checkpoint.prev != prev {
                defects.push(ReplicaDefect::CheckpointUnlinked {
                    number: checkpoint.number,
                });
            }
            if checkpoint_verifies(key, &checkpoint) {
                for (chain, seq, mac) in &checkpoint.heads {
                    named.entry(chain.clone()).or_default().push((
                        *seq,
                        mac.clone(),
                        checkpoint.number,
                    ));
                }
            } else {
                defects.push(ReplicaDefect::CheckpointForged {
                    number: checkpoint.number,
                });
            }
            prev = checkpoint.mac;
            expected = checkpoint.number + 1;
        }
        if !full {
            break;
        }
    }
    for list in named.values_mut() {
        list.sort();
    }
    Ok((count, named))
}

/// Walks one chain's records from its start, checking each and the records checkpoints
/// named (`named`, by seq).
fn verify_chain(
    chains: &dyn AuditChains,
    key: &hmac::Key,
    head: &ChainHead,
    named: &[Named],
    defects: &mut Vec<ReplicaDefect>,
) -> Result<ChainReport, Error> {
    let chain = &head.chain;
    let damaged = |seq, defect| ReplicaDefect::RecordDamaged {
        chain: chain.clone(),
        seq,
        defect,
    };
    let checkpointed_seq = named.iter().map(|(seq, ..)| *seq).max();
    let mut named = named.iter().peekable();
    // Named at the chain's start: the record before its first.
    while let Some((seq, mac, number)) = named.next_if(|(seq, ..)| *seq <= head.start_seq) {
        if *seq != head.start_seq || *mac != head.start_mac {
            defects.push(ReplicaDefect::CheckpointMismatch {
                chain: chain.clone(),
                number: *number,
                seq: *seq,
            });
        }
    }
    let (mut last, mut prev, mut records) = (head.start_seq, Some(head.start_mac.clone()), 0);
    loop {
        let page = chains.chain_records(chain, last, PAGE)?;
        let full = page.len() == PAGE;
        for (seq, line) in page {
            records += 1;
            if seq > last + 1 {
                defects.push(ReplicaDefect::RecordsMissing {
                    chain: chain.clone(),
                    from: last + 1,
                    to: seq - 1,
                });
                prev = None;
            }
            last = seq;
            let record = match AuditRecord::parse_line(line.as_bytes()) {
                Ok(record) => record,
                Err(defect) => {
                    defects.push(damaged(seq, defect));
                    prev = None;
                    continue;
                }
            };
            let checked = record
                .check_form(line.as_bytes())
                .and_then(|()| record.check_mac(key));
            if let Err(defect) = checked {
                defects.push(damaged(seq, defect));
            } else if record.seq != seq {
                defects.push(damaged(
                    seq,
                    AuditDefect::Missing {
                        expected: seq,
                        found: record.seq,
                    },
                ));
            } else if prev.as_ref().is_some_and(|p| *p != record.prev) {
                defects.push(damaged(seq, AuditDefect::ChainBroken { seq }));
            }
            // Named records that fell in a gap were reported with it.
            while named.next_if(|(s, ..)| *s < seq).is_some() {}
            while let Some((_, mac, number)) = named.next_if(|(s, ..)| *s == seq) {
                if *mac != record.mac {
                    defects.push(ReplicaDefect::CheckpointMismatch {
                        chain: chain.clone(),
                        number: *number,
                        seq,
                    });
                }
            }
            prev = Some(record.mac);
        }
        if !full {
            break;
        }
    }
    if last < head.seq {
        defects.push(ReplicaDefect::TailCut {
            chain: chain.clone(),
            ends_at: last,
            expected: head.seq,
            checkpoint: None,
        });
    } else if last > head.seq {
        defects.push(ReplicaDefect::PastHead {
            chain: chain.clone(),
            head_seq: head.seq,
            ends_at: last,
        });
    }
    // Named past the end: the newest such checkpoint, unless the head row said as much.
    if let Some((seq, _, number)) = named.max_by_key(|(seq, _, n)| (*seq, *n))
        && *seq > head.seq.max(last)
    {
        defects.push(ReplicaDefect::TailCut {
            chain: chain.clone(),
            ends_at: last,
            expected: *seq,
            checkpoint: Some(*number),
        });
    }
    Ok(ChainReport {
        chain: chain.clone(),
        started_ms: head.started_ms,
        first_seq: head.start_seq + 1,
        records,
        head_seq: head.seq,
        checkpointed_seq,
    })
}
