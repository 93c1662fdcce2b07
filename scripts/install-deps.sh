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

# ClickHouse server and client (Debian's package), for the ClickHouse backend's tests.
if ! command -v clickhouse-server >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "clickhouse-server is required for the tests" >&2
    exit 1
  fi
  log "installing clickhouse-server and clickhouse-client"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clickhouse-server clickhouse-client >/dev/null
fi

# Tansu, a Kafka-protocol broker written in Rust, for the Kafka tests (no Apache
# Kafka package is needed). The first build takes about 20 minutes on 2 cores;
# its build directory is kept so that an interrupted build resumes.
if ! command -v tansu >/dev/null 2>&1 && [[ ! -x "$HOME/.cargo/bin/tansu" ]]; then
  log "installing tansu (Kafka-compatible broker); the first build takes about 20 minutes"
  cargo install tansu --version 0.6.0 --locked --features dynostore,libsql \
    --target-dir "$HOME/.cache/analytics/tansu-target"
fi

# Current ClickHouse (26.x) embedded in Python, for the compatibility test.
if ! python3 -c "import chdb" >/dev/null 2>&1; then
  log "installing chdb-core"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    "chdb-core==26.9.0"
fi

# Segment's own Python library, used by the SDK compatibility test.
if ! python3 -c "import segment.analytics" >/dev/null 2>&1; then
  log "installing segment-analytics-python"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    "segment-analytics-python==2.4.0"
fi

# Segment's own Node library, used by the SDK compatibility test (versions pinned by the lock file).
if [[ ! -d tests/sdk/node/node_modules/@segment/analytics-node ]]; then
  if ! command -v npm >/dev/null 2>&1; then
    log "installing nodejs and npm"
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
  fi
  log "installing @segment/analytics-node"
  npm ci --silent --no-audit --no-fund --prefix tests/sdk/node
fi
