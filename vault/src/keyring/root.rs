//! The root KEKs an unlocked vault holds: the any-of ones and the threshold group, which
//! of them are here, and the canaries that prove each one is the KEK that was pinned.

use std::sync::Arc;

use envelope::{Context, KekId, KekProvider};
use kek_providers::ThresholdKek;

use super::integrity::IntegrityKeys;
use super::tagged::TaggedKek;
use crate::config::{PinnedKek, VaultConfig, encode};
use crate::{Error, Kek};

/// AAD of the per-KEK canaries: not a user scope, so no secret can collide with it. The key
/// names the vault, so a canary copied from another vault does not open here.
const CANARY_SCOPE: &str = "vault";
const CANARY_VALUE: &[u8] = b"vault canary v1";

/// A new KEK's pinned form for the vault `vault_id`, with its canary sealed under it alone.
/// Its MAC is set when the configuration is written.
pub(crate) fn pin(kek: &Kek, vault_id: &str) -> Result<PinnedKek, Error> {
    let canary = envelope::seal(
        CANARY_VALUE,
        &Context::new(CANARY_SCOPE, &canary_key(vault_id), 0),
        &[Arc::clone(&kek.provider)],
    )?;
    Ok(PinnedKek {
        uri: kek.uri.clone(),
        id: kek.provider.id().to_string(),
        canary: encode(&canary),
        mac: String::new(),
    })
}

/// Opens `pinned`'s canary with `provider` alone: proves the provider is that KEK, works, and
/// was pinned for the vault `vault_id`.
pub(crate) fn check_canary(
    pinned: &PinnedKek,
    provider: &Arc<dyn KekProvider>,
    vault_id: &str,
) -> Result<(), Error> {
    let canary = pinned.canary_bytes()?;
    let opened = envelope::open(
        &canary,
        &Context::new(CANARY_SCOPE, &canary_key(vault_id), 0),
        &[Arc::clone(provider)],
    )?;
    if opened.expose_secret() != CANARY_VALUE {
        return Err(envelope::Error::Tampered.into());
    }
    Ok(())
}

fn canary_key(vault_id: &str) -> String {
    format!("canary:{vault_id}")
}

/// Parses `kind:label#vN`, the form ids are pinned in.
pub(crate) fn parse_kek_id(text: &str) -> Result<KekId, Error> {
    let damaged = || Error::Marker {
        path: crate::config::CONFIG_FILE.into(),
        reason: format!("KEK id {text:?} is not kind:label#vN"),
    };
    let (kind, rest) = text.split_once(':').ok_or_else(damaged)?;
    let (label, version) = rest.rsplit_once("#v").ok_or_else(damaged)?;
    let version = version.parse().map_err(|_| damaged())?;
    Ok(KekId::new(kind, label, version)?)
}

/// The root KEKs of an unlocked vault.
#[derive(Debug)]
pub(crate) struct RootSet {
    /// Every KEK given at unlock (any-of and threshold members), for status and checks.
    given: Vec<Kek>,
    /// The threshold KEK (if any) and the any-of KEKs present, as the providers made them:
    /// what the canaries and the integrity key are sealed under.
    raw: Vec<Arc<dyn KekProvider>>,
    /// What wraps and unwraps everything else: `raw`, with the vault's tag on the stanzas of
    /// KEKs that wrap without a secret once the integrity key is open.
    providers: Vec<Arc<dyn KekProvider>>,
    /// Pinned KEKs that were not given: reads work without them, wrapping does not.
    missing: Vec<String>,
    /// The pinned entries of given KEKs whose canaries are checked only if they do not open
    /// the integrity key (see [`RootSet::build_deferred`]).
    unchecked: Vec<PinnedKek>,
    /// Every pinned KEK's id, in pinned order.
    pinned: Vec<String>,
}

/// When [`RootSet::build_with`] checks the any-of KEKs' canaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Canaries {
    /// Each one as it is matched to its pinned KEK.
    Now,
    /// Only for a KEK that does not open the integrity key (see [`RootSet::build_deferred`]).
    IfIntegrityKeyFails,
}

