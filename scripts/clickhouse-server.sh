#!/usr/bin/env bash
# Starts a throw-away ClickHouse server on free loopback ports for the tests,
# or stops it. The data directory lives under a temporary directory.
#
#   eval "$(scripts/clickhouse-server.sh start)"   # exports CLICKHOUSE_TEST_URL, CLICKHOUSE_TEST_PID, CLICKHOUSE_TEST_DIR
#   scripts/clickhouse-server.sh stop "$CLICKHOUSE_TEST_PID" "$CLICKHOUSE_TEST_DIR"
set -euo pipefail

source "$(dirname "$0")/lib/server-process.sh"

case "${1:-}" in
  start)
    dir="$(mktemp -d)"
    mkdir -p "$dir/tmp" "$dir/uf" "$dir/fs"
    http="$(free_port)"
    tcp="$(free_port)"
    clickhouse-server --config-file=/etc/clickhouse-server/config.xml -- \
      --path="$dir/" --tmp_path="$dir/tmp/" --user_files_path="$dir/uf/" \
      --format_schema_path="$dir/fs/" --listen_host=127.0.0.1 \
      --http_port="$http" --tcp_port="$tcp" --interserver_http_port="$(free_port)" \
      --logger.log="$dir/ch.log" --logger.errorlog="$dir/err.log" --logger.console=0 \
      >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
      if curl -sf "http://127.0.0.1:${http}/ping" >/dev/null 2>&1; then
        echo "export CLICKHOUSE_TEST_URL=http://127.0.0.1:${http}"
        echo "export CLICKHOUSE_TEST_PID=${pid}"
        echo "export CLICKHOUSE_TEST_DIR=${dir}"
        exit 0
      fi
      sleep 0.2
    done
    echo "ClickHouse did not start; see ${dir}/err.log" >&2
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
