# Shared by the benchmark scripts: a temporary work directory and the release
# binary started on a configuration there, stopped (SIGTERM) on exit.
#
#   source scripts/lib/bench-server.sh
#   write_config "$PORT" Europe/Berlin          # $WORK/bench.toml
#   start_server "$WORK/bench.toml" "$PORT"    # sets SERVER_PID; waits for /healthz

WORK="$(mktemp -d)"
cleanup() {
  if [[ -n "${SERVER_PID:-}" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# Writes $WORK/bench.toml: project `bench` (keys wk_/rk_benchmark_000001) in
# timezone $2, listening on port $1; storage is the DuckDB file
# $WORK/analytics.duckdb, or ClickHouse when $3 is a ClickHouse URL (database
# `bench`).
write_config() {
  local port="$1" timezone="${2:-UTC}" clickhouse_url="${3:-}"
  local storage="path = \"${WORK}/analytics.duckdb\""
  if [[ -n "$clickhouse_url" ]]; then
    storage="backend = \"clickhouse\"
url = \"${clickhouse_url}\"
database = \"bench\""
  fi
  cat > "$WORK/bench.toml" <<TOML
listen = "127.0.0.1:${port}"
[storage]
${storage}
[log]
level = "${BENCH_LOG_LEVEL:-warn}"
[[projects]]
id = "bench"
timezone = "${timezone}"
write_keys = ["wk_benchmark_000001"]
read_keys = ["rk_benchmark_000001"]
TOML
}

start_server() {
  local config="$1" port="$2"
  "${BENCH_BINARY:-$CARGO_TARGET_DIR/release/analytics}" --config "$config" > "${SERVER_LOG:-$WORK/server.log}" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:${port}/healthz" >/dev/null && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "the server did not start:" >&2
  tail -n 20 "${SERVER_LOG:-$WORK/server.log}" >&2
  return 1
}

# Starts a throw-away ClickHouse server (stopped on exit); sets CLICKHOUSE_URL.
start_clickhouse() {
  eval "$(scripts/clickhouse-server.sh start)"
  CLICKHOUSE_URL="$CLICKHOUSE_TEST_URL"
  trap 'cleanup; scripts/clickhouse-server.sh stop "$CLICKHOUSE_TEST_PID" "$CLICKHOUSE_TEST_DIR"' EXIT
}

peak_rss_mb() {
  echo $(( $(awk '/VmHWM/ {print $2}' "/proc/${SERVER_PID}/status") / 1024 ))
}

# The exporter worker's computations so far, from the server's /metrics on
# port $1: how many, and their mean and total time.
exporter_stats() {
  curl -sf "http://127.0.0.1:$1/metrics" | awk '
    /^analytics_exporter_run_duration_seconds_count/ {count = $2}
    /^analytics_exporter_run_duration_seconds_sum/ {sum = $2}
    /^analytics_exporter_errors_total/ {errors += $2}
    END {
      if (count > 0) printf "exporter_runs=%d exporter_mean_ms=%.1f exporter_errors=%d\n", count, sum / count * 1000, errors
      else print "exporter_runs=0"
    }'
}
