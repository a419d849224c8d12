//! Opening: ask the available members for their shares until `m` opened, combine, check.

use envelope::{Dek, Error, KekId, StanzaRef};

use super::wrap::member_message;
use super::{ThresholdKek, body, join_ids, shares};

impl ThresholdKek {
    /// Unwraps a body of this KEK's stanza.
    pub(super) fn unwrap_shares(&self, bytes: &[u8], aad: &[u8]) -> Result<Dek, Error> {
        let body = body::parse(bytes).map_err(|e| {
            Error::kek(
                &self.id,
                format!("its stanza is malformed ({e}); it was damaged or tampered with"),
            )
        })?;
        if usize::from(body.m) != self.m || usize::from(body.n) != self.n() {
            return Err(Error::kek(
                &self.id,
                format!(
                    "its stanza is for {} of {} KEKs, but this KEK needs {} of {}; it was tampered with",
                    body.m,
                    body.n,
                    self.m,
                    self.n()
                ),
            ));
        }
        for (member, entry) in self.members.iter().zip(&body.entries) {
            if !entry.is_for(&member.id) {
                return Err(Error::kek(
                    &self.id,
                    format!(
                        "its stanza holds a share for {} where member {} belongs; it was tampered with",
                        entry.describe(),
                        member.id
                    ),
                ));
            }
        }

        let mut opened: Vec<(usize, Dek)> = Vec::with_capacity(self.m);
        let mut opened_ids: Vec<&KekId> = Vec::new();
        let mut not_opened: Vec<&KekId> = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        for (index, (member, entry)) in self.members.iter().zip(&body.entries).enumerate() {
            if opened.len() == self.m {
                break;
            }
            let Some(provider) = &member.provider else {
                not_opened.push(&member.id);
                continue;
            };
            let stanza = StanzaRef {
                kind: entry.kind,
                label: entry.label,
                version: entry.version,
                body: entry.wrapped,
            };
            match provider.unwrap(&stanza, &self.share_aad(aad, index)) {
                Some(Ok(share)) => {
                    opened.push((index, share));
                    opened_ids.push(&member.id);
                }
                Some(Err(e)) => {
                    not_opened.push(&member.id);
                    failures.push(member_message(&member.id, &e));
                }
                None => {
                    not_opened.push(&member.id);
                    failures.push(format!("{} did not recognise its share", member.id));
                }
            }
        }
        if opened.len() < self.m {
            return Err(self.too_few(&opened_ids, &not_opened, &failures));
        }
        let dek = shares::combine(&self.id, &opened)?;
        if !body::mac_is_valid(&body, &dek) {
            return Err(Error::StanzaRejected {
                kek: self.id.to_string(),
            });
        }
        Ok(dek)
    }

    /// "2 of 3 KEKs are needed; 1 opened (a); 1 more needed: connect or configure one of b, c".
    fn too_few(&self, opened: &[&KekId], not_opened: &[&KekId], failures: &[String]) -> Error {
        let more = self.m - opened.len();
        let opened_list = if opened.is_empty() {
            String::new()
        } else {
            format!(" ({})", join_ids(opened.iter().copied()))
        };
        let which = if more == 1 {
            "one".to_owned()
        } else {
            more.to_string()
        };
        let mut reason = format!(
            "{} of {} KEKs are needed; {} opened{opened_list}; {more} more needed: connect or configure {which} of {}",
            self.m,
            self.n(),
            opened.len(),
            join_ids(not_opened.iter().copied()),
        );
        if !failures.is_empty() {
            reason.push_str("; member errors: ");
            reason.push_str(&failures.join("; "));
        }
        Error::kek(&self.id, reason)
    }
}
