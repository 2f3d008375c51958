#!/usr/bin/env bash
# cli_concurrent.sh IPR MAKE_CKPT SRC: two `ipr run` on one run directory at once. The second is refused (exit 1)
# with a message naming the first's host and PID, touches nothing (not even with --force-new), and the first finishes
# as if alone; under mpirun only rank 0 holds the lock (the PID named is rank 0's); a lock left by a run killed with
# SIGKILL (run.lock still there, its holder dead) does not block the resume, which gives the clean run's results;
# shards of a job array run side by side in one directory, but not the same shard twice, nor an unsharded run.
set -u
ipr=$1
mkckpt=$2
src=$3
source "$src/tests/lib.sh"
compare="$py $src/tests/pipeline/compare_results.py"
cd "$tmp" || exit 1
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
host=$(hostname)

"$mkckpt" ep.h5 3 32 32 4 7 32 32 || { echo "not ok - make_test_checkpoint"; exit 1; }
# 12 units of one chain each, one per request: several seconds of work, a commit every few tenths
cat > c.yaml <<'EOF'
name: concurrent
benchmark: even_pixels
instances: {count: 12, per_unit: 1}
model: {checkpoint: ep.h5}
device: {kind: cpu, batch: 1, cpu_threads: 1}
sampler: {steps_per_region: 1, overlap: 0.9}
ipr: {iterations: 2, fractions: [0.5], steps_per_region: 1, overlap: 0.9}
seeds: [9]
run: {units_per_request: 1, progress_interval: 0.5}
EOF
"$ipr" run c.yaml -o ref --progress none > ref.out 2>&1 || { echo "not ok - clean run ($(tail -2 ref.out))"; exit 1; }

# commits N DIR: wait until DIR's journals hold N records (or 60 s)
commits() {
  local i
  for i in $(seq 1 1200); do
    [ "$(cat "$2"/journal/*.jsonl 2>/dev/null | wc -l)" -ge "$1" ] && return 0
    sleep 0.05
  done
  return 1
}
# children PID: the processes whose parent is PID (mpirun's ranks), from /proc
children() {
  local f pid comm state ppid rest
  for f in /proc/[0-9]*/stat; do
    { read -r pid comm state ppid rest < "$f"; } 2>/dev/null || continue
    [ "$ppid" = "$1" ] && echo "$pid"
  done
}
# rank_pid MPIRUN_PID R: the PID of rank R (its OMPI_COMM_WORLD_RANK)
rank_pid() {
  local c
  for c in $(children "$1"); do
    tr '\0' '\n' < "/proc/$c/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && echo "$c"
  done
}

# ---- a second run while the first is running: refused, with the first's host and PID; nothing touched ----
"$ipr" run c.yaml -o c1 --progress none > first.out 2>&1 &
first=$!
pids+=("$first")
commits 1 c1
kill -STOP "$first" # held still (its lock held) while the others try, however fast the machine
"$ipr" run c.yaml -o c1 --progress none > second.out 2>&1
rc=$?
"$ipr" run c.yaml -o c1 --force-new --progress none > third.out 2>&1
rc3=$?
kill -CONT "$first"
wait "$first"
rcf=$?
if [ $rc -eq 1 ] && grep -q "c1 is in use by another \`ipr run\` (host $host, PID $first, started " second.out &&
   [ $rc3 -eq 1 ] && grep -q "PID $first" third.out && ! ls -d c1.replaced-* > /dev/null 2>&1 &&
   [ $rcf -eq 0 ] && [ "$(ls c1/journal | wc -l)" -eq 1 ] && $compare ref/results.h5 c1/results.h5 > cmp.out; then
  ok "a second run is refused (exit 1): '$(grep -o 'c1 is in use.*started [^)]*)' second.out)'; --force-new too; the first finishes alone, $(cat cmp.out)"
else
  bad "second run (rc=$rc/$rc3, first rc=$rcf: $(cat second.out third.out | cut -c1-200); $(ls c1/journal))"
fi

