# Sourced by the benchmark scripts: a private SoftHSM2 token for one run.
#
#   private_token DIR LABEL    (needs $module, the PKCS#11 module, and pkcs11-tool)
#
# Writes DIR/softhsm2.conf and DIR/tokens (an unset SOFTHSM2_CONF would use the system's
# tokens), exports SOFTHSM2_CONF, and initialises token LABEL with random SO and user PINs,
# exported as VAULT_TOKEN_SO_PIN and VAULT_TOKEN_PIN: every tool gets them from the
# environment (`pin-source=env:VAULT_TOKEN_PIN`, pkcs11-tool's `env:NAME`), never argv.
private_token() {
    local dir=$1 label=$2
    mkdir -m 700 "$dir/tokens"
    export SOFTHSM2_CONF=$dir/softhsm2.conf
    printf 'directories.tokendir = %s/\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
        "$dir/tokens" >"$SOFTHSM2_CONF"
    VAULT_TOKEN_SO_PIN=$(head -c 12 /dev/urandom | base64 | tr -d '+/=')
    VAULT_TOKEN_PIN=$(head -c 12 /dev/urandom | base64 | tr -d '+/=')
    export VAULT_TOKEN_SO_PIN VAULT_TOKEN_PIN
    pkcs11-tool --module "$module" --slot-index 0 --init-token --label "$label" \
        --so-pin env:VAULT_TOKEN_SO_PIN >/dev/null
    pkcs11-tool --module "$module" --token-label "$label" --login --login-type so \
        --so-pin env:VAULT_TOKEN_SO_PIN --init-pin --new-pin env:VAULT_TOKEN_PIN >/dev/null
}
