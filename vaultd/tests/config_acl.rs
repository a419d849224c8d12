//! The daemon configuration (layers, printing, errors) and the ACL built from it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use vaultd::acl::{Acl, Operation};
use vaultd::config::{AclRule, Config, ConfigError, Overrides};

fn no_env(_: &str) -> Option<String> {
    None
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

fn write_config(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("vaultd.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("socket address")
}

#[test]
fn defaults_when_nothing_is_set() {
    let config = Config::load(None, &no_env, &Overrides::default()).expect("defaults load");
    assert_eq!(config, Config::default());
    assert_eq!(config.listen, addr("127.0.0.1:8443"));
    assert_eq!(config.vault_dir, Path::new("/var/lib/vault"));
    assert_eq!(
        config.audit_log_path(),
        Path::new("/var/lib/vault/audit.jsonl")
    );
    assert_eq!(config.tls_dir(), Path::new("/var/lib/vault/tls"));
    assert!(config.kek.is_empty());
    assert_eq!(config.limits.max_message_bytes, 4_194_304);
    assert_eq!(config.limits.max_secret_bytes, 1_048_576);
    assert_eq!(config.limits.max_concurrent_requests, 256);
    assert_eq!(config.limits.request_timeout_ms, 5000);
    assert_eq!(config.limits.kek_threads, 4);
    assert_eq!(config.limits.rate_per_second, 1000);
    assert_eq!(config.limits.burst, 2000);
    assert_eq!(config.limits.cache_ttl_secs, 300);
    assert!(!config.hardening.mlockall);
    assert!(config.acl.is_empty());

    // An empty file is the defaults too.
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = write_config(&dir, "");
    let loaded = Config::load(Some(&empty), &no_env, &Overrides::default()).expect("empty file");
    assert_eq!(loaded, Config::default());
}

#[test]
fn a_cache_ttl_of_zero_turns_the_cache_off_and_is_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(&dir, "vault_dir = \"/v\"\n[limits]\ncache_ttl_secs = 0\n");
    let config = Config::load(Some(&path), &no_env, &Overrides::default()).expect("ttl 0");
    assert_eq!(config.limits.cache_ttl_secs, 0);
    // Other limits still refuse 0.
    let path = write_config(&dir, "vault_dir = \"/v\"\n[limits]\nburst = 0\n");
    let err = Config::load(Some(&path), &no_env, &Overrides::default()).expect_err("burst 0");
    assert!(err.to_string().contains("at least 1"), "{err}");
}

#[test]
fn file_then_env_then_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        &dir,
        r#"
listen = "127.0.0.1:1001"
vault_dir = "/from/file"
audit_log = "/from/file/audit.jsonl"
[tls]
dir = "/from/file/tls"
[limits]
burst = 11
rate_per_second = 12
"#,
    );
    let file_only = Config::load(Some(&path), &no_env, &Overrides::default()).expect("file");
    assert_eq!(file_only.listen, addr("127.0.0.1:1001"));
    assert_eq!(file_only.vault_dir, Path::new("/from/file"));
    assert_eq!(file_only.tls_dir(), Path::new("/from/file/tls"));
    assert_eq!(file_only.limits.burst, 11);
    assert_eq!(file_only.limits.rate_per_second, 12);
    assert_eq!(
        file_only.limits.kek_threads, 4,
        "unset in the file: default"
    );

    let env = env_of(&[
        ("VAULTD_LISTEN", "127.0.0.1:2002"),
        ("VAULTD_VAULT_DIR", "/from/env"),
        ("VAULTD_TLS_DIR", "/from/env/tls"),
        ("VAULTD_BURST", "21"),
        ("VAULTD_CACHE_TTL_SECS", "22"),
        ("VAULTD_AUDIT_LOG", ""), // empty counts as unset
    ]);
    let with_env = Config::load(Some(&path), &env, &Overrides::default()).expect("env");
    assert_eq!(with_env.listen, addr("127.0.0.1:2002"));
    assert_eq!(with_env.vault_dir, Path::new("/from/env"));
    assert_eq!(with_env.tls_dir(), Path::new("/from/env/tls"));
    assert_eq!(
        with_env.audit_log_path(),
        Path::new("/from/file/audit.jsonl")
    );
    assert_eq!(with_env.limits.burst, 21);
    assert_eq!(with_env.limits.rate_per_second, 12, "file value kept");
    assert_eq!(with_env.limits.cache_ttl_secs, 22);

    let flags = Overrides {
        listen: Some(addr("[::1]:3003")),
        vault_dir: Some("/from/flag".into()),
        audit_log: Some("/from/flag/audit.jsonl".into()),
        tls_dir: None,
        ..Overrides::default()
    };
    let all = Config::load(Some(&path), &env, &flags).expect("flags");
    assert_eq!(all.listen, addr("[::1]:3003"));
    assert_eq!(all.vault_dir, Path::new("/from/flag"));
    assert_eq!(all.audit_log_path(), Path::new("/from/flag/audit.jsonl"));
    assert_eq!(
        all.tls_dir(),
        Path::new("/from/env/tls"),
        "no flag: env wins"
    );
    assert_eq!(all.limits.burst, 21);
}

