//! Access control: which principal may do what (see `Acl`).
//!
//! The rules come from the `[[acl]]` tables of the configuration. Everything not allowed by a
//! rule is denied. Patterns are compiled once in `Acl::new`, so a check on the request path is
//! a hash lookup and a few string comparisons, with no allocation.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::config::{AclRule, ConfigError};

/// What a request does; an ACL rule lists the operations it allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Read a stored secret.
    Read,
    /// Create or overwrite a stored secret.
    Write,
    /// Delete a stored secret.
    Delete,
    /// List key names in a scope.
    List,
    /// Transit: seal caller data, generate or rewrap a data key.
    Seal,
    /// Transit: open caller data.
    Open,
    /// Administration: status, unlock, rotation, rewrap of the store.
    Admin,
}

impl Operation {
    /// Every operation, in the order of the documentation.
    pub const ALL: [Operation; 7] = [
        Operation::Read,
        Operation::Write,
        Operation::Delete,
        Operation::List,
        Operation::Seal,
        Operation::Open,
        Operation::Admin,
    ];

    /// The lower-case name used in the configuration and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Write => "write",
            Operation::Delete => "delete",
            Operation::List => "list",
            Operation::Seal => "seal",
            Operation::Open => "open",
            Operation::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Operation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Operation::ALL
            .into_iter()
            .find(|op| op.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown operation {text:?}; use read, write, delete, list, seal, open or admin"
                )
            })
    }
}

/// The scope pattern that stands for the caller's own scope, `principal:<caller id>`.
pub const SELF_SCOPE: &str = "{self}";
/// The scope the server passes for transit operations (seal, open, rewrap, generate-data-key).
pub const TRANSIT_SCOPE: &str = "transit";
/// The scope the server passes for administrative operations.
pub const ADMIN_SCOPE: &str = "admin";

/// The compiled access rules; cheap to query, built once from the configuration.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    /// Rules naming one principal, by principal id.
    by_principal: HashMap<Box<str>, Vec<Rule>>,
    /// Rules for `principal = "*"`.
    any_principal: Vec<Rule>,
}

impl Acl {
    /// Compiles the rules; an error names the rule and field that is malformed.
    pub fn new(rules: &[AclRule]) -> Result<Acl, ConfigError> {
        let mut acl = Acl::default();
        for (index, rule) in rules.iter().enumerate() {
            let compiled = Rule::compile(index, rule)?;
            if rule.principal == "*" {
                acl.any_principal.push(compiled);
            } else {
                acl.by_principal
                    .entry(rule.principal.as_str().into())
                    .or_default()
                    .push(compiled);
            }
        }
        Ok(acl)
    }

    /// Whether `principal` may do `op` on `key` in `scope`.
    ///
    /// For transit operations pass scope `"transit"` and the context as `key`; for `Admin` the
    /// scope and key are not looked at (a rule naming the principal and `admin` suffices).
    pub fn allows(&self, principal: &str, op: Operation, scope: &str, key: &str) -> bool {
        self.rules_for(principal)
            .any(|rule| rule.allows(principal, op, scope, key))
    }

    /// Whether some rule names `principal` (or a `"*"` rule exists); unknown principals are
    /// answered UNAUTHENTICATED before anything else is looked at.
    pub fn knows(&self, principal: &str) -> bool {
        !self.any_principal.is_empty() || self.by_principal.contains_key(principal)
    }

    /// Whether `principal` may list something in `scope` (`None`: in any scope at all).
    pub fn may_list(&self, principal: &str, scope: Option<&str>) -> bool {
        self.rules_for(principal).any(|rule| {
            rule.has(Operation::List)
                && match scope {
                    Some(scope) => rule.scope_matches(principal, scope),
                    None => !rule.scopes.is_empty(),
                }
        })
    }

    /// Whether a listing for `principal` shows `key` of `scope`: a List returns only these.
    pub fn visible(&self, principal: &str, scope: &str, key: &str) -> bool {
        self.allows(principal, Operation::List, scope, key)
    }

    fn rules_for<'a>(&'a self, principal: &str) -> impl Iterator<Item = &'a Rule> + 'a {
        self.by_principal
            .get(principal)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .chain(self.any_principal.iter())
    }
}

