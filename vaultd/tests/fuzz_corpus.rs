//! Replays the checked-in corpus of the `grpc_requests` fuzz target
//! (`fuzz/corpus/grpc_requests/`: the seeds and every input that ever crashed it) through the
//! target's check, so a fixed crash stays fixed in a plain `cargo test`.

use std::path::Path;

#[path = "fuzz_checks/grpc_requests.rs"]
mod grpc_requests_check;

#[test]
fn grpc_requests_corpus_passes_the_service_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/grpc_requests");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let data = std::fs::read(&path).expect("read");
        let verdict = grpc_requests_check::check_grpc_request(&data);
        // Seeds say what they expect: ok-* decode and pass, bad-* decode and are refused,
        // undecodable-* do not decode (regression-* either way).
        if name.starts_with("ok-") {
            assert_eq!(verdict, Some(true), "{name}");
        } else if name.starts_with("bad-") {
            assert_eq!(verdict, Some(false), "{name}");
        } else if name.starts_with("undecodable-") {
            assert_eq!(verdict, None, "{name}");
        }
        replayed += 1;
    }
    assert!(replayed > 0, "the corpus is missing");
}
