//! `vault://SCOPE/KEY[#VERSION]` references, checked against a vault's list of names.

/// A parsed `vault://` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultRef {
    /// The scope text, e.g. `global` or `channel:slack:acme`.
    pub scope: String,
    /// The key name.
    pub key: String,
    /// A pinned version, or `None` for the latest.
    pub version: Option<u64>,
}

/// What a vault holds for a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The key (and version, if pinned) exists.
    Found,
    /// No such scope/key.
    MissingKey,
    /// The key exists, the pinned version does not.
    MissingVersion {
        /// The latest version the vault holds.
        latest: u64,
    },
    /// The vault's name rules reject the scope or key.
    Invalid(String),
}

/// Answers whether references resolve, without decrypting anything.
pub trait VaultIndex {
    /// What the vault holds for `reference`.
    fn lookup(&self, reference: &VaultRef) -> Lookup;
}

/// Parses a `vault://` value with the shared reference parser: `None` when it is not one,
/// `Some(Err(reason))` when it is malformed (bad syntax, or a scope or key the vault's name
/// rules reject).
pub(crate) fn parse_vault_ref(value: &str) -> Option<Result<VaultRef, String>> {
    if !value.starts_with("vault://") {
        return None;
    }
    Some(match secret_refs::parse(value) {
        Ok(secret_refs::SecretRef::Vault {
            scope,
            key,
            version,
        }) => Ok(VaultRef {
            scope: scope.to_string(),
            key,
            version,
        }),
        Ok(_) => Err("not a vault reference".into()),
        Err(secret_refs::Error::Parse { reason, .. }) => Err(reason),
        Err(other) => Err(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scope_key_and_version() {
        let r = parse_vault_ref("vault://channel:slack:acme/bot-token#3");
        assert_eq!(
            r,
            Some(Ok(VaultRef {
                scope: "channel:slack:acme".into(),
                key: "bot-token".into(),
                version: Some(3)
            }))
        );
        assert_eq!(parse_vault_ref("env://X"), None);
        for bad in [
            "vault://",
            "vault://global",
            "vault://global/",
            "vault://a/b#x",
            "vault://a/b/c",
        ] {
            assert!(matches!(parse_vault_ref(bad), Some(Err(_))), "{bad}");
        }
    }
}
