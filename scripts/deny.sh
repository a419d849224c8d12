#!/usr/bin/env bash
# The supply-chain gates of deny.toml: licenses, banned and duplicated crates, sources, and
# the RustSec advisories.
#
#   scripts/deny.sh [ADVISORY_DB_ARCHIVE]
#
# The advisories check reads the RustSec database. Given an archive of it (a tarball with
# `advisory-db/` at its root: the argument, else $VAULT_ADVISORY_DB_ARCHIVE, else
# ../shared/advisory-db.tar.gz beside the checkout, or beside the local checkout this one was
# cloned from, when that exists), it is
# unpacked into a temporary directory and checked against with fetching disabled: for
# machines that reach the package registries but not the database's git host. Without one,
# cargo-deny fetches the database as usual.
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.20.2
if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $version" ]; then
    echo "installing cargo-deny $version" >&2
    cargo install --locked --quiet "cargo-deny@$version"
fi

cargo deny --locked check bans licenses sources

archive="${1:-${VAULT_ADVISORY_DB_ARCHIVE:-../shared/advisory-db.tar.gz}}"
# A clone of a local checkout finds the snapshot beside the checkout it was cloned from.
origin="$(git config --get remote.origin.url 2>/dev/null || true)"
if [ ! -f "$archive" ] && [ -z "${1:-}" ] && [ -z "${VAULT_ADVISORY_DB_ARCHIVE:-}" ] &&
    [ -d "$origin" ] && [ -f "$origin/../shared/advisory-db.tar.gz" ]; then
    archive="$origin/../shared/advisory-db.tar.gz"
fi
if [ ! -f "$archive" ]; then
    echo "no advisory database archive at $archive: fetching the RustSec database" >&2
    cargo deny --locked check advisories
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
dbs="$work/dbs"
mkdir -p "$dbs"
sed "s|^\[advisories\]|[advisories]\ndb-path = \"$dbs\"|" deny.toml >"$work/deny.toml"
# cargo-deny keeps each database in a directory named after its URL's hash, a git checkout;
# it names the one it wants when it is missing, so the snapshot goes exactly there.
wanted="$(cargo deny --offline --locked --config "$work/deny.toml" check advisories 2>&1 |
    grep -o "$dbs/advisory-db-[0-9a-f]*" | head -n 1 || true)"
if [ -z "$wanted" ]; then
    echo "cargo-deny did not name where it wants the advisory database; cannot use $archive" >&2
    exit 1
fi
tar -xzf "$archive" -C "$work"
mv "$work/advisory-db" "$wanted"
git -C "$wanted" init -q
git -C "$wanted" add -A
git -C "$wanted" -c user.name=snapshot -c user.email=snapshot@localhost \
    commit -q -m "advisory database snapshot from $(basename "$archive")"
echo "advisories: checked against the snapshot $archive (fetching disabled)" >&2
cargo deny --offline --locked --config "$work/deny.toml" check advisories
