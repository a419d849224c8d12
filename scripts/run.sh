#!/usr/bin/env bash
# The README's run command: creates a vault on the embedded default (a file KEK and the
# SQLite store) in ./dev-vault, stores a secret, reads it back, and prints how to go on.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --locked -q -p vaultctl
bin="$PWD/target/release/vaultctl"
dir="${VAULT_DIR:-$PWD/dev-vault}"

if [ ! -f "$dir/vault.json" ]; then
    "$bin" --vault "$dir" init
fi
printf 'example-password' | "$bin" --vault "$dir" set global example-password
printf 'read back: '
"$bin" --vault "$dir" get global example-password
printf '\n\n'
"$bin" --vault "$dir" status
cat <<MSG

To keep using this vault:
  export VAULT_DIR="$dir" PATH="$PWD/target/release:\$PATH"
  printf 's3cret' | vaultctl set global my-key && vaultctl get global my-key
MSG
