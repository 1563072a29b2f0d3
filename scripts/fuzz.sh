#!/usr/bin/env bash
# Builds the libFuzzer fuzzers of tests/fuzz/ with clang (coverage, ASan and
# UBSan) into ${FUZZ_BUILD_DIR:-build-fuzz} and runs each for <seconds>
# (default 300), one after the other:
#   scripts/fuzz.sh [seconds] [fuzzer...]      e.g.  scripts/fuzz.sh 3600 codec
# Each starts from its seeds in tests/fuzz/corpus/<name>/ and keeps what it
# learns in <build>/corpus/<name>/ (so the repository is not touched). Prints
# the executions of each; fails if any fuzzer found a crash, leak, hang or
# broken property, leaving the input in <build>/artifacts/. Copy such an input
# into tests/fuzz/corpus/<name>/ once fixed: the replay tests then keep it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
seconds="${1:-300}"
shift || true
all=(headers status stream_frames registry_json codec plugin_parameters schema)
fuzzers=("$@")
[ ${#fuzzers[@]} -gt 0 ] || fuzzers=("${all[@]}")

"$root/scripts/install-deps.sh"
CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build_dir" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMICRO_FUZZ=ON \
  -DMICRO_BUILD_TESTS=OFF -DMICRO_BUILD_EXAMPLES=OFF -DMICRO_BUILD_BENCH=OFF >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target "${fuzzers[@]/%/_fuzzer}"

mkdir -p "$build_dir/artifacts"
summary=()
failed=0
for name in "${fuzzers[@]}"; do
  corpus="$build_dir/corpus/$name"
  mkdir -p "$corpus"
  dict="$root/tests/fuzz/dict/$name.dict"
  log="$build_dir/$name.log"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$build_dir/artifacts/$name-")
  [ -f "$dict" ] && args+=(-dict="$dict")
  echo "fuzz: $name for ${seconds}s"
  if "$build_dir/tests/fuzz/${name}_fuzzer" "${args[@]}" "$corpus" "$root/tests/fuzz/corpus/$name" \
      >"$log" 2>&1; then
    result=OK
  else
    result="FAILED (see $log)"
    failed=1
    tail -n 30 "$log" >&2
  fi
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  summary+=("$(printf '%-18s %12s executions  %5s corpus inputs  %s' "$name" "${runs:-?}" \
    "$(find "$corpus" -type f | wc -l)" "$result")")
done
printf '%s\n' "${summary[@]}"
exit "$failed"
