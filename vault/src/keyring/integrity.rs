//! The vault's integrity key: 32 random bytes made at `init`, sealed under the root KEKs in
//! `vault.json`, opened with them when the vault opens, and held in locked memory until
//! `lock`. It never encrypts anything; keys derived from it (HKDF-SHA256) authenticate what
//! the vault writes where others can write too:
//! - `vault.json` (pinned KEKs, epochs, policies): an HMAC over each pinned KEK, each epoch
//!   and the whole file, so a KEK or an epoch key someone else planted is refused;
//! - stanzas of root KEKs that wrap without a secret (a YubiKey's public key, a TPM that
//!   seals for anyone): an HMAC tag in each such stanza (see [`super::tagged`]);
//! - the per-key version counters of the store (see `store::heads`);
//! - the audit log's chain (a key handed to the log, which keeps its own copy).
//!
//! Opening checks that every root KEK present opens the *same* integrity key: a replaced
//! key (sealed by someone for a KEK they control, or for a public-key KEK) disagrees with
//! the one the operator's other KEKs open, and the vault refuses to open.

use std::sync::Arc;

use envelope::memory::LockedBox;
use envelope::{Context, Dek, KekProvider, SecretBytes};
use ring::{hkdf, hmac};

use super::root::{RootSet, check_canary};
use crate::Error;
use crate::config::encode;
use crate::store::{HeadAuth, KeyHead};

/// Domain of the HKDF extract step: names this use of the key.
const HKDF_SALT: &[u8] = b"vault integrity key v1";

/// What each derived key is for (HKDF info); a key is only ever used for one of these.
#[derive(Debug, Clone, Copy)]
enum Purpose {
    Config,
    Stanza,
    Heads,
    Audit,
}

impl Purpose {
    fn info(self) -> &'static [u8] {
        match self {
            Purpose::Config => b"vault.json mac v1",
            Purpose::Stanza => b"root stanza tag v1",
            Purpose::Heads => b"key head tag v1",
            Purpose::Audit => b"audit chain v1",
        }
    }
}

/// The AAD of the integrity key's own envelope: bound to the vault id, so an integrity key
/// copied from another vault does not open here.
fn integrity_context(vault_id: &str) -> (String, String) {
    ("keyring".to_owned(), format!("integrity:{vault_id}"))
}

/// The keys derived from an open integrity key, each in locked memory.
pub(crate) struct IntegrityKeys {
    config: LockedBox<hmac::Key>,
    stanza: LockedBox<hmac::Key>,
    heads: LockedBox<hmac::Key>,
    audit: Dek,
}

impl std::fmt::Debug for IntegrityKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IntegrityKeys([REDACTED])")
    }
}

impl IntegrityKeys {
    /// Derives the keys from the integrity key's bytes.
    fn derive(key: &[u8]) -> Result<Self, Error> {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(key);
        let mac_key = |purpose: Purpose| -> Result<LockedBox<hmac::Key>, Error> {
            let info = [purpose.info()];
            let okm = prk
                .expand(&info, hmac::HMAC_SHA256)
                .map_err(|_| Error::Unsupported("HKDF refused a 32-byte output".into()))?;
            Ok(LockedBox::new(hmac::Key::from(okm))?)
        };
        let mut audit = SecretBytes::zeroed(32)?;
        let info = [Purpose::Audit.info()];
        prk.expand(&info, hkdf::HKDF_SHA256)
            .and_then(|okm| okm.fill(audit.expose_secret_mut()))
            .map_err(|_| Error::Unsupported("HKDF refused a 32-byte output".into()))?;
        Ok(IntegrityKeys {
            config: mac_key(Purpose::Config)?,
            stanza: mac_key(Purpose::Stanza)?,
            heads: mac_key(Purpose::Heads)?,
            audit: Dek::from_slice(audit.expose_secret())?,
        })
    }

    /// HMAC-SHA256 of `parts` (each length-prefixed, so no two lists give the same input)
    /// under the `vault.json` key.
    pub(crate) fn config_mac(&self, parts: &[&[u8]]) -> String {
        hex(mac(&self.config, parts).as_ref())
    }

    /// Whether `tag` (hex) is the `vault.json` MAC of `parts`; constant-time.
    pub(crate) fn config_mac_ok(&self, parts: &[&[u8]], tag: &str) -> bool {
        unhex(tag).is_some_and(|bytes| verify(&self.config, parts, &bytes))
    }

    /// The tag of a root stanza.
    pub(crate) fn stanza_tag(&self, parts: &[&[u8]]) -> hmac::Tag {
        mac(&self.stanza, parts)
    }

    /// Whether `tag` is the tag of a root stanza made of `parts`; constant-time.
    pub(crate) fn stanza_tag_ok(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        verify(&self.stanza, parts, tag)
    }

    /// The audit log's key (its own copy, in locked memory).
    pub(crate) fn audit_key(&self) -> Result<Dek, Error> {
        Ok(self.audit.try_clone()?)
    }
}

/// The store's version counters are tagged with the heads key.
impl HeadAuth for IntegrityKeys {
    fn tag(&self, scope: &str, key: &str, head: &KeyHead) -> Vec<u8> {
        mac(
            &self.heads,
            &[scope.as_bytes(), key.as_bytes(), &head.encode()],
        )
        .as_ref()
        .to_vec()
    }

    fn verify(&self, scope: &str, key: &str, head: &KeyHead, tag: &[u8]) -> bool {
        verify(
            &self.heads,
            &[scope.as_bytes(), key.as_bytes(), &head.encode()],
            tag,
        )
    }
}

