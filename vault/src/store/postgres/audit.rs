//! The replicas' audit chains on PostgreSQL (see `store/audit_chains.rs`): the tables of
//! schema 2. A chain's records go in with the move of its head, in one statement that does
//! nothing unless the head is where the appender left it, so two processes can never both
//! extend a chain and a retried append cannot add its records twice.

use deadpool_postgres::{Pool, RecyclingMethod};
use tokio_postgres::Row;

use super::PostgresStore;
use crate::Error;
use crate::store::{AuditChains, ChainHead, StoredCheckpoint};

const HEAD_COLUMNS: &str = "chain, started_ms, start_seq, start_mac, seq, mac, tag";
const CREATE_SQL: &str = "INSERT INTO audit_chains
     (chain, started_ms, start_seq, start_mac, seq, mac, tag)
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
/// The head moves only from `$2`; the records go in only if it did (they select from the
/// update's result). A record already there (an earlier attempt that committed) fails the
/// whole statement on the primary key.
const APPEND_SQL: &str = "WITH moved AS (
         UPDATE audit_chains SET seq = $4, mac = $5, tag = $6
         WHERE chain = $1 AND seq = $2 RETURNING chain
     ), added AS (
         INSERT INTO audit_records (chain, seq, line)
         SELECT moved.chain, r.seq, r.line
         FROM moved, unnest($3::bigint[], $7::text[]) AS r(seq, line)
     )
     SELECT COUNT(*) FROM moved";
const RECORDS_SQL: &str = "SELECT seq, line FROM audit_records
     WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3";
/// Every chain with records: a walk of the primary key's index that skips from one chain
/// to the next instead of reading every record.
const RECORD_CHAINS_SQL: &str = "WITH RECURSIVE c(chain) AS (
         (SELECT chain FROM audit_records ORDER BY chain LIMIT 1)
         UNION ALL
         SELECT (SELECT r.chain FROM audit_records r WHERE r.chain > c.chain
                 ORDER BY r.chain LIMIT 1)
         FROM c WHERE c.chain IS NOT NULL
     )
     SELECT chain FROM c WHERE chain IS NOT NULL";
const CHECKPOINTS_SQL: &str = "SELECT number, ts_ms, term, prev, mac FROM audit_checkpoints
     WHERE number > $1 ORDER BY number LIMIT $2";
const CHECKPOINT_HEADS_SQL: &str = "SELECT number, chain, seq, mac FROM audit_checkpoint_heads
     WHERE number > $1 AND number <= $2 ORDER BY number, chain";
const LAST_CHECKPOINT_SQL: &str =
    "SELECT number, mac FROM audit_checkpoints ORDER BY number DESC LIMIT 1";
/// Fenced as the change log's pruning is: nothing is added unless this replica still holds
/// the lease in the checkpoint's term, by the database's clock.
const ADD_CHECKPOINT_SQL: &str = "INSERT INTO audit_checkpoints (number, ts_ms, term, prev, mac)
     SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM leader_lease
         WHERE name = 'leader' AND holder = $6 AND term = $3 AND expires_at > now())";
const ADD_CHECKPOINT_HEADS_SQL: &str =
    "INSERT INTO audit_checkpoint_heads (number, chain, seq, mac)
     SELECT $1, h.chain, h.seq, h.mac FROM unnest($2::text[], $3::bigint[], $4::text[])
         AS h(chain, seq, mac)";

/// The connections a replica appends to its chain on, one statement per batch: one whose
/// commits wait for the WAL flush (a state change's records), one whose commits do not (a
/// read's, as the file's line is written before its fsync: safe from a crash of vaultd, not
/// of the database's machine). Apart from the store's pool, so the appends, which every
/// request waits for, neither queue behind requests for a connection nor pay its check: a
/// connection the database closed is seen as closed and replaced on the append's retry.
pub(super) struct AuditPools {
    flushed: Pool,
    relaxed: Pool,
}

impl AuditPools {
    fn new(connect: &super::Connect) -> Result<Self, Error> {
        Ok(AuditPools {
            flushed: connect.pool(1, RecyclingMethod::Fast, None)?,
            relaxed: connect.pool(1, RecyclingMethod::Fast, Some("-c synchronous_commit=off"))?,
        })
    }
}

