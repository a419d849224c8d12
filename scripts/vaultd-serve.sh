# Sourced by the load scripts: a vault served by a vaultd of this build, for one run.
#
#   run_dir NAME           a private directory $dir for the run, and an empty `pids` array:
#                          on exit or a signal, every pid in it is stopped and $dir removed
#   serve NAME MODE KEK    (needs $dir, the run's private directory, and a `pids` array)
#
# Inits a MODE (direct or tiered) vault on KEK in $dir/NAME/vault, makes its TLS directory
# and an admin client certificate, and starts target/release/vaultd on a free loopback port
# with the rate limit raised (the load is the point) and its metrics listener on (as in
# production); appends the daemon's pid to `pids` and sets `addr` to its address. The two
# halves run apart as `make_vault NAME MODE KEK [vaultctl init args...]` and `start_vaultd
# NAME` (to fill the vault in between; VAULTD_* variables set for `start_vaultd` reach the
# daemon). `make_replica FROM NAME` makes NAME a replica of vault FROM on a shared store
# (PostgreSQL): copies of its vault.json and store.json, served with FROM's TLS material.
# Client flags for vault-load: `tls_of NAME`, `tls_of limit NAME` (a replica's are FROM's).
serve() {
    make_vault "$@"
    start_vaultd "$1"
}

make_vault() {
    local name=$1 mode=$2 kek=$3 root="$dir/$1"
    shift 3
    mkdir -p "$root"
    VAULTCTL_DIR="$root/vault" target/release/vaultctl init --mode "$mode" --kek "$kek" "$@" \
        >/dev/null
    target/release/vaultctl pki init --pki-dir "$root/tls" --host 127.0.0.1 >/dev/null
    target/release/vaultctl pki issue --pki-dir "$root/tls" --principal admin >/dev/null
    write_config "$name" "$root/tls"
}

make_replica() {
    local from="$dir/$1/vault" root="$dir/$2"
    mkdir -p "$root"
    mkdir -m 700 "$root/vault"
    cp -p "$from/vault.json" "$from/store.json" "$root/vault/"
    write_config "$2" "$dir/$1/tls"
}

# vaultd.toml of vault NAME, served with the TLS material in TLS.
write_config() {
    local root="$dir/$1"
    install -m 600 /dev/null "$root/vaultd.toml"
    cat >"$root/vaultd.toml" <<EOF
listen = "127.0.0.1:0"
vault_dir = "$root/vault"
tls.dir = "$2"
[[acl]]
principal = "admin"
scopes = ["*"]
operations = ["read", "write", "delete", "list", "seal", "open"]
EOF
}

start_vaultd() {
    local name=$1 root="$dir/$1"
    VAULTD_RATE_PER_SECOND=10000000 VAULTD_BURST=10000000 VAULTD_METRICS_LISTEN=127.0.0.1:0 \
        target/release/vaultd --config "$root/vaultd.toml" >"$root/out" 2>"$root/err" &
    pids+=($!)
    for _ in $(seq 300); do
        addr=$(sed -n 's/^vaultd listening on \(https:\/\/[^ ]*\)$/\1/p' "$root/out")
        [ -n "$addr" ] && return 0
        sleep 0.1
    done
    echo "vaultd ($name) did not start:" >&2
    cat "$root/err" >&2
    exit 2
}

# vault-load's TLS flags for the admin client of vault NAME (`--ca --cert --key`), or with
# `limit` first, the same for the daemon it is compared with (`--limit-ca ...`).
tls_of() {
    local prefix=""
    if [ "$1" = limit ]; then
        prefix=limit-
        shift
    fi
    local tls="$dir/$1/tls"
    echo "--${prefix}ca $tls/ca.pem --${prefix}cert $tls/clients/admin.pem" \
        "--${prefix}key $tls/clients/admin.key"
}

run_dir() {
    dir=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    pids=()
    trap stop_run EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

stop_run() {
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$dir"
}
