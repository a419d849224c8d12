//! The reference parser: canonical round trips, every documented rejection, and no panics
//! on arbitrary input.

use std::path::PathBuf;

use proptest::prelude::*;
use secret_refs::{Error, SecretRef, parse};
use vault::Scope;

fn ok(text: &str) -> SecretRef {
    parse(text).unwrap_or_else(|e| panic!("{text} should parse: {e}"))
}

fn rejected(text: &str) -> String {
    match parse(text) {
        Ok(r) => panic!("{text:?} should be rejected, parsed as {r:?}"),
        Err(e @ Error::Parse { .. }) => e.to_string(),
        Err(e) => panic!("{text:?}: not a parse error: {e}"),
    }
}

#[test]
fn vault_scope_is_everything_before_the_last_slash() {
    assert_eq!(
        ok("vault://channel:slack:acme/bot-token#3"),
        SecretRef::Vault {
            scope: Scope::Channel {
                name: "slack".into(),
                account: "acme".into()
            },
            key: "bot-token".into(),
            version: Some(3),
        }
    );
    assert_eq!(
        ok("vault://principal:bob@example.com/db.password"),
        SecretRef::Vault {
            scope: Scope::Principal("bob@example.com".into()),
            key: "db.password".into(),
            version: None,
        }
    );
    assert_eq!(
        ok("vault://global/k"),
        SecretRef::Vault {
            scope: Scope::Global,
            key: "k".into(),
            version: None
        }
    );
}

#[test]
fn other_schemes_parse() {
    assert_eq!(
        ok("env://AWS_KEY_1"),
        SecretRef::Env {
            name: "AWS_KEY_1".into()
        }
    );
    assert_eq!(
        ok("file:///etc/app/db%20password"),
        SecretRef::File {
            path: PathBuf::from("/etc/app/db password")
        }
    );
    assert_eq!(
        ok("exec:///usr/bin/pass?arg=show&arg=db/prod&arg=a%26b%3Dc%20d+e&arg="),
        SecretRef::Exec {
            program: PathBuf::from("/usr/bin/pass"),
            args: vec![
                "show".into(),
                "db/prod".into(),
                "a&b=c d+e".into(),
                String::new()
            ],
        }
    );
    assert_eq!(
        ok("exec:///bin/true"),
        SecretRef::Exec {
            program: PathBuf::from("/bin/true"),
            args: vec![]
        }
    );
}

#[test]
fn display_is_canonical_and_parses_back() {
    for text in [
        "vault://global/db-password",
        "vault://skill:x.y/k#18446744073709551615",
        "env://_X",
        "file:///etc/app/db%20password",
        "file:///a/%C3%A9",
        "exec:///usr/bin/pass?arg=show&arg=a%26b%3Dc%20d",
        "exec:///bin/echo?arg=",
    ] {
        let r = ok(text);
        assert_eq!(r.to_string(), text);
        assert_eq!(ok(&r.to_string()), r);
    }
    // Lower-case escapes parse, and print upper-case.
    assert_eq!(ok("file:///a/%c3%a9").to_string(), "file:///a/%C3%A9");
}