/// One compiled `[[acl]]` rule (the principal is the key it is filed under).
#[derive(Debug, Clone)]
struct Rule {
    operations: u8,
    scopes: Vec<ScopePattern>,
    keys: Vec<Glob>,
}

impl Rule {
    fn compile(index: usize, rule: &AclRule) -> Result<Rule, ConfigError> {
        let field = |name: &str| format!("acl[{index}].{name}");
        check_principal(&rule.principal)
            .map_err(|reason| ConfigError::invalid(field("principal"), reason))?;
        if rule.operations.is_empty() {
            return Err(ConfigError::invalid(
                field("operations"),
                "the rule allows no operation; list some of read, write, delete, list, seal, open, admin",
            ));
        }
        let operations = rule.operations.iter().fold(0, |bits, op| bits | op.bit());
        let scopes = rule
            .scopes
            .iter()
            .enumerate()
            .map(|(at, text)| {
                ScopePattern::compile(text)
                    .map_err(|reason| ConfigError::invalid(field(&format!("scopes[{at}]")), reason))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let keys = rule
            .keys
            .iter()
            .enumerate()
            .map(|(at, text)| {
                Glob::compile(text)
                    .map_err(|reason| ConfigError::invalid(field(&format!("keys[{at}]")), reason))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let data_ops = operations & !Operation::Admin.bit() != 0;
        if data_ops && scopes.is_empty() {
            return Err(ConfigError::invalid(
                field("scopes"),
                "the rule allows data operations but lists no scope; add scopes = [\"*\"] or the scopes meant",
            ));
        }
        if data_ops && keys.is_empty() {
            return Err(ConfigError::invalid(
                field("keys"),
                "the rule allows data operations but lists no key pattern; add keys = [\"*\"] or the keys meant",
            ));
        }
        Ok(Rule {
            operations,
            scopes,
            keys,
        })
    }

    fn has(&self, op: Operation) -> bool {
        self.operations & op.bit() != 0
    }

    fn scope_matches(&self, principal: &str, scope: &str) -> bool {
        self.scopes
            .iter()
            .any(|pattern| pattern.matches(principal, scope))
    }

    fn allows(&self, principal: &str, op: Operation, scope: &str, key: &str) -> bool {
        self.has(op)
            && (op == Operation::Admin
                || (self.scope_matches(principal, scope)
                    && self.keys.iter().any(|glob| glob.matches(key))))
    }
}

/// A principal id (the one rule of the `principal-id` crate, which certificates and
/// `principal:<id>` scopes follow too), or `*` for every principal.
pub(crate) fn check_principal(id: &str) -> Result<(), String> {
    if id == "*" {
        return Ok(());
    }
    principal_id::check(id).map_err(|why| {
        format!(
            "{:?} is not a principal id: {why} (or \"*\" for every principal)",
            vault::shorten_name(id)
        )
    })
}

/// A compiled scope pattern.
#[derive(Debug, Clone)]
enum ScopePattern {
    /// `*`: every scope, transit included.
    Any,
    /// `{self}`: `principal:<caller id>`.
    OwnPrincipal,
    /// A whole scope, or `transit`.
    Exact(Box<str>),
    /// `skill:*`, `channel:slack:*`, `skill:deploy-*`: scopes starting with the text before `*`.
    Prefix(Box<str>),
}

impl ScopePattern {
    fn compile(text: &str) -> Result<ScopePattern, String> {
        const USE: &str = "use \"*\", \"{self}\", \"transit\", a scope (global, principal:<id>, \
                           channel:<name>:<account>, skill:<id>) or a scope prefix ending in '*' \
                           (skill:*, channel:slack:*)";
        let shown = vault::shorten_name(text);
        match text {
            "*" => return Ok(ScopePattern::Any),
            SELF_SCOPE => return Ok(ScopePattern::OwnPrincipal),
            TRANSIT_SCOPE => return Ok(ScopePattern::Exact(text.into())),
            _ => {}
        }
        match text.strip_suffix('*') {
            Some(prefix) => {
                // The prefix must begin some valid scope: complete it with a component (and a
                // second one, for `channel:<name>:`) and parse.
                let begins_scope = !prefix.contains('*')
                    && (vault::Scope::parse(&format!("{prefix}x")).is_ok()
                        || vault::Scope::parse(&format!("{prefix}x:x")).is_ok());
                if begins_scope {
                    Ok(ScopePattern::Prefix(prefix.into()))
                } else {
                    Err(format!("{shown:?} is not a scope pattern; {USE}"))
                }
            }
            None => match vault::Scope::parse(text) {
                Ok(_) => Ok(ScopePattern::Exact(text.into())),
                Err(err) => Err(format!("{shown:?} is not a scope pattern ({err}); {USE}")),
            },
        }
    }

    fn matches(&self, principal: &str, scope: &str) -> bool {
        match self {
            ScopePattern::Any => true,
            ScopePattern::OwnPrincipal => scope.strip_prefix("principal:") == Some(principal),
            ScopePattern::Exact(exact) => **exact == *scope,
            ScopePattern::Prefix(prefix) => scope.starts_with(&**prefix),
        }
    }
}

/// A compiled key (or transit context) glob: `*` matches any run of characters.
#[derive(Debug, Clone)]
enum Glob {
    /// `*`.
    Any,
    /// No `*`.
    Exact(Box<str>),
    /// One or more `*`: the text before the first, after the last, and the pieces between,
    /// which must appear in order.
    Pattern {
        prefix: Box<str>,
        middle: Vec<Box<str>>,
        suffix: Box<str>,
    },
}

impl Glob {
    fn compile(text: &str) -> Result<Glob, String> {
        if text.is_empty() {
            return Err("the key pattern is empty; use \"*\" for every key".into());
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !c.is_ascii_graphic() || matches!(c, '/' | '\\'))
        {
            return Err(format!(
                "the key pattern {:?} contains {bad:?}; keys are printable ASCII without / and \\",
                vault::shorten_name(text)
            ));
        }
        if text.chars().all(|c| c == '*') {
            return Ok(Glob::Any);
        }
        let mut pieces = text.split('*');
        let first = pieces.next().unwrap_or_default();
        let Some(last) = pieces.next_back() else {
            return Ok(Glob::Exact(text.into()));
        };
        Ok(Glob::Pattern {
            prefix: first.into(),
            middle: pieces.filter(|p| !p.is_empty()).map(Into::into).collect(),
            suffix: last.into(),
        })
    }

    fn matches(&self, key: &str) -> bool {
        match self {
            Glob::Any => true,
            Glob::Exact(exact) => **exact == *key,
            Glob::Pattern {
                prefix,
                middle,
                suffix,
            } => {
                if key.len() < prefix.len() + suffix.len()
                    || !key.starts_with(&**prefix)
                    || !key.ends_with(&**suffix)
                {
                    return false;
                }
                let mut rest = &key[prefix.len()..key.len() - suffix.len()];
                for piece in middle {
                    match rest.find(&**piece) {
                        Some(at) => rest = &rest[at + piece.len()..],
                        None => return false,
                    }
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let cases = [
            ("*", "anything", true),
            ("db", "db", true),
            ("db", "db2", false),
            ("db.*", "db.password", true),
            ("db.*", "db", false),
            ("*.pem", "tls.pem", true),
            ("*.pem", "tls.key", false),
            ("a*b", "ab", true),
            ("a*b", "axxb", true),
            ("a*b", "a", false),
            ("aba*aba", "aba", false),
            ("aba*aba", "ababa", false),
            ("aba*aba", "abaaba", true),
            ("a*b*c", "a-b-c", true),
            ("a*b*c", "a-c-b", false),
            ("**", "", true),
        ];
        for (pattern, key, expected) in cases {
            let glob = Glob::compile(pattern).expect(pattern);
            assert_eq!(glob.matches(key), expected, "{pattern} vs {key}");
        }
        for bad in ["", "a b", "a/b", "é", "a\n"] {
            assert!(Glob::compile(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scope_patterns() {
        for ok in [
            "*",
            "{self}",
            "transit",
            "global",
            "principal:alice",
            "skill:*",
            "principal:*",
            "channel:*",
            "channel:slack:*",
            "skill:deploy-*",
        ] {
            ScopePattern::compile(ok).expect(ok);
        }
        for bad in [
            "",
            "Global",
            "g*",
            "skill",
            "skill:",
            "skill:a b",
            "*:x",
            "skill:**",
            "admin",
        ] {
            assert!(ScopePattern::compile(bad).is_err(), "{bad:?}");
        }
    }
}
