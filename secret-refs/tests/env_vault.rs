//! `env://` against the allowlist, `vault://` against a real vault, and the policy checks.

mod common;

use std::sync::Arc;

use common::{resolve, resolve_err};
use envelope::{KekProvider, SoftwareKek};
use secret_refs::{Error, Policy, Resolver, parse};
use vault::{InitOptions, Kek, StoreKind, Vault};

fn allow_env(entries: &[&str]) -> Policy {
    Policy {
        allow_env: entries.iter().map(|e| (*e).to_owned()).collect(),
        ..Policy::default()
    }
}

#[test]
fn env_names_and_prefixes_on_the_allowlist_resolve() {
    let path = std::env::var_os("PATH").expect("PATH is set");
    let expected = path.as_encoded_bytes();
    let reference = parse("env://PATH").expect("parses");
    assert_eq!(
        resolve(allow_env(&["PATH"]), &reference).expect("exact"),
        expected
    );
    let path_prefixed = allow_env(&["PATH_*"]);
    assert!(path_prefixed.env_allowed("PATH_EXTRA"));
    assert!(!path_prefixed.env_allowed("PATH"));
}

#[test]
fn a_prefix_ends_at_an_underscore_and_matches_only_below_it() {
    let aws = allow_env(&["AWS_*"]);
    Resolver::new(aws.clone()).expect("AWS_* is a valid prefix");
    for allowed in ["AWS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_1"] {
        assert!(aws.env_allowed(allowed), "{allowed}");
    }
    for refused in ["AWS", "AWS_", "AWSX_KEY", "AWSKEY", "XAWS_KEY", "aws_key"] {
        assert!(!aws.env_allowed(refused), "{refused}");
    }
    // A star not after an underscore would let AWS* allow AWSX_KEY: refused, with the fix.
    for bad in ["AWS*", "A*", "AWS_KEY*", "_*", "AWS_**", "AWS_*_KEY"] {
        let err = Resolver::new(allow_env(&[bad])).expect_err(bad);
        assert!(matches!(err, Error::Policy(_)), "{bad}: {err}");
        assert!(err.to_string().contains("PREFIX_*"), "{bad}: {err}");
    }
    let err = Resolver::new(allow_env(&["AWS*"])).expect_err("AWS*");
    assert!(err.to_string().contains("--allow-env 'AWS_*'"), "{err}");
}

#[test]
fn env_names_off_the_allowlist_are_refused_with_the_fix() {
    let reference = parse("env://PATH").expect("parses");
    for policy in [
        Policy::default(),
        allow_env(&["PATHX"]),
        allow_env(&["HOME", "X_*"]),
    ] {
        let err = resolve_err(policy, &reference);
        assert!(matches!(err, Error::EnvNotAllowed { .. }), "{err}");
        assert!(err.to_string().contains("--allow-env PATH"), "{err}");
    }
    let unset = parse("env://SECRET_REFS_TEST_SURELY_UNSET").expect("parses");
    let err = resolve_err(allow_env(&["SECRET_REFS_*"]), &unset);
    assert!(err.to_string().contains("not set"), "{err}");
}

#[test]
fn bad_policies_are_refused() {
    for policy in [
        allow_env(&["A-B"]),
        allow_env(&["*"]),
        allow_env(&["1X"]),
        Policy {
            trusted_dirs: vec!["relative".into()],
            ..Policy::default()
        },
        Policy {
            trusted_dirs: vec!["/etc/../tmp".into()],
            ..Policy::default()
        },
        Policy {
            allow_exec: vec!["pass".into()],
            ..Policy::default()
        },
        Policy {
            exec_timeout: std::time::Duration::ZERO,
            ..Policy::default()
        },
    ] {
        let err = Resolver::new(policy.clone()).expect_err(&format!("{policy:?}"));
        assert!(matches!(err, Error::Policy(_)), "{err}");
    }
}

fn vault_with(dir: &std::path::Path) -> Vault {
    let provider: Arc<dyn KekProvider> = Arc::new(SoftwareKek::random("refs-test").expect("kek"));
    let kek = Kek {
        uri: "memory:refs-test".into(),
        provider,
    };
    Vault::init_with(dir, &InitOptions::new(StoreKind::Sqlite), vec![kek]).expect("init")
}

#[test]
fn vault_refs_read_the_vault_by_scope_key_and_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = vault_with(dir.path());
    vault
        .set("channel:slack:acme", "bot-token", b"first-token")
        .expect("set");
    vault
        .set("channel:slack:acme", "bot-token", b"second-token")
        .expect("set");
    let resolver = Resolver::new(Policy::default())
        .expect("policy")
        .with_vault(&vault);
    let get = |text: &str| {
        resolver
            .resolve_str(text)
            .map(|s| s.expose_secret().to_vec())
    };
    assert_eq!(
        get("vault://channel:slack:acme/bot-token").expect("latest"),
        b"second-token"
    );
    assert_eq!(
        get("vault://channel:slack:acme/bot-token#1").expect("v1"),
        b"first-token"
    );
    let err = get("vault://channel:slack:acme/bot-token#3").expect_err("no v3");
    assert!(err.to_string().contains("not found"), "{err}");
    assert!(!err.to_string().contains("token\""), "{err}");
    // Without a vault the error says how to give one.
    let bare = Resolver::new(Policy::default()).expect("policy");
    let err = bare.resolve_str("vault://global/x").expect_err("no vault");
    assert!(err.to_string().contains("--vault"), "{err}");
}

#[test]
fn resolved_values_do_not_show_in_debug() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = vault_with(dir.path());
    vault
        .set("global", "k", b"debug-hidden-value")
        .expect("set");
    let resolver = Resolver::new(Policy::default())
        .expect("policy")
        .with_vault(&vault);
    let secret = resolver.resolve_str("vault://global/k").expect("resolves");
    let shown = format!("{secret:?} {resolver:?}");
    assert!(!shown.contains("debug-hidden-value"), "{shown}");
}
