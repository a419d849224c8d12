#!/usr/bin/env bash
# Runs one cargo-fuzz target for a while on the stable toolchain (no sanitizer, so no nightly).
#
#   scripts/fuzz.sh TARGET SECONDS      e.g. scripts/fuzz.sh envelope_binary 60
#
# Targets (fuzz/fuzz_targets/), by the crate whose parser they fuzz:
#   envelope:      envelope_binary, envelope_json
#   kek-providers: threshold_stanza, pkcs11_uri, tpm2_uri, kek_uri (every KEK URI scheme)
#   vault:         scope_key, vault_config (vault.json), audit_line (the audit log reader)
#   secret-refs:   secret_ref
#   vaultd:        grpc_requests (every request type, decoded, then the service's checks)
#   config-scan:   config_scan (one file of each format)
# The checked-in seeds in fuzz/corpus/TARGET are read, never written: new inputs go to
# fuzz/target/corpus/TARGET.
# A crash leaves its input in fuzz/artifacts/TARGET/ and exits non-zero. After the fix, copy
# that input into fuzz/corpus/TARGET/ (as regression-<what>): the tests/fuzz_corpus.rs of
# the crate named above replays its targets' corpora through the targets' checks in every
# `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

if [ $# -ne 2 ]; then
    echo "usage: scripts/fuzz.sh TARGET SECONDS" >&2
    exit 2
fi
target="$1"
seconds="$2"

if ! cargo +stable fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo +stable install cargo-fuzz --locked
fi

work="target/corpus/$target"
mkdir -p "$work"
# -a: debug assertions and overflow checks, so that arithmetic slips in the parser crash.
exec cargo +stable fuzz run -s none -a "$target" "$work" "corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1
