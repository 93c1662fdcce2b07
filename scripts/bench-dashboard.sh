#!/usr/bin/env bash
# Dashboard benchmark: the query benchmark's events (10 million by default),
# the release binary on them, and the overview opened in headless Chromium
# LOADS times (each in a fresh browser context): the time from navigation to
# the page marking itself ready (every top stat, the graph and every panel
# drawn), p50 of the loads, and the bytes transferred. Run once over the last
# 30 days of the data, once more comparing them with the 30 days before.
#
#   scripts/bench-dashboard.sh [--events N] [--loads N] [--data FILE] [--backend duckdb|clickhouse]
#
# --data FILE as in scripts/bench-query.sh (reused when it exists).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

EVENTS=10000000
LOADS=10
BACKEND=duckdb
while [[ $# -gt 0 ]]; do
  case "$1" in
    --events) EVENTS="$2"; shift 2 ;;
    --loads) LOADS="$2"; shift 2 ;;
    --data) DATA="$2"; shift 2 ;;
    --backend) BACKEND="$2"; shift 2 ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done

# Chromium and playwright-core, as the test suite installs them.
scripts/setup-dev.sh >/dev/null
PORT="${BENCH_PORT:-18083}"
READ_KEY="rk_benchmark_000001"
cargo build --release --quiet --bin analytics --example bench_query
BENCH="$CARGO_TARGET_DIR/release/examples/bench_query"

source scripts/lib/bench-server.sh

prepare_benchmark_data "$BENCH" "$EVENTS" "${DATA:-}"
start_benchmark_backend "$BENCH" "$BACKEND" "$PORT"
start_server "$WORK/bench.toml" "$PORT"
if [[ "$BACKEND" == duckdb ]]; then wait_for_derived; fi

# The generator's events end on 2026-11-23: its last 30 days.
VIEW="http://127.0.0.1:${PORT}/?period=custom&from=2026-10-25&to=2026-11-23"
echo "== overview over ${EVENTS} events on ${BACKEND}, ${LOADS} loads"
echo "last 30 days: $(node tests/browser/dashboard-timing.mjs "$VIEW" "$READ_KEY" "$LOADS")"
echo "compared with the 30 days before: $(node tests/browser/dashboard-timing.mjs "${VIEW}&compare=previous" "$READ_KEY" "$LOADS")"
echo "server_peak_rss_mb=$(peak_rss_mb)"
