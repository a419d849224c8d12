//! The epochs of a tiered vault on PostgreSQL (see `store/ledger.rs`).

use std::ops::Range;

use super::PostgresStore;
use crate::Error;
use crate::config::EpochRecord;
use crate::store::{EpochLedger, LedgerEpoch};

const EPOCHS_SQL: &str = "SELECT number, record, upgrade, wraps_leased FROM epochs ORDER BY number";
const NEWEST_SQL: &str = "SELECT MAX(number) FROM epochs";
const ADD_SQL: &str = "INSERT INTO epochs (number, record, upgrade, wraps_leased)
     VALUES ($1, $2, $3, $4) ON CONFLICT (number) DO NOTHING";
/// Compare-and-set on the record's MAC: of replicas changing the same epoch's stanzas at
/// once, one wins and the others read it again.
const REPLACE_SQL: &str = "UPDATE epochs SET record = $3
     WHERE number = $1 AND (record::jsonb ->> 'mac') = $2";
/// One statement: the row lock serialises leases of the same epoch, and the condition keeps
/// the sum of every lease within the budget.
const LEASE_SQL: &str = "UPDATE epochs SET wraps_leased = wraps_leased + $2
     WHERE number = $1 AND wraps_leased + $2 <= $3 RETURNING wraps_leased";

fn number(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

impl EpochLedger for PostgresStore {
    fn epochs(&self) -> Result<Vec<LedgerEpoch>, Error> {
        self.block(async {
            let read = Error::pg("reading the epochs");
            let client = self.client().await?;
            let rows = client.query(EPOCHS_SQL, &[]).await.map_err(read)?;
            rows.iter()
                .map(|row| {
                    let text: String = row.try_get(1).map_err(read)?;
                    let record: EpochRecord =
                        serde_json::from_str(&text).map_err(|e| Error::Store {
                            what: "reading the epochs",
                            reason: format!("an epoch record is not valid: {e}"),
                        })?;
                    let stored = number(row.try_get(0).map_err(read)?);
                    if stored != record.number {
                        return Err(crate::store::heads::tampered(
                            &self.label,
                            format!(
                                "the epoch row {stored} holds the record of epoch {}",
                                record.number
                            ),
                        ));
                    }
                    let leased: i64 = row.try_get(3).map_err(read)?;
                    Ok(LedgerEpoch {
                        record,
                        upgrade: row.try_get(2).map_err(read)?,
                        wraps_leased: u64::try_from(leased).unwrap_or(u64::MAX),
                    })
                })
                .collect()
        })
    }

    fn newest_epoch(&self) -> Result<Option<u32>, Error> {
        self.block(async {
            let client = self.client().await?;
            let newest: Option<i32> = client
                .query_one(NEWEST_SQL, &[])
                .await
                .and_then(|row| row.try_get(0))
                .map_err(Error::pg("reading the epochs"))?;
            Ok(newest.map(number))
        })
    }

    fn add_epoch(&self, epoch: &LedgerEpoch) -> Result<bool, Error> {
        let record = serde_json::to_string(&epoch.record).map_err(|e| Error::Store {
            what: "writing an epoch",
            reason: e.to_string(),
        })?;
        let number = i32::try_from(epoch.record.number).map_err(|_| Error::Store {
            what: "writing an epoch",
            reason: "the epoch number is out of range".into(),
        })?;
        let leased = i64::try_from(epoch.wraps_leased).unwrap_or(i64::MAX);
        self.block(async {
            let client = self.client().await?;
            let added = client
                .execute(ADD_SQL, &[&number, &record, &epoch.upgrade, &leased])
                .await
                .map_err(Error::pg("writing an epoch"))?;
            Ok(added == 1)
        })
    }

    fn replace_record(
        &self,
        number: u32,
        old_mac: &str,
        record: &EpochRecord,
    ) -> Result<bool, Error> {
        let what = "rewriting an epoch's sealed key";
        let text = serde_json::to_string(record).map_err(|e| Error::Store {
            what,
            reason: e.to_string(),
        })?;
        let number = i32::try_from(number).map_err(|_| Error::Store {
            what,
            reason: "the epoch number is out of range".into(),
        })?;
        self.block(async {
            let client = self.client().await?;
            let replaced = client
                .execute(REPLACE_SQL, &[&number, &old_mac, &text])
                .await
                .map_err(Error::pg(what))?;
            Ok(replaced == 1)
        })
    }

    fn lease_wraps(&self, number: u32, n: u64, budget: u64) -> Result<Option<Range<u64>>, Error> {
        let (Ok(number), Ok(n), Ok(budget)) = (
            i32::try_from(number),
            i64::try_from(n),
            i64::try_from(budget),
        ) else {
            return Ok(None);
        };
        self.block(async {
            let client = self.client().await?;
            let row = client
                .query_opt(LEASE_SQL, &[&number, &n, &budget])
                .await
                .map_err(Error::pg("leasing epoch wraps"))?;
            let Some(row) = row else {
                return Ok(None);
            };
            let end: i64 = row.try_get(0).map_err(Error::pg("leasing epoch wraps"))?;
            let end = u64::try_from(end).unwrap_or(0);
            Ok(Some(end.saturating_sub(n as u64)..end))
        })
    }
}
