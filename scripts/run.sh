#!/usr/bin/env bash
# The main job: installs what is missing, builds, starts a nats-server on
# loopback, runs each example service with its client, prints the replies,
# and stops everything.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build}"
source "$root/scripts/lib.sh"

"$root/scripts/build.sh"

pids=()
NATS_CLUSTER_PIDS=()
work="$(mktemp -d)"  # Service logs and client pipes; removed at exit.
cleanup() {
  stop_pids "${pids[@]}" "${NATS_CLUSTER_PIDS[@]}"
  rm -rf "$work"
}
trap cleanup EXIT

start_nats_server
pids+=("$NATS_PID")

# start_service <url> <binary> [flags...]: runs an example server connected
# to <url> until the script exits; sets SERVICE_PID, and SERVICE_LOG to the
# file its output goes to.
start_service() {
  local url="$1" binary="$2" log
  shift 2
  log="$(mktemp "$work/service.XXXXXX")"
  "$binary" --nats "$url" "$@" >"$log" 2>&1 &
  SERVICE_PID=$!
  SERVICE_LOG=$log
  pids=("$SERVICE_PID" "${pids[@]}")  # Services stop before the nats-servers.
  if ! wait_for 100 grep -q "serving" "$log"; then
    cat "$log" >&2
    echo "$(basename "$binary") did not start" >&2
    exit 1
  fi
  cat "$log"
}

# run_paused <action> <client> [flags...]: runs an example client that
# stops at a prompt ("... press Enter") until a line arrives on its stdin;
# runs the function <action> there, then lets the client go on. Prints the
# client's output and sets CLIENT_OUTPUT to it; exits if the client fails.
run_paused() {
  local action="$1" dir go client status=0
  shift
  dir="$(mktemp -d "$work/client.XXXXXX")"
  mkfifo "$dir/stdin"
  "$@" <"$dir/stdin" >"$dir/out" 2>&1 &
  client=$!
  exec {go}>"$dir/stdin"
  if ! wait_for 300 grep -q "press Enter" "$dir/out"; then
    cat "$dir/out" >&2
    stop_pids "$client"
    echo "$(basename "$1") did not reach its prompt" >&2
    exit 1
  fi
  cat "$dir/out"
  "$action"
  echo >&"$go"
  exec {go}>&-
  wait "$client" || status=$?
  CLIENT_OUTPUT="$(cat "$dir/out")"
  tail -n +"$(($(grep -n "press Enter" "$dir/out" | cut -d: -f1) + 1))" "$dir/out"
  if [ "$status" -ne 0 ]; then
    echo "$(basename "$1") failed (exit status $status)" >&2
    exit 1
  fi
}

# kill_process <description> <pid>: SIGKILL, as a crash would; returns once
# the process is gone.
kill_process() {
  kill -KILL "$2"
  wait "$2" 2>/dev/null || true
  echo "run.sh: killed $1 (pid $2) with SIGKILL"
}

examples="$build_dir/examples"

echo "== greeter (unary; interceptors log, count and check a bearer token)"
token="demo-token"
start_service "$NATS_URL" "$examples/greeter/greeter_server" --token "$token"
greeter_log="$SERVICE_LOG"
"$examples/greeter/greeter_client" --nats "$NATS_URL" --name micro --token "$token"
echo "greeter_client --name '' (the handler rejects an empty name):"
if "$examples/greeter/greeter_client" --nats "$NATS_URL" --name "" --token "$token"; then
  echo "expected an INVALID_ARGUMENT error" >&2
  exit 1
fi
echo "greeter_client without --token (the server's token check refuses it):"
if "$examples/greeter/greeter_client" --nats "$NATS_URL" --name micro 2>"$greeter_log.client"; then
  echo "expected an UNAUTHENTICATED error" >&2
  exit 1
fi
cat "$greeter_log.client"
grep -q "UNAUTHENTICATED" "$greeter_log.client" || { echo "expected UNAUTHENTICATED" >&2; exit 1; }
echo "greeter_server's log so far (its logging interceptor):"
cat "$greeter_log"

echo "== the micro CLI: services, and a call with JSON (no compiled stubs)"
"$build_dir/cli/micro" services --nats "$NATS_URL"
"$build_dir/cli/micro" call helloworld-Greeter SayHello '{"name": "CLI"}' --nats "$NATS_URL" \
  --metadata "authorization=Bearer $token"

echo "== route guide (unary, server, client and bidirectional streaming)"
start_service "$NATS_URL" "$examples/route_guide/route_guide_server"
output="$("$examples/route_guide/route_guide_client" --nats "$NATS_URL")"
echo "$output"
for rpc in GetFeature ListFeatures RecordRoute RouteChat; do
  grep -q "^$rpc: " <<<"$output" || { echo "route_guide_client printed nothing for $rpc" >&2; exit 1; }
done

