#!/usr/bin/env bash
# Load test of vaultd over gRPC + mutual TLS beside its raw limit, measured in the same run
# (an in-process tonic mTLS echo of the same service; see benches/src/bin/vault-load.rs).
#
#   scripts/load.sh [vault-load args...]      e.g. scripts/load.sh --check --seconds 5
#
# Builds release, starts `vaultd --dev` in a tempdir with the rate limit raised, runs
# vault-load (64 clients, 64-byte values; get-only, seal-only and a mix, each 10 s against
# vaultd and 10 s against the limit in 5 alternating rounds, unless overridden), prints the
# results and stops the daemon with SIGTERM. Exits with vault-load's code (1 on failed
# calls, or with --check on a ratio below its target).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p vaultd -p benches --bin vaultd --bin vault-load >&2

dir=$(mktemp -d "${TMPDIR:-/tmp}/vault-load.XXXXXX")
daemon=""
load=""
cleanup() {
    if [ -n "$load" ] && kill -0 "$load" 2>/dev/null; then
        kill -TERM "$load" 2>/dev/null || true
        wait "$load" 2>/dev/null || true
    fi
    if [ -n "$daemon" ] && kill -0 "$daemon" 2>/dev/null; then
        kill -TERM "$daemon" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$daemon" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$daemon" 2>/dev/null || true
        wait "$daemon" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Measured as deployed: logs at their default level, metrics on their own listener.
VAULTD_RATE_PER_SECOND=10000000 VAULTD_BURST=10000000 VAULTD_METRICS_LISTEN=127.0.0.1:0 \
    target/release/vaultd --dev --dev-dir "$dir/dev" --listen 127.0.0.1:0 \
    >"$dir/vaultd.out" 2>"$dir/vaultd.err" &
daemon=$!

addr=""
for _ in $(seq 300); do
    addr=$(sed -n 's/^vaultd listening on \(https:\/\/[^ ]*\)$/\1/p' "$dir/vaultd.out")
    [ -n "$addr" ] && break
    if ! kill -0 "$daemon" 2>/dev/null; then
        echo "load.sh: vaultd exited before listening:" >&2
        cat "$dir/vaultd.err" >&2
        exit 2
    fi
    sleep 0.1
done
if [ -z "$addr" ]; then
    echo "load.sh: vaultd did not print its address within 30 s" >&2
    cat "$dir/vaultd.err" >&2
    exit 2
fi
echo "load.sh: vaultd (pid $daemon) on $addr" >&2

tls="$dir/dev/tls"
# In the background, so that a signal to this script runs the trap at once.
target/release/vault-load --addr "$addr" --ca "$tls/ca.pem" \
    --cert "$tls/clients/admin.pem" --key "$tls/clients/admin.key" \
    --clients 64 --value-bytes 64 --seconds 10 --rounds 5 --warmup 1 "$@" &
load=$!
status=0
wait "$load" || status=$?
load=""

if ! kill -0 "$daemon" 2>/dev/null; then
    echo "load.sh: vaultd died during the run:" >&2
    tail -20 "$dir/vaultd.err" >&2
    status=2
fi
exit "$status"
