//! Sealing: split the DEK, have every member wrap its share, write the body.

use envelope::{Dek, Error, MAX_BODY_LEN};

use super::{ThresholdKek, body, join_ids, shares};

impl ThresholdKek {
    /// Wraps `dek`; needs every member, since a share for an absent member cannot be wrapped.
    pub(super) fn wrap_shares(&self, dek: &Dek, aad: &[u8]) -> Result<Vec<u8>, Error> {
        let present: Vec<_> = self
            .members
            .iter()
            .filter_map(|m| m.provider.as_ref().map(|p| (&m.id, p)))
            .collect();
        if present.len() < self.n() {
            let missing: Vec<_> = self
                .members
                .iter()
                .filter(|m| m.provider.is_none())
                .map(|m| &m.id)
                .collect();
            return Err(Error::kek(
                &self.id,
                format!(
                    "every member KEK must be present to seal, and {} of {} are missing: {}; \
                     connect or configure {} (opening needs only {} of {})",
                    missing.len(),
                    self.n(),
                    join_ids(missing.iter().copied()),
                    if missing.len() == 1 { "it" } else { "them" },
                    self.m,
                    self.n()
                ),
            ));
        }
        let shares = shares::split(&self.id, dek, self.m, self.n())?;
        let mut out = Vec::with_capacity(3 + self.n() * 128 + body::MAC_LEN);
        body::write_header(&mut out, self.m, self.n());
        for (index, ((member, provider), share)) in present.iter().zip(shares.iter()).enumerate() {
            let key = shares::share_key(share)?;
            let wrapped = provider
                .wrap(&key, &self.share_aad(aad, index))
                .map_err(|e| Error::kek(&self.id, member_message(member, &e)))?;
            body::write_entry(&mut out, index, member, &wrapped)
                .map_err(|e| Error::kek(&self.id, e.to_string()))?;
        }
        body::append_mac(&mut out, dek).map_err(|e| Error::kek(&self.id, e.to_string()))?;
        if out.len() > MAX_BODY_LEN {
            return Err(Error::kek(
                &self.id,
                format!(
                    "the shares take {} bytes, over the stanza limit of {MAX_BODY_LEN}; use fewer members or members with shorter ids",
                    out.len()
                ),
            ));
        }
        Ok(out)
    }
}

/// A member's error for this KEK's messages, naming the member unless it already does.
pub(super) fn member_message(member: &envelope::KekId, e: &Error) -> String {
    let message = e.to_string();
    let member = member.to_string();
    if message.contains(&member) {
        message
    } else {
        format!("member {member}: {message}")
    }
}
