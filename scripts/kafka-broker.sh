#!/usr/bin/env bash
# Starts a throw-away Kafka-protocol broker (Tansu) on a free loopback port
# for the tests, or stops it.
#
# It stores records in SQLite inside its temporary directory. Tansu's
# in-memory engine is not used: it answers a fetch only from the start of a
# stored producer batch, so a consumer resuming inside a batch (after a
# restart, a rebalance or a pause) would wait forever, or skip ahead once a
# new batch arrives. Apache Kafka returns the batch holding the offset; so
# does Tansu's SQLite engine.
#
#   eval "$(scripts/kafka-broker.sh start)"   # exports KAFKA_TEST_BROKERS, KAFKA_TEST_PID, KAFKA_TEST_DIR
#   scripts/kafka-broker.sh stop "$KAFKA_TEST_PID" "$KAFKA_TEST_DIR"
set -euo pipefail

source "$(dirname "$0")/lib/server-process.sh"

port_open() {
  python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(("127.0.0.1", int(sys.argv[1]))))' "$1"
}

tansu_bin() {
  if command -v tansu >/dev/null 2>&1; then command -v tansu; else echo "$HOME/.cargo/bin/tansu"; fi
}

case "${1:-}" in
  start)
    dir="$(mktemp -d)"
    port="$(free_port)"
    (cd "$dir" && exec "$(tansu_bin)" broker \
      --listener-url "tcp://127.0.0.1:${port}" \
      --advertised-listener-url "tcp://127.0.0.1:${port}" \
      --storage-engine sqlite://tansu.db >"$dir/broker.log" 2>&1) &
    pid=$!
    for _ in $(seq 1 100); do
      if port_open "$port"; then
        echo "export KAFKA_TEST_BROKERS=127.0.0.1:${port}"
        echo "export KAFKA_TEST_PID=${pid}"
        echo "export KAFKA_TEST_DIR=${dir}"
        exit 0
      fi
      sleep 0.2
    done
    echo "the Kafka broker did not start; see ${dir}/broker.log" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
    ;;
  stop)
    stop_server "${2:?pid}" "${3:?dir}"
    ;;
  *)
    echo "usage: $0 start | stop PID DIR" >&2
    exit 2
    ;;
esac
