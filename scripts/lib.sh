# Shell helpers shared by the scripts: a loopback nats-server, or a cluster
# of them, that the calling script stops by pid when it exits.

# Prints `count` (default 1) distinct TCP ports on 127.0.0.1 that nothing
# accepts connections on, separated by spaces.
free_port() {
  local count="${1:-1}" port picked=()
  for port in $(seq 4222 4321); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      picked+=("$port")
      if [ ${#picked[@]} -eq "$count" ]; then
        echo "${picked[*]}"
        return 0
      fi
    fi
  done
  echo "fewer than $count free ports in 4222-4321" >&2
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

# launch_nats_server <port> [nats-server flags...]: starts a nats-server
# for clients on 127.0.0.1:<port>, waits until it accepts connections, and
# sets LAUNCHED_PID.
launch_nats_server() {
  local port="$1"
  shift
  local binary=/usr/sbin/nats-server
  [ -x "$binary" ] || binary="$(command -v nats-server)"
  "$binary" -a 127.0.0.1 -p "$port" "$@" >"${NATS_LOG:-/dev/null}" 2>&1 &
  LAUNCHED_PID=$!
  if ! wait_for 100 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"; then
    echo "nats-server did not start on port $port" >&2
    stop_pids "$LAUNCHED_PID"
    return 1
  fi
}

# Starts nats-server on a free loopback port; sets NATS_URL and NATS_PID.
start_nats_server() {
  local port
  port="$(free_port)"
  launch_nats_server "$port"
  NATS_PID=$LAUNCHED_PID
  NATS_URL="nats://127.0.0.1:$port"
  export NATS_URL
  echo "nats-server pid $NATS_PID listening on $NATS_URL"
}

# start_nats_cluster <size>: starts <size> nats-servers on loopback, each
# routed to every other, and waits until every route is up. Each node has a
# client port and a monitoring port (http://127.0.0.1:<port>/connz lists
# its connections). Sets the arrays NATS_CLUSTER_URLS,
# NATS_CLUSTER_MONITOR_PORTS and NATS_CLUSTER_PIDS, one entry per node.
start_nats_cluster() {
  local size="$1" i j
  local -a ports
  read -r -a ports <<<"$(free_port $((3 * size)))"
  NATS_CLUSTER_URLS=() NATS_CLUSTER_MONITOR_PORTS=() NATS_CLUSTER_PIDS=()
  for ((i = 0; i < size; i++)); do
    local client_port=${ports[3 * i]} route_port=${ports[3 * i + 1]} monitor_port=${ports[3 * i + 2]}
    local routes=()
    for ((j = 0; j < size; j++)); do
      [ "$j" -eq "$i" ] || routes+=("nats-route://127.0.0.1:${ports[3 * j + 1]}")
    done
    launch_nats_server "$client_port" --cluster_name micro-example \
      --cluster "nats://127.0.0.1:$route_port" --routes "$(IFS=,; echo "${routes[*]}")" \
      --http_port "$monitor_port"
    NATS_CLUSTER_PIDS+=("$LAUNCHED_PID")
    NATS_CLUSTER_URLS+=("nats://127.0.0.1:$client_port")
    NATS_CLUSTER_MONITOR_PORTS+=("$monitor_port")
  done
  for ((i = 0; i < size; i++)); do
    if ! wait_for 100 bash -c "curl -s http://127.0.0.1:${NATS_CLUSTER_MONITOR_PORTS[i]}/routez |
                               grep -q '\"num_routes\": $((size - 1))'"; then
      echo "nats-server cluster node $((i + 1)) has no route to every other node" >&2
      stop_pids "${NATS_CLUSTER_PIDS[@]}"
      return 1
    fi
  done
  for ((i = 0; i < size; i++)); do
    echo "nats-server cluster node $((i + 1)): pid ${NATS_CLUSTER_PIDS[i]} listening on ${NATS_CLUSTER_URLS[i]}"
  done
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
