#!/usr/bin/env bash
# Runs the benchmarks and prints each one's ratio to its baseline measured in the same run:
#   envelope  seal/open against their raw ChaCha20-Poly1305 limits;
#   keyring   tiered-mode seal_data/open_data against the in-memory software KEK directly.
#
#   scripts/bench-ratios.sh [--check] [envelope|keyring] [criterion args...]
#
# Without a group both run. --check exits 1 when a ratio is below its target. Other
# arguments go to criterion, e.g. a quick run:
#   scripts/bench-ratios.sh --check --warm-up-time 1 --measurement-time 3
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
groups=()
args=()
for arg in "$@"; do
    case "$arg" in
        --check) check=1 ;;
        envelope | keyring) groups+=("$arg") ;;
        *) args+=("$arg") ;;
    esac
done
[ ${#groups[@]} -gt 0 ] || groups=(envelope keyring)

for group in "${groups[@]}"; do
    cargo bench -p benches --bench "$group" -- "${args[@]}" "$group/" >&2
done

CHECK="$check" python3 - "${groups[@]}" <<'PY'
import json, os, sys

# group: (benchmarks, [(label, baseline, measured, target)]); ratio = baseline / measured.
GROUPS = {
    "envelope": (
        ["seal_64B", "limit_seal_64B", "open_64B", "limit_open_64B"],
        [("seal", "limit_seal_64B", "seal_64B", 0.6),
         ("open", "limit_open_64B", "open_64B", 0.8)],
    ),
    "keyring": (
        ["tiered_seal_64B", "memory_kek_seal_64B", "tiered_open_64B", "memory_kek_open_64B"],
        [("tiered seal", "memory_kek_seal_64B", "tiered_seal_64B", 0.8),
         ("tiered open", "memory_kek_open_64B", "tiered_open_64B", 0.8)],
    ),
}

failed = False
for group in sys.argv[1:]:
    names, targets = GROUPS[group]
    median = {}
    for name in names:
        path = os.path.join("target", "criterion", group, name, "new", "estimates.json")
        try:
            with open(path) as f:
                median[name] = json.load(f)["median"]["point_estimate"]
        except (OSError, KeyError, ValueError) as e:
            sys.exit(f"bench-ratios: cannot read {path}: {e}")

    print(f"{group + ' benchmark':<28} {'median':>12}")
    for name in names:
        print(f"{name:<28} {median[name]:>9.1f} ns")
    print()
    print(f"{'ratio':<12} {'baseline/measured':>18} {'target':>8}  result")
    for label, base, real, target in targets:
        ratio = median[base] / median[real]
        ok = ratio >= target
        failed |= not ok
        print(f"{label:<12} {ratio:>18.3f} {'>= ' + str(target):>8}  {'ok' if ok else 'BELOW TARGET'}")
    print()

if failed and os.environ.get("CHECK") == "1":
    sys.exit(1)
PY
