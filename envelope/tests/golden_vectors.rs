//! The checked-in golden vectors of envelope formats v1 and v2 open to their plaintexts, and
//! their JSON and binary forms convert into each other exactly. Every later version must keep
//! passing this.

mod golden;

use envelope::{EnvelopeRef, Error, FORMAT_VERSION, FORMAT_VERSION_1, from_json, open, to_json};
use golden::{KEK_A, VECTORS};

fn read(name: &str) -> Vec<u8> {
    let path = golden::vectors_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_vector_opens_with_each_of_its_keks() {
    for v in VECTORS {
        let bytes = read(&format!("{}.bin", v.name));
        for kek in v.keks {
            let plain = open(&bytes, &v.context(), &[kek.provider()])
                .unwrap_or_else(|e| panic!("{} with {}: {e}", v.name, kek.label));
            assert_eq!(plain.expose_secret(), v.plaintext, "{}", v.name);
        }
    }
}

#[test]
fn vectors_of_both_format_versions_are_checked_in_and_say_which_they_are() {
    for format in [FORMAT_VERSION_1, FORMAT_VERSION] {
        let of_format: Vec<_> = VECTORS.iter().filter(|v| v.format == format).collect();
        assert!(of_format.len() >= 3, "format {format}");
        for v in of_format {
            let bytes = read(&format!("{}.bin", v.name));
            let parsed = EnvelopeRef::parse(&bytes).expect("parse");
            assert_eq!(parsed.version(), format, "{}", v.name);
            let json = String::from_utf8(read(&format!("{}.json", v.name))).expect("UTF-8");
            assert!(
                json.contains(&format!("\"version\": {format},")),
                "{}",
                v.name
            );
        }
    }
}

#[test]
fn stanzas_name_the_test_keks_in_order() {
    for v in VECTORS {
        let bytes = read(&format!("{}.bin", v.name));
        let parsed = EnvelopeRef::parse(&bytes).expect("parse");
        let ids: Vec<String> = parsed.stanzas().map(|s| s.describe()).collect();
        let want: Vec<String> = v.keks.iter().map(|k| k.id().to_string()).collect();
        assert_eq!(ids, want, "{}", v.name);
        assert_eq!(parsed.plaintext_len(), v.plaintext.len());
    }
}

#[test]
fn json_and_binary_forms_convert_exactly() {
    for v in VECTORS {
        let bytes = read(&format!("{}.bin", v.name));
        let json = String::from_utf8(read(&format!("{}.json", v.name))).expect("UTF-8");
        assert_eq!(from_json(&json).expect("from_json"), bytes, "{}", v.name);
        assert_eq!(to_json(&bytes).expect("to_json"), json, "{}", v.name);
        let again = from_json(&to_json(&bytes).expect("to_json")).expect("from_json");
        assert_eq!(again, bytes, "{}: binary -> JSON -> binary", v.name);
        let plain = open(&again, &v.context(), &[v.keks[0].provider()]).expect("open");
        assert_eq!(plain.expose_secret(), v.plaintext);
    }
}

#[test]
fn a_vector_does_not_open_in_another_vectors_context() {
    let bytes = read("secret-64B.bin");
    let other = VECTORS[0].context();
    let err = open(&bytes, &other, &[KEK_A.provider()]).expect_err("wrong context");
    assert!(matches!(err, Error::StanzaRejected { .. }), "{err:?}");
}
