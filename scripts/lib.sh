# Shell helpers shared by the scripts: a loopback nats-server that is always
# stopped by pid when the calling script exits.

# Prints a TCP port on 127.0.0.1 that nothing accepts connections on.
free_port() {
  local port
  for port in $(seq 4222 4321); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "no free port in 4222-4321" >&2
  return 1
}

# Runs `command...` until it succeeds, at most `tries` times, 0.1 s apart.
wait_for() {
  local tries="$1"
  shift
  for _ in $(seq "$tries"); do
    if "$@" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# Starts nats-server on a free loopback port; sets NATS_URL and NATS_PID.
start_nats_server() {
  local port
  port="$(free_port)"
  local binary=/usr/sbin/nats-server
  [ -x "$binary" ] || binary="$(command -v nats-server)"
  "$binary" -a 127.0.0.1 -p "$port" >"${NATS_LOG:-/dev/null}" 2>&1 &
  NATS_PID=$!
  NATS_URL="nats://127.0.0.1:$port"
  export NATS_URL
  if ! wait_for 100 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"; then
    echo "nats-server did not start on port $port" >&2
    return 1
  fi
  echo "nats-server pid $NATS_PID listening on $NATS_URL"
}

# Sends SIGTERM to each pid, waits up to 5 s, then SIGKILLs what is left.
stop_pids() {
  local pid
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    wait_for 50 bash -c "! kill -0 $pid" || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
