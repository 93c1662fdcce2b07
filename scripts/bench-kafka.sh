#!/usr/bin/env bash
# Kafka benchmark: fills a topic on a throw-away Kafka-protocol broker (Tansu,
# in memory) with realistic events, then measures, in the same run,
#   1. a bare librdkafka consumer that only counts the records (the ceiling),
#   2. the service's consumer worker storing them (DuckDB or ClickHouse),
# as records per second from the first record read to the last one stored,
# and checks that every record was stored.
#
#   scripts/bench-kafka.sh [--backend duckdb|clickhouse] [--events N]
set -euo pipefail
cd "$(dirname "$0")/.."
# The build directory of `cargo build --release` (./target unless CARGO_TARGET_DIR says otherwise).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

PORT="${BENCH_PORT:-18080}"
READ_KEY="rk_benchmark_000001"
BACKEND=duckdb
EVENTS=500000
while [[ $# -gt 0 ]]; do
  case "$1" in
    --backend) BACKEND="$2"; shift 2 ;;
    --events) EVENTS="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

cargo build --release --quiet --bin analytics --example bench_kafka
BENCH="$CARGO_TARGET_DIR/release/examples/bench_kafka"

source scripts/lib/bench-server.sh
eval "$(scripts/kafka-broker.sh start)"
stop_all() {
  cleanup
  scripts/kafka-broker.sh stop "$KAFKA_TEST_PID" "$KAFKA_TEST_DIR"
  if [[ -n "${CLICKHOUSE_TEST_PID:-}" ]]; then
    scripts/clickhouse-server.sh stop "$CLICKHOUSE_TEST_PID" "$CLICKHOUSE_TEST_DIR"
  fi
}
trap stop_all EXIT

case "$BACKEND" in
  duckdb) write_config "$PORT" UTC ;;
  clickhouse)
    eval "$(scripts/clickhouse-server.sh start)"
    write_config "$PORT" UTC "$CLICKHOUSE_TEST_URL" ;;
  *) echo "unknown backend $BACKEND" >&2; exit 2 ;;
esac
cat >> "$WORK/bench.toml" <<TOML
[kafka]
brokers = "${KAFKA_TEST_BROKERS}"
topic = "events"
dead_letter_topic = "events_dlq"
group_id = "analytics-bench"
default_project = "bench"
TOML

echo "== producing ${EVENTS} records"
"$BENCH" produce --brokers "$KAFKA_TEST_BROKERS" --topic events --events "$EVENTS"

echo "== bare librdkafka consumer (count only)"
"$BENCH" count --brokers "$KAFKA_TEST_BROKERS" --topic events --events "$EVENTS" | tee "$WORK/count.out"

echo "== the service's consumer worker, ${BACKEND}"
metric() {
  curl -sf "http://127.0.0.1:${PORT}/metrics" | awk -v name="$1" '$1 == name {print $2}'
}
start_server "$WORK/bench.toml" "$PORT"
until [[ "$(metric analytics_kafka_messages_consumed_total)" != "0" ]]; do sleep 0.02; done
FIRST="$(date +%s.%N)"
while true; do
  STORED="$(metric analytics_kafka_messages_stored_total)"
  [[ "${STORED%.*}" -ge "$EVENTS" ]] && break
  sleep 0.05
done
LAST="$(date +%s.%N)"
SECONDS_TAKEN="$(python3 -c "print(f'{$LAST - $FIRST:.2f}')")"
SERVICE_RATE="$(python3 -c "print(round($EVENTS / ($LAST - $FIRST)))")"
echo "stored=${STORED} seconds=${SECONDS_TAKEN} records_per_second=${SERVICE_RATE} server_peak_rss_mb=$(peak_rss_mb)"

EXPORTED="$(curl -sf -H "Authorization: Bearer ${READ_KEY}" "http://127.0.0.1:${PORT}/v1/export" | wc -l)"
echo "exported=${EXPORTED}"
if [[ "$EXPORTED" -ne "$EVENTS" ]]; then
  echo "MISMATCH: produced ${EVENTS}, stored ${EXPORTED}" >&2
  exit 1
fi
CEILING="$(sed -n 's/.*records_per_second=\([0-9]*\).*/\1/p' "$WORK/count.out")"
python3 -c "print(f'ratio_to_bare_consumer={$SERVICE_RATE / $CEILING:.2f}')"
grep -E '^analytics_(kafka_batch_write_duration_seconds|batch_flush_size_events)_(sum|count)' \
  <(curl -sf "http://127.0.0.1:${PORT}/metrics") || true
