//! Every vaultd request type: arbitrary bytes decoded as the request with prost (as tonic
//! does; the first byte picks the type), then the service's checks of the request's own
//! contents (`vaultd::service::checks`: the ask the gates see, the name validation, the Put
//! size limit, the data key length, the audit tail count). Nothing panics; a decoded message
//! re-encodes to the same message; an ask addresses what the message names; refusals are
//! INVALID_ARGUMENT with bounded messages; names the gates pass, the vault accepts.
//! vaultd/tests/fuzz_corpus.rs replays the corpus through the same check
//! (vaultd/tests/fuzz_checks/grpc_requests.rs).
#![no_main]

#[path = "../../vaultd/tests/fuzz_checks/grpc_requests.rs"]
mod check;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check::check_grpc_request(data);
});
