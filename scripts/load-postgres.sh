#!/usr/bin/env bash
# vaultd on the PostgreSQL store beside vaultd on SQLite, in one run, on a PostgreSQL server
# of its own:
#
# 1. KV get and KV put, 64 clients, 64-byte values: vaultd on PostgreSQL with 1 replica, and
#    3 replicas of one vault with the clients spread over them, each loaded alternately with
#    vaultd on a SQLite vault (throughput and p99, PostgreSQL over SQLite, reported). On a
#    2-core machine the 3 replicas share the cores one daemon had: their rows show the
#    replicas correct under load, not scaling. After the load vault-load reads every key it
#    put back from every replica: it must hold the last acknowledged put (a checked row).
# 2. KV get p50 and p99 of random keys on a PostgreSQL vault of 1,000,000 secrets against
#    one of 1,000 (within 1.5x, checked): through vaultd (4 clients, as scripts/load-store.sh
#    on SQLite), then through the library (benches/benches/store.rs --postgres).
#
#   scripts/load-postgres.sh [--out DIR] [--secrets N] [--quick] [vault-load args...]
#
# Writes DIR/postgres-1.json and DIR/postgres-3.json (vault-load --json rows, for
# bench-report --load), DIR/postgres-scale.json and DIR/postgres-library.json (store rows,
# bench-report --store); DIR is target/bench-results unless given. --quick: the library's
# short run. Every vault is direct-mode on a key-file KEK (the PostgreSQL store's one mode;
# the SQLite one alike, so that only the store differs), with the JIT cache off so that
# every get reads the store. The large vault is filled through the library
# (examples/store-fill.rs, Vault::set_many), which prints how long it took: about 5 minutes
# for a million on two cores. About 1 GB in ${TMPDIR:-/tmp} while it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/vaultd-serve.sh

out=target/bench-results
large=1000000
small=1000
quick=0
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --out | --secrets)
            [ "$1" = --out ] && out=$2 || large=$2
            shift 2
            ;;
        --quick)
            quick=1
            shift
            ;;
        *)
            args+=("$1")
            shift
            ;;
    esac
done

pg_bin=${VAULT_PG_BIN:-$(find /usr/lib/postgresql -path '*/bin/postgres' 2>/dev/null |
    sort -V | tail -1 | xargs -r dirname)}
if [ ! -x "$pg_bin/postgres" ]; then
    echo "load-postgres.sh: PostgreSQL is not installed (scripts/install-deps.sh)" >&2
    exit 2
fi

cargo build --release -p vaultd -p vaultctl -p benches \
    --bin vaultd --bin vaultctl --bin vault-load >&2
cargo build --release -p benches --example store-fill >&2
mkdir -p "$out"
# Absolute: the library benchmark runs in benches/.
out=$(cd "$out" && pwd)

run_dir vault-load-postgres
# The server's own directory: as root it runs as the postgres user (initdb and postgres
# refuse root), which may not enter $dir.
pg=$(mktemp -d "${TMPDIR:-/tmp}/vault-load-pg.XXXXXX")
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups)
    chown postgres: "$pg"
fi
server=
# The daemons (its clients) first, then the server (a fast shutdown), then its directory.
stop_postgres() {
    stop_run
    if [ -n "$server" ]; then
        kill -INT "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$pg"
}
trap stop_postgres EXIT

# Durability as shipped (fsync, synchronous_commit and full_page_writes on), as SQLite runs
# with synchronous=FULL; --no-sync only skips initdb's flush of a directory thrown away.
# In $pg, which the postgres user may enter (the working directory may not be).
(cd "$pg" && exec "${as_pg[@]}" "$pg_bin/initdb" -D "$pg/data" -U postgres --auth=trust \
    --encoding=UTF8 --no-locale --no-sync) >"$pg/initdb.log" 2>&1 || {
    cat "$pg/initdb.log" >&2
    exit 2
}
# A free loopback port, tried again if another program takes it first.
for _ in 1 2 3; do
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # Connections: 16 per daemon (the store's pool) for up to 5 daemons, and psql. exec:
    # $! is the server's pid.
    (cd "$pg" && exec "${as_pg[@]}" "$pg_bin/postgres" -D "$pg/data" -p "$port" \
        -c listen_addresses=127.0.0.1 -c unix_socket_directories="$pg" \
        -c max_connections=200 -c shared_buffers=256MB) >>"$pg/server.log" 2>&1 &
    server=$!
    until "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; do
        kill -0 "$server" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$server" 2>/dev/null && break
    server=
done
if [ -z "$server" ]; then
    echo "load-postgres.sh: PostgreSQL did not start:" >&2
    cat "$pg/server.log" >&2
    exit 2
fi

