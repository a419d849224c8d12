#!/usr/bin/env bash
# List at scale: a SQLite vault of 1,000,000 secrets (and 1,000 in a second scope) listed
# page by page with `vaultctl list --page-size 10000` on the vault directory and through
# vaultd, and through the List API with pages of 10,000, checking every secret appears
# exactly once, in order, with the total count (the first page's total_count, the table's
# last line, `list --count`), and that vaultctl's own memory does not grow with the number
# of secrets (its anonymous RSS listing the million against listing the 1,000).
#
#   scripts/list-million.sh [--secrets N]
#
# It is the #[ignore]d test vaultd/tests/e2e_list_million.rs (the suite runs the same check
# on 30,000 secrets), built and run in release mode. Prints `list-million:` lines: the fill
# time and store size; per listing its time, rate, first row, peak RSS (VmHWM, which counts
# the pages of the memory-mapped store file a local listing reads) and anonymous RSS; the
# API's first page (the one with the count) against a later one; vaultd's memory. About 30 s
# once built; the vault takes about 330 MB in ${TMPDIR:-/tmp} while it runs. Exits non-zero
# when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."

secrets=1000000
while [ $# -gt 0 ]; do
    case "$1" in
        --secrets)
            secrets=$2
            shift 2
            ;;
        *)
            echo "usage: scripts/list-million.sh [--secrets N]" >&2
            exit 2
            ;;
    esac
done

# vaultctl first: the test builds it again if it is older than a source file.
cargo build --release --locked -p vaultctl --bin vaultctl >&2
cargo test --release --locked -p vaultd --test e2e_list_million --no-run >&2

started=$SECONDS
LIST_MILLION_SECRETS=$secrets cargo test --release --locked -q -p vaultd \
    --test e2e_list_million -- --ignored --exact --nocapture a_million_secrets_list_page_by_page
echo "list-million: the whole check took $((SECONDS - started)) s (daemon starts included)"
