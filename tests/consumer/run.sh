#!/usr/bin/env bash
# Builds the consumer project (a copy of this directory) against micro in one
# of the two ways users can, checks that builds are incremental, then runs it
# against a loopback nats-server:
#   run.sh installed <micro build dir> <work dir>
#       `cmake --install`s the build into <work dir>/prefix, then the project
#       does find_package(Micro) with CMAKE_PREFIX_PATH=<work dir>/prefix;
#   run.sh subdirectory <micro source dir> <work dir>
#       the project does add_subdirectory(<micro source dir>).
# <work dir> is deleted first. Builds with -j2 (BUILD_JOBS to change).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../../scripts/lib.sh"

if [ "$#" -ne 3 ]; then
  echo "usage: run.sh installed|subdirectory <micro build or source dir> <work dir>" >&2
  exit 2
fi
mode="$1" from="$2" work="$3"
rm -rf "$work"
mkdir -p "$work"
# A copy, whose files the incremental checks below may touch.
cp -r "$here" "$work/src"
case "$mode" in
  installed)
    cmake --install "$from" --prefix "$work/prefix"
    configure=(-DCMAKE_PREFIX_PATH="$work/prefix") ;;
  subdirectory)
    configure=(-DMICRO_SOURCE_DIR="$from") ;;
  *)
    echo "run.sh: unknown mode $mode" >&2
    exit 2 ;;
esac
cmake -S "$work/src" -B "$work/build" -G Ninja "${configure[@]}"
if [ "$mode" = installed ]; then
  # The package must come from the prefix, not from anywhere else.
  grep -qx "Micro_DIR:PATH=$work/prefix/.*" "$work/build/CMakeCache.txt" || {
    echo "find_package(Micro) did not use $work/prefix:" >&2
    grep "^Micro_DIR" "$work/build/CMakeCache.txt" >&2
    exit 1
  }
fi
build() { cmake --build "$work/build" -j "${BUILD_JOBS:-2}" | tee "$work/build.log"; }
build

# Nothing to do when nothing changed; a changed proto regenerates itself and
# the protos importing it (protoc's dependency file), and nothing else.
expect_generated() {  # expect_generated <proto>... : exactly these were generated
  local generated expected
  generated="$(sed -n 's/.*micro_generate: //p' "$work/build.log" | sort)"
  expected="$(printf '%s\n' "$@" | sed '/^$/d' | sort)"
  if [ "$generated" != "$expected" ]; then
    echo "expected generation of [${expected//$'\n'/ }], got [${generated//$'\n'/ }]" >&2
    exit 1
  fi
}
build
expect_generated
touch "$work/src/calculator/v1/types.proto"
build
expect_generated calculator/v1/calculator.proto calculator/v1/types.proto
touch "$work/src/calculator/v1/calculator.proto"
build
expect_generated calculator/v1/calculator.proto

pids=()
trap 'stop_pids "${pids[@]}"' EXIT
start_nats_server
pids+=("$NATS_PID")
"$work/build/consumer" "$NATS_URL"
