#!/usr/bin/env bash
# The project's test command (README): installs what it needs, then runs every check.
# Hardware tests must not skip here.
set -euo pipefail
cd "$(dirname "$0")/.."
export VAULT_REQUIRE_HW=1
export CARGO_TERM_COLOR=never
# libtss2 prints every failing TPM command itself; the tests provoke many on purpose.
export TSS2_LOG=all+none

step() { printf '\n== %s\n' "$*"; }

step "system packages"
scripts/install-deps.sh

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests"
cargo test --workspace --locked

step "benchmarks build and run once"
cargo bench -p benches --locked -- --test

step "fuzz (20 s per target)"
for target in envelope_binary envelope_json threshold_stanza pkcs11_uri tpm2_uri kek_uri \
    scope_key secret_ref vault_config audit_line grpc_requests config_scan; do
    scripts/fuzz.sh "$target" 20
done

step "all checks passed"
