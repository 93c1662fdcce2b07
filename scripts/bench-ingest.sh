#!/usr/bin/env bash
# Ingest benchmark: starts the release binary on a fresh DuckDB file, drives it
# with the load generator (batches of realistic events over keep-alive HTTP,
# same machine), then reports events/s, p50/p99 request latency, the server's
# peak memory, and checks that every acknowledged event was stored.
#
#   scripts/bench-ingest.sh [--connections N] [--batch N] [--seconds N]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/analytics/target}"

PORT="${BENCH_PORT:-18080}"
WRITE_KEY="wk_benchmark_000001"
READ_KEY="rk_benchmark_000001"

cargo build --release --quiet --bin analytics --example loadgen
LOADGEN="$CARGO_TARGET_DIR/release/examples/loadgen"

source scripts/lib/bench-server.sh

write_config "$PORT" UTC

start_server "$WORK/bench.toml" "$PORT"

echo "== load: $*"
"$LOADGEN" --url "http://127.0.0.1:${PORT}" --write-key "$WRITE_KEY" "$@" | tee "$WORK/loadgen.out"

echo "server_peak_rss_mb=$(peak_rss_mb)"

ACKED="$(sed -n 's/.*acknowledged_including_warmup=\([0-9]*\).*/\1/p' "$WORK/loadgen.out")"
STORED="$(curl -sf -H "Authorization: Bearer ${READ_KEY}" "http://127.0.0.1:${PORT}/v1/export" | wc -l)"
echo "acknowledged=${ACKED} stored=${STORED}"
if [[ "$STORED" -lt "$ACKED" ]]; then
  echo "LOST EVENTS: acknowledged ${ACKED} but stored ${STORED}" >&2
  exit 1
fi
grep -E '^analytics_batch_flush_(size_events|duration_seconds)_(sum|count)' \
  <(curl -sf "http://127.0.0.1:${PORT}/metrics") || true
