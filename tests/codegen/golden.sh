#!/usr/bin/env bash
# Golden files: protoc-gen-micro's output for a few representative protos,
# kept in golden/ so that every change to the generated code shows in review.
#   golden.sh check  <protoc> <protoc-gen-micro>   generates into a temporary
#                                                  directory and diffs with golden/
#   golden.sh update <protoc> <protoc-gen-micro>   rewrites golden/
# scripts/update-golden.sh builds the plugin and runs `update`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mode="$1" protoc="$2" plugin="$3"

# <import dir, relative to here>|<proto, relative to it>|<plugin parameters>
cases=(
  "../../proto|routeguide/route_guide.proto|"
  "protos|collide/collisions.proto|"
  "export|exported.proto|export_macro=CODEGEN_EXPORT,suffix=.rpc"
)

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for case in "${cases[@]}"; do
  IFS='|' read -r dir proto parameters <<<"$case"
  "$protoc" "--plugin=protoc-gen-micro=$plugin" "--micro_out=$out" \
    ${parameters:+"--micro_opt=$parameters"} "-I$here/$dir" "$here/$dir/$proto"
done

case "$mode" in
  check)
    if ! diff -ru "$here/golden" "$out"; then
      echo "generated code differs from tests/codegen/golden; if the change is intended," >&2
      echo "run scripts/update-golden.sh and review the diff" >&2
      exit 1
    fi
    echo "golden files match" ;;
  update)
    rm -rf "$here/golden"
    mkdir "$here/golden"
    cp -r "$out/." "$here/golden"
    echo "rewrote $here/golden" ;;
  *)
    echo "usage: golden.sh check|update <protoc> <protoc-gen-micro>" >&2
    exit 2 ;;
esac
