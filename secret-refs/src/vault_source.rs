//! Where `vault://` references are read: a local [`vault::Vault`], or anything else that can
//! fetch a secret by scope and key (vaultctl's remote mode implements it for vaultd).

use envelope::SecretBytes;
use vault::Scope;

/// A source of vault secrets.
pub trait VaultSource {
    /// The secret's bytes (the latest version if `version` is `None`). The error must not
    /// contain the value.
    fn read_secret(
        &self,
        scope: &Scope,
        key: &str,
        version: Option<u64>,
    ) -> Result<SecretBytes, Box<dyn std::error::Error + Send + Sync>>;
}

impl VaultSource for vault::Vault {
    fn read_secret(
        &self,
        scope: &Scope,
        key: &str,
        version: Option<u64>,
    ) -> Result<SecretBytes, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.get(&scope.to_string(), key, version)?)
    }
}
