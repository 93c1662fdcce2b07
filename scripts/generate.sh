#!/usr/bin/env bash
# Regenerates api/openapi.yaml from the code.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/analytics/target}"
cargo run --release --quiet --bin analytics -- openapi > api/openapi.yaml.tmp
mv api/openapi.yaml.tmp api/openapi.yaml
echo "wrote api/openapi.yaml"
