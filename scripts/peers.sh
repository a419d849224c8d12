#!/usr/bin/env bash
# vaultctl beside the tools a CI pipeline would otherwise call, one process per operation:
#   - `vaultctl get` on a direct-mode vault whose KEK is an AES key on a private SoftHSM2
#     token, against `pkcs11-tool --decrypt` of one AES block with the same key on the same
#     token (both: load the module, log in, one C_Decrypt; target: vaultctl's time <= the
#     tool's, i.e. ratio >= 1.0 in the report's ops/s terms);
#   - `vaultctl get` on a tiered vault whose root KEK is a TPM (a private swtpm), against
#     `systemd-creds decrypt` of a TPM-bound credential on the same TPM (reported);
#   - vaultctl's start-up (`vaultctl --version`), and the sizes of the installed (dist
#     profile) vaultctl and vaultd (reported).
#
#   scripts/peers.sh [--runs N] [--json FILE]
#
# The runs alternate (vaultctl, peer, vaultctl, ...) after one warm-up each, so the machine's
# other load falls on both alike; the medians are compared. Builds the dist profile (what
# `cargo install --profile dist` installs). PINs are random per run and reach every tool
# through the environment (`pin-source=env:` for vaultctl, `env:NAME` for pkcs11-tool's
# --pin/--so-pin/--new-pin), never through argv.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/softhsm-token.sh

runs=51
json=target/bench-results/peers.json
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --json) json=$2; shift 2 ;;
        *) echo "peers.sh: unknown argument $1 (takes --runs N, --json FILE)" >&2; exit 2 ;;
    esac
done

cargo build --profile dist -p vaultctl -p vaultd --bin vaultctl --bin vaultd >&2
target_dir=$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')