impl RootSet {
    /// Matches `keks` to the pinned KEKs and checks each one's canary. A KEK whose canary
    /// does not open (a TPM that was cleared, a changed PCR, a different key under the same
    /// label) is left out with a warning, like a KEK that cannot be reached, as long as
    /// another KEK opens its canary; reads then work through the others, and wrapping says
    /// which root KEKs are missing.
    pub(crate) fn build(config: &VaultConfig, keks: Vec<Kek>) -> Result<Self, Error> {
        Self::build_with(config, keks, Canaries::Now)
    }

    /// Like [`RootSet::build`] for a vault being opened, where the integrity key is opened
    /// next with each any-of KEK on its own: their canaries are checked then, and only for a
    /// KEK that does not open it (see `integrity::open_agreed`). A canary costs a device call
    /// (an HSM decrypt, a TPM unseal, a card operation); opening a vault needed two per KEK.
    ///
    /// What the canary protects against is a KEK that is not the pinned one (a cleared TPM, a
    /// different key under the same label): it must not be used, and must not make the vault
    /// look tampered with while the right KEKs are there. The integrity key's envelope proves
    /// as much when it opens: its payload is authenticated with a DEK that only the stanza
    /// pinned for this KEK's id gave up, so the provider holds the key that stanza was wrapped
    /// for, and `vault.json` (the pinned KEK, its canary and the stanza's envelope) is then
    /// verified with that integrity key before anything else of it is used. When it does not
    /// open, the canary is checked as before and decides: a KEK that also fails its canary is
    /// left out with the same warning, one that opens its canary means the integrity key was
    /// replaced. Threshold members (each holds a share, not the integrity key) and a KEK given
    /// twice (each copy must prove itself before one is kept) are still checked here.
    pub(crate) fn build_deferred(config: &VaultConfig, keks: Vec<Kek>) -> Result<Self, Error> {
        Self::build_with(config, keks, Canaries::IfIntegrityKeyFails)
    }

    fn build_with(config: &VaultConfig, keks: Vec<Kek>, canaries: Canaries) -> Result<Self, Error> {
        if keks.is_empty() {
            return Err(Error::NoKek);
        }
        let mut providers: Vec<Arc<dyn KekProvider>> = Vec::new();
        let mut members: Vec<Arc<dyn KekProvider>> = Vec::new();
        let mut given: Vec<Kek> = Vec::new();
        let mut refused: Option<Error> = None;
        let mut unchecked: Vec<PinnedKek> = Vec::new();
        let ids: Vec<String> = keks.iter().map(|k| k.provider.id().to_string()).collect();
        for kek in keks {
            let id = kek.provider.id().to_string();
            let pinned = config.all_keks().find(|p| p.id == id).ok_or_else(|| {
                let pinned: Vec<&str> = config.all_keks().map(|p| p.id.as_str()).collect();
                Error::KekNotPinned {
                    id: id.clone(),
                    pinned: pinned.join(", "),
                }
            })?;
            let defer = canaries == Canaries::IfIntegrityKeyFails
                && config.keks.iter().any(|p| p.id == id)
                && ids.iter().filter(|other| **other == id).count() == 1;
            if defer {
                unchecked.push(pinned.clone());
            } else if let Err(e) = check_canary(pinned, &kek.provider, &config.id) {
                log::warn!("KEK {id} did not open its canary, so it is left out: {e}");
                refused.get_or_insert(e);
                continue;
            }
            // The same KEK given twice (each copy passed its canary) is used once: twice,
            // it would wrap two stanzas and make every envelope look stale to rewrap.
            if given.iter().any(|g| g.provider.id().to_string() == id) {
                continue;
            }
            if config.keks.iter().any(|p| p.id == id) {
                providers.push(Arc::clone(&kek.provider));
            } else {
                members.push(Arc::clone(&kek.provider));
            }
            given.push(kek);
        }
        if given.is_empty()
            && let Some(error) = refused
        {
            return Err(error);
        }
        // Pinned order, whatever order the KEKs were given in: stanzas are written in this
        // order, and rewrap compares them with it.
        providers.sort_by_key(|p| {
            let id = p.id().to_string();
            config.keks.iter().position(|k| k.id == id)
        });
        if let Some(policy) = &config.threshold {
            let ids = policy
                .members
                .iter()
                .map(|p| parse_kek_id(&p.id))
                .collect::<Result<Vec<_>, _>>()?;
            let threshold = ThresholdKek::new(policy.m, ids, members)?;
            providers.insert(0, Arc::new(threshold));
        }
        let given_ids: Vec<String> = given.iter().map(|k| k.provider.id().to_string()).collect();
        let missing = config
            .all_keks()
            .filter(|p| !given_ids.contains(&p.id))
            .map(|p| p.id.clone())
            .collect();
        Ok(RootSet {
            given,
            raw: providers.clone(),
            providers,
            missing,
            unchecked,
            pinned: config.all_keks().map(|p| p.id.clone()).collect(),
        })
    }

