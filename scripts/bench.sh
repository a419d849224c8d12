#!/usr/bin/env bash
# One benchmark run across the envelope, every KEK provider and the daemon, each measurement
# beside its raw limit measured in the same run, with a results table and a chart.
#
#   scripts/bench.sh [--quick] [--check] [GROUP...] [criterion args...]
#
# Groups, in run order (all without a GROUP):
#   envelope  seal/open of 32 B, 64 B, 1 KiB, 64 KiB against two bare ring ChaCha20-Poly1305
#             operations (targets at 64 B: seal >= 0.6, open >= 0.8);
#   keyring   tiered-mode seal_data/open_data at the same sizes against the in-memory software
#             KEK directly (>= 0.8 at 64 B);
#   software  the file KEK in direct mode at the same sizes against the in-memory software KEK
#             (reported), and the passphrase KEK's unlock (Argon2id) in ms;
#   pkcs11    on a private SoftHSM2 token: direct seal/open against bare C_Encrypt/C_Decrypt
#             (1 and 2 threads, >= 0.85), tiered against a software root KEK (>= 0.8);
#   yubikey   on an emulated PIV card (pcscd + vsmartcard-vpcd): tiered against a software
#             root KEK (>= 0.8), unlock in ms;
#   keystore  on a private gnome-keyring in its own D-Bus session: tiered against a software
#             root KEK (>= 0.8), unlock in ms;
#   tpm       on a private swtpm: direct open against bare Load+Unseal+Flush (>= 0.85), direct
#             seal against bare Create (reported), tiered against a software root KEK
#             (>= 0.8), start-up in ms (after yubikey: swtpm's TIME_WAIT sockets can take
#             vpcd's ports);
#   load      vaultd under 64 mTLS clients with 64-byte values against an in-process tonic
#             echo limit (KV get >= 0.7, transit seal >= 0.7), and transit seal/open of 1 MiB
#             payloads with 8 clients (>= 0.8), through scripts/load.sh;
#   tiered    vaultd on a tiered vault with a TPM root KEK (private swtpm) against the same
#             daemon with a key-file root KEK, alternating in one run: KV get, transit seal,
#             and seal+open, 8 and 64 clients, 64 B (>= 0.9), through scripts/load-tiered.sh;
#   direct    vaultd on a direct-mode vault whose KEK is on a private SoftHSM2 token (every
#             seal and open wraps or unwraps on the token, through the KEK pool), seal+open
#             of 64 B with 8 clients against the echo (>= 0.6, and 20,000 ops/s on the
#             reference machine), and the same against the daemon on a key-file direct
#             vault (reported: the token's share), through scripts/load-softhsm.sh;
#   store     the SQLite store at scale (benches/benches/store.rs, not criterion): KV get
#             p50 and p99 through the library with 1,000,000 secrets against 1,000 (>= 1/1.5
#             each), a full rewrap of 1,000,000 against 10,000 (>= 1/1.5) and against a floor
#             of 100,000 secrets/s (>= 1); then the same get p50 and p99 through vaultd (4
#             clients, the JIT cache off) on a vault of 1,000,000 secrets against vaultd on one
#             of 1,000, alternating (>= 1/1.5 each), through scripts/load-store.sh; fills its
#             vaults in a temporary directory (about 1 GB while it runs; a few minutes,
#             --quick about three);
#   postgres  vaultd on the PostgreSQL store, on a server of its own (scripts/load-postgres.sh):
#             KV get and KV put with 64 clients on 1 replica and on 3 (the clients spread
#             over them) beside vaultd on SQLite, alternating (throughput and p99 reported,
#             PostgreSQL over SQLite), and that every acknowledged put reads back from every
#             replica (>= 1: all of them); on two cores 3 replicas show correctness under
#             load, not scaling. KV get p50 and p99 with 1,000,000 secrets against 1,000
#             through vaultd (4 clients, cache off) and through the library (>= 1/1.5 each).
#             Filling the million takes about 5 minutes, the group about 8; --quick fills
#             100,000 instead (about 2 minutes once built);
#   peers     whole processes, as a CI pipeline runs them, with the installed (dist profile)
#             binaries: `vaultctl get` on a direct SoftHSM2 vault against `pkcs11-tool
#             --decrypt` with the same key on the same private token (time <= the tool's:
#             ratio >= 1.0), `vaultctl get` on a tiered swtpm vault against `systemd-creds
#             decrypt` on the same TPM (>= 1.0), vaultctl's start-up and the dist binaries'
#             sizes (reported), alternating runs, through scripts/peers.sh.
# Each group starts its own emulator (the fixtures start pcscd, swtpm, the token, the D-Bus
# session and gnome-keyring); without one it skips, saying so, and its rows read "not
# measured". Missing system packages are installed first when run as root
# (scripts/install-deps.sh).
#
# Writes target/bench-results/results.md, results.json and results.svg (the chart), and
# prints the table; criterion's HTML reports stay in target/criterion/report/index.html.
# --quick: short criterion warm-up/measurement and short load phases (under 5 minutes on two
# cores once built). --check: exit 1 when a ratio is below its target or a row was not
# measured, naming each. Other arguments go to criterion.
set -euo pipefail
cd "$(dirname "$0")/.."
# libtss2 prints every failing TPM command itself; the TPM fixture provokes some on purpose.
export TSS2_LOG="${TSS2_LOG:-all+none}"

