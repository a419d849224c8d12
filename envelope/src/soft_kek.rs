//! A KEK whose key is held in locked process memory: the wrap used by the file and
//! passphrase providers, and the in-memory KEK of tests and benchmarks.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, Tag, UnboundKey};

use crate::memory::{LockedBox, LockedBuf};
use crate::secret::DEK_LEN;
use crate::{Assurance, Dek, Error, Health, KekId, KekProvider, StanzaRef};

/// Stanza body algorithm id: ChaCha20-Poly1305 with a random 96-bit nonce.
const ALG_CHACHA20_POLY1305: u8 = 1;
const BODY_LEN: usize = 1 + NONCE_LEN + DEK_LEN + 16;

/// Wraps DEKs with ChaCha20-Poly1305 under a 256-bit key in locked memory.
///
/// Stanza body: `alg u8 = 1 | nonce [12] | wrapped DEK [32] | tag [16]`. Nonces are random, so
/// one key version must wrap fewer than 2^32 DEKs (see FORMAT.md).
pub struct SoftwareKek {
    id: KekId,
    key: Dek,
    /// ring's key object for `key`, built once in locked memory: building it per operation
    /// cost a sixth of an envelope open and left a copy of the key on the stack each time.
    /// `None` only if no locked slot could be had; then it is built per operation.
    ring_key: Option<LockedBox<LessSafeKey>>,
    assurance: Assurance,
}

impl SoftwareKek {
    /// A KEK named `id` using `key`.
    pub fn new(id: KekId, key: Dek) -> Self {
        let mut kek = Self {
            id,
            key,
            ring_key: None,
            assurance: Assurance::default(),
        };
        kek.ring_key = kek.ring_key().ok().and_then(|k| LockedBox::new(k).ok());
        kek
    }

    /// A KEK with a random key, for tests and benchmarks.
    pub fn random(label: &str) -> Result<Self, Error> {
        Ok(Self::new(KekId::new("memory", label, 1)?, Dek::generate()?))
    }

    fn ring_key(&self) -> Result<LessSafeKey, Error> {
        UnboundKey::new(&CHACHA20_POLY1305, self.key.expose_secret())
            .map(LessSafeKey::new)
            .map_err(|_| Error::kek(&self.id, "invalid key"))
    }

    fn unwrap_body(&self, body: &[u8], aad: &[u8]) -> Result<Dek, Error> {
        let rejected = || Error::StanzaRejected {
            kek: self.id.to_string(),
        };
        if body.len() != BODY_LEN || body[0] != ALG_CHACHA20_POLY1305 {
            return Err(rejected());
        }
        let (nonce, sealed) = body[1..].split_at(NONCE_LEN);
        let (wrapped, tag) = sealed.split_at(DEK_LEN);
        let nonce = <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| rejected())?;
        let tag = Tag::try_from(tag).map_err(|_| rejected())?;
        // Decrypt straight into locked memory: the DEK never sits in an unlocked buffer.
        let mut dek = LockedBuf::zeroed(DEK_LEN)?;
        dek.as_mut_slice().copy_from_slice(wrapped);
        self.with_key(|key| {
            key.open_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                tag,
                dek.as_mut_slice(),
                0..,
            )
            .map(|_| ())
        })?
        .map_err(|_| rejected())?;
        Dek::from_locked(dek)
    }

    /// Runs `op` with the cached key object, or with one built for this call.
    fn with_key<R>(&self, op: impl FnOnce(&LessSafeKey) -> R) -> Result<R, Error> {
        match &self.ring_key {
            Some(key) => Ok(op(key)),
            None => Ok(op(&self.ring_key()?)),
        }
    }
}

impl std::fmt::Debug for SoftwareKek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftwareKek")
            .field("id", &self.id)
            .field("key", &self.key)
            .finish()
    }
}

impl KekProvider for SoftwareKek {
    fn id(&self) -> &KekId {
        &self.id
    }

    fn wrap(&self, dek: &Dek, aad: &[u8]) -> Result<Vec<u8>, Error> {
        let mut body = Vec::with_capacity(BODY_LEN);
        body.push(ALG_CHACHA20_POLY1305);
        let mut nonce = [0u8; NONCE_LEN];
        crate::rng::fill(&mut nonce)?;
        body.extend_from_slice(&nonce);
        body.extend_from_slice(dek.expose_secret());
        let tag = self
            .with_key(|key| {
                key.seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    &mut body[1 + NONCE_LEN..],
                )
            })?
            .map_err(|_| Error::kek(&self.id, "wrap failed"))?;
        body.extend_from_slice(tag.as_ref());
        Ok(body)
    }

    fn unwrap(&self, stanza: &StanzaRef<'_>, aad: &[u8]) -> Option<Result<Dek, Error>> {
        if !stanza.is_for(&self.id) {
            return None;
        }
        Some(self.unwrap_body(stanza.body, aad))
    }

    fn health(&self) -> Health {
        Health::Ok
    }

    fn assurance(&self) -> Assurance {
        self.assurance
    }

    fn computes_in_process(&self) -> bool {
        true
    }
}
