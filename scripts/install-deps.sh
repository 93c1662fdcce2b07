#!/usr/bin/env bash
# Installs what building and testing need, skipping whatever is already there.
set -euo pipefail

log() { printf '[install-deps] %s\n' "$*"; }

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required: install Rust (https://rustup.rs) first" >&2
  exit 1
fi

# Compilers for DuckDB's bundled C++ build and librdkafka-style -sys crates.
if ! command -v c++ >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    log "installing build-essential"
    apt-get update -qq && apt-get install -y -qq build-essential pkg-config >/dev/null
  else
    echo "a C++ compiler and make are required" >&2
    exit 1
  fi
fi

if command -v rustup >/dev/null 2>&1; then
  for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
      log "adding rustup component ${component}"
      rustup component add "${component}"
    fi
  done
fi

if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi
