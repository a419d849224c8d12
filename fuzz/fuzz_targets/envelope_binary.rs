//! Binary envelopes: `EnvelopeRef::parse` and `open` with the golden vectors' test KEKs and
//! contexts (so the seed corpus reaches the successful open path), checking that:
//! - nothing panics;
//! - `open` fails whenever `parse` does, with the same error variant;
//! - what parses converts to JSON and back to the same bytes.
#![no_main]

#[path = "../../envelope/tests/golden/mod.rs"]
mod golden;

use std::sync::{Arc, OnceLock};

use envelope::{EnvelopeRef, KekProvider, from_json, open, to_json};
use libfuzzer_sys::fuzz_target;

fn keks() -> &'static [Arc<dyn KekProvider>] {
    static KEKS: OnceLock<Vec<Arc<dyn KekProvider>>> = OnceLock::new();
    KEKS.get_or_init(|| vec![golden::KEK_A.provider(), golden::KEK_B.provider()])
}

fuzz_target!(|data: &[u8]| {
    let parsed = EnvelopeRef::parse(data);
    for vector in golden::VECTORS {
        let opened = open(data, &vector.context(), keks());
        if let Err(parse_err) = &parsed {
            let open_err = opened.expect_err("open accepted what parse rejected");
            assert_eq!(
                std::mem::discriminant(parse_err),
                std::mem::discriminant(&open_err)
            );
        }
    }
    if let Ok(parsed) = parsed {
        let _ = parsed.stanzas().count();
        let json = to_json(data).expect("to_json of a parsed envelope");
        assert_eq!(from_json(&json).expect("from_json of to_json"), data);
    }
});
