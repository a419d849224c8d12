#!/usr/bin/env bash
# Installs the system packages the build and tests need, skipping what is already there.
set -euo pipefail

need=()
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
# script(1) gives the terminal tests a real pseudo-terminal.
command -v script >/dev/null 2>&1 || need+=(bsdutils)
# SoftHSM2 and pkcs11-tool for the PKCS#11 provider's tests (softhsm-tests).
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)
command -v pkcs11-tool >/dev/null 2>&1 || need+=(opensc)

if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages: ${need[*]}; run this script as root or install them" >&2
        exit 1
    fi
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${need[@]}"
fi
