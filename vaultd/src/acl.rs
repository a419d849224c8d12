//! Access control: which principal may do what (see `Acl`).
//!
//! The rules come from the `[[acl]]` tables of the configuration. Everything not allowed by a
//! rule is denied. Patterns are compiled once in `Acl::new`, so a check on the request path is
//! a hash lookup and a few string comparisons, with no allocation.
//!
//! `{self}` stands for the caller's principal id: as a whole scope pattern (the caller's own
//! `principal:<id>` scope) and anywhere in a key or transit-context pattern (`{self}-*`).
//! Principal ids never hold `*` or braces, so the substitution cannot widen a pattern.
//!
//! Transit contexts are shared by every principal a rule lets use them, unless a rule that
//! gives the caller the context says `bind_caller = true` (see [`Acl::binds_caller`]).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::config::{AclRule, ConfigError};
use crate::key_pattern::KeyPattern;

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
    /// Key management: status, unlock, lock, rotation, KEK checks.
    Admin,
    /// Reading the audit log (AuditTail, AuditVerify) and the status.
    Audit,
}

impl Operation {
    /// Every operation, in the order of the documentation.
    pub const ALL: [Operation; 8] = [
        Operation::Read,
        Operation::Write,
        Operation::Delete,
        Operation::List,
        Operation::Seal,
        Operation::Open,
        Operation::Admin,
        Operation::Audit,
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
            Operation::Audit => "audit",
        }
    }

    /// Whether the operation is about the vault itself (key management, the audit log)
    /// rather than data: no scope or key pattern applies to it.
    pub fn is_administrative(self) -> bool {
        matches!(self, Operation::Admin | Operation::Audit)
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
                    "unknown operation {text:?}; use read, write, delete, list, seal, open, admin or audit"
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
/// The key of the Status request's ask. Status is asked as [`Operation::Admin`], so that it
/// passes the lock gate as the other administration calls do, and a rule with `admin` or
/// `audit` allows it: it shows the KEKs, their URIs and health, which both roles need.
pub const STATUS_KEY: &str = "status";

/// The compiled access rules; cheap to query, built once from the configuration.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    /// Rules naming one principal, by principal id.
    by_principal: HashMap<Box<str>, Vec<Rule>>,
    /// Rules for `principal = "*"`.
    any_principal: Vec<Rule>,
    /// Whether some rule says `bind_caller = true`.
    bindings: bool,
}

