//! Root KEKs that wrap without a secret (a YubiKey wraps with its public key; a TPM seals
//! for whoever can send it commands), with the vault's own authentication added: whoever
//! can write the store or `vault.json` could otherwise plant a stanza such a KEK opens, and
//! with it a secret or an epoch key of their choosing.
//!
//! Body of a tagged stanza: the provider's body, then a 32-byte tag, HMAC-SHA256 under the
//! integrity key's stanza key over the stanza id, the stanza AAD and the provider's body.
//! A stanza whose tag does not verify is rejected before the provider sees it, so a planted
//! stanza costs no device call and no touch.

use std::fmt;
use std::sync::Arc;

use envelope::{Assurance, Dek, Health, KekId, KekProvider, StanzaRef};

use super::integrity::IntegrityKeys;

/// Length of the tag at the end of a tagged stanza's body.
pub(crate) const TAG_LEN: usize = 32;

/// A root KEK whose stanzas carry the vault's tag.
pub(crate) struct TaggedKek {
    inner: Arc<dyn KekProvider>,
    keys: Arc<IntegrityKeys>,
}

impl TaggedKek {
    /// `inner` with tags, if it wraps without a secret; else `inner` as it is.
    pub(crate) fn wrap_if_needed(
        inner: &Arc<dyn KekProvider>,
        keys: &Arc<IntegrityKeys>,
    ) -> Arc<dyn KekProvider> {
        if inner.wraps_without_secret() {
            Arc::new(TaggedKek {
                inner: Arc::clone(inner),
                keys: Arc::clone(keys),
            })
        } else {
            Arc::clone(inner)
        }
    }

    fn parts<'a>(&self, id: &'a [u8], aad: &'a [u8], body: &'a [u8]) -> [&'a [u8]; 3] {
        [id, aad, body]
    }
}

impl fmt::Debug for TaggedKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaggedKek")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl KekProvider for TaggedKek {
    fn id(&self) -> &KekId {
        self.inner.id()
    }

    fn wrap(&self, dek: &Dek, aad: &[u8]) -> Result<Vec<u8>, envelope::Error> {
        let mut body = self.inner.wrap(dek, aad)?;
        let id = self.inner.id().to_string();
        let tag = self.keys.stanza_tag(&self.parts(id.as_bytes(), aad, &body));
        body.extend_from_slice(tag.as_ref());
        Ok(body)
    }

    fn unwrap(&self, stanza: &StanzaRef<'_>, aad: &[u8]) -> Option<Result<Dek, envelope::Error>> {
        if !stanza.is_for(self.inner.id()) {
            return None;
        }
        let rejected = || envelope::Error::StanzaRejected {
            kek: self.inner.id().to_string(),
        };
        let Some(split) = stanza.body.len().checked_sub(TAG_LEN).filter(|n| *n > 0) else {
            return Some(Err(rejected()));
        };
        let (body, tag) = stanza.body.split_at(split);
        let id = self.inner.id().to_string();
        if !self
            .keys
            .stanza_tag_ok(&self.parts(id.as_bytes(), aad, body), tag)
        {
            log::warn!(
                "a stanza for KEK {id} does not carry this vault's tag: it was not written by this vault (planted or damaged); it is refused without asking the KEK"
            );
            return Some(Err(rejected()));
        }
        self.inner.unwrap(&StanzaRef { body, ..*stanza }, aad)
    }

    fn health(&self) -> Health {
        self.inner.health()
    }

    fn assurance(&self) -> Assurance {
        self.inner.assurance()
    }

    fn computes_in_process(&self) -> bool {
        self.inner.computes_in_process()
    }

    fn wraps_without_secret(&self) -> bool {
        // The tag needs the integrity key: a planted stanza no longer opens.
        false
    }
}
