#!/usr/bin/env bash
# Every test: installs what is missing, builds, runs the main job's end-to-end
# example run, then the whole ctest suite (each test starts and stops its own
# loopback nats-server) in a normal build, under AddressSanitizer +
# UndefinedBehaviorSanitizer, and under ThreadSanitizer, then every libFuzzer
# fuzzer for ${MICRO_FUZZ_SECONDS:-15} seconds (scripts/fuzz.sh).
# MICRO_SKIP_SANITIZERS=1 runs the normal build only; MICRO_SKIP_FUZZ=1 skips
# the fuzzers.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build}"

run_suite() {
  local dir="$1"
  shift
  BUILD_DIR="$dir" BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" "$root/scripts/build.sh" "$@"
  ctest --test-dir "$dir" --output-on-failure -j 2 --timeout 300
}

"$root/scripts/build.sh"
"$root/scripts/run.sh" >/dev/null
echo "examples end to end: OK"
ctest --test-dir "$build_dir" --output-on-failure -j 2 --timeout 300

if [ "${MICRO_SKIP_SANITIZERS:-0}" != 1 ]; then
  export BUILD_TYPE=Debug
  # Known false positives of the uninstrumented system abseil; see the file.
  export TSAN_OPTIONS="suppressions=$root/tests/tsan.supp"
  run_suite "$build_dir-asan" -DMICRO_SANITIZE=address,undefined -DMICRO_BUILD_BENCH=OFF
  run_suite "$build_dir-tsan" -DMICRO_SANITIZE=thread -DMICRO_BUILD_BENCH=OFF \
    -DMICRO_BUILD_EXAMPLES=OFF
fi

if [ "${MICRO_SKIP_SANITIZERS:-0}" != 1 ] && [ "${MICRO_SKIP_FUZZ:-0}" != 1 ]; then
  FUZZ_BUILD_DIR="$build_dir-fuzz" "$root/scripts/fuzz.sh" "${MICRO_FUZZ_SECONDS:-15}"
fi
