#!/usr/bin/env bash
# The main job: installs what is missing, builds, starts a nats-server on
# loopback, runs greeter_server and calls it with greeter_client, prints the
# reply, and stops everything.
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

server_log="$(mktemp)"
"$build_dir/examples/greeter/greeter_server" --nats "$NATS_URL" >"$server_log" 2>&1 &
pids=("$!" "${pids[@]}")  # The service stops before the nats-server.
if ! wait_for 100 grep -q "serving" "$server_log"; then
  cat "$server_log" >&2
  echo "greeter_server did not start" >&2
  exit 1
fi
cat "$server_log"

echo "greeter_client --name micro:"
"$build_dir/examples/greeter/greeter_client" --nats "$NATS_URL" --name micro
echo "greeter_client --name '' (the handler rejects an empty name):"
if "$build_dir/examples/greeter/greeter_client" --nats "$NATS_URL" --name ""; then
  echo "expected an INVALID_ARGUMENT error" >&2
  exit 1
fi
echo "run: OK"
