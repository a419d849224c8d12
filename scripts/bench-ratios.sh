#!/usr/bin/env bash
# Runs the envelope benchmarks and compares seal/open with their raw ChaCha20-Poly1305
# limits measured in the same run.
#
#   scripts/bench-ratios.sh [--check] [criterion args...]
#
# --check exits 1 when a ratio is below its target. Other arguments go to criterion, e.g. a
# quick run: scripts/bench-ratios.sh --check --warm-up-time 1 --measurement-time 3
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
args=()
for arg in "$@"; do
    case "$arg" in
        --check) check=1 ;;
        *) args+=("$arg") ;;
    esac
done

cargo bench -p benches --bench envelope -- "${args[@]}" envelope/ >&2

CHECK="$check" python3 - <<'PY'
import json, os, sys

base = os.path.join("target", "criterion", "envelope")
names = ["seal_64B", "limit_seal_64B", "open_64B", "limit_open_64B"]
median = {}
for name in names:
    path = os.path.join(base, name, "new", "estimates.json")
    try:
        with open(path) as f:
            median[name] = json.load(f)["median"]["point_estimate"]
    except (OSError, KeyError, ValueError) as e:
        sys.exit(f"bench-ratios: cannot read {path}: {e}")

print(f"{'benchmark':<18} {'median':>12}")
for name in names:
    print(f"{name:<18} {median[name]:>9.1f} ns")
print()

targets = [("seal", "limit_seal_64B", "seal_64B", 0.6), ("open", "limit_open_64B", "open_64B", 0.8)]
failed = False
print(f"{'ratio':<6} {'limit/envelope':>15} {'target':>8}  result")
for label, limit, real, target in targets:
    ratio = median[limit] / median[real]
    ok = ratio >= target
    failed |= not ok
    print(f"{label:<6} {ratio:>15.3f} {'>= ' + str(target):>8}  {'ok' if ok else 'BELOW TARGET'}")

if failed and os.environ.get("CHECK") == "1":
    sys.exit(1)
PY