impl Acl {
    /// Compiles the rules; an error names the rule and field that is malformed.
    pub fn new(rules: &[AclRule]) -> Result<Acl, ConfigError> {
        let mut acl = Acl::default();
        for (index, rule) in rules.iter().enumerate() {
            let compiled = Rule::compile(index, rule)?;
            acl.bindings |= compiled.bind_caller;
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
    /// For transit operations pass scope `"transit"` and the context as `key`. For `Admin`
    /// and `Audit` the scope is not looked at (a rule naming the principal and the operation
    /// suffices), and an `Admin` ask on key [`STATUS_KEY`] is allowed by `audit` as well.
    pub fn allows(&self, principal: &str, op: Operation, scope: &str, key: &str) -> bool {
        self.rules_for(principal)
            .any(|rule| rule.allows(principal, op, scope, key))
    }

    /// Whether transit data `principal` seals or opens under `context` is bound to it (see
    /// `vault::Vault::seal_data`): so when a rule for `principal` (by name or `"*"`) that
    /// says `bind_caller = true` has a key pattern matching `context`.
    ///
    /// The answer depends on the caller and the context only, never on the operation, so a
    /// seal and the open of what it sealed agree. A context no such rule matches is shared
    /// by every principal allowed on it. Changing which rules bind a context changes which
    /// envelopes open under it: decide before sealing.
    pub fn binds_caller(&self, principal: &str, context: &str) -> bool {
        self.bindings && self.binds(principal, context)
    }

    /// Whether some rule binds transit contexts to their callers at all.
    pub fn has_bindings(&self) -> bool {
        self.bindings
    }

    fn binds(&self, principal: &str, context: &str) -> bool {
        self.rules_for(principal)
            .any(|rule| rule.bind_caller && rule.key_matches(principal, context))
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

    /// Whether a listing for `principal` shows every secret of `scope` (`None`: of every
    /// scope), because one rule lets it list every key there: then the listing is the
    /// store's, and so is its count. `false` when keys must be checked one by one (and when
    /// only several rules together would cover it).
    pub fn lists_everything(&self, principal: &str, scope: Option<&str>) -> bool {
        self.rules_for(principal).any(|rule| {
            rule.has(Operation::List)
                && rule.keys.iter().any(KeyPattern::matches_every_key)
                && match scope {
                    Some(scope) => rule.scope_matches(principal, scope),
                    None => rule.scopes.iter().any(|s| matches!(s, ScopePattern::Any)),
                }
        })
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
    keys: Vec<KeyPattern>,
    /// Transit data under the contexts `keys` match is bound to the caller.
    bind_caller: bool,
}

impl Rule {
    fn compile(index: usize, rule: &AclRule) -> Result<Rule, ConfigError> {
        let field = |name: &str| format!("acl[{index}].{name}");
        check_principal(&rule.principal)
            .map_err(|reason| ConfigError::invalid(field("principal"), reason))?;
        if rule.operations.is_empty() {
            return Err(ConfigError::invalid(
                field("operations"),
                "the rule allows no operation; list some of read, write, delete, list, seal, open, admin, audit",
            ));
        }
        if rule.principal == "*"
            && let Some(op) = rule.operations.iter().find(|op| op.is_administrative())
        {
            return Err(ConfigError::invalid(
                field("operations"),
                format!(
                    "{op} cannot be granted to every principal (principal = \"*\"): it is \
                     {}; grant it in a rule naming each principal that needs it",
                    if *op == Operation::Admin {
                        "unlocking, locking and rotating the vault's keys"
                    } else {
                        "reading the audit log, which names every principal, scope and key"
                    }
                ),
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
                KeyPattern::compile(text)
                    .map_err(|reason| ConfigError::invalid(field(&format!("keys[{at}]")), reason))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let data_ops = operations & !(Operation::Admin.bit() | Operation::Audit.bit()) != 0;
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
        if rule.bind_caller {
            check_binding_rule(&scopes, operations)
                .map_err(|reason| ConfigError::invalid(field("bind_caller"), reason))?;
        }
        Ok(Rule {
            operations,
            scopes,
            keys,
            bind_caller: rule.bind_caller,
        })
    }

    fn has(&self, op: Operation) -> bool {
        self.operations & op.bit() != 0
    }

    fn key_matches(&self, principal: &str, key: &str) -> bool {
        self.keys.iter().any(|glob| glob.matches(principal, key))
    }

    fn scope_matches(&self, principal: &str, scope: &str) -> bool {
        self.scopes
            .iter()
            .any(|pattern| pattern.matches(principal, scope))
    }

    fn allows(&self, principal: &str, op: Operation, scope: &str, key: &str) -> bool {
        match op {
            Operation::Admin if key == STATUS_KEY => {
                self.has(Operation::Admin) || self.has(Operation::Audit)
            }
            Operation::Admin | Operation::Audit => self.has(op),
            _ => {
                self.has(op)
                    && self.scope_matches(principal, scope)
                    && self.key_matches(principal, key)
            }
        }
    }
}

/// `bind_caller = true` is for transit rules: scopes = ["transit"] and seal or open among
/// the operations, so that which contexts it binds is plain from its key patterns.
fn check_binding_rule(scopes: &[ScopePattern], operations: u8) -> Result<(), String> {
    let transit_only = !scopes.is_empty()
        && scopes
            .iter()
            .all(|s| matches!(s, ScopePattern::Exact(scope) if &**scope == TRANSIT_SCOPE));
    if !transit_only {
        return Err(
            "bind_caller binds transit contexts: the rule's scopes must be [\"transit\"] \
             (give other scopes their own rule)"
                .into(),
        );
    }
    if operations & (Operation::Seal.bit() | Operation::Open.bit()) == 0 {
        return Err(
            "bind_caller applies to seal and open: list seal or open (or both) in \
                    the rule's operations"
                .into(),
        );
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

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