    /// The pinned entry of `id` if its canary has not been checked yet (see
    /// [`RootSet::build_deferred`]).
    pub(crate) fn unchecked(&self, id: &str) -> Option<&PinnedKek> {
        self.unchecked.iter().find(|p| p.id == id)
    }

    /// After `vault.json` did not verify: the error of the first given KEK's canary if none of
    /// them opens its canary (those not checked yet are checked now). Checked first, as
    /// before, such KEKs were refused before the configuration was looked at, and that error
    /// (the KEK is not the pinned one) says more than "vault.json was changed".
    pub(crate) fn refused_by_canaries(&self, vault_id: &str) -> Option<Error> {
        let mut first = None;
        for kek in &self.given {
            let Some(pinned) = self.unchecked(&kek.provider.id().to_string()) else {
                // Checked when the set was built, and it opened.
                return None;
            };
            match check_canary(pinned, &kek.provider, vault_id) {
                Ok(()) => return None,
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        first
    }

    /// Leaves out the KEKs `ids`, whose canaries did not open (see
    /// [`RootSet::build_deferred`]): reads go on through the others, wrapping says they are
    /// missing.
    pub(crate) fn leave_out(&mut self, ids: &[String]) {
        let kept = |p: &Arc<dyn KekProvider>| !ids.contains(&p.id().to_string());
        self.given.retain(|k| kept(&k.provider));
        self.raw.retain(kept);
        self.providers.retain(kept);
        self.unchecked.retain(|p| !ids.contains(&p.id));
        let given: Vec<String> = self
            .given
            .iter()
            .map(|k| k.provider.id().to_string())
            .collect();
        self.missing = self
            .pinned
            .iter()
            .filter(|id| !given.contains(id))
            .cloned()
            .collect();
    }

    /// The same KEKs, tagging the stanzas of those that wrap without a secret with `keys`.
    pub(crate) fn with_integrity(mut self, keys: &Arc<IntegrityKeys>) -> Self {
        self.providers = self
            .raw
            .iter()
            .map(|p| TaggedKek::wrap_if_needed(p, keys))
            .collect();
        self
    }

    /// What opens the integrity key: the KEKs as the providers made them.
    pub(crate) fn raw_unwrap_set(&self) -> &[Arc<dyn KekProvider>] {
        &self.raw
    }

    /// What seals the integrity key: every root KEK, as the providers made them.
    pub(crate) fn raw_wrap_set(&self) -> Result<&[Arc<dyn KekProvider>], Error> {
        self.wrap_set().map(|_| self.raw.as_slice())
    }

    /// The KEKs given at unlock.
    pub(crate) fn given(&self) -> &[Kek] {
        &self.given
    }

    /// What opens root-wrapped envelopes.
    pub(crate) fn unwrap_set(&self) -> &[Arc<dyn KekProvider>] {
        &self.providers
    }

    /// Ok when every root KEK computes in process memory, or devices may be used here (see
    /// `crate::in_memory`).
    pub(crate) fn usable_here(&self) -> Result<(), Error> {
        if self.providers.iter().all(|p| p.computes_in_process()) {
            Ok(())
        } else {
            crate::in_memory::device_allowed()
        }
    }

    /// What wraps: every root KEK must be here, or a key wrapped now could not be opened by
    /// the missing one later (a recovery KEK would silently stop covering new secrets).
    pub(crate) fn wrap_set(&self) -> Result<&[Arc<dyn KekProvider>], Error> {
        if self.missing.is_empty() {
            Ok(&self.providers)
        } else {
            Err(Error::IncompleteRoot {
                missing: self.missing.join(", "),
            })
        }
    }

    /// The ids a directly wrapped envelope must carry, in wrap order.
    pub(crate) fn wrap_ids(&self) -> Vec<String> {
        self.providers.iter().map(|p| p.id().to_string()).collect()
    }
}
