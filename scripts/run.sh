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
cleanup() { stop_pids "${pids[@]}"; }
trap cleanup EXIT

start_nats_server
pids+=("$NATS_PID")

# start_service <binary>: runs an example server until the script exits.
start_service() {
  local log
  log="$(mktemp)"
  "$1" --nats "$NATS_URL" >"$log" 2>&1 &
  pids=("$!" "${pids[@]}")  # Services stop before the nats-server.
  if ! wait_for 100 grep -q "serving" "$log"; then
    cat "$log" >&2
    echo "$(basename "$1") did not start" >&2
    exit 1
  fi
  cat "$log"
}

examples="$build_dir/examples"

echo "== greeter (unary)"
start_service "$examples/greeter/greeter_server"
"$examples/greeter/greeter_client" --nats "$NATS_URL" --name micro
echo "greeter_client --name '' (the handler rejects an empty name):"
if "$examples/greeter/greeter_client" --nats "$NATS_URL" --name ""; then
  echo "expected an INVALID_ARGUMENT error" >&2
  exit 1
fi

echo "== the micro CLI: services, and a call with JSON (no compiled stubs)"
"$build_dir/cli/micro" services --nats "$NATS_URL"
"$build_dir/cli/micro" call helloworld-Greeter SayHello '{"name": "CLI"}' --nats "$NATS_URL"

echo "== route guide (unary, server, client and bidirectional streaming)"
start_service "$examples/route_guide/route_guide_server"
output="$("$examples/route_guide/route_guide_client" --nats "$NATS_URL")"
echo "$output"
for rpc in GetFeature ListFeatures RecordRoute RouteChat; do
  grep -q "^$rpc: " <<<"$output" || { echo "route_guide_client printed nothing for $rpc" >&2; exit 1; }
done

echo "run: OK"
