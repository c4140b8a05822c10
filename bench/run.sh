#!/usr/bin/env bash
# Builds release binaries and runs the side-by-side benchmark (see bench/README.md).
# Needs nginx, wrk, openssl and python3 with cryptography:
#   apt-get install nginx wrk openssl python3 python3-cryptography
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in nginx wrk openssl python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done
python3 -c 'import cryptography' 2>/dev/null || {
    echo "bench: python3's cryptography package is required (python3-cryptography)" >&2
    exit 1
}
cargo build --release --locked --bin certgate --example trivial_auth
exec python3 bench/run.py "$@"
