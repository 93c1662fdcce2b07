#!/usr/bin/env bash
# Ingest benchmark: starts the release binary on fresh storage, drives it with
# the load generator (batches of realistic events over keep-alive HTTP, same
# machine), then reports events/s, p50/p99 request latency, the server's peak
# memory, and checks that every acknowledged event was stored.
#
# First the same load goes to examples/body_sink.rs, a server that only reads
# each body and answers 200: the ceiling HTTP and the load generator leave on
# this machine; the service's events/s is reported as a ratio to it.
#
# With --backend clickhouse the service writes to a throw-away local ClickHouse
# server, and afterwards the same kind of events (one million) are sent
# straight to ClickHouse as `INSERT ... FORMAT JSONEachRow`, for comparison.
#
#   scripts/bench-ingest.sh [--backend duckdb|clickhouse] [--stored N [--data FILE]]
#                           [--connections N] [--batch N] [--seconds N]
#
# --stored N (DuckDB) first fills the store with N events of the query
# benchmark's generator (random ids, 90 days), starts the service on it and
# waits until its kept sessions and rollups are built, so that the load meets
# a store of that size; --data FILE keeps that file for the next run (as
# scripts/bench-query.sh --data does) and reuses a copy of it when it exists.
#
# BENCH_BINARY=PATH runs another build of the service (an A/B against an
# older commit) under the same load generator.
set -euo pipefail
cd "$(dirname "$0")/.."
# The build directory of `cargo build --release` (./target unless CARGO_TARGET_DIR says otherwise).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

PORT="${BENCH_PORT:-18080}"
WRITE_KEY="wk_benchmark_000001"
READ_KEY="rk_benchmark_000001"

BACKEND=duckdb
STORED=0
LOAD_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --backend) BACKEND="$2"; shift 2 ;;
    --stored) STORED="$2"; shift 2 ;;
    --data) DATA="$2"; shift 2 ;;
    *) LOAD_ARGS+=("$1"); shift ;;
  esac
done

cargo build --release --quiet --bin analytics --example loadgen --example bench_clickhouse_insert --example body_sink --example bench_query
LOADGEN="$CARGO_TARGET_DIR/release/examples/loadgen"

source scripts/lib/bench-server.sh

# The ceiling: the same load against a server that only reads the bodies.
SINK_PORT="${BENCH_SINK_PORT:-18079}"
"$CARGO_TARGET_DIR/release/examples/body_sink" --listen "127.0.0.1:${SINK_PORT}" &
SINK_PID=$!
trap 'kill "$SINK_PID" 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 1 100); do
  curl -s -o /dev/null "http://127.0.0.1:${SINK_PORT}/" && break
  sleep 0.1
done
echo "== load on body_sink (reads each body, answers 200): ${LOAD_ARGS[*]}"
"$LOADGEN" --url "http://127.0.0.1:${SINK_PORT}" --write-key "$WRITE_KEY" "${LOAD_ARGS[@]}" | tee "$WORK/sink.out"
kill -TERM "$SINK_PID"
wait "$SINK_PID" || true
trap cleanup EXIT

case "$BACKEND" in
  duckdb) write_config "$PORT" UTC ;;
  clickhouse) start_clickhouse; write_config "$PORT" UTC "$CLICKHOUSE_URL" ;;
  *) echo "unknown backend $BACKEND" >&2; exit 2 ;;
esac
if [[ "$STORED" -gt 0 ]]; then
  if [[ "$BACKEND" != duckdb ]]; then echo "--stored works with the DuckDB backend" >&2; exit 2; fi
  prepare_benchmark_data "$CARGO_TARGET_DIR/release/examples/bench_query" "$STORED" "${DATA:-}"
fi

STARTED_AT=$SECONDS
start_server "$WORK/bench.toml" "$PORT"
echo "startup_s=$((SECONDS - STARTED_AT)) stored_before=${STORED}"
if [[ "$STORED" -gt 0 ]]; then wait_for_derived; fi

echo "== load on ${BACKEND}: ${LOAD_ARGS[*]}"
"$LOADGEN" --url "http://127.0.0.1:${PORT}" --write-key "$WRITE_KEY" "${LOAD_ARGS[@]}" | tee "$WORK/loadgen.out"

echo "server_peak_rss_mb=$(peak_rss_mb)"
rate() { sed -n 's/.*events_per_second=\([0-9]*\).*/\1/p' "$1"; }
awk -v service="$(rate "$WORK/loadgen.out")" -v sink="$(rate "$WORK/sink.out")" \
  'BEGIN { if (sink > 0) printf "ratio_to_body_sink=%.4f (%d of %d events/s)\n", service / sink, service, sink }'
exporter_stats "$PORT"

ACKED="$(sed -n 's/.*acknowledged_including_warmup=\([0-9]*\).*/\1/p' "$WORK/loadgen.out")"
if [[ "$STORED" -gt 0 ]]; then
  # Counting a large store by exporting it would take minutes: the query
  # API counts every event of the project instead.
  TOTAL="$(curl -sf -H "Authorization: Bearer ${READ_KEY}" -H 'Content-Type: application/json' \
    -d '{"metrics": ["events"], "date_range": "all"}' "http://127.0.0.1:${PORT}/v1/query" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["results"][0]["metrics"][0])')"
  COUNTED=$((TOTAL - STORED))
else
  COUNTED="$(curl -sf -H "Authorization: Bearer ${READ_KEY}" "http://127.0.0.1:${PORT}/v1/export" | wc -l)"
fi
echo "acknowledged=${ACKED} stored=${COUNTED}"
if [[ "$COUNTED" -lt "$ACKED" ]]; then
  echo "LOST EVENTS: acknowledged ${ACKED} but stored ${COUNTED}" >&2
  exit 1
fi
grep -E '^analytics_batch_flush_(size_events|duration_seconds)_(sum|count)' \
  <(curl -sf "http://127.0.0.1:${PORT}/metrics") || true

if [[ "$BACKEND" == clickhouse ]]; then
  echo "== the same kind of events straight into ClickHouse (JSONEachRow)"
  "$CARGO_TARGET_DIR/release/examples/bench_clickhouse_insert" --url "$CLICKHOUSE_URL" --events 1000000 --batch 20000
fi
