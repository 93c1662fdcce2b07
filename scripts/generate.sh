#!/usr/bin/env bash
# Regenerates api/openapi.yaml from the code.
set -euo pipefail
cd "$(dirname "$0")/.."
# The build directory of `cargo build --release` (./target unless CARGO_TARGET_DIR says otherwise).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo run --release --quiet --bin analytics -- openapi > api/openapi.yaml.tmp
mv api/openapi.yaml.tmp api/openapi.yaml
echo "wrote api/openapi.yaml"
