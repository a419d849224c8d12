//! The JSON export form: round trips with the binary form, and rejects what the binary parser
//! rejects with the same errors, plus JSON's own (syntax, unknown fields, bad base64).

use std::sync::Arc;

use envelope::{Context, Error, KekProvider, MAX_JSON_LEN, SoftwareKek, from_json, seal, to_json};
use serde_json::{Value, json};

/// An edit of a valid JSON envelope.
type Edit = Box<dyn FnOnce(&mut Value)>;

fn sealed_json() -> (Vec<u8>, Value) {
    let k: Arc<dyn KekProvider> = Arc::new(SoftwareKek::random("a").expect("kek"));
    let env = seal(b"s3cret", &Context::new("global", "k", 1), &[k]).expect("seal");
    let doc = serde_json::from_str(&to_json(&env).expect("to_json")).expect("valid JSON");
    (env, doc)
}

fn err_of(doc: &Value) -> Error {
    from_json(&doc.to_string()).expect_err("invalid JSON envelope")
}

fn edited(edit: impl FnOnce(&mut Value)) -> Error {
    let (_, mut doc) = sealed_json();
    edit(&mut doc);
    err_of(&doc)
}

#[test]
fn json_round_trips_and_does_not_depend_on_layout() {
    let (env, doc) = sealed_json();
    assert_eq!(from_json(&doc.to_string()).expect("compact"), env);
    assert_eq!(
        from_json(&serde_json::to_string_pretty(&doc).expect("pretty")).expect("pretty"),
        env
    );
    assert_eq!(doc["format"], "vault-envelope");
    assert_eq!(doc["version"], 2);
    assert_eq!(doc["aead"], "chacha20-poly1305");
    assert_eq!(doc["stanzas"][0]["kind"], "memory");
    assert_eq!(doc["stanzas"][0]["key_version"], 1);
}

#[test]
fn header_fields_give_the_binary_parsers_errors() {
    assert!(matches!(
        edited(|d| d["format"] = json!("age")),
        Error::BadMagic
    ));
    for v in [0, 3, 255] {
        let err = edited(|d| d["version"] = json!(v));
        assert!(
            matches!(err, Error::UnsupportedVersion(x) if x == v),
            "{err:?}"
        );
    }
    let err = edited(|d| d["aead"] = json!("aes-256-gcm"));
    assert!(
        matches!(err, Error::Json(ref m) if m.contains("aead")),
        "{err:?}"
    );
}

#[test]
fn stanza_fields_give_the_binary_parsers_errors() {
    let cases: Vec<(Edit, &str, bool)> = vec![
        (
            Box::new(|d| d["stanzas"] = json!([])),
            "stanza count",
            false,
        ),
        (
            Box::new(|d| {
                let s = d["stanzas"][0].clone();
                d["stanzas"] = Value::Array(vec![s; 17]);
            }),
            "stanza count",
            true,
        ),
        (
            Box::new(|d| d["stanzas"][0]["kind"] = json!("")),
            "stanza kind",
            false,
        ),
        (
            Box::new(|d| d["stanzas"][0]["kind"] = json!("File")),
            "stanza kind",
            false,
        ),
        (
            Box::new(|d| d["stanzas"][0]["kind"] = json!("k".repeat(33))),
            "stanza kind",
            true,
        ),
        (
            Box::new(|d| d["stanzas"][0]["label"] = json!("a\nb")),
            "stanza label",
            false,
        ),
        (
            Box::new(|d| d["stanzas"][0]["label"] = json!("l".repeat(256))),
            "stanza label",
            true,
        ),
        (
            Box::new(|d| d["stanzas"][0]["body"] = json!("")),
            "stanza body",
            false,
        ),
        (
            Box::new(|d| d["stanzas"][0]["body"] = json!("!!!!")),
            "stanza body",
            false,
        ),
        (
            Box::new(|d| d["stanzas"][0]["body"] = json!("AA")),
            "stanza body",
            false,
        ),
        (
            Box::new(|d| d["stanzas"][0]["body"] = json!("A".repeat(10924))),
            "stanza body",
            true,
        ),
        (
            Box::new(|d| d["ciphertext"] = json!("AAAA")),
            "ciphertext",
            false,
        ),
        (
            Box::new(|d| d["ciphertext"] = json!("AAA=A")),
            "ciphertext",
            false,
        ),
    ];
    for (edit, want, too_long) in cases {
        match (edited(edit), too_long) {
            (Error::FieldTooLong { field, .. }, true) | (Error::Malformed { field, .. }, false) => {
                assert_eq!(field, want)
            }
            (other, _) => panic!("{want}: {other:?}"),
        }
    }
}

#[test]
fn json_syntax_types_and_unknown_fields_are_json_errors() {
    for text in ["", "{", "[]", "null", "{\"format\": \"vault-envelope\"}"] {
        let err = from_json(text).expect_err("not an envelope");
        assert!(matches!(err, Error::Json(_)), "{text:?}: {err:?}");
    }
    let edits: [Edit; 4] = [
        Box::new(|d| d["extra"] = json!(1)),
        Box::new(|d| d["stanzas"][0]["extra"] = json!(1)),
        Box::new(|d| d["version"] = json!(256)),
        Box::new(|d| d["stanzas"][0]["key_version"] = json!(-1)),
    ];
    for edit in edits {
        let err = edited(edit);
        assert!(matches!(err, Error::Json(_)), "{err:?}");
    }
}

#[test]
fn json_errors_do_not_quote_the_input() {
    let err = from_json("{\"format\": \"vault-envelope\", \"hunter2\": 1}").expect_err("bad");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn oversized_json_is_refused_before_parsing() {
    let text = " ".repeat(MAX_JSON_LEN + 1);
    let err = from_json(&text).expect_err("too large");
    assert!(
        matches!(
            err,
            Error::FieldTooLong {
                field: "JSON envelope",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn to_json_rejects_what_the_binary_parser_rejects() {
    let (env, _) = sealed_json();
    assert!(matches!(
        to_json(&env[..env.len() - 1]),
        Err(Error::Truncated { .. })
    ));
    assert!(matches!(to_json(b"nope"), Err(Error::BadMagic)));
}