/// A count or seq as PostgreSQL's bigint (they never come near its limit).
fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A bigint read back as a seq or count; a negative one (a row written by someone else) as 0,
/// which the audit checks then report.
fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn head_of(row: &Row) -> Result<ChainHead, tokio_postgres::Error> {
    Ok(ChainHead {
        chain: row.try_get(0)?,
        started_ms: row.try_get(1)?,
        start_seq: unsigned(row.try_get(2)?),
        start_mac: row.try_get(3)?,
        seq: unsigned(row.try_get(4)?),
        mac: row.try_get(5)?,
        tag: row.try_get(6)?,
    })
}

impl PostgresStore {
    async fn heads_where(&self, filter: &str, what: &'static str) -> Result<Vec<ChainHead>, Error> {
        let client = self.client().await?;
        let sql = format!("SELECT {HEAD_COLUMNS} FROM audit_chains c {filter} ORDER BY chain");
        let rows = client.query(&sql, &[]).await.map_err(Error::pg(what))?;
        rows.iter()
            .map(|row| head_of(row).map_err(Error::pg(what)))
            .collect()
    }
}

impl AuditChains for PostgresStore {
    fn replica_name(&self) -> &str {
        &self.lease.me
    }

    fn record_chains(&self) -> Result<Vec<String>, Error> {
        self.block(async {
            let what = "reading which audit chains have records";
            let client = self.client().await?;
            let rows = client
                .query(RECORD_CHAINS_SQL, &[])
                .await
                .map_err(Error::pg(what))?;
            rows.iter()
                .map(|row| row.try_get(0).map_err(Error::pg(what)))
                .collect()
        })
    }

    fn create_chain(&self, head: &ChainHead) -> Result<(), Error> {
        self.block(async {
            let client = self.client().await?;
            client
                .execute(
                    CREATE_SQL,
                    &[
                        &head.chain,
                        &head.started_ms,
                        &big(head.start_seq),
                        &head.start_mac,
                        &big(head.seq),
                        &head.mac,
                        &head.tag,
                    ],
                )
                .await
                .map_err(Error::pg("starting this replica's audit chain"))?;
            Ok(())
        })
    }

    fn append_chain(
        &self,
        chain: &str,
        from: u64,
        records: &[(u64, &str)],
        head: &ChainHead,
        flushed: bool,
    ) -> Result<bool, Error> {
        let what = "appending to this replica's audit chain";
        let pools = match self.audit_pools.get() {
            Some(pools) => pools,
            None => {
                let pools = AuditPools::new(&self.connect)?;
                self.audit_pools.get_or_init(|| pools)
            }
        };
        let pool = if flushed {
            &pools.flushed
        } else {
            &pools.relaxed
        };
        let seqs: Vec<i64> = records.iter().map(|(seq, _)| big(*seq)).collect();
        let lines: Vec<&str> = records.iter().map(|(_, line)| *line).collect();
        self.block(async {
            let client = pool.get().await.map_err(super::pool_error)?;
            let statement = client
                .prepare_cached(APPEND_SQL)
                .await
                .map_err(Error::pg(what))?;
            let row = client
                .query_one(
                    &statement,
                    &[
                        &chain,
                        &big(from),
                        &seqs,
                        &big(head.seq),
                        &head.mac,
                        &head.tag,
                        &lines,
                    ],
                )
                .await
                .map_err(Error::pg(what))?;
            let moved: i64 = row.try_get(0).map_err(Error::pg(what))?;
            Ok(moved == 1)
        })
    }

    fn chain_head(&self, chain: &str) -> Result<Option<ChainHead>, Error> {
        self.block(async {
            let what = "reading an audit chain's head";
            let client = self.client().await?;
            let sql = format!("SELECT {HEAD_COLUMNS} FROM audit_chains WHERE chain = $1");
            let row = client
                .query_opt(&sql, &[&chain])
                .await
                .map_err(Error::pg(what))?;
            row.map(|row| head_of(&row).map_err(Error::pg(what)))
                .transpose()
        })
    }

    fn chains(&self) -> Result<Vec<ChainHead>, Error> {
        self.block(self.heads_where("", "reading the audit chains"))
    }

