#!/usr/bin/env bash
# Builds certgate's Debian package into target/debian/ (needs cargo-deb:
# `cargo install --locked cargo-deb`).
#
#   deploy/debian/build-package.sh          the release build, for installing
#   deploy/debian/build-package.sh --dev    the unoptimised build, only to test packaging
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

profile=release
if [[ ${1:-} == --dev ]]; then
    profile=dev
fi
cargo build --locked --profile "$profile" --bin certgate
built=target/release/certgate
deb_options=()
if [[ $profile == dev ]]; then
    # The package takes target/release/certgate: the test build goes there.
    mkdir -p target/release
    cp target/debug/certgate "$built"
    deb_options=(--no-strip --fast)
fi

staging=target/debian-staging
rm -rf "$staging"
mkdir -p "$staging/man"
"$built" manpages "$staging/man"
gzip -9n "$staging"/man/*.1
# The shipped defaults, with the data directory the package creates.
sed 's|^data_dir = "./data"$|data_dir = "/var/lib/certgate"|' config/default.toml \
    >"$staging/certgate.toml"
grep -q '^data_dir = "/var/lib/certgate"$' "$staging/certgate.toml" || {
    echo "config/default.toml no longer sets data_dir = \"./data\"" >&2
    exit 1
}

cargo deb --locked --no-build "${deb_options[@]}"
