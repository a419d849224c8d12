//! Replays the fuzzers' checked-in corpora (`fuzz/corpus/<target>/`: the seeds and every input
//! that ever crashed a target) through the same checks as the fuzz targets, so that a fixed
//! crash stays fixed in a plain `cargo test`.

mod golden;

use std::mem::discriminant;

use envelope::{Context, EnvelopeRef, Error, SecretBytes, from_json, open, rewrap, to_json};
use test_support::fuzz_corpus::for_each_seed;

/// `rewrap` fails exactly when `open` does, with the same error variant, and what it returns
/// opens to the same plaintext (as in `fuzz/fuzz_targets/envelope_binary.rs`).
fn check_rewrap(data: &[u8], ctx: &Context<'_>, opened: &Result<SecretBytes, Error>) {
    let keks = [golden::KEK_A.provider(), golden::KEK_B.provider()];
    let wrap_with = &keks[1..];
    match (opened, rewrap(data, ctx, &keks, wrap_with)) {
        (Ok(plain), Ok(out)) => {
            let again = open(&out.envelope, ctx, wrap_with).expect("open of rewrap");
            assert_eq!(again.expose_secret(), plain.expose_secret());
        }
        (Err(open_err), Err(rewrap_err)) => {
            assert_eq!(discriminant(open_err), discriminant(&rewrap_err));
        }
        (opened, rewrapped) => panic!("open {opened:?} but rewrap {rewrapped:?}"),
    }
}

/// The checks of `fuzz/fuzz_targets/envelope_binary.rs`.
fn check_binary(data: &[u8]) -> bool {
    let keks = [golden::KEK_A.provider(), golden::KEK_B.provider()];
    let parsed = EnvelopeRef::parse(data);
    let mut opened_any = false;
    for vector in golden::VECTORS {
        let opened = open(data, &vector.context(), &keks);
        if let Err(parse_err) = &parsed {
            let open_err = opened
                .as_ref()
                .expect_err("open accepted what parse rejected");
            assert_eq!(discriminant(parse_err), discriminant(open_err));
        } else {
            opened_any |= opened.is_ok();
        }
        check_rewrap(data, &vector.context(), &opened);
    }
    if parsed.is_ok() {
        let json = to_json(data).expect("to_json of a parsed envelope");
        assert_eq!(from_json(&json).expect("from_json of to_json"), data);
    }
    opened_any
}

/// The checks of `fuzz/fuzz_targets/envelope_json.rs`.
fn check_json(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(bytes) = from_json(text) else {
        return false;
    };
    EnvelopeRef::parse(&bytes).expect("from_json returns a valid envelope");
    let json = to_json(&bytes).expect("to_json of from_json");
    assert_eq!(from_json(&json).expect("from_json of to_json"), bytes);
    true
}

#[test]
fn binary_corpus_passes_the_fuzz_checks_and_its_seeds_open() {
    let mut opened = 0;
    for_each_seed("envelope_binary", |name, data| {
        let ok = check_binary(data);
        if name.contains("golden-") {
            assert!(ok, "seed {name} does not open");
        }
        opened += usize::from(ok);
    });
    // The golden seeds: three of format v1 and three of v2.
    assert!(opened >= 6);
}

#[test]
fn json_corpus_passes_the_fuzz_checks_and_its_seeds_convert() {
    for_each_seed("envelope_json", |name, data| {
        let ok = check_json(data);
        if name.contains("golden-") {
            assert!(ok, "seed {name} is not a valid JSON envelope");
        }
    });
}