echo "== load balancing: three instances of one service (c is slow), then b killed"
declare -A lb_pids
for instance in a b c; do
  delay_ms=0
  if [ "$instance" = c ]; then delay_ms=10; fi
  start_service "$NATS_URL" "$examples/lb/lb_server" --instance "$instance" --delay_ms "$delay_ms"
  lb_pids[$instance]=$SERVICE_PID
done
kill_lb_b() { kill_process "lb_server b" "${lb_pids[b]}"; }
run_paused kill_lb_b "$examples/lb/lb_client" --nats "$NATS_URL"
# Every call succeeds; before the kill each way of balancing reaches all
# three instances, after it only a and c; the registry drops b.
awk '
  $1 == "before" || $1 == "after" {
    rounds[$1]++
    split($4, ok, "/")
    if (ok[1] != ok[2]) { print "lb: not every call succeeded: " $0; bad = 1 }
    instances = ""
    for (i = 6; i <= NF && $i ~ /^[a-z]+=[0-9]+$/; i++) instances = instances substr($i, 1, index($i, "=") - 1)
    want = $1 == "before" ? "abc" : "ac"
    if (instances != want) { print "lb: expected answers from " want ", got " instances ": " $0; bad = 1 }
  }
  END {
    if (rounds["before"] != 4 || rounds["after"] != 4) { print "lb: expected 4 rounds before and 4 after"; bad = 1 }
    exit bad
  }' <<<"$CLIENT_OUTPUT" >&2
grep -q "^registry: instance b .* deleted" <<<"$CLIENT_OUTPUT" || { echo "lb: the registry did not drop b" >&2; exit 1; }

echo "== cluster: three nats-servers; the service's node killed"
start_nats_cluster 3
# node_of <connection name>: the number of the cluster node it is connected to.
node_of() {
  local i
  for i in "${!NATS_CLUSTER_MONITOR_PORTS[@]}"; do
    if curl -s "http://127.0.0.1:${NATS_CLUSTER_MONITOR_PORTS[i]}/connz" | grep -q "\"name\": \"$1\""; then
      echo $((i + 1))
      return 0
    fi
  done
  echo none
}
start_service "${NATS_CLUSTER_URLS[0]}" "$examples/greeter/greeter_server"
kill_node_1() {
  echo "run.sh: greeter_server is on node $(node_of greeter_server), cluster_client on node $(node_of cluster_client)"
  kill_process "nats-server node 1" "${NATS_CLUSTER_PIDS[0]}"
}
run_paused kill_node_1 "$examples/cluster/cluster_client" --nats "${NATS_CLUSTER_URLS[2]}"
node="$(node_of greeter_server)"
echo "run.sh: greeter_server is now on node $node"
[ "$node" = 2 ] || [ "$node" = 3 ] || { echo "cluster: greeter_server did not move to node 2 or 3" >&2; exit 1; }
grep -q "^after: Hello, cluster!" <<<"$CLIENT_OUTPUT" || { echo "cluster: no answer after the kill" >&2; exit 1; }

echo "== events: two workers in a queue group share the orders; the audit log gets every one"
subscriber_pids=() subscriber_logs=()
for name in w1 w2 audit; do
  queue_group=workers
  if [ "$name" = audit ]; then queue_group=""; fi
  start_service "$NATS_URL" "$examples/events/events_subscriber" --name "$name" --queue_group "$queue_group"
  subscriber_pids+=("$SERVICE_PID")
  subscriber_logs+=("$SERVICE_LOG")
done
echo "micro describe workers: the registry lists each instance's subscriptions"
subscriptions="$("$build_dir/cli/micro" describe workers --nats "$NATS_URL" | sed -n '/^Event subscriptions/,/^$/p')"
echo "$subscriptions"
grep -q "shop.orders.placed  *workers  *shop.OrderPlaced" <<<"$subscriptions" || { echo "events: micro describe lists no subscription" >&2; exit 1; }
orders=12
"$examples/events/events_publisher" --nats "$NATS_URL" --count "$orders"
# Events arrive asynchronously: stop the subscribers (they drain) once the
# workers and the audit log have seen every order, or after 10 s.
wait_for 100 bash -c "[ \"\$(cat ${subscriber_logs[*]} | grep -c ': order ')\" -ge $((2 * orders)) ]" || true
stop_pids "${subscriber_pids[@]}"
grep -h -e ": order " -e ": stopped" "${subscriber_logs[@]}"
# Each order reached exactly one worker, and the audit log, with its metadata.
worker_orders="$(cat "${subscriber_logs[0]}" "${subscriber_logs[1]}" | awk '$2 == "order" { print $3 }' | sort -n)"
if [ "$(wc -l <<<"$worker_orders")" -ne "$orders" ] || [ "$(uniq <<<"$worker_orders" | wc -l)" -ne "$orders" ]; then
  echo "events: the workers did not handle each of the $orders orders exactly once" >&2
  exit 1
fi
if [ "$(grep -c "^audit: order .* x-request-id=req-" "${subscriber_logs[2]}")" -ne "$orders" ]; then
  echo "events: the audit log did not get each of the $orders orders with its metadata" >&2
  exit 1
fi

echo "run: OK"
