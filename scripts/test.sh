#!/usr/bin/env bash
# Every test: installs what is missing, builds, runs the whole ctest suite
# (each test starts and stops its own loopback nats-server), then the main
# job's end-to-end run of the examples.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build}"

"$root/scripts/build.sh"
"$root/scripts/run.sh" >/dev/null
echo "examples end to end: OK"
ctest --test-dir "$build_dir" --output-on-failure -j 2 --timeout 300
