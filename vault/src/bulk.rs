//! Many secrets in one durable transaction: imports, and filling a vault for a benchmark,
//! where a transaction (and an fsync) per secret would take hours for a million.

use envelope::Context;

use crate::names::{Scope, check_key};
use crate::vault::MAX_VALUE_LEN;
use crate::{Error, Vault};

impl Vault {
    /// Stores each `(scope, key, value)` of `entries` as a new version, in order, all in one
    /// durable transaction: all are written or none. Returns the versions, in order. Every
    /// name and size is checked before anything is sealed.
    pub fn set_many(&self, entries: &[(&str, &str, &[u8])]) -> Result<Vec<u64>, Error> {
        let mut scopes = Vec::with_capacity(entries.len());
        for (scope, key, value) in entries {
            scopes.push(Scope::parse(scope)?.to_string());
            check_key(key)?;
            if value.len() > MAX_VALUE_LEN {
                return Err(Error::ValueTooLarge {
                    len: value.len(),
                    max: MAX_VALUE_LEN,
                });
            }
        }
        let names: Vec<(&str, &str)> = scopes
            .iter()
            .zip(entries)
            .map(|(scope, (_, key, _))| (scope.as_str(), *key))
            .collect();
        let versions = self.with_keyring(|keyring| {
            // Chosen before the store's write, as `set_if` does.
            let keks = names
                .iter()
                .map(|_| {
                    keyring.seal_keks(&self.dir, &self.id, self.lease(), self.store.epoch_ledger())
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.store
                .set_many(&names, keyring.integrity.as_ref(), &mut |n, version| {
                    let (scope, key) = names[n];
                    let ctx = Context::new(scope, key, version);
                    Ok(envelope::seal(entries[n].2, &ctx, keks[n].as_slice())?)
                })
        })?;
        for (scope, key) in &names {
            self.cache.invalidate(scope, key);
        }
        Ok(versions)
    }
}