dir=$(mktemp -d "${TMPDIR:-/tmp}/vault-peers.XXXXXX")
swtpm_pid=
cleanup() {
    if [ -n "$swtpm_pid" ]; then
        kill -TERM "$swtpm_pid" 2>/dev/null || true
        wait "$swtpm_pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Timed as installed: `cargo install` copies the binaries, and so does this. The file as the
# linker left it in target/ is the same bytes, yet each process of it spent 0.5-0.9 ms more
# CPU in page faults (the kernel's fault-around on its page cache) than a copy did, measured
# alternating on the development machine: a cost of the build directory, not of vaultctl.
mkdir -m 700 "$dir/bin"
install -m 755 "$target_dir/dist/vaultctl" "$target_dir/dist/vaultd" "$dir/bin/"
vaultctl=$dir/bin/vaultctl
vaultd=$dir/bin/vaultd

fail() {
    echo "peers.sh: $*" >&2
    exit 1
}
# One command line as one word, for peers-time.py (which splits it the shell's way).
quoted() { printf '%q ' "$@"; }

module=${VAULT_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
pairs=()
if [ -e "$module" ] && command -v pkcs11-tool >/dev/null; then
    private_token "$dir" peers
    tool() { pkcs11-tool --module "$module" "$@"; }
    uri="pkcs11:token=peers;object=kek?module-path=$module&pin-source=env:VAULT_TOKEN_PIN"
    "$vaultctl" kek create "$uri" >/dev/null
    VAULTCTL_DIR=$dir/direct "$vaultctl" init --mode direct --kek "$uri" >/dev/null
    [ -e "$dir/secret" ] || head -c 32 /dev/urandom >"$dir/secret"
    VAULTCTL_DIR=$dir/direct "$vaultctl" set global peer-secret --from-file "$dir/secret" >/dev/null
    # The peer decrypts with the vault's own key. pkcs11-tool 0.23 has no AES-GCM (the
    # vault's mechanism), so it is one AES-CBC block: the same calls (C_DecryptInit +
    # C_Decrypt with that key handle), 16 bytes instead of the vault's 48.
    head -c 16 /dev/urandom >"$dir/block"
    iv=00000000000000000000000000000000
    block=(--token-label peers --login --pin env:VAULT_TOKEN_PIN --label kek --type secrkey
        --mechanism AES-CBC --iv "$iv")
    tool "${block[@]}" --encrypt -i "$dir/block" -o "$dir/block.enc" 2>/dev/null
    get=("$vaultctl" --vault "$dir/direct" get global peer-secret)
    decrypt=(pkcs11-tool --module "$module" "${block[@]}" --decrypt -i "$dir/block.enc"
        -o "$dir/block.dec")
    # Each once, checked: the timed runs below are these commands again.
    "${get[@]}" | cmp -s - "$dir/secret" || fail "vaultctl get returned another value"
    "${decrypt[@]}" 2>/dev/null && cmp -s "$dir/block.dec" "$dir/block" ||
        fail "pkcs11-tool --decrypt returned another block"
    pairs+=(--pair "pkcs11 direct get" "pkcs11-tool --decrypt" 1.0 "$(quoted "${get[@]}")"
        "$(quoted "${decrypt[@]}")")
else
    echo "peers.sh: no SoftHSM2 ($module) or no pkcs11-tool: its row is not measured" >&2
    pairs+=(--missing "pkcs11 direct get" "pkcs11-tool --decrypt" 1.0)
fi

if command -v swtpm >/dev/null && command -v systemd-creds >/dev/null; then
    # A loopback port pair below the ephemeral range (the swtpm TCTI leaves TIME_WAIT
    # sockets behind).
    port=$(python3 - <<'EOF'
import socket
for p in range(30100, 31000, 2):
    socks = [socket.socket() for _ in range(2)]
    try:
        for s, q in zip(socks, (p, p + 1)):
            s.bind(("127.0.0.1", q))
        print(p)
        break
    except OSError:
        pass
    finally:
        for s in socks:
            s.close()
EOF
)
    tcti="swtpm:host=127.0.0.1,port=$port"
    mkdir -m 700 "$dir/tpm"
    "${VAULT_SWTPM:-swtpm}" socket --tpm2 --tpmstate "dir=$dir/tpm" \
        --server "type=tcp,port=$port,bindaddr=127.0.0.1" \
        --ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" \
        --flags not-need-init,startup-clear >"$dir/swtpm.log" 2>&1 &
    swtpm_pid=$!
    for _ in $(seq 100); do
        tpm2_getrandom --tcti "$tcti" 8 --hex >/dev/null 2>&1 && break
        sleep 0.05
    done
    export TSS2_LOG=${TSS2_LOG:-all+none}
    VAULTCTL_DIR=$dir/tiered "$vaultctl" init --mode tiered --kek "tpm2:tcti=$tcti" >/dev/null
    [ -e "$dir/secret" ] || head -c 32 /dev/urandom >"$dir/secret"
    VAULTCTL_DIR=$dir/tiered "$vaultctl" set global peer-secret --from-file "$dir/secret" >/dev/null
    # systemd-creds takes a TCTI as its TPM "device" (driver:parameters). Its default PCR
    # binding (PCR 7) is kept: systemd 252 seals with an empty PCR list but cannot unseal
    # ("PCR bank invalid"), so it does one policy command more than the vault's unbound KEK.
    export SYSTEMD_TPM2_DEVICE=$tcti
    if systemd-creds encrypt --with-key=tpm2 --name=peer "$dir/secret" "$dir/secret.cred" \
        2>"$dir/creds.err"; then
        get=("$vaultctl" --vault "$dir/tiered" get global peer-secret)
        decrypt=(systemd-creds decrypt --name=peer "$dir/secret.cred" -)
        "${get[@]}" | cmp -s - "$dir/secret" || fail "vaultctl get (TPM) returned another value"
        "${decrypt[@]}" 2>/dev/null | cmp -s - "$dir/secret" ||
            fail "systemd-creds decrypt returned another value"
        # systemd-creds leaves its sessions loaded (the kernel's resource manager would flush
        # them; swtpm has none), and the TPM runs out of session slots after three: they are
        # flushed after every run of either command, untimed.
        flush=(tpm2_flushcontext --tcti "$tcti" -l -t)
        "${flush[@]}"
        pairs+=(--pair "tpm tiered get" "systemd-creds decrypt" 1.0 "$(quoted "${get[@]}")"
            "$(quoted "${decrypt[@]}")" --after "tpm tiered get" "$(quoted "${flush[@]}")")
    else
        echo "peers.sh: systemd-creds cannot use the swtpm here ($(cat "$dir/creds.err")):" \
            "its row is not measured" >&2
        pairs+=(--missing "tpm tiered get" "systemd-creds decrypt" 1.0)
    fi
else
    echo "peers.sh: no swtpm or no systemd-creds: the TPM row is not measured" >&2
    pairs+=(--missing "tpm tiered get" "systemd-creds decrypt" 1.0)
fi

mkdir -p "$(dirname "$json")"
python3 scripts/peers-time.py --runs "$runs" --json "$json" \
    --size vaultctl "$vaultctl" --size vaultd "$vaultd" \
    --startup "vaultctl --version" "$(quoted "$vaultctl" --version)" "${pairs[@]}"
