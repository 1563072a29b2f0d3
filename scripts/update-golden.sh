#!/usr/bin/env bash
# Rewrites tests/codegen/golden/ with the output of the current
# protoc-gen-micro, built into ${BUILD_DIR:-build}. Review the diff, then
# commit it with the generator change.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build}"

if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build_dir" -G Ninja
fi
cmake --build "$build_dir" --target protoc-gen-micro -j "${BUILD_JOBS:-$(nproc)}"
"$root/tests/codegen/golden.sh" update "$(command -v protoc)" \
  "$build_dir/protoc-gen-micro/protoc-gen-micro"
