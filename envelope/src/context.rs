//! What an envelope is bound to: scope, key name and secret version.

use crate::Error;

/// Longest scope or key name an envelope can be bound to (the vault's own limits are lower).
pub const MAX_CONTEXT_FIELD: usize = 1024;

/// Domain separation for the additional authenticated data of envelopes.
const AAD_LABEL: &[u8] = b"vault-envelope\0";

/// The identity of a sealed value. Opening with any other context fails, so an envelope
/// copied to another scope, key or version cannot be opened there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context<'a> {
    /// The scope, e.g. `global` or `principal:alice`.
    pub scope: &'a str,
    /// The key name within the scope.
    pub key: &'a str,
    /// The secret's version (0 for caller data that has none).
    pub version: u64,
}

impl<'a> Context<'a> {
    /// A context; lengths are checked when it is used.
    pub fn new(scope: &'a str, key: &'a str, version: u64) -> Self {
        Self {
            scope,
            key,
            version,
        }
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        for (field, value) in [("scope", self.scope), ("key name", self.key)] {
            if value.len() > MAX_CONTEXT_FIELD {
                return Err(Error::InvalidName {
                    field,
                    reason: "longer than 1024 bytes",
                });
            }
        }
        Ok(())
    }

    /// Appends the canonical encoding: label, the envelope's format version, length-prefixed
    /// scope and key (lengths fit in u16 after `check`), version. The format version comes
    /// from the envelope itself, so a v1 envelope keeps its v1 AADs exactly, and a stanza
    /// relabelled to another version no longer unwraps.
    pub(crate) fn encode_into(&self, format_version: u8, out: &mut Vec<u8>) {
        out.extend_from_slice(AAD_LABEL);
        out.push(format_version);
        for field in [self.scope, self.key] {
            out.extend_from_slice(&(field.len() as u16).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out.extend_from_slice(&self.version.to_be_bytes());
    }
}
