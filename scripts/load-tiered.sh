#!/usr/bin/env bash
# vaultd on a tiered vault whose root KEK is a TPM (a private swtpm) against the same daemon
# on a tiered vault whose root KEK is a key file, loaded alternately in the same run: in
# tiered mode a seal or open uses only the epoch key in memory, so the device should cost
# (almost) nothing once the vault is unlocked.
#
#   scripts/load-tiered.sh [vault-load args...]   e.g. --clients 8 --mode mix --mix seal=1,open=1
#
# Builds release, starts swtpm, makes both vaults (init, TLS, an admin client), starts both
# daemons with the rate limit raised, runs vault-load with the TPM daemon measured and the
# software one as its limit (target ratio 0.9 unless given), and stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/vaultd-serve.sh

cargo build --release -p vaultd -p vaultctl -p benches \
    --bin vaultd --bin vaultctl --bin vault-load >&2

run_dir vault-load-tiered

# A free pair of loopback ports (swtpm's server p and control p + 1), below the ephemeral
# range: the swtpm TCTI's TIME_WAIT sockets must not take them.
port=$(python3 - <<'EOF'
import socket
for p in range(21000, 30000, 2):
    try:
        socks = [socket.socket() for _ in range(2)]
        for s, q in zip(socks, (p, p + 1)):
            s.bind(("127.0.0.1", q))
        for s in socks:
            s.close()
        print(p)
        break
    except OSError:
        for s in socks:
            s.close()
EOF
)
tcti="swtpm:host=127.0.0.1,port=$port"
mkdir -p "$dir/tpm"
"${VAULT_SWTPM:-swtpm}" socket --tpm2 --tpmstate "dir=$dir/tpm" \
    --server "type=tcp,port=$port,bindaddr=127.0.0.1" \
    --ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" \
    --flags not-need-init,startup-clear >"$dir/swtpm.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    tpm2_getrandom --tcti "$tcti" 8 --hex >/dev/null 2>&1 && break
    sleep 0.05
done
tpm2_getrandom --tcti "$tcti" 8 --hex >/dev/null

serve tpm tiered "tpm2:tcti=$tcti"
tpm_addr=$addr
serve software tiered "file:$dir/software.key"
software_addr=$addr
echo "load-tiered.sh: TPM vaultd on $tpm_addr, software vaultd on $software_addr" >&2

target/release/vault-load --addr "$tpm_addr" $(tls_of tpm) \
    --limit-addr "$software_addr" $(tls_of limit software) \
    --label "tpm tiered" --limit-label "software tiered" --target 0.9 \
    --value-bytes 64 --seconds 10 --rounds 5 --warmup 1 "$@"
