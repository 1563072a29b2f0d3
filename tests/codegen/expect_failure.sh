#!/usr/bin/env bash
# Runs COMMAND, which must fail, and checks its output (stdout and stderr):
#   expect_failure.sh [-e TEXT]... [-n TEXT]... -- COMMAND [ARG]...
# Every -e TEXT must appear in the output, no -n TEXT may. Prints the output
# when a check fails.
set -euo pipefail
present=()
absent=()
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
  case "$1" in
    -e) present+=("$2"); shift 2 ;;
    -n) absent+=("$2"); shift 2 ;;
    *) echo "expect_failure.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
shift  # --
set +e
output="$("$@" 2>&1)"
code=$?
set -e
status=0
if [ "$code" -eq 0 ]; then
  echo "expected a failure, got exit code 0: $*" >&2
  status=1
fi
for text in "${present[@]}"; do
  grep -qF -- "$text" <<<"$output" || { echo "missing from the output: $text" >&2; status=1; }
done
for text in "${absent[@]}"; do
  if grep -qF -- "$text" <<<"$output"; then echo "unexpected in the output: $text" >&2; status=1; fi
done
if [ "$status" -ne 0 ]; then
  echo "--- output of: $*" >&2
  echo "$output" >&2
fi
exit "$status"
