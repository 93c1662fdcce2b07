#!/usr/bin/env bash
# Query benchmark: generates a DuckDB file of realistic events (10 million by
# default), starts the release binary on it, and times the benchmark queries
# of examples/bench_query.rs through the HTTP API. With --backend clickhouse
# the same events are copied into a throw-away local ClickHouse server and the
# service queries that instead.
#
#   scripts/bench-query.sh [--backend duckdb|clickhouse] [--events N] [--runs N] [--linked] [--data FILE]
#
# --data FILE keeps the generated DuckDB file at FILE and, when FILE already
# exists, reuses a copy of it instead of generating again (the service writes
# to it; with --backend clickhouse, which only reads it, the file itself).
# Each query reports the service's peak resident memory while it ran.
# --linked merges every anonymous user into an identified one (DuckDB), to
# measure what identity links cost at query time.
set -euo pipefail
cd "$(dirname "$0")/.."
# The build directory of `cargo build --release` (./target unless CARGO_TARGET_DIR says otherwise).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

EVENTS=10000000
RUNS=20
BACKEND=duckdb
LINKED=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --backend) BACKEND="$2"; shift 2 ;;
    --events) EVENTS="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --linked) LINKED=(--linked); shift ;;
    --data) DATA="$2"; shift 2 ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done

PORT="${BENCH_PORT:-18082}"
READ_KEY="rk_benchmark_000001"
cargo build --release --quiet --bin analytics --example bench_query
BENCH="$CARGO_TARGET_DIR/release/examples/bench_query"

source scripts/lib/bench-server.sh

if [[ "$BACKEND" == clickhouse ]]; then export BENCH_DATA_IN_PLACE=1; fi
prepare_benchmark_data "$BENCH" "$EVENTS" "${DATA:-}" "${LINKED[@]}"
start_benchmark_backend "$BENCH" "$BACKEND" "$PORT"
start_server "$WORK/bench.toml" "$PORT"
if [[ "$BACKEND" == duckdb ]]; then wait_for_derived; fi
if [[ -n "${DATA:-}" ]]; then
  echo "== queries over the events of ${DATA} on ${BACKEND}"
else
  echo "== queries over ${EVENTS} events on ${BACKEND}"
fi
"$BENCH" run --url "http://127.0.0.1:${PORT}" --read-key "$READ_KEY" --runs "$RUNS" --server-pid "$SERVER_PID"
echo "server_peak_rss_mb=$(peak_rss_mb)"
exporter_stats "$PORT"
