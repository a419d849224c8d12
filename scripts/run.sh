#!/usr/bin/env bash
# The README's run command: starts vaultd in development mode on the embedded default (a file
# KEK and the SQLite store, a CA and certificates for mutual TLS, all in ./vault-dev), stores
# and reads back a secret through it with vaultctl, prints the environment that points
# vaultctl at it, and keeps serving until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --build
cargo build --release --locked -q -p vaultd -p vaultctl
bin="$PWD/target/release"
dev="${VAULT_DEV_DIR:-$PWD/vault-dev}"
listen="${VAULTD_LISTEN:-127.0.0.1:8443}"

out="$(mktemp)"
"$bin/vaultd" --dev --dev-dir "$dev" --listen "$listen" >"$out" &
daemon=$!
trap 'kill -TERM "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null; rm -f "$out"' EXIT INT TERM
for _ in $(seq 1 100); do
    grep -q '^vaultd listening' "$out" && break
    kill -0 "$daemon" 2>/dev/null || { cat "$out"; echo "vaultd did not start" >&2; exit 1; }
    sleep 0.1
done
eval "$(grep '^export ' "$out")"
export PATH="$bin:$PATH"

printf 'example-password' | vaultctl set global example-password
printf 'read back: '
vaultctl get global example-password
printf '\n\n'
vaultctl status
cat <<MSG

vaultd is serving on ${VAULT_ADDR} (Ctrl-C stops it). In another shell:
$(grep '^export ' "$out")
export PATH="$bin:\$PATH"
printf 's3cret' | vaultctl set global my-key && vaultctl get global my-key
MSG
wait "$daemon"
