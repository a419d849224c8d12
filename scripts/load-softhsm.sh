#!/usr/bin/env bash
# vaultd on a direct-mode vault whose KEK is an AES key on a private SoftHSM2 token, under
# vault-load: in direct mode every seal and open wraps or unwraps its DEK on the token, so
# this measures the daemon's device path (the KEK pool, the token's sessions) rather than
# the envelope in memory. Its limit is vault-load's in-process tonic mTLS echo, measured in
# the same run; with `--against software` first, it is instead the same daemon on a direct
# vault whose KEK is a key file (computed in process), loaded alternately: what the token
# costs the daemon.
#
#   scripts/load-softhsm.sh [--against software] [vault-load args...]
#       e.g. --clients 8 --mode mix --mix seal=1,open=1
#
# Builds release, makes a token in a private directory (its own SOFTHSM2_CONF), generates
# the KEK with `vaultctl kek create`, inits the vault(s), starts vaultd with the rate limit
# raised, runs vault-load, and stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/softhsm-token.sh
. scripts/vaultd-serve.sh

against=echo
if [ "${1:-}" = --against ]; then
    against=$2
    shift 2
    [ "$against" = software ] || {
        echo "load-softhsm.sh: --against takes software (the default limit is the echo)" >&2
        exit 2
    }
fi

cargo build --release -p vaultd -p vaultctl -p benches \
    --bin vaultd --bin vaultctl --bin vault-load >&2

module=${VAULT_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
run_dir vault-load-softhsm

private_token "$dir" vault-load
uri="pkcs11:token=vault-load;object=kek-1?module-path=$module&pin-source=env:VAULT_TOKEN_PIN"
target/release/vaultctl kek create "$uri" >/dev/null
serve softhsm direct "$uri"
softhsm_addr=$addr
echo "load-softhsm.sh: vaultd on $softhsm_addr" >&2

limit=()
if [ "$against" = software ]; then
    serve software direct "file:$dir/software.key"
    limit=(--limit-addr "$addr" $(tls_of limit software) --limit-label "key file direct")
    echo "load-softhsm.sh: against vaultd on a key-file direct vault on $addr" >&2
fi

target/release/vault-load --addr "$softhsm_addr" $(tls_of softhsm) \
    "${limit[@]}" --label "softhsm direct" --value-bytes 64 --seconds 10 --rounds 5 --warmup 1 "$@"
