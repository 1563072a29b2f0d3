#!/usr/bin/env bash
# Checks the symbols of the static library micro_codegen_exported, built with
# hidden visibility and export_macro=CODEGEN_EXPORT: what protoc-gen-micro
# generates must have default visibility, a function without the macro must
# be hidden.
#   check_exports.sh <libmicro_codegen_exported.a>
set -euo pipefail
symbols="$(readelf -sW --demangle "$1")"
status=0
expect() {  # expect <visibility> <symbol name, a grep -E pattern>
  # Vtables of classes with a key function may still be WEAK (COMDAT).
  if ! grep -qE " (GLOBAL|WEAK) +$1 +[0-9]+ $2" <<<"$symbols"; then
    echo "expected a GLOBAL or WEAK $1 symbol matching: $2" >&2
    status=1
  fi
}
expect DEFAULT 'exported::Visible::Stub::Stub\('
expect DEFAULT 'exported::Visible::Stub::Call\('
expect DEFAULT 'exported::Visible::NewStub\('
expect DEFAULT 'exported::Visible::Handler::Definition\(\)'
expect DEFAULT 'vtable for exported::Visible::Handler$'
expect DEFAULT 'exported::RegisterVisibleHandler\('
expect DEFAULT 'exported::RegisterRetiredHandler\('
expect DEFAULT 'exported::Retired::Stub::Call\('
expect HIDDEN 'CodegenHiddenProbe\(\)'
if [ "$status" -ne 0 ]; then
  echo "symbols of $1:" >&2
  grep -E "exported::|CodegenHiddenProbe" <<<"$symbols" >&2 || true
fi
exit "$status"
