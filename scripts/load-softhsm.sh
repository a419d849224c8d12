#!/usr/bin/env bash
# vaultd on a direct-mode vault whose KEK is an AES key on a private SoftHSM2 token, under
# vault-load against its in-process tonic mTLS echo limit in the same run: in direct mode
# every seal and open wraps or unwraps its DEK on the token, so this measures the daemon's
# device path (the KEK pool, the token's sessions) rather than the envelope in memory.
#
#   scripts/load-softhsm.sh [vault-load args...]   e.g. --clients 8 --mode mix --mix seal=1,open=1
#
# Builds release, makes a token in a private directory (its own SOFTHSM2_CONF), generates
# the KEK with `vaultctl kek create`, inits the vault, starts vaultd with the rate limit
# raised, runs vault-load, and stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/softhsm-token.sh

cargo build --release -p vaultd -p vaultctl -p benches \
    --bin vaultd --bin vaultctl --bin vault-load >&2

module=${VAULT_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
dir=$(mktemp -d "${TMPDIR:-/tmp}/vault-load-softhsm.XXXXXX")
daemon=""
cleanup() {
    if [ -n "$daemon" ]; then
        kill -TERM "$daemon" 2>/dev/null || true
        wait "$daemon" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

private_token "$dir" vault-load
uri="pkcs11:token=vault-load;object=kek-1?module-path=$module&pin-source=env:VAULT_TOKEN_PIN"

vaultctl=target/release/vaultctl
"$vaultctl" kek create "$uri" >/dev/null
VAULTCTL_DIR="$dir/vault" "$vaultctl" init --mode direct --kek "$uri" >/dev/null
"$vaultctl" pki init --pki-dir "$dir/tls" --host 127.0.0.1 >/dev/null
"$vaultctl" pki issue --pki-dir "$dir/tls" --principal admin >/dev/null
install -m 600 /dev/null "$dir/vaultd.toml"
cat >"$dir/vaultd.toml" <<EOF
listen = "127.0.0.1:0"
vault_dir = "$dir/vault"
tls.dir = "$dir/tls"
[[acl]]
principal = "admin"
scopes = ["*"]
operations = ["read", "write", "delete", "list", "seal", "open"]
EOF
VAULTD_RATE_PER_SECOND=10000000 VAULTD_BURST=10000000 VAULTD_METRICS_LISTEN=127.0.0.1:0 \
    target/release/vaultd --config "$dir/vaultd.toml" >"$dir/out" 2>"$dir/err" &
daemon=$!
addr=""
for _ in $(seq 300); do
    addr=$(sed -n 's/^vaultd listening on \(https:\/\/[^ ]*\)$/\1/p' "$dir/out")
    [ -n "$addr" ] && break
    sleep 0.1
done
if [ -z "$addr" ]; then
    echo "load-softhsm.sh: vaultd did not start:" >&2
    cat "$dir/err" >&2
    exit 2
fi
echo "load-softhsm.sh: vaultd (pid $daemon) on $addr" >&2

target/release/vault-load --addr "$addr" --ca "$dir/tls/ca.pem" \
    --cert "$dir/tls/clients/admin.pem" --key "$dir/tls/clients/admin.key" \
    --label "softhsm direct" --value-bytes 64 --seconds 10 --rounds 5 --warmup 1 "$@"
