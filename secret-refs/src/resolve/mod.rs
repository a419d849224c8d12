//! The one resolver: a reference in, secret bytes (locked, zeroized on drop) out.

mod env;
mod exec;
mod file;

use std::fmt;

use envelope::SecretBytes;

use crate::{Error, Policy, SecretRef, VaultSource};

/// Resolves references under a [`Policy`], with an optional vault for `vault://`.
pub struct Resolver<'a> {
    policy: Policy,
    vault: Option<&'a dyn VaultSource>,
}

impl fmt::Debug for Resolver<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("policy", &self.policy)
            .field("vault", &self.vault.map(|_| "set"))
            .finish()
    }
}

impl<'a> Resolver<'a> {
    /// A resolver with this policy (checked) and no vault.
    pub fn new(policy: Policy) -> Result<Self, Error> {
        policy.validate()?;
        Ok(Self {
            policy,
            vault: None,
        })
    }

    /// Reads `vault://` references from `vault`.
    pub fn with_vault(mut self, vault: &'a dyn VaultSource) -> Self {
        self.vault = Some(vault);
        self
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Parses and resolves `text`.
    pub fn resolve_str(&self, text: &str) -> Result<SecretBytes, Error> {
        self.resolve(&crate::parse(text)?)
    }

    /// Resolves a reference to its secret bytes.
    pub fn resolve(&self, reference: &SecretRef) -> Result<SecretBytes, Error> {
        match reference {
            SecretRef::Vault {
                scope,
                key,
                version,
            } => {
                let vault = self.vault.ok_or_else(|| Error::NoVault {
                    reference: reference.to_string(),
                })?;
                vault
                    .read_secret(scope, key, *version)
                    .map_err(|source| Error::Vault {
                        reference: reference.to_string(),
                        source,
                    })
            }
            SecretRef::Env { name } => env::resolve(&self.policy, name),
            SecretRef::File { path } => file::resolve(&self.policy, reference, path),
            SecretRef::Exec { program, args } => {
                exec::resolve(&self.policy, reference, program, args)
            }
        }
    }
}
