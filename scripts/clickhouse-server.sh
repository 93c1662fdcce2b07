#!/usr/bin/env bash
# Starts a throw-away ClickHouse server on free loopback ports for the tests,
# or stops it. The data directory lives under a temporary directory.
#
#   eval "$(scripts/clickhouse-server.sh start)"   # exports CLICKHOUSE_TEST_URL, CLICKHOUSE_TEST_PID, CLICKHOUSE_TEST_DIR
#   scripts/clickhouse-server.sh stop "$CLICKHOUSE_TEST_PID" "$CLICKHOUSE_TEST_DIR"
set -euo pipefail

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

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
    pid="${2:?pid}"
    dir="${3:?dir}"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start | stop PID DIR" >&2
    exit 2
    ;;
esac
