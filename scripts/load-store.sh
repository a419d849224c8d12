#!/usr/bin/env bash
# The store at scale through the daemon: vaultd on a tiered vault preloaded with 1,000,000
# secrets against the same daemon on one with 1,000, loaded alternately in the same run with
# KV gets of uniformly random preloaded keys (64-byte values, the JIT cache off so that every
# get reads the store): the get p50 and p99 on the large vault within 1.5x of the small
# one's (`--store-json FILE` writes them as `store` rows for bench-report).
#
#   scripts/load-store.sh [--secrets N] [vault-load args...]   e.g. --seconds 3 --rounds 3
#
# Builds release, makes both vaults (vaultctl init with a key-file root KEK, TLS, an admin
# client), fills them through the library (examples/store-fill.rs: Vault::set_many in large
# transactions, about 20 s for a million), starts both daemons with the rate limit raised,
# runs vault-load with the large daemon measured and the small one as its limit, and stops
# everything. The vaults take about 350 MB in ${TMPDIR:-/tmp} while it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/vaultd-serve.sh

large=1000000
small=1000
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --secrets)
            large=$2
            shift 2
            ;;
        *)
            args+=("$1")
            shift
            ;;
    esac
done

cargo build --release -p vaultd -p vaultctl -p benches \
    --bin vaultd --bin vaultctl --bin vault-load >&2
cargo build --release -p benches --example store-fill >&2

run_dir vault-load-store

# A tiered vault of `count` secrets (filled through the library before vaultd starts, with
# the JIT cache off); sets $addr.
serve_filled() {
    local name=$1 count=$2 kek="file:$dir/$1.key"
    make_vault "$name" tiered "$kek"
    target/release/examples/store-fill "$dir/$name/vault" "$kek" "$count" >&2
    VAULTD_CACHE_TTL_SECS=0 start_vaultd "$name"
}

serve_filled large "$large"
large_addr=$addr
serve_filled small "$small"
small_addr=$addr
echo "load-store.sh: $large secrets on $large_addr, $small on $small_addr" >&2

# In the background, so that a signal to this script runs the trap at once.
target/release/vault-load --addr "$large_addr" $(tls_of large) \
    --limit-addr "$small_addr" $(tls_of limit small) \
    --label "$large secrets" --limit-label "$small secrets" \
    --keys "$large" --limit-keys "$small" --mode mix --mix get=1 --clients 4 \
    --value-bytes 64 --seconds 10 --rounds 5 --warmup 1 "${args[@]}" &
load=$!
status=0
wait "$load" || status=$?
exit "$status"
