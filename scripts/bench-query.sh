#!/usr/bin/env bash
# Query benchmark: generates a DuckDB file of realistic events (10 million by
# default), starts the release binary on it, and times the benchmark queries
# of examples/bench_query.rs through the HTTP API.
#
#   scripts/bench-query.sh [--events N] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/analytics/target}"

EVENTS=10000000
RUNS=20
while [[ $# -gt 0 ]]; do
  case "$1" in
    --events) EVENTS="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done

PORT="${BENCH_PORT:-18082}"
READ_KEY="rk_benchmark_000001"
cargo build --release --quiet --bin analytics --example bench_query
BIN="$CARGO_TARGET_DIR/release/analytics"
BENCH="$CARGO_TARGET_DIR/release/examples/bench_query"

WORK="$(mktemp -d)"
cleanup() {
  if [[ -n "${SERVER_PID:-}" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BENCH" generate --path "$WORK/analytics.duckdb" --events "$EVENTS"
cat > "$WORK/bench.toml" <<TOML
listen = "127.0.0.1:${PORT}"
[storage]
path = "${WORK}/analytics.duckdb"
[log]
level = "warn"
[[projects]]
id = "bench"
timezone = "Europe/Berlin"
write_keys = ["wk_benchmark_000001"]
read_keys = ["${READ_KEY}"]
TOML
"$BIN" --config "$WORK/bench.toml" > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:${PORT}/healthz" >/dev/null && break
  sleep 0.1
done
echo "== queries over ${EVENTS} events"
"$BENCH" run --url "http://127.0.0.1:${PORT}" --read-key "$READ_KEY" --runs "$RUNS"
echo "server_peak_rss_mb=$(( $(awk '/VmHWM/ {print $2}' "/proc/${SERVER_PID}/status") / 1024 ))"
