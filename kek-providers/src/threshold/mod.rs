//! The threshold KEK: any `m` of `n` member KEKs (say 2 of 3 YubiKeys) open the vault.
//!
//! `wrap` splits the DEK with Shamir secret sharing over GF(256) (vsss-rs) into `n` shares
//! and member `k` wraps share `k` under the AAD
//! `aad | "threshold-share" | k u8 | m u8 | n u8`, so a share moved to another position or
//! into another policy does not unwrap. `unwrap` asks the members that are available, in
//! order, until `m` shares opened, combines them and checks the body MAC.
//!
//! # Operating it
//! - **Sealing needs every member.** A share for an absent member cannot be wrapped, so
//!   writing a secret (and rotating or rewrapping) needs all `n` member KEKs connected and
//!   configured. Opening needs any `m`. Plan it as a tiered setup: secrets are written
//!   rarely, with all devices at hand, and read with any `m` of them.
//! - **What to keep to recover:** the vault directory (its store and marker), and at least
//!   `m` of the member KEKs: for file members their key files, for passphrase members the
//!   passphrases (and the parameter files in the vault directory), for hardware members
//!   (PKCS#11 tokens, TPMs, YubiKeys) the devices themselves and their PINs. With fewer than
//!   `m` of them the secrets are gone: keep an any-of recovery KEK beside the threshold KEK
//!   in the keyring if that is not acceptable.
//! - The policy (`m`, and the member ids in their configured order) names the KEK: its id is
//!   `threshold:<m>of<n>-<16 hex of a hash of the policy>#v1`. Reordering or replacing a
//!   member is a new KEK, so envelopes must be rewrapped for it.
//!
//! # Stanza body, version 1
//! ```text
//! version u8 = 1 | m u8 | n u8
//! n entries, entry k for member k in policy order:
//!     index u8 = k | kind_len u8 | kind | label_len u8 | label | key_version u32 BE
//!     | wrapped_len u16 BE | wrapped (the member's stanza body for share k)
//! mac [32]
//! ```
//! Bounds, all checked by the parser, which never panics: `2 <= m <= n <= 16`, entries in
//! index order and naming the policy's members, kind 1..=32 bytes, label 0..=255 bytes,
//! wrapped 1..=4096 bytes, the whole body at most `envelope::MAX_BODY_LEN` (8192) bytes,
//! no trailing bytes. Sixteen members with the longest ids (32-byte kind, 255-byte label) and
//! software-wrapped shares (61 bytes) take 5,747 bytes, so 16 fits.
//!
//! `mac` is HMAC-SHA256 over every byte before it, keyed by
//! HKDF-SHA256(salt "vault threshold kek v1", DEK, info "body mac"). The members only need
//! `m` shares, so without it a change to a share that was not needed would go unnoticed;
//! with it every changed byte of the body is refused (as in age's header MAC), and a DEK
//! combined from shares that do not belong together is never returned.

mod body;
mod shares;
mod unwrap;
mod wrap;

use std::fmt;
use std::sync::Arc;

use envelope::{Assurance, Dek, Health, KekId, KekProvider, StanzaRef};

use crate::Error;

/// The most member KEKs a threshold KEK can have (16 with the longest ids still fit a stanza).
pub const MAX_THRESHOLD_MEMBERS: usize = 16;

/// Domain separation of the policy hash in the id.
const ID_CONTEXT: &[u8] = b"vault threshold kek v1";
/// Appended to the caller's AAD (before index, m and n) for each member's share.
const SHARE_AAD_LABEL: &[u8] = b"threshold-share";

/// A KEK that any `m` of its `n` member KEKs can open; sealing needs all `n`.
pub struct ThresholdKek {
    id: KekId,
    m: usize,
    members: Vec<Member>,
}

/// A member in policy order, with its provider if it could be built.
struct Member {
    id: KekId,
    provider: Option<Arc<dyn KekProvider>>,
}

impl ThresholdKek {
    /// A KEK needing `m` of `members` (all `n` member ids, in the configured order).
    /// `available` are the members that could be built now, in any order; each must be one of
    /// `members`, at most once. Requires `2 <= m <= n <= 16` and unique member ids.
    pub fn new(
        m: usize,
        members: Vec<KekId>,
        available: Vec<Arc<dyn KekProvider>>,
    ) -> Result<Self, Error> {
        let n = members.len();
        if m < 2 || m > n || n > MAX_THRESHOLD_MEMBERS {
            return Err(Error::ThresholdPolicy {
                m,
                n,
                max: MAX_THRESHOLD_MEMBERS,
            });
        }
        for (k, id) in members.iter().enumerate() {
            if members[..k].contains(id) {
                return Err(Error::ThresholdDuplicateMember {
                    member: id.to_string(),
                });
            }
        }
        let mut slots: Vec<Option<Arc<dyn KekProvider>>> = vec![None; n];
        for provider in available {
            let Some(k) = members.iter().position(|id| id == provider.id()) else {
                return Err(Error::ThresholdNotAMember {
                    kek: provider.id().to_string(),
                    members: join_ids(members.iter()),
                });
            };
            if slots[k].is_some() {
                return Err(Error::ThresholdMemberGivenTwice {
                    member: members[k].to_string(),
                });
            }
            slots[k] = Some(provider);
        }
        let id = policy_id(m, &members)?;
        let members = members
            .into_iter()
            .zip(slots)
            .map(|(id, provider)| Member { id, provider })
            .collect();
        Ok(Self { id, m, members })
    }

