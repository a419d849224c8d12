#!/usr/bin/env bash
# Installs the system packages the build and tests need, skipping what is already there.
# `--build` installs only what building and running vaultd and vaultctl need (scripts/run.sh,
# `cargo install`); without it, also the emulators and tools the tests start (scripts/test.sh).
set -euo pipefail

build_only=0
[ "${1:-}" = "--build" ] && build_only=1

need=()
# Building: a C compiler for ring and the bundled SQLite, pkg-config to find the libraries
# below, the tpm2-tss headers tss-esapi builds against (the TPM provider), the PC/SC headers
# the yubikey crate builds against (the YubiKey provider). Their runtime libraries come with
# them.
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
pkg-config --exists tss2-esys 2>/dev/null || need+=(libtss2-dev)
pkg-config --exists libpcsclite 2>/dev/null || need+=(libpcsclite-dev)

if [ "$build_only" -eq 0 ]; then
    # script(1) gives the terminal tests a real pseudo-terminal.
    command -v script >/dev/null 2>&1 || need+=(bsdutils)
    # SoftHSM2 and pkcs11-tool for the PKCS#11 provider's tests (softhsm-tests).
    command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)
    command -v pkcs11-tool >/dev/null 2>&1 || need+=(opensc)
    # swtpm (a software TPM 2.0) and tpm2-tools for the TPM provider's tests (tpm-tests).
    command -v swtpm >/dev/null 2>&1 || need+=(swtpm swtpm-tools)
    command -v tpm2_getrandom >/dev/null 2>&1 || need+=(tpm2-tools)
    # pcscd and vsmartcard's virtual reader (vpcd), for the emulated PIV card's tests
    # (piv-card).
    command -v pcscd >/dev/null 2>&1 || need+=(pcscd)
    [ -e /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || need+=(vsmartcard-vpcd)
    # libclang for bindgen: the emulated card's trussed store (littlefs2-sys) generates its C
    # bindings at build time.
    ls /usr/lib/llvm-*/lib/libclang.so.1 >/dev/null 2>&1 || need+=(libclang1-14 libclang-common-14-dev)
    # gnome-keyring (a Secret Service), secret-tool and a D-Bus session bus, for the OS
    # keystore provider's tests (keystore-tests), which run each test under dbus-run-session.
    command -v gnome-keyring-daemon >/dev/null 2>&1 || need+=(gnome-keyring)
    command -v secret-tool >/dev/null 2>&1 || need+=(libsecret-tools)
    { command -v dbus-run-session && command -v dbus-daemon; } >/dev/null 2>&1 || need+=(dbus)
    # PostgreSQL for test-support's fixture, which runs its own server on a free loopback port.
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
    # systemd-analyze verifies the systemd unit in packaging/ (vaultd's systemd_unit test).
    command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
fi

if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages: ${need[*]}; run this script as root or install them" >&2
        exit 1
    fi
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${need[@]}"
fi
