//! Binary envelopes: `EnvelopeRef::parse`, `open` and `rewrap` with the golden vectors' test
//! KEKs and contexts (so the seed corpus reaches the successful open path), checking that:
//! - nothing panics;
//! - `open` fails whenever `parse` does, with the same error variant;
//! - `rewrap` fails exactly when `open` does, with the same error variant, and what it
//!   returns opens to the same plaintext;
//! - what parses converts to JSON and back to the same bytes.
#![no_main]

#[path = "../../envelope/tests/golden/mod.rs"]
mod golden;

use std::mem::discriminant;
use std::sync::{Arc, OnceLock};

use envelope::{
    Context, EnvelopeRef, Error, KekProvider, SecretBytes, from_json, open, rewrap, to_json,
};
use libfuzzer_sys::fuzz_target;

fn keks() -> &'static [Arc<dyn KekProvider>] {
    static KEKS: OnceLock<Vec<Arc<dyn KekProvider>>> = OnceLock::new();
    KEKS.get_or_init(|| vec![golden::KEK_A.provider(), golden::KEK_B.provider()])
}

fn check_rewrap(data: &[u8], ctx: &Context<'_>, opened: &Result<SecretBytes, Error>) {
    let wrap_with = &keks()[1..];
    match (opened, rewrap(data, ctx, keks(), wrap_with)) {
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

fuzz_target!(|data: &[u8]| {
    let parsed = EnvelopeRef::parse(data);
    for vector in golden::VECTORS {
        let opened = open(data, &vector.context(), keks());
        if let Err(parse_err) = &parsed {
            let open_err = opened
                .as_ref()
                .expect_err("open accepted what parse rejected");
            assert_eq!(discriminant(parse_err), discriminant(open_err));
        }
        check_rewrap(data, &vector.context(), &opened);
    }
    if let Ok(parsed) = parsed {
        let _ = parsed.stanzas().count();
        let json = to_json(data).expect("to_json of a parsed envelope");
        assert_eq!(from_json(&json).expect("from_json of to_json"), data);
    }
});