    fn chain_records(
        &self,
        chain: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, String)>, Error> {
        self.block(async {
            let what = "reading an audit chain";
            let client = self.client().await?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = client
                .query(RECORDS_SQL, &[&chain, &big(after), &limit])
                .await
                .map_err(Error::pg(what))?;
            rows.iter()
                .map(|row| Ok((unsigned(row.try_get(0)?), row.try_get(1)?)))
                .collect::<Result<_, tokio_postgres::Error>>()
                .map_err(Error::pg(what))
        })
    }

    fn unchecked_heads(&self) -> Result<Vec<ChainHead>, Error> {
        self.block(self.heads_where(
            "WHERE c.seq > COALESCE((SELECT MAX(h.seq) FROM audit_checkpoint_heads h
                 WHERE h.chain = c.chain), -1)",
            "reading the audit chains to checkpoint",
        ))
    }

    fn checkpoints(&self, after: u64, limit: usize) -> Result<Vec<StoredCheckpoint>, Error> {
        self.block(async {
            let what = "reading the audit checkpoints";
            let client = self.client().await?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = client
                .query(CHECKPOINTS_SQL, &[&big(after), &limit])
                .await
                .map_err(Error::pg(what))?;
            let mut checkpoints = rows
                .iter()
                .map(|row| {
                    Ok(StoredCheckpoint {
                        number: unsigned(row.try_get(0)?),
                        ts_ms: row.try_get(1)?,
                        term: row.try_get(2)?,
                        prev: row.try_get(3)?,
                        mac: row.try_get(4)?,
                        heads: Vec::new(),
                    })
                })
                .collect::<Result<Vec<_>, tokio_postgres::Error>>()
                .map_err(Error::pg(what))?;
            let Some(last) = checkpoints.last().map(|c| c.number) else {
                return Ok(checkpoints);
            };
            let heads = client
                .query(CHECKPOINT_HEADS_SQL, &[&big(after), &big(last)])
                .await
                .map_err(Error::pg(what))?;
            for row in &heads {
                let number = unsigned(row.try_get(0).map_err(Error::pg(what))?);
                let head = (
                    row.try_get(1).map_err(Error::pg(what))?,
                    unsigned(row.try_get(2).map_err(Error::pg(what))?),
                    row.try_get(3).map_err(Error::pg(what))?,
                );
                // Heads of a checkpoint whose row is gone belong to none: the gap in the
                // numbers is what verification reports.
                if let Some(checkpoint) = checkpoints.iter_mut().find(|c| c.number == number) {
                    checkpoint.heads.push(head);
                }
            }
            Ok(checkpoints)
        })
    }

    fn last_checkpoint(&self) -> Result<Option<(u64, String)>, Error> {
        self.block(async {
            let what = "reading the newest audit checkpoint";
            let client = self.client().await?;
            let row = client
                .query_opt(LAST_CHECKPOINT_SQL, &[])
                .await
                .map_err(Error::pg(what))?;
            row.map(|row| Ok((unsigned(row.try_get(0)?), row.try_get(1)?)))
                .transpose()
                .map_err(Error::pg(what))
        })
    }

    fn leader_term(&self) -> Option<i64> {
        self.lease.term()
    }

    fn add_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<bool, Error> {
        let chains: Vec<&str> = checkpoint.heads.iter().map(|h| h.0.as_str()).collect();
        let seqs: Vec<i64> = checkpoint.heads.iter().map(|h| big(h.1)).collect();
        let macs: Vec<&str> = checkpoint.heads.iter().map(|h| h.2.as_str()).collect();
        self.block(async {
            let what = "adding an audit checkpoint";
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(Error::pg(what))?;
            let number = big(checkpoint.number);
            let added = tx
                .execute(
                    ADD_CHECKPOINT_SQL,
                    &[
                        &number,
                        &checkpoint.ts_ms,
                        &checkpoint.term,
                        &checkpoint.prev,
                        &checkpoint.mac,
                        &self.lease.me,
                    ],
                )
                .await
                .map_err(Error::pg(what))?;
            if added != 1 {
                return Ok(false);
            }
            tx.execute(ADD_CHECKPOINT_HEADS_SQL, &[&number, &chains, &seqs, &macs])
                .await
                .map_err(Error::pg(what))?;
            tx.commit().await.map_err(Error::pg(what))?;
            Ok(true)
        })
    }
}