#[test]
fn empty_paths_follow_the_vault_dir() {
    let flags = Overrides {
        vault_dir: Some("/srv/v".into()),
        ..Overrides::default()
    };
    let config = Config::load(None, &no_env, &flags).expect("load");
    assert_eq!(config.audit_log_path(), Path::new("/srv/v/audit.jsonl"));
    assert_eq!(config.tls_dir(), Path::new("/srv/v/tls"));
}

#[test]
fn print_config_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        &dir,
        r#"
listen = "0.0.0.0:9443"
kek = ["pkcs11:token=vault;object=kek?module-path=/usr/lib/softhsm/libsofthsm2.so", "file:///etc/vault/kek"]
[limits]
kek_threads = 2
[hardening]
mlockall = true
[[acl]]
principal = "admin"
scopes = ["*"]
keys = ["*"]
operations = ["read", "write", "delete", "list", "seal", "open", "admin"]
[[acl]]
principal = "*"
scopes = ["{self}", "skill:*"]
operations = ["read", "list"]
[[acl]]
principal = "*"
scopes = ["transit"]
keys = ["backups", "{self}-*"]
operations = ["seal", "open"]
bind_caller = true
"#,
    );
    let env = env_of(&[("VAULTD_RATE_PER_SECOND", "77")]);
    let config = Config::load(Some(&path), &env, &Overrides::default()).expect("load");
    let printed = config.to_toml();
    let again_path = write_config(&dir, &printed);
    let again = Config::load(Some(&again_path), &no_env, &Overrides::default())
        .unwrap_or_else(|err| panic!("{err}\n{printed}"));
    assert_eq!(again, config, "{printed}");
    assert_eq!(again.limits.rate_per_second, 77);
    assert_eq!(again.acl[1].keys, ["*"], "keys default to every key");
    assert!(printed.contains("bind_caller = true"), "{printed}");
    assert!(!again.acl[1].bind_caller && again.acl[2].bind_caller);

    let defaults = Config::default();
    let printed = defaults.to_toml();
    assert!(printed.contains("[limits]"), "{printed}");
    assert_eq!(
        Config::from_toml(&printed, Path::new("printed")).expect("parse"),
        defaults
    );
}

#[test]
fn bad_toml_names_the_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(&dir, "listen = \"127.0.0.1:1\"\n\n[limits]\nburst = = 3\n");
    let err = Config::load(Some(&path), &no_env, &Overrides::default()).expect_err("bad toml");
    let text = err.to_string();
    assert!(matches!(err, ConfigError::Parse { line: 4, .. }), "{text}");
    assert!(text.contains("vaultd.toml:4:"), "{text}");

    // A wrong type is reported the same way.
    let path = write_config(&dir, "[limits]\nburst = \"many\"\n");
    let err = Config::load(Some(&path), &no_env, &Overrides::default()).expect_err("bad type");
    assert!(matches!(err, ConfigError::Parse { line: 2, .. }), "{err}");
}

