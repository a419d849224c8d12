//! Parsing `keyring:service=NAME;account=NAME`: strict and bounded, so that the entry a
//! pinned URI names is exactly the one created.

use crate::Error;
use crate::error::shorten;

/// The parameters a keyring URI takes, for messages.
const KNOWN_PARAMETERS: &str = "service=NAME, account=NAME";
/// The service name when the URI gives none.
pub(crate) const DEFAULT_SERVICE: &str = "vault";
/// The account name when the URI gives none.
pub(crate) const DEFAULT_ACCOUNT: &str = "kek";
/// Longest service or account name accepted.
pub(crate) const MAX_NAME_LEN: usize = 128;

/// A parsed `keyring:` URI: the keystore entry (service and account) holding the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyringKekSpec {
    pub(crate) service: String,
    pub(crate) account: String,
}

impl KeyringKekSpec {
    /// Parses what follows `keyring:`: `name=value` parts separated by `;`, each at most once.
    pub(crate) fn parse(rest: &str) -> Result<Self, Error> {
        let mut service = None;
        let mut account = None;
        if !rest.is_empty() {
            for part in rest.split(';') {
                let Some((name, value)) = part.split_once('=') else {
                    return Err(Error::InvalidUri {
                        reason: format!(
                            "keyring KEK parameters are name=value separated by ';' ({KNOWN_PARAMETERS}), e.g. keyring:service=vault;account=kek"
                        ),
                    });
                };
                let (slot, name) = match name {
                    "service" => (&mut service, "service"),
                    "account" => (&mut account, "account"),
                    _ => {
                        return Err(Error::UnknownParameter {
                            kind: "keyring",
                            name: shorten(name, 32),
                            known: KNOWN_PARAMETERS,
                        });
                    }
                };
                if slot.is_some() {
                    return Err(Error::DuplicateParameter { name });
                }
                *slot = Some(check_name(name, value)?);
            }
        }
        Ok(Self {
            service: service.unwrap_or_else(|| DEFAULT_SERVICE.to_owned()),
            account: account.unwrap_or_else(|| DEFAULT_ACCOUNT.to_owned()),
        })
    }

    /// `keyring:service=S;account=A`.
    #[cfg_attr(not(feature = "os-keystore"), allow(dead_code))]
    pub(crate) fn canonical_uri(&self) -> String {
        format!("keyring:service={};account={}", self.service, self.account)
    }
}

/// 1 to [`MAX_NAME_LEN`] of letters, digits and `. _ - @ + /`: no separators of the URI, no
/// spaces or quotes (the names are typed into `secret-tool` and shell commands).
fn check_name(name: &'static str, value: &str) -> Result<String, Error> {
    let valid = !value.is_empty()
        && value.len() <= MAX_NAME_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_@+/".contains(&b));
    if valid {
        Ok(value.to_owned())
    } else {
        Err(Error::InvalidParameter {
            name,
            reason: format!(
                "must be 1 to {MAX_NAME_LEN} of letters, digits and . _ - @ + /, e.g. {name}={}",
                if name == "service" {
                    DEFAULT_SERVICE
                } else {
                    DEFAULT_ACCOUNT
                }
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(rest: &str) -> Result<KeyringKekSpec, Error> {
        KeyringKekSpec::parse(rest)
    }

    #[test]
    fn defaults_and_canonical_form() {
        let spec = parse("").expect("empty is the defaults");
        assert_eq!(spec.canonical_uri(), "keyring:service=vault;account=kek");
        let spec = parse("account=prod-1").expect("account only");
        assert_eq!(spec.canonical_uri(), "keyring:service=vault;account=prod-1");
        let spec = parse("account=a;service=s.x").expect("any order");
        assert_eq!(spec.canonical_uri(), "keyring:service=s.x;account=a");
        let again = parse(
            spec.canonical_uri()
                .strip_prefix("keyring:")
                .unwrap_or_default(),
        );
        assert_eq!(again.expect("canonical form parses"), spec);
    }

    #[test]
    fn rejects_malformed_uris() {
        for (rest, expect) in [
            ("service", "name=value"),
            ("service=a;", "name=value"),
            (";", "name=value"),
            ("service=", "service is invalid"),
            ("service=a b", "service is invalid"),
            ("account=a;b", "name=value"),
            ("account=x=y", "account is invalid"),
            ("service=a;service=b", "given twice"),
            ("user=a", "unknown keyring KEK parameter \"user\""),
        ] {
            let err = parse(rest).expect_err(rest).to_string();
            assert!(err.contains(expect), "{rest}: {err}");
        }
        let long = format!("account={}", "a".repeat(MAX_NAME_LEN + 1));
        assert!(parse(&long).is_err());
        let longest = format!("account={}", "a".repeat(MAX_NAME_LEN));
        assert!(parse(&longest).is_ok());
    }
}