#[test]
fn rejections_say_what_is_wrong() {
    let cases: &[(&str, &str)] = &[
        ("", "starts with vault://"),
        ("hunter2", "starts with vault://"),
        ("VAULT://global/k", "starts with vault://"),
        ("http://x", "starts with vault://"),
        ("vault://", "vault://SCOPE/KEY"),
        ("vault://global", "vault://SCOPE/KEY"),
        ("vault://global/", "key name is empty"),
        ("vault:///k", "invalid scope"),
        ("vault://nope/k", "invalid scope"),
        ("vault://channel:slack/k", "channel:<name>:<account>"),
        ("vault://global/a/b", "invalid scope"),
        ("vault://global/../x", "invalid scope"),
        ("vault://global/.k", "starts with '.'"),
        ("vault://global/k#", "version"),
        ("vault://global/k#0", "version"),
        ("vault://global/k#01", "version"),
        ("vault://global/k#-1", "version"),
        ("vault://global/k#+1", "version"),
        ("vault://global/k#18446744073709551616", "version"),
        ("vault://global/k#1#2", "version"),
        ("env://", "1 to 128"),
        ("env://1X", "does not start with a digit"),
        ("env://A-B", "A-Z a-z 0-9 _"),
        ("env://A=B", "A-Z a-z 0-9 _"),
        ("file://etc/x", "absolute path"),
        ("file://host/etc/x", "absolute path"),
        ("file:///", "component"),
        ("file:///etc/", "component"),
        ("file:///etc//x", "component"),
        ("file:///etc/../x", "component"),
        ("file:///etc/./x", "component"),
        ("file:///etc/%2E%2E/x", "component"),
        ("file:///etc/x?y", "no query"),
        ("file:///etc/x#y", "no query"),
        ("file:///etc/a b", "percent-encoded"),
        ("file:///etc/%", "two hex digits"),
        ("file:///etc/%0A", "control character"),
        ("file:///etc/%FF", "not UTF-8"),
        ("file://%2Fetc", "absolute path"),
        ("exec://bin/sh", "absolute path"),
        ("exec:///bin/sh?-c", "arguments only"),
        ("exec:///bin/sh?arg=a&b", "arguments only"),
        ("exec:///bin/sh?", "arguments only"),
        ("exec:///bin/sh?arg=%00", "NUL"),
        ("exec:///bin/sh?arg=a b", "percent-encoded"),
        ("exec:///bin/sh#x", "no fragment"),
    ];
    for (text, expected) in cases {
        let message = rejected(text);
        assert!(message.contains(expected), "{text:?}: {message}");
    }
}

#[test]
fn text_without_a_known_scheme_is_not_repeated() {
    // It may be a value pasted where a reference belongs.
    let message = rejected("sk_live_abcdef0123456789");
    assert!(!message.contains("sk_live"), "{message}");
}

#[test]
fn limits_are_enforced() {
    let long = format!("file:///{}", "a".repeat(secret_refs::MAX_REF_LEN));
    assert!(rejected(&long).contains("longer than"));
    let long_path = format!("file:///{}", "a/".repeat(2100) + "a");
    assert!(rejected(&long_path).contains("longer than"));
    let many = format!("exec:///bin/echo?{}", vec!["arg=x"; 65].join("&"));
    assert!(rejected(&many).contains("more than 64"));
    let fine = format!("exec:///bin/echo?{}", vec!["arg=x"; 64].join("&"));
    ok(&fine);
    let long_name = format!("env://{}", "A".repeat(129));
    assert!(rejected(&long_name).contains("1 to 128"));
    // Error messages stay short even for huge input.
    assert!(rejected(&long).len() < 400);
}

proptest! {
    #[test]
    fn never_panics_and_round_trips(text in "\\PC{0,80}") {
        if let Ok(r) = parse(&text) {
            prop_assert_eq!(parse(&r.to_string()).ok(), Some(r));
        }
    }

    #[test]
    fn scheme_prefixed_noise_never_panics(
        scheme in prop::sample::select(vec!["vault://", "env://", "file:///", "exec:///"]),
        rest in "[ -~]{0,60}",
    ) {
        let text = format!("{scheme}{rest}");
        if let Ok(r) = parse(&text) {
            prop_assert_eq!(parse(&r.to_string()).ok(), Some(r));
        }
    }

    #[test]
    fn any_path_and_args_round_trip(
        segments in prop::collection::vec("[^/\\x00-\\x1f\\x7f]{1,12}", 1..5),
        args in prop::collection::vec("[^\\x00]{0,12}", 0..5),
    ) {
        prop_assume!(segments.iter().all(|s| s != "." && s != ".."));
        let path = PathBuf::from(format!("/{}", segments.join("/")));
        prop_assume!(!path.to_string_lossy().chars().any(char::is_control));
        let exec = SecretRef::Exec { program: path.clone(), args };
        prop_assert_eq!(parse(&exec.to_string()).ok(), Some(exec));
        let file = SecretRef::File { path };
        prop_assert_eq!(parse(&file.to_string()).ok(), Some(file));
    }
}