#[test]
fn unknown_fields_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (text, line, name) in [
        (
            "listen = \"127.0.0.1:1\"\nlisten_addr = \"x\"\n",
            2,
            "listen_addr",
        ),
        ("[limits]\nburts = 3\n", 2, "burts"),
        ("[tls]\ncert = \"x\"\n", 2, "cert"),
        (
            "[[acl]]\nprincipal = \"a\"\noperations = [\"read\"]\nscope = [\"*\"]\n",
            4,
            "scope",
        ),
    ] {
        let path = write_config(&dir, text);
        let err = Config::load(Some(&path), &no_env, &Overrides::default()).expect_err(text);
        let shown = err.to_string();
        assert!(
            matches!(&err, ConfigError::Parse { line: l, .. } if *l == line),
            "{shown}"
        );
        assert!(shown.contains(name), "{shown}");
    }
}

#[test]
fn missing_file_is_an_error() {
    let err = Config::load(
        Some(Path::new("/nonexistent/vaultd.toml")),
        &no_env,
        &Overrides::default(),
    )
    .expect_err("missing");
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/vaultd.toml"));
}

#[test]
fn bad_env_value_names_the_variable() {
    for (var, value) in [
        ("VAULTD_BURST", "lots"),
        ("VAULTD_RATE_PER_SECOND", "-1"),
        ("VAULTD_LISTEN", "localhost"),
        ("VAULTD_REQUEST_TIMEOUT_MS", "5s"),
        ("VAULTD_MLOCKALL", "yes please"),
    ] {
        let env = env_of(&[(var, value)]);
        let err = Config::load(None, &env, &Overrides::default()).expect_err(var);
        assert!(
            matches!(&err, ConfigError::Env { var: v, .. } if *v == var),
            "{err}"
        );
        assert!(err.to_string().contains(var), "{err}");
    }
}

#[test]
fn invalid_values_name_the_field() {
    let cases: &[(&str, &str)] = &[
        ("[limits]\nburst = 0\n", "limits.burst"),
        ("[limits]\nkek_threads = 0\n", "limits.kek_threads"),
        (
            "[limits]\nrequest_timeout_ms = 0\n",
            "limits.request_timeout_ms",
        ),
        ("vault_dir = \"\"\n", "vault_dir"),
        (
            "[[acl]]\nprincipal = \"bad id\"\nscopes = [\"*\"]\noperations = [\"read\"]\n",
            "acl[0].principal",
        ),
        (
            "[[acl]]\nprincipal = \".hidden\"\nscopes = [\"*\"]\noperations = [\"read\"]\n",
            "acl[0].principal",
        ),
        (
            "[[acl]]\nprincipal = \"-\"\nscopes = [\"*\"]\noperations = [\"read\"]\n",
            "acl[0].principal",
        ),
        (
            "[[acl]]\nprincipal = \"a\"\nscopes = [\"*\"]\noperations = [\"read\"]\n\
             [[acl]]\nprincipal = \"b\"\nscopes = [\"global\", \"Skill:x\"]\noperations = [\"read\"]\n",
            "acl[1].scopes[1]",
        ),
        (
            "[[acl]]\nprincipal = \"a\"\nscopes = [\"sk*\"]\noperations = [\"read\"]\n",
            "acl[0].scopes[0]",
        ),
        (
            "[[acl]]\nprincipal = \"a\"\nscopes = [\"*\"]\nkeys = [\"a b\"]\noperations = [\"read\"]\n",
            "acl[0].keys[0]",
        ),
        (
            "[[acl]]\nprincipal = \"a\"\nscopes = [\"*\"]\noperations = []\n",
            "acl[0].operations",
        ),
        (
            "[[acl]]\nprincipal = \"a\"\noperations = [\"read\"]\n",
            "acl[0].scopes",
        ),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (text, field) in cases {
        let path = write_config(&dir, text);
        let err = Config::load(Some(&path), &no_env, &Overrides::default()).expect_err(text);
        assert!(
            matches!(&err, ConfigError::Invalid { field: f, .. } if f == field),
            "{text}: {err}"
        );
        assert!(err.to_string().contains(field), "{err}");
    }
    let env = env_of(&[("VAULTD_BURST", "0")]);
    let err = Config::load(None, &env, &Overrides::default()).expect_err("burst 0");
    assert!(err.to_string().contains("limits.burst"), "{err}");
}

#[test]
fn unknown_operation_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        &dir,
        "[[acl]]\nprincipal = \"a\"\nscopes = [\"*\"]\noperations = [\"read\", \"reed\"]\n",
    );
    let err = Config::load(Some(&path), &no_env, &Overrides::default()).expect_err("reed");
    assert!(matches!(err, ConfigError::Parse { line: 4, .. }), "{err}");
    assert!(err.to_string().contains("reed"), "{err}");
}

