//! RFC 7512 PKCS#11 URI parsing: the RFC's examples, canonical round trips, refusals.

use kek_providers::Error;
use kek_providers::pkcs11::{LibraryVersion, ObjectType, Pkcs11Uri};
use proptest::prelude::*;

fn parse(text: &str) -> Pkcs11Uri {
    Pkcs11Uri::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn refused(text: &str) -> Error {
    match Pkcs11Uri::parse(text) {
        Ok(uri) => panic!("{text} parsed: {uri:?}"),
        Err(e) => e,
    }
}

/// `parse(to_canonical(u)) == u` (without the PIN), and the canonical form is a fixed point.
fn assert_round_trip(text: &str) {
    let mut uri = parse(text);
    let canonical = uri.to_canonical();
    assert!(!canonical.contains("pin-value"), "{canonical}");
    assert!(
        canonical.len() <= text.len(),
        "{canonical} longer than {text}"
    );
    uri.clear_pin_value();
    let again = parse(&canonical);
    assert_eq!(again, uri, "{text} -> {canonical}");
    assert_eq!(again.to_canonical(), canonical);
}

// RFC 7512 section 7 examples, verbatim (the RFC folds the long ones over several lines for
// print; a URI has no whitespace, so they are joined here). The last example, with the
// vendor attributes `vendor-aaa` and `vendor-bbb`, is `RFC_VENDOR_EXAMPLE` below: this parser
// refuses it on purpose.
const RFC_EXAMPLES: &[&str] = &[
    "pkcs11:",
    "pkcs11:object=my-pubkey;type=public",
    "pkcs11:object=my-key;type=private?pin-source=file:/etc/token",
    "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token_pin",
    "pkcs11:object=my-sign-key;type=private?module-name=mypkcs11",
    "pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1",
    "pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin",
    "pkcs11:slot-description=Sun%20Metaslot",
    "pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;library-version=1.23",
    "pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;id=%01%02%03%Ba%dd%Ca%fe%04%05%06",
    "pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert",
    "pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;type=cert",
];

/// RFC 7512's last example: its vendor attributes are not named `x-...`.
const RFC_VENDOR_EXAMPLE: &str = "pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a?pin-source=file:/etc/token_pin&vendor-bbb=value-b";

// Indexes into RFC_EXAMPLES.
const RFC_EMPTY: usize = 0;
const RFC_PUBKEY: usize = 1;
const RFC_PIN_SOURCE: usize = 2;
const RFC_SOFTTOKEN: usize = 3;
const RFC_MODULE_NAME: usize = 4;
const RFC_MODULE_PATH: usize = 5;
const RFC_PIN_VALUE: usize = 6;
const RFC_SLOT_DESCRIPTION: usize = 7;
const RFC_LIBRARY: usize = 8;
const RFC_JOE: usize = 9;
const RFC_SUBSTRING: usize = 10;
const RFC_ACUTE: usize = 11;

#[test]
fn rfc_examples_parse_and_round_trip() {
    assert_eq!(RFC_EXAMPLES.len(), 12);
    for example in RFC_EXAMPLES {
        assert_round_trip(example);
    }
}

#[test]
fn rfc_vendor_example_is_refused_by_name() {
    let err = refused(RFC_VENDOR_EXAMPLE);
    assert!(
        matches!(&err, Error::Pkcs11UnknownAttribute { name, .. } if name == "vendor-aaa"),
        "{err:?}"
    );
    assert!(err.to_string().contains("x-"), "{err}");
    // Its query attribute alone is refused the same way.
    let err = refused("pkcs11:?pin-source=file:/etc/token_pin&vendor-bbb=value-b");
    assert!(
        matches!(&err, Error::Pkcs11UnknownAttribute { name, .. } if name == "vendor-bbb"),
        "{err:?}"
    );
    // Spelt with x-, the same URI parses, and the vendor attributes are ignored.
    let uri = parse(
        "pkcs11:token=my-token;object=my-certificate;type=cert;x-vendor-aaa=value-a?pin-source=file:/etc/token_pin&x-vendor-bbb=value-b",
    );
    assert_eq!(uri.token.as_deref(), Some("my-token"));
    assert_eq!(uri.object.as_deref(), Some("my-certificate"));
    assert_eq!(uri.object_type, Some(ObjectType::Cert));
    assert_eq!(uri.pin_source.as_deref(), Some("file:/etc/token_pin"));
    assert_eq!(
        uri.to_canonical(),
        "pkcs11:token=my-token;object=my-certificate;type=cert?pin-source=file:/etc/token_pin"
    );
}

#[test]
fn empty_uri_matches_everything() {
    assert_eq!(parse(RFC_EXAMPLES[RFC_EMPTY]), Pkcs11Uri::default());
    assert_eq!(parse("pkcs11:?"), Pkcs11Uri::default());
    assert_eq!(Pkcs11Uri::default().to_canonical(), "pkcs11:");
}

#[test]
fn softtoken_example_fields() {
    let uri = parse(RFC_EXAMPLES[RFC_SOFTTOKEN]);
    assert_eq!(uri.token.as_deref(), Some("The Software PKCS#11 Softtoken"));
    assert_eq!(uri.manufacturer.as_deref(), Some("Snake Oil, Inc."));
    assert_eq!(uri.model.as_deref(), Some("1.0"));
    assert_eq!(uri.object.as_deref(), Some("my-certificate"));
    assert_eq!(uri.object_type, Some(ObjectType::Cert));
    assert_eq!(uri.serial.as_deref(), Some(""));
    assert_eq!(
        uri.id.as_deref(),
        Some(&[0x69, 0x95, 0x3E, 0x5C, 0xF4, 0xBD, 0xEC, 0x91][..])
    );
    assert_eq!(uri.pin_source.as_deref(), Some("file:/etc/token_pin"));
    assert!(!uri.pin_value_given());
    // Fixed attribute order; %69 is the unreserved 'i', written literally.
    assert_eq!(
        uri.to_canonical(),
        "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;serial=;model=1.0;object=my-certificate;type=cert;id=i%95%3E%5C%F4%BD%EC%91?pin-source=file:/etc/token_pin"
    );
}

#[test]
fn object_examples_fields() {
    let uri = parse(RFC_EXAMPLES[RFC_PUBKEY]);
    assert_eq!(uri.object.as_deref(), Some("my-pubkey"));
    assert_eq!(uri.object_type, Some(ObjectType::Public));
    assert_eq!(uri.token, None);
    assert_eq!(
        parse(RFC_EXAMPLES[RFC_SLOT_DESCRIPTION])
            .slot_description
            .as_deref(),
        Some("Sun Metaslot")
    );
}

#[test]
fn escapes_and_utf8_decode() {
    assert_eq!(
        parse(RFC_EXAMPLES[RFC_SUBSTRING]).token.as_deref(),
        Some("A name with a substring %;")
    );
    assert_eq!(
        parse(RFC_EXAMPLES[RFC_ACUTE]).token.as_deref(),
        Some("Name with a small A with acute: \u{e1}")
    );
    // Lower-case hex digits are the same escape.
    assert_eq!(parse("pkcs11:object=a%2fb").object.as_deref(), Some("a/b"));
}

#[test]
fn mixed_case_escapes_and_short_library_version() {
    let uri = parse(RFC_EXAMPLES[RFC_JOE]);
    assert_eq!(uri.token.as_deref(), Some("My token% created by Joe"));
    assert_eq!(
        uri.library_version,
        Some(LibraryVersion { major: 3, minor: 0 })
    );
    assert_eq!(
        uri.id.as_deref(),
        Some(&[0x01, 0x02, 0x03, 0xBA, 0xDD, 0xCA, 0xFE, 0x04, 0x05, 0x06][..])
    );
    assert_eq!(
        uri.to_canonical(),
        "pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;id=%01%02%03%BA%DD%CA%FE%04%05%06"
    );
}

#[test]
fn query_attributes() {
    let uri = parse(RFC_EXAMPLES[RFC_PIN_SOURCE]);
    assert_eq!(uri.pin_source.as_deref(), Some("file:/etc/token"));
    assert_eq!(uri.object, Some("my-key".into()));
    assert_eq!(uri.object_type, Some(ObjectType::Private));
    let uri = parse(RFC_EXAMPLES[RFC_MODULE_PATH]);
    assert_eq!(
        uri.module_path.as_deref(),
        Some(std::path::Path::new("/mnt/libmypkcs11.so.1"))
    );
    assert_eq!(uri.object.as_deref(), Some("my-sign-key"));
    assert_eq!(
        parse(RFC_EXAMPLES[RFC_MODULE_NAME]).module_name.as_deref(),
        Some("mypkcs11")
    );
}

#[test]
fn library_version_and_slot_id() {
    let uri = parse(RFC_EXAMPLES[RFC_LIBRARY]);
    assert_eq!(uri.library_manufacturer.as_deref(), Some("Snake Oil, Inc."));
    assert_eq!(
        uri.library_description.as_deref(),
        Some("Soft Token Library")
    );
    assert_eq!(
        uri.library_version,
        Some(LibraryVersion {
            major: 1,
            minor: 23
        })
    );
    assert_eq!(
        parse("pkcs11:library-version=7").library_version,
        Some(LibraryVersion { major: 7, minor: 0 })
    );
    assert_eq!(
        parse("pkcs11:slot-id=18446744073709551615").slot_id,
        Some(u64::MAX)
    );
    assert_round_trip("pkcs11:library-version=7");
    assert_round_trip("pkcs11:library-version=007.000");
    // Not an RFC example: the slot attributes.
    let slot = "pkcs11:slot-manufacturer=Snake%20Oil,%20Inc.;slot-id=1";
    assert_round_trip(slot);
    let uri = parse(slot);
    assert_eq!(uri.slot_manufacturer.as_deref(), Some("Snake Oil, Inc."));
    assert_eq!(uri.slot_id, Some(1));
}

#[test]
fn pin_value_is_flagged_kept_secret_and_not_canonical() {
    let uri = parse(RFC_EXAMPLES[RFC_PIN_VALUE]);
    assert_eq!(uri.token.as_deref(), Some("Software PKCS#11 softtoken"));
    assert!(uri.pin_value_given());
    assert_eq!(
        uri.pin_value().map(|pin| pin.expose_secret()),
        Some(&b"the-pin"[..])
    );
    let debug = format!("{uri:?}");
    assert!(!debug.contains("the-pin"), "{debug}");
    assert_eq!(
        uri.to_canonical(),
        "pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc."
    );
    // A refused pin-value is not echoed either.
    let err = refused("pkcs11:?pin-value=sec%ZZret").to_string();
    assert!(!err.contains("sec"), "{err}");
}

#[test]
fn canonical_encodes_reserved_characters() {
    let mut uri = Pkcs11Uri::default();
    uri.token = Some("a;b?c/d%e f#".into());
    uri.pin_source = Some("file:/x&y;z".into());
    uri.id = Some(vec![0, 0xff, b'a']);
    let canonical = uri.to_canonical();
    assert_eq!(
        canonical,
        "pkcs11:token=a%3Bb%3Fc%2Fd%25e%20f%23;id=%00%FFa?pin-source=file:/x%26y%3Bz"
    );
    assert_eq!(parse(&canonical), uri);
}

#[test]
fn vendor_attributes_need_the_x_prefix() {
    let uri = parse("pkcs11:object=k;x-acme-slot=3?x-acme=1&module-name=m");
    assert_eq!(uri.object.as_deref(), Some("k"));
    assert_eq!(uri.to_canonical(), "pkcs11:object=k?module-name=m");
    let err = refused("pkcs11:?vendor-bbb=value-b");
    assert!(
        matches!(&err, Error::Pkcs11UnknownAttribute { name, .. } if name == "vendor-bbb"),
        "{err:?}"
    );
    // Names are case-sensitive, and path attributes do not belong in the query.
    assert!(matches!(
        refused("pkcs11:Object=k"),
        Error::Pkcs11UnknownAttribute { .. }
    ));
    assert!(matches!(
        refused("pkcs11:?object=k"),
        Error::Pkcs11UnknownAttribute { .. }
    ));
    assert!(matches!(
        refused("pkcs11:pin-source=f"),
        Error::Pkcs11UnknownAttribute { .. }
    ));
}

#[test]
fn malformed_uris_are_refused() {
    let long_value = format!("pkcs11:object={}", "a".repeat(1025));
    let long_uri = format!("pkcs11:object=a?x-pad={}", "b".repeat(4096));
    let cases: &[&str] = &[
        "",
        "pkcs11",
        "PKCS11:object=a",
        "file:/etc/key",
        // Bad escapes.
        "pkcs11:object=a%",
        "pkcs11:object=a%2",
        "pkcs11:object=a%zz",
        "pkcs11:object=a%%20",
        "pkcs11:id=%G0",
        // Characters that must be escaped.
        "pkcs11:object=a b",
        "pkcs11:object=a/b",
        "pkcs11:object=a#b",
        "pkcs11:object=\u{e1}",
        "pkcs11:?pin-source=a;b",
        // Not UTF-8 (only id takes raw bytes).
        "pkcs11:object=%FF",
        "pkcs11:?module-path=%C3",
        // Duplicates.
        "pkcs11:object=a;object=a",
        "pkcs11:type=cert;type=cert",
        "pkcs11:id=%01;id=%01",
        "pkcs11:?pin-source=a&pin-source=a",
        "pkcs11:?pin-value=a&pin-value=a",
        "pkcs11:?pin-source=a&pin-value=b",
        // Bad type.
        "pkcs11:type=secret",
        "pkcs11:type=",
        "pkcs11:type=Cert",
        // Bad slot-id.
        "pkcs11:slot-id=",
        "pkcs11:slot-id=-1",
        "pkcs11:slot-id=0x10",
        "pkcs11:slot-id=18446744073709551616",
        "pkcs11:slot-id=1%20",
        // Bad library-version.
        "pkcs11:library-version=",
        "pkcs11:library-version=1.",
        "pkcs11:library-version=.1",
        "pkcs11:library-version=1.2.3",
        "pkcs11:library-version=256",
        "pkcs11:library-version=1.256",
        // Empty or nameless attributes.
        "pkcs11:;",
        "pkcs11:object=a;",
        "pkcs11:;object=a",
        "pkcs11:object=a;;type=cert",
        "pkcs11:=a",
        "pkcs11:object",
        "pkcs11:?&",
        "pkcs11:?=a",
        "pkcs11:?module-name=a&",
        "pkcs11:x-=a",
        "pkcs11:ob ject=a",
        // Bounds.
        &long_value,
        &long_uri,
    ];
    for case in cases {
        let _ = refused(case);
    }
    assert!(matches!(
        refused(&long_uri),
        Error::UriTooLong { max: 4096, .. }
    ));
    assert!(matches!(
        refused(&long_value),
        Error::Pkcs11InvalidAttribute { name: "object", .. }
    ));
    assert!(matches!(
        refused("pkcs11:object=a;object=b"),
        Error::Pkcs11DuplicateAttribute { name: "object" }
    ));
    // Exactly at the bounds is fine.
    parse(&format!("pkcs11:object={}", "a".repeat(1024)));
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(text in ".{0,300}") {
        let _ = Pkcs11Uri::parse(&text);
        let _ = Pkcs11Uri::parse(&format!("pkcs11:{text}"));
    }

    #[test]
    fn uri_like_strings_never_panic_and_round_trip(
        text in "pkcs11:([a-z-]{1,20}=[a-zA-Z0-9%;&?=:/._-]{0,20}[;&?]?){0,6}"
    ) {
        if let Ok(mut uri) = Pkcs11Uri::parse(&text) {
            let canonical = uri.to_canonical();
            prop_assert!(canonical.len() <= text.len());
            uri.clear_pin_value();
            let again = Pkcs11Uri::parse(&canonical);
            prop_assert!(again.is_ok(), "{} -> {}", text, canonical);
            prop_assert_eq!(again.ok(), Some(uri));
        }
    }

    #[test]
    fn every_field_round_trips(
        token in proptest::option::of(".{0,40}"),
        object in proptest::option::of(".{0,40}"),
        id in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        slot_id in proptest::option::of(any::<u64>()),
        major in any::<u8>(),
        minor in any::<u8>(),
        pin_source in proptest::option::of(".{0,40}"),
        module_path in proptest::option::of("[^\u{0}]{0,40}"),
    ) {
        let mut uri = Pkcs11Uri::default();
        uri.token = token;
        uri.object = object;
        uri.id = id;
        uri.slot_id = slot_id;
        uri.library_version = Some(LibraryVersion { major, minor });
        uri.pin_source = pin_source;
        uri.module_path = module_path.map(Into::into);
        let canonical = uri.to_canonical();
        prop_assert_eq!(Pkcs11Uri::parse(&canonical).ok(), Some(uri));
    }
}
