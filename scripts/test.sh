#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, then every test of
# the workspace (unit, HTTP integration, storage conformance on DuckDB and on
# a real ClickHouse server started here, Kafka end to end against a real
# broker started here, schemathesis against the live API, binary) in the
# release profile, the same profile as the service binary, so DuckDB's C++
# is compiled once; then each fuzz target briefly.
set -euo pipefail
cd "$(dirname "$0")/.."

# The same build directory as `cargo run --release` (./target unless
# CARGO_TARGET_DIR says otherwise; CI points it outside its fresh clones).
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Every server and tool is installed and started here: a test that finds
# one missing fails instead of skipping.
export ANALYTICS_TEST_REQUIRE_ALL=1

scripts/setup-dev.sh

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --release --workspace --all-targets --locked -- -D warnings
# Throw-away servers: ClickHouse for the ClickHouse backend's tests, a
# Kafka-protocol broker (Tansu, on SQLite in a temporary directory) for the
# Kafka tests.
stop_servers() {
  if [[ -n "${CLICKHOUSE_TEST_PID:-}" ]]; then
    scripts/clickhouse-server.sh stop "$CLICKHOUSE_TEST_PID" "$CLICKHOUSE_TEST_DIR"
  fi
  if [[ -n "${KAFKA_TEST_PID:-}" ]]; then
    scripts/kafka-broker.sh stop "$KAFKA_TEST_PID" "$KAFKA_TEST_DIR"
  fi
}
trap stop_servers EXIT
# MaxMind's test database, fetched by setup-dev.sh, for the location tests.
export ANALYTICS_TEST_GEOIP_DATABASE="$HOME/.cache/analytics/geoip-test/GeoLite2-City-Test.mmdb"
echo "== starting ClickHouse"
eval "$(scripts/clickhouse-server.sh start)"
echo "== starting the Kafka broker"
eval "$(scripts/kafka-broker.sh start)"

echo "== cargo nextest"
cargo nextest run --release --workspace --locked --no-fail-fast

echo "== fuzz targets, briefly (scripts/fuzz.sh runs them longer)"
scripts/fuzz.sh --seconds 20
