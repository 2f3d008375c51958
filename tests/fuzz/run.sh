#!/usr/bin/env bash
# run.sh [--seconds S] [--jobs J] [HARNESS...]: build the libFuzzer harnesses (clang, -DIPR_FUZZ=ON, in
# build-fuzz/) and run each over its seed corpus tests/fuzz/corpus/<harness>/ for S seconds (default 60),
# J at a time (default: the cores). New inputs go to a scratch directory, never into the tree. Any crash, leak,
# timeout, out-of-memory or sanitizer report fails the run: the input is kept as build-fuzz/artifacts/<harness>/*
# (add it to the corpus with the fix). Prints the executions of each harness. CI runs it as `scripts/test --fuzz`.
#
#   tests/fuzz/run.sh --seconds 600 fuzz_journal     # one harness, longer
#   build-fuzz/tests/fuzz/fuzz_journal -dict=tests/fuzz/fuzz_journal.dict DIR tests/fuzz/corpus/fuzz_journal
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=60
jobs=$(nproc)
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 1 ;;
    *) break ;;
  esac
done
build="$root/build-fuzz"
CC=${FUZZ_CC:-clang} cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIPR_CUDA=OFF -DIPR_FUZZ=ON \
  >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzzers >/dev/null
harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
  for d in "$root"/tests/fuzz/corpus/*/; do harnesses+=("$(basename "$d")"); done
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export OPENBLAS_NUM_THREADS=1
# a report of either sanitizer ends the input; leaks are checked after every input that allocated more than it freed
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

# one harness: its log in $out/NAME.log, its exit status in $out/NAME.rc
run_one() {
  local h=$1 bin="$build/tests/fuzz/$1" dict=()
  [ -f "$root/tests/fuzz/$h.dict" ] && dict=(-dict="$root/tests/fuzz/$h.dict")
  rm -rf "$build/artifacts/$h" # only this run's findings
  mkdir -p "$out/$h.new" "$build/artifacts/$h"
  local rc=0
  "$bin" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -close_fd_mask=3 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$h/" "${dict[@]}" "$out/$h.new" "$root/tests/fuzz/corpus/$h" \
    > "$out/$h.log" 2>&1 || rc=$?
  echo "$rc" > "$out/$h.rc"
}
export -f run_one
export build root out seconds
printf '%s\n' "${harnesses[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}'

status=0
printf '%-20s %12s %8s %8s %6s  %s\n' harness executions seconds exec/s new result
for h in "${harnesses[@]}"; do
  rc=$(cat "$out/$h.rc" 2>/dev/null || echo 1)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$h.log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$out/$h.log" | tail -1)
  new=$(find "$out/$h.new" -type f | wc -l)
  result=ok
  if [ "$rc" -ne 0 ]; then
    result="FAILED (exit $rc): $(grep -m1 -E 'ERROR: |SUMMARY: |runtime error' "$out/$h.log" | cut -c1-150)"
    status=1
  fi
  rate=$([ -n "${secs:-}" ] && [ "${secs:-0}" -gt 0 ] && echo $(( ${execs:-0} / secs )) || echo -)
  printf '%-20s %12s %8s %8s %6s  %s\n' "$h" "${execs:--}" "${secs:--}" "$rate" "$new" "$result"
done
for h in "${harnesses[@]}"; do
  if [ "$(cat "$out/$h.rc" 2>/dev/null || echo 1)" -ne 0 ]; then
    echo "---- $h: the end of its log (the input is in build-fuzz/artifacts/$h/)"
    tail -40 "$out/$h.log"
  fi
done
exit $status