# ---- under mpirun: rank 0 holds the lock, the refusal names rank 0's PID ----
if command -v mpirun > /dev/null; then
  mpirun -n 2 "$ipr" run c.yaml -o c2 --progress none > mp.out 2>&1 &
  mp=$!
  pids+=("$mp")
  commits 1 c2
  r0=$(rank_pid "$mp" 0)
  r1=$(rank_pid "$mp" 1)
  kill -STOP "$r0"
  "$ipr" run c.yaml -o c2 --progress none > second2.out 2>&1
  rc=$?
  kill -CONT "$r0"
  wait "$mp"
  rcm=$?
  if [ $rc -eq 1 ] && [ -n "$r0" ] && [ -n "$r1" ] && grep -q "(host $host, PID $r0, started" second2.out &&
     [ $rcm -eq 0 ] && $compare ref/results.h5 c2/results.h5 > cmp2.out; then
    ok "mpirun -n 2: the lock is rank 0's (PID $r0, not rank 1's $r1): refused with its PID; the run finishes, $(cat cmp2.out)"
  else
    bad "mpirun lock (rc=$rc, mpirun rc=$rcm, ranks $r0/$r1: $(cut -c1-200 second2.out))"
  fi
fi

# ---- a stale lock: the holder killed with SIGKILL leaves run.lock naming a dead PID; the resume is not blocked ----
"$ipr" run c.yaml -o c3 --progress none > killed.out 2>&1 &
victim=$!
pids+=("$victim")
commits 2 c3
kill -9 "$victim"
wait "$victim" 2>/dev/null
if [ -f c3/run.lock ] && grep -q "pid $victim" c3/run.lock && [ ! -e c3/DONE ] &&
   "$ipr" run c.yaml -o c3 --progress none > resume.out 2>&1 && $compare ref/results.h5 c3/results.h5 > cmp3.out &&
   grep -q "pid [0-9]" c3/run.lock && ! grep -q "pid $victim" c3/run.lock; then
  ok "a lock left by a run killed with SIGKILL (PID $victim) does not block: resumed ($(grep -o '([0-9]* this session)' resume.out)), $(cat cmp3.out)"
else
  bad "stale lock ($(cat c3/run.lock 2>/dev/null | tr '\n' ' ') $(tail -2 resume.out))"
fi

# ---- shards: 0/2 and 1/2 side by side; 0/2 again and an unsharded run are refused while they run ----
"$ipr" run c.yaml -o c4 --shard 0/2 --progress none > sh0.out 2>&1 &
s0=$!
pids+=("$s0")
commits 1 c4
kill -STOP "$s0"
"$ipr" run c.yaml -o c4 --shard 1/2 --progress none > sh1.out 2>&1 &
s1=$!
pids+=("$s1")
"$ipr" run c.yaml -o c4 --shard 0/2 --progress none > sh0b.out 2>&1
rcb=$?
"$ipr" run c.yaml -o c4 --progress none > shu.out 2>&1
rcu=$?
alive=0
kill -0 "$s0" 2>/dev/null && alive=1
kill -CONT "$s0"
wait "$s0"
rc0=$?
wait "$s1"
rc1=$?
"$ipr" merge c4 --quiet > shm.out 2>&1
if [ $alive -eq 1 ] && [ $rcb -eq 1 ] && grep -q "c4: shard 0/2 is in use by another \`ipr run --shard 0/2\` (host $host, PID $s0, " sh0b.out &&
   [ $rcu -eq 1 ] && grep -q "c4 is in use by another \`ipr run\` (run-shard[01]of2: host $host, PID " shu.out &&
   [ $rc0 -eq 0 ] && [ $rc1 -eq 0 ] && $compare ref/results.h5 c4/results.h5 > cmp4.out; then
  ok "shards 0/2 and 1/2 ran side by side; 0/2 again and an unsharded run were refused meanwhile; merged, $(cat cmp4.out)"
else
  bad "shards (alive=$alive rc=$rcb/$rcu, shards $rc0/$rc1: $(cut -c1-200 sh0b.out shu.out) $(tail -1 shm.out))"
fi

echo "# $pass passed, $fail failed"
[ $fail -eq 0 ]
