#!/usr/bin/env bash
# Installs the Debian bookworm packages micro needs, skipping those already
# installed. Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  nats-server libnats-dev
  protobuf-compiler libprotobuf-dev libprotoc-dev
  libabsl-dev nlohmann-json3-dev libcpp-httplib-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  openssl curl
  clang-14 libclang-rt-14-dev
  # Only for bench/micro_compare, the comparison with gRPC; nothing else uses gRPC.
  libgrpc++-dev protobuf-compiler-grpc
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
run_as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root to install: ${missing[*]}" >&2; exit 1; }
  run_as_root=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${run_as_root[@]}" apt-get update -qq
"${run_as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
