#!/usr/bin/env bash
# micro against raw nats.c and gRPC C++, in one command (bench/README.md):
# installs what is missing, builds micro_compare and its server processes,
# and runs it. micro_compare starts its own nats-server on a free loopback
# port, measures unary calls, one stream and the broker next to raw nats.c
# (and unary calls next to gRPC), prints one table with ratios and writes
# JSON to ${BENCH_JSON:-<build dir>/bench/compare.json}. Arguments go to
# micro_compare, e.g. `--seconds 5`, or `--quick` for a rough run in about
# a fifth of the time.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build}"

"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" \
  -DMICRO_BUILD_TESTS=ON -DMICRO_BUILD_BENCH=ON >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target micro_compare
json="${BENCH_JSON:-$build_dir/bench/compare.json}"
"$build_dir/bench/compare/micro_compare" --json "$json" "$@"
echo "bench: results also in $json"