all=(envelope keyring software pkcs11 yubikey keystore tpm load tiered direct store postgres peers)
check=0
quick=0
groups=()
args=()
for arg in "$@"; do
    case "$arg" in
        --check) check=1 ;;
        --quick) quick=1 ;;
        envelope | keyring | software | pkcs11 | yubikey | keystore | tpm | load | tiered | direct | store | postgres | peers)
            groups+=("$arg")
            ;;
        *) args+=("$arg") ;;
    esac
done
if [ ${#groups[@]} -eq 0 ]; then
    groups=("${all[@]}")
else
    # The run order above, whatever the order given.
    wanted=" ${groups[*]} "
    groups=()
    for group in "${all[@]}"; do
        case "$wanted" in *" $group "*) groups+=("$group") ;; esac
    done
fi

out=target/bench-results
if [ "$quick" -eq 1 ]; then
    mode=quick
    # Fewer bootstrap resamples than the 100000 default: the analysis took as long as the
    # measurement here.
    criterion=(--warm-up-time 0.3 --measurement-time 1 --sample-size 20 --nresamples 5000)
    # Three alternating rounds even so: in one round the machine's other load decided the
    # get ratio (0.53 in one run, 0.69 in the next).
    load_64=(--seconds 3 --rounds 3 --warmup 0.3)
    load_1mib=(--seconds 2 --rounds 2 --warmup 0.3)
else
    mode=full
    criterion=()
    load_64=(--seconds 10 --rounds 5 --warmup 1)
    load_1mib=(--seconds 10 --rounds 2 --warmup 1)
fi

if ! scripts/install-deps.sh >&2; then
    echo "bench.sh: system packages missing (run scripts/install-deps.sh as root):" \
        "the groups that need them skip" >&2
fi
cargo bench -p benches --no-run >&2
# The bench executables, run directly below: a cargo per group would wait on the build
# directory's lock whenever another build runs.
declare -A exe=()
while read -r name path; do
    exe[$name]=$path
done < <(cargo bench -p benches --no-run --message-format=json |
    grep '"kind":\["bench"\]' |
    sed -n 's/.*"name":"\([a-z0-9_]*\)".*"executable":"\([^"]*\)".*/\1 \2/p')
cargo build --release -p vaultd -p benches --bin vaultd --bin vault-load --bin bench-report >&2

mkdir -p "$out"
rm -f "$out"/load-*.json "$out"/store.json "$out"/store-vaultd.json "$out"/postgres-*.json \
    "$out"/peers.json
# Estimates older than this were not measured by this run (a group skipped for want of its
# emulator): the report says so instead of showing them.
started=$(date +%s.%N)
failed=()
criterion_groups=()
loads=()
stores=()
peers=
for group in "${groups[@]}"; do
    if [ "$group" = load ]; then
        loads+=("$out/load-64B.json" "$out/load-1MiB.json")
        scripts/load.sh --mode split --json "$out/load-64B.json" "${load_64[@]}" ||
            failed+=("load (64 B)")
        scripts/load.sh --mode mix --mix seal=1,open=1 --value-bytes 1048576 --clients 8 \
            --target 0.8 --json "$out/load-1MiB.json" "${load_1mib[@]}" || failed+=("load (1 MiB)")
        continue
    fi
    if [ "$group" = tiered ]; then
        for clients in 8 64; do
            loads+=("$out/load-tiered-$clients.json")
            scripts/load-tiered.sh --mode all --mix seal=1,open=1 --clients "$clients" \
                --json "$out/load-tiered-$clients.json" "${load_64[@]}" ||
                failed+=("tiered ($clients clients)")
        done
        continue
    fi
    if [ "$group" = direct ]; then
        loads+=("$out/load-direct.json")
        scripts/load-softhsm.sh --mode mix --mix seal=1,open=1 --clients 8 --target 0.6 \
            --json "$out/load-direct.json" "${load_64[@]}" || failed+=("direct (SoftHSM)")
        # Reported beside it: the same daemon on a key-file direct vault as the limit, so
        # that the token's own share of the cost shows apart from the daemon's.
        loads+=("$out/load-direct-software.json")
        scripts/load-softhsm.sh --against software --mode mix --mix seal=1,open=1 --clients 8 \
            --json "$out/load-direct-software.json" "${load_64[@]}" ||
            failed+=("direct (SoftHSM against a key file)")
        continue
    fi
    if [ "$group" = store ]; then
        stores+=("$out/store.json")
        store_args=(--json "$PWD/$out/store.json")
        [ "$quick" -eq 0 ] || store_args+=(--quick)
        if [ -z "${exe[store]:-}" ]; then
            echo "bench.sh: cargo built no bench executable named store" >&2
            failed+=(store)
        else
            (cd benches && "${exe[store]}" --bench "${store_args[@]}") >&2 || failed+=(store)
        fi
        stores+=("$out/store-vaultd.json")
        scripts/load-store.sh --store-json "$out/store-vaultd.json" "${load_64[@]}" >&2 ||
            failed+=("store (vaultd)")
        continue
    fi
    if [ "$group" = postgres ]; then
        loads+=("$out/postgres-1.json" "$out/postgres-3.json")
        stores+=("$out/postgres-scale.json" "$out/postgres-library.json")
        postgres_args=(--out "$out")
        [ "$quick" -eq 0 ] || postgres_args+=(--quick --secrets 100000)
        scripts/load-postgres.sh "${postgres_args[@]}" "${load_64[@]}" >&2 || failed+=(postgres)
        continue
    fi
    if [ "$group" = peers ]; then
        peers=$out/peers.json
        runs=51
        [ "$quick" -eq 0 ] || runs=21
        scripts/peers.sh --runs "$runs" --json "$peers" || failed+=(peers)
        continue
    fi
    criterion_groups+=("$group")
    if [ -z "${exe[$group]:-}" ]; then
        echo "bench.sh: cargo built no bench executable named $group" >&2
        failed+=("$group")
        continue
    fi
    # As cargo bench runs it: from the package directory, criterion writing to target/criterion.
    (cd benches && CRITERION_HOME="$PWD/../target/criterion" \
        "${exe[$group]}" --bench "${criterion[@]}" "${args[@]}" "$group/") >&2 ||
        failed+=("$group")
done

report=(--since "$started" --mode "$mode" --out "$out")
[ ${#criterion_groups[@]} -eq 0 ] || report+=(--groups "$(IFS=,; echo "${criterion_groups[*]}")")
for file in "${loads[@]}"; do report+=(--load "$file"); done
for file in "${stores[@]}"; do report+=(--store "$file"); done
[ -z "$peers" ] || report+=(--peers "$peers")
[ "$check" -eq 0 ] || report+=(--check)
status=0
target/release/bench-report "${report[@]}" || status=$?

if [ ${#failed[@]} -gt 0 ]; then
    echo "bench.sh: these runs failed: ${failed[*]}" >&2
    [ "$check" -eq 0 ] || status=1
fi
exit "$status"
