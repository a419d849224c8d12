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

step "supply chain: licenses, bans, sources, advisories (deny.toml)"
scripts/deny.sh

step "pcscd for the emulated PIV cards"
# Started before any TPM test and kept for the whole run: vpcd (loaded by pcscd) binds
# 35963/35964 without SO_REUSEADDR, inside the ephemeral port range, where the TIME_WAIT
# sockets of the swtpm tests' connections could take them. (A pcscd already running is kept
# and this one exits at once.)
"$(command -v pcscd || echo /usr/sbin/pcscd)" --foreground >/dev/null 2>&1 &
pcscd_pid=$!
trap 'kill "$pcscd_pid" 2>/dev/null || true' EXIT

step "tests"
cargo test --workspace --locked

step "the CI recipe's steps as written (examples/ci)"
cargo build --locked -q -p vaultctl
PATH="$PWD/target/debug:$PATH" scripts/ci-recipe.py examples/ci/github-actions.yml

step "benchmarks build and run once"
cargo bench -p benches --locked -- --test

step "fuzz (20 s per target)"
for target in envelope_binary envelope_json threshold_stanza pkcs11_uri tpm2_uri kek_uri \
    scope_key secret_ref vault_config audit_line grpc_requests config_scan; do
    scripts/fuzz.sh "$target" 20
done

step "all checks passed"
