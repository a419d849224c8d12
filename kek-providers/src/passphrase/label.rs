//! The label naming a passphrase KEK (its KEK id label and parameter file name).

use crate::Error;

/// Longest label accepted.
const MAX_LABEL_LEN: usize = 64;

/// 1 to 64 of `[A-Za-z0-9_-]`: safe in a file name and a URI without escaping.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Label(String);

impl Label {
    /// Validates `text` as a label.
    pub(crate) fn parse(text: &str) -> Result<Self, Error> {
        let valid = (1..=MAX_LABEL_LEN).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(Error::InvalidParameter {
                name: "label",
                reason: "must be 1 to 64 of A-Z, a-z, 0-9, _ and -".into(),
            })
        }
    }

    /// 8 random hex digits, for a KEK created without a label.
    pub(crate) fn random() -> Result<Self, Error> {
        let mut bytes = [0u8; 4];
        envelope::random_bytes(&mut bytes)?;
        Ok(Self(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// The label text.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}
