#!/usr/bin/env bash
# soak_kill9.sh IPR MAKE_CKPT SRC [RUNS [SEED]]: RUNS (20) runs of a tiny config, each killed with SIGKILL at a random
# moment of its life (start-up, work, commits, the final merge) on a random rank of `mpirun -n 2` (the process itself
# without Open MPI), then resumed to completion with the same command. Every resumed run must give results identical
# to a clean run (compare_results.py), pass `ipr verify`, and hold no temporary file outside quarantine/. The kill
# times come from SEED (bash's RANDOM), so a failure is reproducible; each is printed.
set -u
ipr=$1
mkckpt=$2
src=$3
runs=${4:-20}
seed=${5:-17}
source "$src/tests/lib.sh"
compare="$py $src/tests/pipeline/compare_results.py"
cd "$tmp" || exit 1
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT

"$mkckpt" ep.h5 3 32 32 4 7 32 32 || { echo "not ok - make_test_checkpoint"; exit 1; }
# 8 units of one chain, one per request: a commit every few tenths of a second on 2 cores
cat > soak.yaml <<'EOF'
name: soak
benchmark: even_pixels
instances: {count: 8, per_unit: 1}
model: {checkpoint: ep.h5}
device: {kind: cpu, batch: 1, cpu_threads: 1}
sampler: {steps_per_region: 1, overlap: 0.9}
ipr: {iterations: 1, fractions: [0.5], steps_per_region: 1, overlap: 0.9}
seeds: [23]
run: {units_per_request: 1, progress_interval: 0.5}
EOF
launch=()
ranks=1
if command -v mpirun > /dev/null; then
  launch=(mpirun -n 2)
  ranks=2
fi

now_ms() { date +%s%3N; }
children() {
  local f pid comm state ppid rest
  for f in /proc/[0-9]*/stat; do
    { read -r pid comm state ppid rest < "$f"; } 2>/dev/null || continue
    [ "$ppid" = "$1" ] && echo "$pid"
  done
}
# rank_pid LAUNCHER_PID R: the PID of rank R under mpirun, or the process itself without it
rank_pid() {
  local c
  if [ ${#launch[@]} -eq 0 ]; then
    echo "$1"
    return
  fi
  for c in $(children "$1"); do
    tr '\0' '\n' < "/proc/$c/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && echo "$c"
  done
}

# orphans DIR: ipr processes of the killed job still working on DIR (a rank spawned as mpirun died), by command line
orphans() {
  local f pid
  for f in /proc/[0-9]*/cmdline; do
    pid=${f#/proc/}
    pid=${pid%/cmdline}
    { tr '\0' ' ' < "$f"; } 2>/dev/null | grep -q -- "^$ipr run soak.yaml -o $1 " && echo "$pid"
  done
}

t0=$(now_ms)
"${launch[@]}" "$ipr" run soak.yaml -o ref --progress none > ref.out 2>&1 || { echo "not ok - clean run ($(tail -2 ref.out))"; exit 1; }
clean_ms=$(( $(now_ms) - t0 ))
echo "# clean run: ${clean_ms} ms on $ranks rank(s); kill moments: a fraction of that, uniform in [0, 1), seed $seed"

RANDOM=$seed
killed=0 resumed_ok=0 stages=""
for i in $(seq 1 "$runs"); do
  # the fraction of a clean run's time, not milliseconds: the same seed gives the same moments of a run's life on a
  # faster or slower machine
  ppm=$(( (RANDOM * 32768 + RANDOM) % 1000000 ))
  delay=$(( clean_ms * ppm / 1000000 ))
  rank=$(( RANDOM % ranks ))
  dir="s$i"
  start=$(now_ms)
  "${launch[@]}" "$ipr" run soak.yaml -o "$dir" --progress none > "run$i.out" 2>&1 &
  lp=$!
  pids+=("$lp")
  while [ $(( $(now_ms) - start )) -lt "$delay" ]; do sleep 0.01; done
  target=$(rank_pid "$lp" "$rank")
  what="rank $rank"
  if [ -z "$target" ] && kill -0 "$lp" 2>/dev/null; then
    target=$lp # the ranks are not started yet: the launcher itself
    what="mpirun (no rank yet)"
  fi
  at=$(( $(now_ms) - start ))
  commits=$(cat "$dir"/journal/*.jsonl 2>/dev/null | wc -l)
  state="finished before the kill"
  if [ -n "$target" ] && kill -9 "$target" 2>/dev/null; then
    state="killed"
    killed=$((killed + 1))
  fi
  wait "$lp"
  rc=$?
  # a job whose mpirun died may leave a rank behind (the node lost, in effect): it goes the same way before the resume
  stray=""
  for _ in $(seq 1 100); do
    stray=$(orphans "$dir")
    [ -z "$stray" ] && break
    sleep 0.1
  done
  [ -n "$stray" ] && kill -9 $stray 2>/dev/null && sleep 0.2
  [ -e "$dir/DONE" ] && stage="merged" || stage="$commits commit(s)"
  "${launch[@]}" "$ipr" run soak.yaml -o "$dir" --progress none > "resume$i.out" 2>&1
  rc2=$?
  left=$( [ -d "$dir" ] && find "$dir" -name '*.tmp*' -not -path '*/quarantine/*' | head -2)
  if [ $rc2 -eq 0 ] && $compare ref/results.h5 "$dir/results.h5" > "cmp$i.out" && "$ipr" verify "$dir" > "verify$i.out" 2>&1 &&
     [ -z "$left" ]; then
    resumed_ok=$((resumed_ok + 1))
    ok "run $i: kill -9 of $what (pid ${target:--}) at ${at} ms = $(printf '%d.%02d' $((ppm / 10000)) $((ppm / 100 % 100)))% ($state, exit $rc, $stage); resumed: $(grep -o '([0-9]* this session)' "resume$i.out"), $(cat "cmp$i.out")"
  else
    bad "run $i: kill -9 of $what at ${at} ms (fraction $ppm ppm, $state, exit $rc, $stage): resume rc=$rc2 ($(tail -2 "resume$i.out") $(cat "cmp$i.out" 2>/dev/null) $(tail -1 "verify$i.out" 2>/dev/null) $left)"
  fi
done
creating=$(ls -d s*.creating.* 2>/dev/null | wc -l)
echo "# $runs runs, $killed killed (the others had finished), $resumed_ok resumed to the clean results; $creating run directories' unpublished creation copies (RUN.creating.PID) left beside them"
echo "# $pass passed, $fail failed"
[ $fail -eq 0 ]