    fn n(&self) -> usize {
        self.members.len()
    }

    /// The AAD member `index` wraps its share under.
    fn share_aad(&self, aad: &[u8], index: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(aad.len() + SHARE_AAD_LABEL.len() + 3);
        out.extend_from_slice(aad);
        out.extend_from_slice(SHARE_AAD_LABEL);
        // All three are at most 16 (checked in `new`).
        out.extend_from_slice(&[index as u8, self.m as u8, self.n() as u8]);
        out
    }
}

/// `threshold:<m>of<n>-<first 16 hex of SHA-256(context | m u8 | ids joined by "\n")>#v1`.
fn policy_id(m: usize, members: &[KekId]) -> Result<KekId, Error> {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    digest.update(ID_CONTEXT);
    digest.update(&[m as u8]);
    digest.update(
        members
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
            .as_bytes(),
    );
    let hex: String = digest.finish().as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let label = format!("{m}of{}-{hex}", members.len());
    Ok(KekId::new("threshold", &label, 1)?)
}

/// Ids as `a, b, c` for messages.
fn join_ids<'a>(ids: impl Iterator<Item = &'a KekId>) -> String {
    ids.map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

impl fmt::Debug for ThresholdKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let members: Vec<String> = self.members.iter().map(|m| m.id.to_string()).collect();
        f.debug_struct("ThresholdKek")
            .field("m", &self.m)
            .field("n", &self.n())
            .field("members", &members)
            .finish()
    }
}

impl KekProvider for ThresholdKek {
    fn id(&self) -> &KekId {
        &self.id
    }

    fn wrap(&self, dek: &Dek, aad: &[u8]) -> Result<Vec<u8>, envelope::Error> {
        self.wrap_shares(dek, aad)
    }

    fn unwrap(&self, stanza: &StanzaRef<'_>, aad: &[u8]) -> Option<Result<Dek, envelope::Error>> {
        if !stanza.is_for(&self.id) {
            return None;
        }
        Some(self.unwrap_shares(stanza.body, aad))
    }

    /// Ok while at least `m` members answer Ok; asks members only until `m` did.
    fn health(&self) -> Health {
        let mut ok = 0;
        let mut problems = Vec::new();
        let mut unreachable = false;
        for member in &self.members {
            match member.provider.as_ref().map(|p| p.health()) {
                Some(Health::Ok) => ok += 1,
                Some(Health::Failed(reason)) => problems.push(format!("{}: {reason}", member.id)),
                Some(Health::Unreachable(reason)) => {
                    unreachable = true;
                    problems.push(format!("{}: {reason}", member.id));
                }
                None => {
                    unreachable = true;
                    problems.push(format!("{}: not connected or not configured", member.id));
                }
            }
            if ok == self.m {
                return Health::Ok;
            }
        }
        let message = format!(
            "{ok} of {} member KEKs are usable and {} are needed ({})",
            self.n(),
            self.m,
            problems.join("; ")
        );
        if unreachable {
            Health::Unreachable(message)
        } else {
            Health::Failed(message)
        }
    }

    /// A share wrapped by such a member can be made without a secret, so a stanza of shares
    /// may be too: counted conservatively, any present member makes the group one.
    fn wraps_without_secret(&self) -> bool {
        self.members
            .iter()
            .filter_map(|m| m.provider.as_ref())
            .any(|p| p.wraps_without_secret())
    }

    /// Members that are absent are never called.
    fn computes_in_process(&self) -> bool {
        self.members
            .iter()
            .filter_map(|m| m.provider.as_ref())
            .all(|p| p.computes_in_process())
    }

    /// A property holds only if every member has it (an absent member has none); a human is
    /// needed if any member needs one.
    fn assurance(&self) -> Assurance {
        let known: Vec<Assurance> = self
            .members
            .iter()
            .filter_map(|m| m.provider.as_ref().map(|p| p.assurance()))
            .collect();
        let complete = known.len() == self.n();
        let all = |has: fn(&Assurance) -> bool| complete && known.iter().all(has);
        Assurance {
            hardware: all(|a| a.hardware),
            non_exportable: all(|a| a.non_exportable),
            platform_bound: all(|a| a.platform_bound),
            user_presence: known.iter().any(|a| a.user_presence),
        }
    }
}