fn mac(key: &hmac::Key, parts: &[&[u8]]) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(key);
    for part in parts {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    ctx.sign()
}

fn verify(key: &hmac::Key, parts: &[&[u8]], tag: &[u8]) -> bool {
    let mut input = Vec::new();
    for part in parts {
        input.extend_from_slice(&(part.len() as u64).to_be_bytes());
        input.extend_from_slice(part);
    }
    hmac::verify(key, &input, tag).is_ok()
}

/// A new integrity key for the vault `vault_id`, sealed under every root KEK of `root`
/// (base64 envelope for `vault.json`), and the keys derived from it.
pub(crate) fn new_integrity_key(
    vault_id: &str,
    root: &RootSet,
) -> Result<(String, Arc<IntegrityKeys>), Error> {
    let key = Dek::generate()?;
    let (scope, name) = integrity_context(vault_id);
    let sealed = envelope::seal(
        key.expose_secret(),
        &Context::new(&scope, &name, 0),
        root.raw_wrap_set()?,
    )?;
    Ok((
        encode(&sealed),
        Arc::new(IntegrityKeys::derive(key.expose_secret())?),
    ))
}

/// The sealed integrity key `sealed` with a stanza for `kek` added, made with the root KEKs
/// of `root` (which need not all be present: the other stanzas are kept as they are).
pub(crate) fn add_to_integrity_key(
    vault_id: &str,
    sealed: &[u8],
    root: &RootSet,
    kek: &Arc<dyn KekProvider>,
) -> Result<String, Error> {
    let (scope, name) = integrity_context(vault_id);
    let for_kek = envelope::rewrap(
        sealed,
        &Context::new(&scope, &name, 0),
        root.raw_unwrap_set(),
        &[Arc::clone(kek)],
    )?;
    Ok(encode(&envelope::restanza(
        sealed,
        |_| true,
        Some(&for_kek.envelope),
    )?))
}

/// The sealed integrity key `sealed` without the stanza of the KEK `id` (`kek remove`): the
/// removed KEK no longer opens it.
pub(crate) fn drop_from_integrity_key(sealed: &[u8], id: &str) -> Result<String, Error> {
    Ok(encode(&envelope::restanza(
        sealed,
        |s| s.describe() != id,
        None,
    )?))
}

/// Opens the integrity key sealed in `sealed` with the root KEKs of `root`; a KEK whose
/// deferred canary does not open is left out of `root` (see `RootSet::build_deferred`).
pub(crate) fn open_integrity_key(
    vault_id: &str,
    sealed: &[u8],
    root: &mut RootSet,
) -> Result<Arc<IntegrityKeys>, Error> {
    let key = open_agreed(vault_id, sealed, root)?;
    Ok(Arc::new(IntegrityKeys::derive(key.expose_secret())?))
}

/// Opens the integrity key with each root KEK on its own and checks that they all open the
/// same key. A KEK whose device does not answer is skipped (reads need any one KEK); a KEK
/// that has no stanza, or whose stanza does not open, means the key was replaced, unless it
/// is not the pinned KEK at all: a KEK whose canary was deferred (`RootSet::build_deferred`)
/// has it checked here when it does not open the integrity key, and is left out with a
/// warning when the canary does not open either, as if it had been checked first.
fn open_agreed(vault_id: &str, sealed: &[u8], root: &mut RootSet) -> Result<SecretBytes, Error> {
    let (scope, name) = integrity_context(vault_id);
    let context = Context::new(&scope, &name, 0);
    let mut agreed: Option<(SecretBytes, String)> = None;
    let mut unreachable: Option<envelope::Error> = None;
    let mut refused: Option<Error> = None;
    let mut left_out: Vec<String> = Vec::new();
    for provider in root.raw_unwrap_set().to_vec() {
        let id = provider.id().to_string();
        let opened = envelope::open(sealed, &context, &[Arc::clone(&provider)]);
        if opened.is_err()
            && let Some(pinned) = root.unchecked(&id)
            && let Err(e) = check_canary(pinned, &provider, vault_id)
        {
            log::warn!("KEK {id} did not open its canary, so it is left out: {e}");
            refused.get_or_insert(e);
            left_out.push(id);
            continue;
        }
        let key = match opened {
            Ok(key) => key,
            Err(e @ envelope::Error::Kek { .. }) => {
                log::warn!("KEK {id} could not be asked for the vault's integrity key: {e}");
                unreachable.get_or_insert(e);
                continue;
            }
            Err(envelope::Error::NoUsableKek { .. }) => {
                return Err(tampered(format!(
                    "its integrity key has no stanza for the pinned KEK {id}: the integrity key was replaced"
                )));
            }
            Err(e) => {
                return Err(tampered(format!(
                    "KEK {id} does not open its integrity key ({e}): the integrity key was replaced or damaged"
                )));
            }
        };
        match &agreed {
            None => agreed = Some((key, id)),
            Some((first, first_id)) if *first != key => {
                return Err(tampered(format!(
                    "KEKs {first_id} and {id} open different integrity keys: the integrity key was replaced"
                )));
            }
            Some(_) => {}
        }
    }
    root.leave_out(&left_out);
    match (agreed, unreachable) {
        (Some((key, _)), _) => Ok(key),
        (None, Some(e)) => Err(e.into()),
        (None, None) => Err(refused.unwrap_or(Error::NoKek)),
    }
}

/// `vault.json` does not verify; `what` says which part and how.
pub(crate) fn tampered(what: String) -> Error {
    Error::Tampered {
        path: crate::config::CONFIG_FILE.into(),
        what,
    }
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
