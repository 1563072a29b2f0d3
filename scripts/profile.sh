#!/usr/bin/env bash
# Instructions per unary call, client and server apart, with callgrind
# (docs/PERFORMANCE.md). Instruction counts barely move with the machine's
# load, unlike times. valgrind is a profiling tool, not a build dependency:
# `apt-get install -y valgrind`.
#
# For each client of micro_compare (default: all six), runs micro_compare
# under callgrind twice, with N1 and N2 sequential 16 B calls, its server
# process under callgrind too, and prints (instructions of run 2 - run 1) /
# (N2 - N1) for both: startup and teardown cancel out. "without spinning"
# leaves out nats.c's lock spinning (natsMutex_Lock retrying
# pthread_mutex_trylock), whose count depends on how threads happen to be
# scheduled. With PROFILE_TOP=n it also lists the n functions (inclusive)
# that cost most per call. Files stay in ${PROFILE_DIR:-<build dir>/profile}.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${BUILD_DIR:-$root/build}"
out="${PROFILE_DIR:-$build_dir/profile}"
n1="${PROFILE_CALLS_1:-1000}"
n2="${PROFILE_CALLS_2:-5000}"
top="${PROFILE_TOP:-0}"
clients=("$@")
[ ${#clients[@]} -gt 0 ] || clients=(micro-sync micro-inline-sync micro-async nats-sync nats-async grpc-sync)

command -v valgrind >/dev/null || { echo "profile: needs valgrind (apt-get install -y valgrind)" >&2; exit 1; }
cmake --build "$build_dir" --target micro_compare >/dev/null
mkdir -p "$out"
valgrind="$(command -v valgrind)"

# run <client> <calls>: writes $out/<client>.{client,server}.<calls>.out
run() {
  "$valgrind" --tool=callgrind --callgrind-out-file="$out/$1.client.$2.out" \
    "$build_dir/bench/compare/micro_compare" --only "$1" --payload 16 --in-flight 1 --calls "$2" \
    --peer-prefix "$valgrind --tool=callgrind --callgrind-out-file=$out/$1.server.$2.out" \
    >"$out/$1.$2.log" 2>&1 || { cat "$out/$1.$2.log" >&2; exit 1; }
}

# functions <file> <inclusive yes|no>: "<instructions>\t<function>" lines.
functions() {
  callgrind_annotate --inclusive="$2" --auto=no --threshold=100 "$1" 2>/dev/null |
    awk '/^ *[0-9,]+ \( *[0-9.]+%\)  [^=]/ {
      count = $1; gsub(",", "", count)
      sub(/^ *[0-9,]+ \( *[0-9.]+%\)  /, ""); sub(/ \[[^]]*\]$/, "")
      print count "\t" $0 }'
}

# per_call <file1> <file2> <inclusive>: per-call difference of each function.
per_call() {
  join -t $'\t' -1 2 -2 2 -a 2 -e 0 -o 0,1.1,2.1 \
    <(functions "$1" "$3" | sort -t $'\t' -k2,2) <(functions "$2" "$3" | sort -t $'\t' -k2,2) |
    awk -F'\t' -v calls=$((n2 - n1)) '{ printf "%.0f\t%s\n", ($3 - $2) / calls, $1 }' | sort -rn
}

printf "| client | side | instructions/call | without spinning |\n|---|---|---:|---:|\n"
for client in "${clients[@]}"; do
  run "$client" "$n1"
  run "$client" "$n2"
  for side in client server; do
    a="$out/$client.$side.$n1.out"
    b="$out/$client.$side.$n2.out"
    per_call "$a" "$b" no >"$out/$client.$side.self.txt"
    per_call "$a" "$b" yes >"$out/$client.$side.inclusive.txt"
    total=$(awk -F'\t' '$2 == "PROGRAM TOTALS" { print $1 }' "$out/$client.$side.self.txt")
    spin=$(awk -F'\t' '$2 ~ /pthread_mutex_trylock|natsMutex_Lock$/ { s += $1 } END { print s + 0 }' \
      "$out/$client.$side.self.txt")
    printf "| %s | %s | %d | %d |\n" "$client" "$side" "$total" "$((total - spin))"
  done
done
if [ "$top" -gt 0 ]; then
  for client in "${clients[@]}"; do
    for side in client server; do
      echo
      echo "$client, $side: the $top costliest functions per call, inclusive"
      head -n "$top" "$out/$client.$side.inclusive.txt" | cut -c1-160
    done
  done
fi
