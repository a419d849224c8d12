//! JSON envelopes: `from_json` never panics, and whatever it accepts is a canonical binary
//! envelope that converts to JSON and back to the same bytes.
#![no_main]

use envelope::{EnvelopeRef, from_json, to_json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(bytes) = from_json(text) {
        EnvelopeRef::parse(&bytes).expect("from_json returns a valid envelope");
        let json = to_json(&bytes).expect("to_json of from_json");
        assert_eq!(from_json(&json).expect("from_json of to_json"), bytes);
    }
});
