//! Replays the checked-in corpus of the `grpc_requests` fuzz target
//! (`fuzz/corpus/grpc_requests/`: the seeds and every input that ever crashed it) through the
//! target's check, so a fixed crash stays fixed in a plain `cargo test`.

use test_support::fuzz_corpus::for_each_seed;

#[path = "fuzz_checks/grpc_requests.rs"]
mod grpc_requests_check;

#[test]
fn grpc_requests_corpus_passes_the_service_checks() {
    for_each_seed("grpc_requests", |name, data| {
        let verdict = grpc_requests_check::check_grpc_request(data);
        // Seeds say what they expect: ok-* decode and pass, bad-* decode and are refused,
        // undecodable-* do not decode (regression-* either way).
        if name.starts_with("ok-") {
            assert_eq!(verdict, Some(true), "{name}");
        } else if name.starts_with("bad-") {
            assert_eq!(verdict, Some(false), "{name}");
        } else if name.starts_with("undecodable-") {
            assert_eq!(verdict, None, "{name}");
        }
    });
}
