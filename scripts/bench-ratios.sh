#!/usr/bin/env bash
# Runs the benchmarks and prints each one's ratio to its baseline measured in the same run:
#   envelope  seal/open against their raw ChaCha20-Poly1305 limits;
#   keyring   tiered-mode seal_data/open_data against the in-memory software KEK directly;
#   pkcs11    on a private SoftHSM2 token: direct-mode seal_data/open_data against bare
#             cryptoki C_Encrypt/C_Decrypt of the DEK with the same key (1 and 2 threads), and
#             tiered mode with the token's root KEK against the same vault with a software one.
#   tpm       on a private swtpm: direct-mode open_data against a bare tss-esapi
#             Load+Unseal+Flush of a sealed object of the same shape under the same persisted
#             SRK, seal_data against a bare Create (reported, no target), tiered mode with
#             the TPM's root KEK against a software one, and start-up (KEKs built from the
#             pinned URIs, Vault::open with unlock, on a new TPM context) in ms.
#   yubikey   on an emulated PIV card: tiered mode with the card's key (slot 9d) as root KEK
#             against the same vault with a software one, and the unlock time (KEK built
#             from the pinned URI with the PIN from a file, Vault::open: one card ECDH) in ms.
#   keystore  on a private gnome-keyring (OS keystore KEK, keyring:service=...;account=...):
#             tiered mode with the keystore's key as root KEK against a software one, and the
#             unlock time (Secret Service lookup, Vault::open) in ms.
#
#   scripts/bench-ratios.sh [--check] [envelope|keyring|pkcs11|tpm|yubikey|keystore]...
#                           [criterion args...]
#
# Without a group all run (pkcs11, tpm, yubikey and keystore skip, saying so, without
# SoftHSM2, swtpm, pcscd with vsmartcard-vpcd, or gnome-keyring and D-Bus: run
# scripts/install-deps.sh). --check exits 1 when a ratio is below its target. Other
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
        envelope | keyring | pkcs11 | tpm | yubikey | keystore) groups+=("$arg") ;;
        *) args+=("$arg") ;;
    esac
done
[ ${#groups[@]} -gt 0 ] || groups=(envelope keyring pkcs11 tpm yubikey keystore)

# Estimates older than this were not measured by this run (e.g. a device group skipped for
# want of its emulator): they are not reported as if they were.
started=$(date +%s.%N)
for group in "${groups[@]}"; do
    cargo bench -p benches --bench "$group" -- "${args[@]}" "$group/" >&2
done

STARTED="$started" CHECK="$check" python3 - "${groups[@]}" <<'PY'
import json, os, sys

# group: (benchmarks, [(label, baseline, measured, target)]); ratio = baseline / measured;
# a target of None is reported only.
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
    "pkcs11": (
        ["direct_seal_64B", "limit_encrypt_32B", "direct_open_64B", "limit_decrypt_32B",
         "direct_seal_64B_2threads", "limit_encrypt_32B_2threads",
         "direct_open_64B_2threads", "limit_decrypt_32B_2threads",
         "tiered_seal_64B", "software_seal_64B", "tiered_open_64B", "software_open_64B"],
        [("seal", "limit_encrypt_32B", "direct_seal_64B", 0.85),
         ("open", "limit_decrypt_32B", "direct_open_64B", 0.85),
         ("seal 2thr", "limit_encrypt_32B_2threads", "direct_seal_64B_2threads", 0.85),
         ("open 2thr", "limit_decrypt_32B_2threads", "direct_open_64B_2threads", 0.85),
         ("tiered seal", "software_seal_64B", "tiered_seal_64B", 0.8),
         ("tiered open", "software_open_64B", "tiered_open_64B", 0.8)],
    ),
    "tpm": (
        ["direct_open_64B", "limit_load_unseal_flush", "direct_seal_64B", "limit_create",
         "tiered_seal_64B", "software_seal_64B", "tiered_open_64B", "software_open_64B",
         "startup_open_vault"],
        [("open", "limit_load_unseal_flush", "direct_open_64B", 0.85),
         ("seal", "limit_create", "direct_seal_64B", None),
         ("tiered seal", "software_seal_64B", "tiered_seal_64B", 0.8),
         ("tiered open", "software_open_64B", "tiered_open_64B", 0.8)],
    ),
    "yubikey": (
        ["tiered_seal_64B", "software_seal_64B", "tiered_open_64B", "software_open_64B",
         "unlock_open_vault"],
        [("tiered seal", "software_seal_64B", "tiered_seal_64B", 0.8),
         ("tiered open", "software_open_64B", "tiered_open_64B", 0.8)],
    ),
    "keystore": (
        ["tiered_seal_64B", "software_seal_64B", "tiered_open_64B", "software_open_64B",
         "unlock_open_vault"],
        [("tiered seal", "software_seal_64B", "tiered_seal_64B", 0.8),
         ("tiered open", "software_open_64B", "tiered_open_64B", 0.8)],
    ),
}
# Benchmarks reported in milliseconds as well, with no baseline.
IN_MS = {
    "tpm": ["startup_open_vault"],
    "yubikey": ["unlock_open_vault"],
    "keystore": ["unlock_open_vault"],
}

failed = False
started = float(os.environ["STARTED"])
for group in sys.argv[1:]:
    names, targets = GROUPS[group]
    median = {}
    stale = []
    for name in names:
        path = os.path.join("target", "criterion", group, name, "new", "estimates.json")
        if not os.path.exists(path) or os.path.getmtime(path) < started:
            stale.append(name)
            continue
        try:
            with open(path) as f:
                median[name] = json.load(f)["median"]["point_estimate"]
        except (OSError, KeyError, ValueError) as e:
            sys.exit(f"bench-ratios: cannot read {path}: {e}")
    if stale:
        # A skipped group (no SoftHSM2) or a criterion filter that left benchmarks out.
        print(f"{group}: not measured by this run: {', '.join(stale)}\n")
        failed = True
        continue

    print(f"{group + ' benchmark':<28} {'median':>12}")
    for name in names:
        print(f"{name:<28} {median[name]:>9.1f} ns")
    print()
    for name in IN_MS.get(group, []):
        print(f"{name:<28} {median[name] / 1e6:>9.3f} ms")
    if IN_MS.get(group):
        print()
    print(f"{'ratio':<12} {'baseline/measured':>18} {'target':>8}  result")
    for label, base, real, target in targets:
        ratio = median[base] / median[real]
        if target is None:
            print(f"{label:<12} {ratio:>18.3f} {'-':>8}  (reported only)")
            continue
        ok = ratio >= target
        failed |= not ok
        print(f"{label:<12} {ratio:>18.3f} {'>= ' + str(target):>8}  {'ok' if ok else 'BELOW TARGET'}")
    print()

if failed and os.environ.get("CHECK") == "1":
    sys.exit(1)
PY