// ---- ACL ----

fn rule(principal: &str, scopes: &[&str], keys: &[&str], ops: &[Operation]) -> AclRule {
    AclRule {
        principal: principal.to_owned(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        keys: keys.iter().map(|s| (*s).to_owned()).collect(),
        operations: ops.to_vec(),
        bind_caller: false,
    }
}

/// A transit rule that binds the contexts `keys` match to the caller.
fn binding(principal: &str, keys: &[&str], ops: &[Operation]) -> AclRule {
    AclRule {
        bind_caller: true,
        ..rule(principal, &["transit"], keys, ops)
    }
}

use Operation::{Admin, Audit, Delete, List, Open, Read, Seal, Write};

#[test]
fn operation_names() {
    let names: Vec<&str> = Operation::ALL.iter().map(|op| op.as_str()).collect();
    assert_eq!(
        names,
        [
            "read", "write", "delete", "list", "seal", "open", "admin", "audit"
        ]
    );
    for op in Operation::ALL {
        assert_eq!(op.as_str().parse::<Operation>(), Ok(op));
        assert_eq!(op.to_string(), op.as_str());
    }
    assert!("Read".parse::<Operation>().is_err());
}

#[test]
fn default_deny() {
    let acl = Acl::new(&[]).expect("empty acl");
    for op in Operation::ALL {
        assert!(!acl.allows("alice", op, "global", "k"));
    }
    assert!(!acl.knows("alice"));
    assert!(!acl.may_list("alice", None));
}

#[test]
fn exact_principal() {
    let acl = Acl::new(&[rule("alice", &["global"], &["*"], &[Read])]).expect("acl");
    assert!(acl.allows("alice", Read, "global", "db"));
    assert!(!acl.allows("bob", Read, "global", "db"));
    assert!(
        !acl.allows("alice", Read, "skill:x", "db"),
        "scope not listed"
    );
    assert!(!acl.allows("alic", Read, "global", "db"));
    assert!(!acl.allows("alice2", Read, "global", "db"));
}

#[test]
fn any_principal() {
    let acl = Acl::new(&[rule("*", &["global"], &["*"], &[Read])]).expect("acl");
    assert!(acl.allows("alice", Read, "global", "db"));
    assert!(acl.allows("bob", Read, "global", "db"));
    assert!(!acl.allows("bob", Write, "global", "db"));
}

#[test]
fn self_scope_is_the_callers_own() {
    let acl = Acl::new(&[rule("*", &["{self}"], &["*"], &[Read, Write])]).expect("acl");
    assert!(acl.allows("alice", Read, "principal:alice", "k"));
    assert!(acl.allows("alice", Write, "principal:alice", "k"));
    assert!(!acl.allows("alice", Read, "principal:bob", "k"));
    assert!(!acl.allows("alice", Read, "principal:alice2", "k"));
    assert!(!acl.allows("alice", Read, "principal:alic", "k"));
    assert!(!acl.allows("alice", Read, "global", "k"));
    assert!(!acl.allows("alice", Read, "skill:alice", "k"));
    assert!(acl.allows("bob", Read, "principal:bob", "k"));
}

#[test]
fn scope_prefix() {
    let acl =
        Acl::new(&[rule("ci", &["skill:*", "channel:slack:*"], &["*"], &[Read])]).expect("acl");
    assert!(acl.allows("ci", Read, "skill:deploy", "k"));
    assert!(acl.allows("ci", Read, "channel:slack:T01", "k"));
    assert!(!acl.allows("ci", Read, "channel:teams:T01", "k"));
    assert!(!acl.allows("ci", Read, "global", "k"));
    assert!(!acl.allows("ci", Read, "principal:ci", "k"));
}

#[test]
fn key_globs() {
    let acl = Acl::new(&[rule(
        "app",
        &["global"],
        &["db.*", "*.pem", "api*key", "exact"],
        &[Read],
    )])
    .expect("acl");
    for yes in ["db.password", "tls.pem", "api_key", "api-prod-key", "exact"] {
        assert!(acl.allows("app", Read, "global", yes), "{yes}");
    }
    for no in ["db", "tls.key", "api", "exactly", "xdb.password", "apikey2"] {
        assert!(!acl.allows("app", Read, "global", no), "{no}");
    }
}

#[test]
fn operation_not_listed_is_denied() {
    let acl = Acl::new(&[rule("alice", &["*"], &["*"], &[Read, List])]).expect("acl");
    assert!(acl.allows("alice", Read, "global", "k"));
    for op in [Write, Delete, Seal, Open, Admin, Audit] {
        assert!(!acl.allows("alice", op, "global", "k"), "{op}");
    }
}

#[test]
fn admin_needs_only_principal_and_operation() {
    let acl = Acl::new(&[
        rule("ops", &[], &[], &[Admin]),
        rule("reader", &["*"], &["*"], &[Read]),
    ])
    .expect("acl");
    assert!(acl.allows("ops", Admin, "admin", "*"));
    assert!(acl.allows("ops", Admin, "anything", "whatever"));
    assert!(
        !acl.allows("ops", Read, "global", "k"),
        "admin is not data access"
    );
    assert!(!acl.allows("reader", Admin, "admin", "*"));
}

#[test]
fn audit_and_admin_are_separate_and_both_see_the_status() {
    use vaultd::acl::{ADMIN_SCOPE, STATUS_KEY};
    let acl = Acl::new(&[
        rule("keeper", &[], &[], &[Admin]),
        rule("auditor", &[], &[], &[Audit]),
        rule("reader", &["*"], &["*"], &[Read]),
    ])
    .expect("acl");
    assert!(acl.allows("keeper", Admin, ADMIN_SCOPE, "*"));
    assert!(!acl.allows("keeper", Audit, ADMIN_SCOPE, "*"));
    assert!(acl.allows("auditor", Audit, ADMIN_SCOPE, "*"));
    assert!(!acl.allows("auditor", Admin, ADMIN_SCOPE, "*"));
    for who in ["keeper", "auditor"] {
        assert!(acl.allows(who, Admin, ADMIN_SCOPE, STATUS_KEY), "{who}");
        assert!(!acl.allows(who, Read, "global", "k"), "{who}");
    }
    assert!(!acl.allows("reader", Admin, ADMIN_SCOPE, STATUS_KEY));
    assert!(!acl.allows("reader", Audit, ADMIN_SCOPE, "*"));
}

#[test]
fn admin_and_audit_are_refused_for_every_principal() {
    for op in [Admin, Audit] {
        for rules in [
            vec![rule("*", &[], &[], &[op])],
            vec![rule("*", &["{self}"], &["*"], &[Read, op])],
            vec![rule("admin", &[], &[], &[op]), rule("*", &[], &[], &[op])],
        ] {
            let err = Acl::new(&rules).expect_err("* with admin or audit");
            let message = err.to_string();
            assert!(message.contains("operations"), "{message}");
            assert!(
                message.contains(&format!("{op} cannot be granted to every principal")),
                "{message}"
            );
        }
    }
    // Named, they are fine; so is `*` with data operations only.
    Acl::new(&[
        rule("ops", &[], &[], &[Admin, Audit]),
        rule("*", &["{self}"], &["*"], &[Read]),
    ])
    .expect("acl");
}

#[test]
fn self_in_key_patterns_is_the_callers_id() {
    let acl = Acl::new(&[
        rule("*", &["global"], &["{self}.*"], &[Read]),
        rule("*", &["transit"], &["{self}-*"], &[Seal, Open]),
    ])
    .expect("acl");
    assert!(acl.allows("alice", Read, "global", "alice.token"));
    assert!(!acl.allows("alice", Read, "global", "bob.token"));
    assert!(!acl.allows("alice", Read, "global", "{self}.token"));
    assert!(acl.allows("alice", Seal, "transit", "alice-backups"));
    assert!(acl.allows("bob", Open, "transit", "bob-backups"));
    assert!(!acl.allows("bob", Open, "transit", "alice-backups"));
    assert!(!acl.allows("alice", Seal, "transit", "alice"));
    assert!(!acl.allows("alice", Seal, "transit", "alice2-backups"));
    for bad in ["{caller}-*", "{self", "self}-*", "{}", "a{{self}}"] {
        let err = Acl::new(&[rule("*", &["transit"], &[bad], &[Seal])]).expect_err(bad);
        let message = err.to_string();
        assert!(message.contains("acl[0].keys[0]"), "{message}");
        assert!(message.contains("{self}"), "{message}");
    }
}

#[test]
fn bindings_are_decided_by_caller_and_context_alone() {
    let acl = Acl::new(&[
        binding("*", &["backups", "reports-*"], &[Seal, Open]),
        rule("*", &["transit"], &["shared", "{self}-*"], &[Seal, Open]),
        // Alice may open anything; the binding of `backups` still holds for her.
        rule("alice", &["transit"], &["*"], &[Open]),
        // Carol's own binding, through a rule granting open only: it binds her seals too.
        binding("carol", &["carols"], &[Open]),
        rule("carol", &["transit"], &["carols"], &[Seal]),
    ])
    .expect("acl");
    assert!(acl.has_bindings());
    for who in ["alice", "bob"] {
        assert!(acl.binds_caller(who, "backups"), "{who}");
        assert!(acl.binds_caller(who, "reports-2024"), "{who}");
        assert!(!acl.binds_caller(who, "shared"), "{who}");
        assert!(!acl.binds_caller(who, &format!("{who}-x")), "{who}");
    }
    assert!(!acl.binds_caller("alice", "anything-else"));
    assert!(acl.binds_caller("carol", "carols"));
    assert!(!acl.binds_caller("alice", "carols"));
    assert!(acl.allows("carol", Seal, "transit", "carols"));

    let unbound = Acl::new(&[rule("*", &["transit"], &["*"], &[Seal, Open])]).expect("acl");
    assert!(!unbound.has_bindings());
    assert!(!unbound.binds_caller("alice", "backups"));
}

#[test]
fn a_binding_is_only_for_transit_rules_with_seal_or_open() {
    for (bad, reason) in [
        (
            AclRule {
                bind_caller: true,
                ..rule("*", &["global"], &["*"], &[Read])
            },
            "scopes must be [\"transit\"]",
        ),
        (
            AclRule {
                bind_caller: true,
                ..rule("*", &["*"], &["*"], &[Seal])
            },
            "scopes must be [\"transit\"]",
        ),
        (binding("alice", &["*"], &[Read]), "list seal or open"),
    ] {
        let err = Acl::new(&[bad]).expect_err("misplaced binding");
        let message = err.to_string();
        assert!(message.contains("acl[0].bind_caller"), "{message}");
        assert!(message.contains(reason), "{message}");
    }
}

#[test]
fn transit_scope() {
    let acl = Acl::new(&[
        rule("svc", &["transit"], &["payments*"], &[Seal, Open]),
        rule("root", &["*"], &["*"], &[Seal]),
    ])
    .expect("acl");
    assert!(acl.allows("svc", Seal, "transit", "payments"));
    assert!(acl.allows("svc", Open, "transit", "payments:eu"));
    assert!(!acl.allows("svc", Seal, "transit", "billing"));
    assert!(!acl.allows("svc", Read, "transit", "payments"));
    assert!(
        !acl.allows("svc", Seal, "global", "payments"),
        "transit only"
    );
    assert!(
        acl.allows("root", Seal, "transit", "anything"),
        "* covers transit"
    );
}

#[test]
fn knows() {
    let named = Acl::new(&[rule("alice", &["global"], &["*"], &[Read])]).expect("acl");
    assert!(named.knows("alice"));
    assert!(!named.knows("bob"));
    let any = Acl::new(&[rule("*", &["{self}"], &["*"], &[Read])]).expect("acl");
    assert!(any.knows("bob"));
}

#[test]
fn listing() {
    let acl = Acl::new(&[
        rule("alice", &["global"], &["public.*"], &[List]),
        rule("alice", &["skill:*"], &["*"], &[Read]),
    ])
    .expect("acl");
    assert!(acl.may_list("alice", None));
    assert!(acl.may_list("alice", Some("global")));
    assert!(!acl.may_list("alice", Some("skill:x")), "read is not list");
    assert!(!acl.may_list("bob", None));
    assert!(acl.visible("alice", "global", "public.motd"));
    assert!(!acl.visible("alice", "global", "private.key"));
    assert!(!acl.visible("alice", "skill:x", "k"));
    // Only some keys of global: a listing (and its count) goes key by key.
    assert!(!acl.lists_everything("alice", Some("global")));
    assert!(!acl.lists_everything("alice", None));
}

#[test]
fn listing_everything() {
    let acl = Acl::new(&[
        rule("ops", &["*"], &["**"], &[List]),
        rule("ci", &["skill:*", "global"], &["*"], &[List, Read]),
        rule("ci", &["global"], &["app-*"], &[List]),
        rule("reader", &["*"], &["*"], &[Read]),
        rule("*", &["{self}"], &["*"], &[List]),
    ])
    .expect("acl");
    assert!(acl.lists_everything("ops", None));
    assert!(acl.lists_everything("ops", Some("skill:x")));
    assert!(acl.lists_everything("ci", Some("skill:deploy")));
    assert!(acl.lists_everything("ci", Some("global")));
    assert!(
        !acl.lists_everything("ci", None),
        "a scope prefix is not every scope"
    );
    assert!(!acl.lists_everything("ci", Some("channel:slack:T1")));
    assert!(!acl.lists_everything("reader", None), "read is not list");
    // {self}: the caller's own scope, not another's.
    assert!(acl.lists_everything("bob", Some("principal:bob")));
    assert!(!acl.lists_everything("bob", Some("principal:alice")));
    assert!(!acl.lists_everything("bob", None));
}

#[test]
fn config_rules_compile_into_the_acl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        &dir,
        r#"
[[acl]]
principal = "admin"
scopes = ["*"]
keys = ["*"]
operations = ["read", "write", "delete", "list", "seal", "open", "admin"]
[[acl]]
principal = "*"
scopes = ["{self}"]
operations = ["read", "write", "list"]
"#,
    );
    let config = Config::load(Some(&path), &no_env, &Overrides::default()).expect("load");
    let acl = config.acl().expect("acl");
    assert!(acl.allows("admin", Admin, "admin", "*"));
    assert!(acl.allows("admin", Delete, "skill:x", "k"));
    assert!(acl.allows("carol", Write, "principal:carol", "k"));
    assert!(!acl.allows("carol", Write, "principal:admin", "k"));
    assert!(!acl.allows("carol", Admin, "admin", "*"));
}

#[test]
fn allow_all_rule() {
    let acl = Acl::new(&[AclRule::allow_all("dev")]).expect("acl");
    for op in Operation::ALL {
        assert!(acl.allows("dev", op, "skill:x", "k"), "{op}");
        assert!(acl.allows("dev", op, "transit", "ctx"), "{op}");
    }
    assert!(!acl.knows("other"));
}
