# Shared by the scripts that run throw-away servers for the tests.

# Prints a free TCP port on the loopback interface.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Stops the server process $1 (SIGTERM, then SIGKILL after 10 s) and removes
# its directory $2.
stop_server() {
  local pid="$1" dir="$2"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -rf "$dir"
}