sql() {
    "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@" >&2
}
# The vaults' role owns their databases, as a deployment would have it: no superuser.
sql -d postgres -c "CREATE ROLE vault LOGIN"
for db in one three small large; do
    sql -d postgres -c "CREATE DATABASE $db OWNER vault"
done
on_postgres() {
    echo --store postgres --store-url "postgres://vault@127.0.0.1:$port/$1"
}

# Every get reads the store.
export VAULTD_CACHE_TTL_SECS=0
run_load() {
    # In the background, so that a signal to this script runs the trap at once.
    target/release/vault-load "$@" &
    wait $!
}
status=0

# 1. KV get and put at 64 clients: PostgreSQL (1 and 3 replicas) beside SQLite.
make_vault sqlite direct "file:$dir/sqlite.key"
start_vaultd sqlite
sqlite=$addr
make_vault one direct "file:$dir/one.key" $(on_postgres one)
start_vaultd one
one=$addr
make_vault three direct "file:$dir/three.key" $(on_postgres three)
make_replica three three-b
make_replica three three-c
three=()
for name in three three-b three-c; do
    start_vaultd "$name"
    three+=("$addr")
done
echo "load-postgres.sh: PostgreSQL on port $port; SQLite vaultd on $sqlite; 1 replica on" \
    "$one; 3 replicas on ${three[*]}" >&2

# One vault-load run per PostgreSQL vault, each with SQLite as its limit.
kv_load() {
    local replicas=$1 vault=$2 addrs=$3 label="postgres $1 replica"
    [ "$replicas" = 1 ] || label+=s
    # The 3 daemons, the server and the load generator want cores of their own: on fewer,
    # the rows say what they show.
    if [ "$replicas" -gt 1 ] && [ "$(nproc)" -lt 8 ]; then
        label+=" ($(nproc) cores: correctness under load, not scaling)"
    fi
    run_load --addr "$addrs" $(tls_of "$vault") --limit-addr "$sqlite" $(tls_of limit sqlite) \
        --label "$label" --limit-label sqlite --group postgres --p99-rows \
        --json "$out/postgres-$replicas.json" --mode kv --clients 64 --value-bytes 64 \
        --seconds 10 --rounds 5 --warmup 1 "${args[@]}"
}
kv_load 1 one "$one" || status=1
kv_load 3 three "$(IFS=,; echo "${three[*]}")" || status=1
# Their daemons go: idle, they would still take turns on the cores with the next measurement.
for pid in "${pids[@]}"; do
    kill -TERM "$pid"
    wait "$pid" || true
done
pids=()

# 2. KV get of random keys among 1,000,000 stored secrets against 1,000, through vaultd.
for vault in large small; do
    make_vault "$vault" direct "file:$dir/$vault.key" $(on_postgres "$vault")
done
# 2,000 secrets per transaction: set_many takes an advisory lock per key, and the server's
# lock table (64 per connection allowed) runs out at a few thousand. Each secret is seven
# statements in its batch's transaction (key lock, head, rows, insert, head, change log,
# notify), a round trip each: 4 threads overlap them (twice the rate of one on two cores).
# store-fill prints how long it took.
for vault in small large; do
    count=$small
    [ "$vault" = small ] || count=$large
    target/release/examples/store-fill "$dir/$vault/vault" "file:$dir/$vault.key" "$count" \
        2000 4 >&2
done
# What an operator does after a bulk load, and autovacuum would do later, during the
# measurement: the statistics and visibility map made, the dirty pages written out.
sql -d large -c "VACUUM ANALYZE"
sql -d small -c "VACUUM ANALYZE"
sql -d postgres -c "CHECKPOINT"
start_vaultd large
large_addr=$addr
start_vaultd small
small_addr=$addr
run_load --addr "$large_addr" $(tls_of large) --limit-addr "$small_addr" $(tls_of limit small) \
    --label "postgres $large secrets" --limit-label "postgres $small secrets" --group postgres \
    --store-json "$out/postgres-scale.json" --keys "$large" --limit-keys "$small" \
    --mode mix --mix get=1 --clients 4 --value-bytes 64 --seconds 10 --rounds 5 --warmup 1 \
    "${args[@]}" || status=1
# The same gets through the library (benches/benches/store.rs) on the same two databases.
library=(--postgres "$dir/large/vault" "$dir/small/vault" --secrets "$large")
[ "$quick" -eq 0 ] || library+=(--quick)
cargo bench -p benches --bench store -- "${library[@]}" --json "$out/postgres-library.json" \
    >/dev/null || status=1

# What the server logged beyond its routine, counted (without the time and pid prefix).
echo "load-postgres.sh: PostgreSQL's errors and warnings, if any:" >&2
grep -E 'ERROR|WARNING|FATAL|PANIC|too frequently' "$pg/server.log" | sed 's/^[^]]*] //' |
    sort | uniq -c | sort -rn | head -20 >&2 || true
exit "$status"
