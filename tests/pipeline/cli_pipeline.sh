#!/usr/bin/env bash
# cli_pipeline.sh IPR MAKE_CKPT SRC: `ipr run` end to end on the CPU with a tiny random-weight network:
# 1/2/3 ranks and no mpirun give the same results.h5; kill -9 (of a rank, of mpirun) and SIGUSR1 drains
# resume to the same results; SIGINT to mpirun leaves status "interrupted", jobs/mpirun_drain.sh drains with exit 3;
# bad configs fail with a clear message and write nothing; damaged files are problems of `ipr status`; shards + merge;
# bundles are byte-identical, verify, and a flipped byte fails; tar/bsdtar read them; analysis makes its PNG;
# a Sudoku run records its MNIST pool and refuses to resume on another.
set -u
ipr=$1
mkckpt=$2
src=$3
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1
py=python3
python3 -c "import h5py, matplotlib" 2>/dev/null || py=/usr/bin/python3
compare="$py $src/tests/pipeline/compare_results.py"
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "not ok - $1"; }
cd "$tmp" || exit 1

# ---- a tiny Even Pixels network (32x32, widths 32/32) and configs small enough for 2 cores ----
"$mkckpt" ep.h5 3 32 32 4 7 32 32 || { echo "not ok - make_test_checkpoint"; exit 1; }
cat > q.yaml <<'EOF'
# pipeline test: 8 instances x 2 fractions in units of 2, K = 2, final images kept
name: pipeline-test
benchmark: even_pixels
instances: {count: 8, per_unit: 2}
model: {checkpoint: ep.h5}
device: {kind: cpu, batch: 4, cpu_threads: 1}
sampler: {steps_per_region: 1, overlap: 0.9}
ipr: {iterations: 2, fractions: [0.25, 0.5], steps_per_region: 1, overlap: 0.9}
seeds: [11]
output: {keep_images: true}
run: {progress_interval: 0.5}
EOF
sed -e 's/count: 8, per_unit: 2/count: 24, per_unit: 2/' -e 's/keep_images: true/keep_images: false/' q.yaml > q24.yaml

# children PID: the processes whose parent is PID (the ranks mpirun started), from /proc (no procps needed)
children() {
  local f pid comm state ppid rest
  for f in /proc/[0-9]*/stat; do
    { read -r pid comm state ppid rest < "$f"; } 2>/dev/null || continue
    [ "$ppid" = "$1" ] && echo "$pid"
  done
}

# commits N DIR: wait until DIR's journals hold N records (or 60 s)
commits() {
  local i
  for i in $(seq 1 1200); do
    [ "$(cat "$2"/journal/*.jsonl 2>/dev/null | wc -l)" -ge "$1" ] && return 0
    sleep 0.05
  done
  return 1
}

# ---- plan ----
if "$ipr" plan q.yaml --ranks 2 > plan.out 2>&1 && grep -q "= 8 work units" plan.out && grep -q "network passes" plan.out; then
  ok "plan: 8 work units and their network passes, without running"
else
  bad "plan ($(cat plan.out))"
fi
# every config the repository ships resolves against the shipped models (keys, paths, grids): none has rotted
nconf=0 badconf=""
for f in "$src"/configs/*.yaml "$src"/configs/*/*.yaml; do
  nconf=$((nconf + 1))
  "$ipr" plan "$f" --ranks 2 > shipped.out 2>&1 && grep -q "network passes" shipped.out ||
    badconf="$badconf ${f#"$src"/}: $(grep -m1 error shipped.out)"
done
if [ "$nconf" -ge 8 ] && [ -z "$badconf" ]; then
  ok "plan: all $nconf shipped configs resolve"
else
  bad "shipped configs ($nconf):$badconf"
fi

# ---- the same results on 1 rank without mpirun, and on 1, 2, 3 ranks ----
if "$ipr" run q.yaml -o r0 --progress none > r0.out 2>&1 && [ -f r0/results.h5 ] && [ -f r0/DONE ] &&
   grep -q "| model | selection | fraction |" r0.out; then
  ok "run without mpirun: exit 0, results.h5, DONE and the summary table"
else
  bad "run without mpirun ($(tail -5 r0.out))"
fi
for n in 1 2 3; do
  if mpirun -n $n "$ipr" run q.yaml -o r$n --progress none > r$n.out 2>&1 && $compare r0/results.h5 r$n/results.h5 > cmp$n.out; then
    ok "mpirun -n $n: exit 0 and the same results.h5 contents ($(cat cmp$n.out))"
  else
    bad "mpirun -n $n ($(tail -3 r$n.out) $(cat cmp$n.out 2>/dev/null))"
  fi
done
if mpirun -n 2 "$ipr" run q.yaml -o rb --set device.batch=3 --set run.units_per_request=1 --progress none > rb.out 2>&1 &&
   $compare r0/results.h5 rb/results.h5 > cmpb.out; then
  ok "another batch size (3) and one unit per request: the same results ($(cat cmpb.out))"
else
  bad "batch size 3 ($(tail -3 rb.out) $(cat cmpb.out 2>/dev/null))"
fi
# several ranks: a request holds at most a quarter of a rank's share (8 units, 3 ranks: 1, rounded up to a family of
# 2 fractions; the default 4 would leave a rank idle); one rank and an explicit run.units_per_request keep theirs
if grep -q "at most 2 units a request" r3/logs/*.log && grep -q "at most 2 units a request" r2/logs/*.log &&
   ! grep -q "units a request" r1/logs/*.log && ! grep -q "units a request" rb/logs/*.log; then
  ok "requests capped at a quarter of a rank's share with 2 and 3 ranks, not with 1 or run.units_per_request"
else
  bad "request cap ($(grep -h 'units a request' r1/logs/*.log r2/logs/*.log r3/logs/*.log rb/logs/*.log | head -3))"
fi
# the selections and fractions of an instance block run from one base sample per instance (a batch takes whole
# families); one unit per request shares nothing: the numbers must not differ
sed -e 's/fractions: \[0.25, 0.5\]/fractions: [0.25, 0.5], selection: [uniform, uncertainty]/' q.yaml > qs.yaml
if "$ipr" run qs.yaml -o rs1 --progress none > rs1.out 2>&1 &&
   "$ipr" run qs.yaml -o rs2 --set run.units_per_request=1 --progress none > rs2.out 2>&1 &&
   $compare rs1/results.h5 rs2/results.h5 > cmps.out; then
  ok "shared base samples (2 selections x 2 fractions a family) == none shared: the same results ($(cat cmps.out))"
else
  bad "shared base samples ($(tail -3 rs1.out rs2.out) $(cat cmps.out 2>/dev/null))"
fi
if $py - r0/results.h5 <<'EOF'
import sys
import h5py
f = h5py.File(sys.argv[1], "r")
n = len(f["chains/instance"])
assert n == 16, n
assert len(f["results/valid"]) == n * 3
assert f["images/final"].shape == (16, 32, 32, 3)
assert f.attrs["complete"] == 1 and f.attrs["n_units"] == 8
assert list(f["units/status"][()]) == [0] * 8
EOF
then ok "results.h5 layout: 16 chains x (K + 1) rows, final images, 8 ok units"; else bad "results.h5 layout"; fi

# ---- config errors: exit 1, a message naming key and place, no run directory ----
expect_config_error() {
  local name=$1 pattern=$2 file=$3
  shift 3
  "$ipr" run "$file" -o bad "$@" > bad.out 2>&1
  local rc=$?
  if [ $rc -eq 1 ] && grep -qE -- "$pattern" bad.out && [ ! -e bad ]; then
    ok "$name: exit 1, '$(grep -m1 error bad.out | cut -c1-110)'"
  else
    bad "$name (rc=$rc, $(cat bad.out), $(ls bad 2>&1))"
  fi
  rm -rf bad
}
sed 's/fractions: \[0.25, 0.5\]/fraction: [0.25]/' q.yaml > unknown.yaml
expect_config_error "unknown key" "unknown.yaml:[0-9]+: unknown key 'ipr.fraction' \(did you mean 'ipr.fractions'\?\)" unknown.yaml
sed 's/checkpoint: ep.h5/checkpoint: missing.h5/' q.yaml > missing.yaml
expect_config_error "missing model" "missing.yaml:[0-9]+: key 'model.checkpoint': model file .*missing.h5 does not exist" missing.yaml
sed 's/fractions: \[0.25, 0.5\]/fractions: [0.25, 0]/' q.yaml > zero.yaml
expect_config_error "fraction 0" "zero.yaml:[0-9]+: key 'ipr.fractions': 0 is outside \(0.0, 1.0\]" zero.yaml
sed 's/fractions: \[0.25, 0.5\]/fractions: [1.5]/' q.yaml > big.yaml
expect_config_error "fraction 1.5" "big.yaml:[0-9]+: key 'ipr.fractions': 1.5 is outside \(0.0, 1.0\]" big.yaml
expect_config_error "bf16 asked of the CPU" "key 'device.precision': bf16 needs CUDA, but device.kind is cpu" q.yaml \
  --set device.kind=cpu --set device.precision=bf16
expect_config_error "--set of a wrong type" "--set ipr.iterations: key 'ipr.iterations': 'two' is not an integer" q.yaml --set ipr.iterations=two
# the config's ranges are the sampler's (include/ipr/sampler.h): K = 5000 is refused before anything is created
expect_config_error "K above the sampler's limit" "--set ipr.iterations: key 'ipr.iterations': 5000 is outside \[0, 4095\]" q.yaml \
  --set ipr.iterations=5000
mkdir -p adir
expect_config_error "a directory as the config" "reading the config: adir is a directory, not a file" adir
# usage errors: the one line that matters and where to look, not the whole help
"$ipr" run q.yaml --bogus > usage.out 2>&1
rc=$?
"$ipr" status > usage2.out 2>&1
rc2=$?
if [ $rc -eq 1 ] && [ "$(wc -l < usage.out)" -eq 2 ] && grep -q "^ipr run: error: unknown option --bogus" usage.out &&
   grep -q "^see \`ipr run --help\`$" usage.out && [ $rc2 -eq 1 ] && [ "$(wc -l < usage2.out)" -eq 2 ] &&
   ! grep -q "usage:" usage.out usage2.out; then
  ok "usage errors: one error line and 'see \`ipr CMD --help\`' (run, status)"
else
  bad "usage errors (rc=$rc, $(cat usage.out usage2.out))"
fi
sha_before=$(sha256sum r0/results.h5)
"$ipr" run q.yaml -o r0 --set ipr.iterations=3 > changed.out 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "was: ipr.iterations = 2" changed.out && grep -q "now: ipr.iterations = 3" changed.out &&
   [ "$(sha256sum r0/results.h5)" = "$sha_before" ]; then
  ok "a changed config is refused with the changed keys; the run is untouched"
else
  bad "changed config (rc=$rc, $(cat changed.out))"
fi
if "$ipr" run q.yaml -o r0 --progress none > again.out 2>&1 && grep -q "8 units done (0 this session)" again.out; then
  ok "re-running a finished run does no work"
else
  bad "re-run of a finished run ($(tail -2 again.out))"
fi

# ---- failing units: retried, then recorded; exit 2; a rerun retries them ----
cp ep.h5 broken.h5
# the architecture attributes still pass the config check; loading the weights fails (a tensor is missing)
$py -c "import h5py; f = h5py.File('broken.h5', 'a'); del f['weights/model.bottleneck.blocks.0.conv_1.2.weight']"
sed 's/checkpoint: ep.h5/checkpoint: broken.h5/' q.yaml > broken.yaml
mpirun -n 2 "$ipr" run broken.yaml -o fl --progress none > fl.out 2>&1
rc=$?
if [ $rc -eq 2 ] && grep -q "0 units done (0 this session), 8 failed" fl.out && [ -f fl/DONE ] && $py - fl/results.h5 <<'EOF2'
import sys
import h5py
f = h5py.File(sys.argv[1], "r")
assert f.attrs["n_units_failed"] == 8 and f.attrs["complete"] == 1
assert list(f["units/status"][()]) == [1] * 8 and list(f["units/attempts"][()]) == [2] * 8, f["units/attempts"][()]
assert len(f["chains/instance"]) == 0
EOF2
then
  ok "a failing unit is retried once (run.retries 1), recorded with status 1, exit 2 ($(grep -c '"ev":"fail"' fl/journal/*.jsonl | awk -F: '{s+=$2} END {print s}') fail records)"
else
  bad "failing units (rc=$rc, $(tail -3 fl.out))"
fi
# no chain in a row: its rate is n/a (not 0.000), empty in the CSV, null in the JSON
if grep -q "| broken | uniform | 0.25 | 0 | n/a | n/a | n/a | n/a | n/a |" fl/summary/summary.md &&
   ! grep -q "0\.000" fl/summary/summary.md && grep -q "^broken,uniform,0.25,2,0,0,,,,,$" fl/summary/summary.csv &&
   grep -q '"rate": null' fl/summary/summary.json; then
  ok "a summary row with n = 0 reads n/a (md), empty (csv), null (json)"
else
  bad "n = 0 summary rows ($(grep '| broken' fl/summary/summary.md | head -1))"
fi

# ---- crashes and interruptions resume to the same results ----
mpirun -n 3 "$ipr" run q24.yaml -o ref24 --progress none > ref24.out 2>&1 || bad "reference run of q24 ($(tail -3 ref24.out))"
# kill -9 of one rank, then the same command
mpirun -n 2 "$ipr" run q24.yaml -o k1 --progress none > k1.out 2>&1 &
mp=$!
pids+=("$mp")
if commits 2 k1; then
  victim=$(children "$mp" | tail -1)
  kill -9 "$victim"
fi
wait "$mp"
rc=$?
done_before=$(cat k1/journal/*.jsonl 2>/dev/null | wc -l)
if [ $rc -ne 0 ] && [ ! -e k1/DONE ] && [ ! -e k1/results.h5 ] &&
   mpirun -n 2 "$ipr" run q24.yaml -o k1 --progress none > k1b.out 2>&1 &&
   grep -qE "24 units done \(([0-9]|1[0-9]|2[0-3]) this session\)" k1b.out && $compare ref24/results.h5 k1/results.h5 > k1.cmp; then
  ok "kill -9 of a rank ($done_before commits before): resumed, same results ($(grep -o '([0-9]* this session)' k1b.out))"
else
  bad "kill -9 of a rank (rc=$rc, $(tail -3 k1b.out 2>/dev/null) $(cat k1.cmp 2>/dev/null))"
fi
# kill -9 of mpirun, then resumed on another world size (no mpirun at all)
mpirun -n 2 "$ipr" run q24.yaml -o k2 --progress none > k2.out 2>&1 &
mp=$!
pids+=("$mp")
commits 2 k2 && kill -9 "$mp"
wait "$mp"
sleep 1
if [ ! -e k2/DONE ] && "$ipr" run q24.yaml -o k2 --progress none > k2b.out 2>&1 &&
   grep -qE "24 units done \(([0-9]|1[0-9]|2[0-3]) this session\)" k2b.out && $compare ref24/results.h5 k2/results.h5 > k2.cmp; then
  ok "kill -9 of mpirun: resumed on 1 rank, same results ($(grep -o '([0-9]* this session)' k2b.out))"
else
  bad "kill -9 of mpirun ($(tail -3 k2b.out 2>/dev/null) $(cat k2.cmp 2>/dev/null))"
fi
# SIGUSR1 to mpirun (Slurm's --signal): drain, exit 3, resume
mpirun -n 2 "$ipr" run q24.yaml -o k3 --progress none > k3.out 2>&1 &
mp=$!
pids+=("$mp")
commits 1 k3 && kill -USR1 "$mp"
wait "$mp"
rc=$?
if [ $rc -eq 3 ] && grep -q '"state": "interrupted"' k3/status.json && [ ! -e k3/DONE ] &&
   mpirun -n 3 "$ipr" run q24.yaml -o k3 --progress none > k3b.out 2>&1 && $compare ref24/results.h5 k3/results.h5 > k3.cmp; then
  ok "SIGUSR1: drained with exit 3, status interrupted; resumed on 3 ranks, same results"
else
  bad "SIGUSR1 drain (rc=$rc, $(tail -3 k3.out) $(cat k3.cmp 2>/dev/null))"
fi
# Ctrl-C (SIGINT) to a plain mpirun: Open MPI sends the ranks SIGTERM and SIGKILL a second later and exits 1 itself;
# batches of several seconds cannot drain in time, yet status.json must say "interrupted" (rank 0's signal handler
# writes it), not "running" or "draining". Progress goes to mpirun's pseudo-terminal: plain lines, no \r or ESC[K.
sed -e 's/count: 8, per_unit: 2/count: 16, per_unit: 8/' -e 's/batch: 4/batch: 8/' -e 's/keep_images: true/keep_images: false/' \
  -e 's/sampler: {steps_per_region: 1, overlap: 0.9}/sampler: {steps_per_region: 1, overlap: 0.5}/' \
  -e 's/progress_interval: 0.5/progress_interval: 0.2/' q.yaml > slow.yaml
mpirun -n 2 "$ipr" run slow.yaml -o k4 > k4.out 2>&1 &
mp=$!
pids+=("$mp")
for _ in $(seq 1 600); do grep -q '"state": "running"' k4/status.json 2>/dev/null && break; sleep 0.05; done
sleep 1
kill -INT "$mp"
wait "$mp"
rc=$?
"$ipr" status k4 > k4s.out 2>&1
rcs=$?
if [ $rc -ne 0 ] && grep -q '"state": "interrupted"' k4/status.json && [ $rcs -eq 0 ] && grep -q "^state: interrupted" k4s.out &&
   [ ! -e k4/DONE ]; then
  ok "SIGINT to mpirun (rc $rc, Open MPI's): status.json and ipr status say interrupted"
else
  bad "SIGINT to mpirun (rc=$rc, status rc=$rcs: $(cat k4s.out; grep state k4/status.json))"
fi
if grep -q "units | " k4.out && ! grep -q $'\r' k4.out && ! grep -q $'\033' k4.out; then
  ok "progress under mpirun: plain lines, no carriage returns or escapes ($(grep -c 'units | ' k4.out) lines)"
else
  bad "progress under mpirun ($(grep -c $'\r' k4.out) lines with \\r)"
fi
# jobs/mpirun_drain.sh turns Ctrl-C into SIGUSR1 (a drain): exit 3, status interrupted, and a resume gives the same results
# (the wrapper runs in the background, where a script's SIGINT is ignored, so it gets SIGTERM, which it treats the
# same; sent once every rank runs the coordinator, i.e. status.json exists, so that no load makes this a race)
"$src/jobs/mpirun_drain.sh" -n 2 "$ipr" run q24.yaml -o k5 --progress none > k5.out 2>&1 &
wrapper=$!
for _ in $(seq 1 600); do [ -f k5/status.json ] && break; sleep 0.1; done
kill -TERM "$wrapper"
wait "$wrapper"
rc=$?
if [ $rc -eq 3 ] && grep -q '"state": "interrupted"' k5/status.json && [ ! -e k5/DONE ] &&
   "$src/jobs/mpirun_drain.sh" -n 2 "$ipr" run q24.yaml -o k5 --progress none > k5b.out 2>&1 &&
   $compare ref24/results.h5 k5/results.h5 > k5.cmp; then
  ok "Ctrl-C (SIGTERM) through jobs/mpirun_drain.sh: drained with exit 3, status interrupted; resumed, same results"
else
  bad "mpirun_drain.sh (rc=$rc, $(tail -3 k5.out) $(tail -2 k5b.out 2>/dev/null) $(cat k5.cmp 2>/dev/null))"
fi
if "$ipr" status k3 > status.out 2>&1 && grep -q "units: 24 of 24 committed" status.out && grep -q "complete" status.out; then
  ok "ipr status: $(head -2 status.out | tail -1)"
else
  bad "ipr status ($(cat status.out))"
fi

# ---- static shards and ipr merge ----
"$ipr" run q.yaml -o sh --shard 0/2 --progress none > sh0.out 2>&1
rc0=$?
"$ipr" merge sh > merge0.out 2>&1
rcm0=$?
"$ipr" run q.yaml -o sh --shard 1/2 --progress none > sh1.out 2>&1
rc1=$?
if [ $rc0 -eq 0 ] && [ $rcm0 -eq 3 ] && [ $rc1 -eq 0 ] && "$ipr" merge sh > merge.out 2>&1 && $compare r0/results.h5 sh/results.h5 > sh.cmp; then
  ok "--shard 0/2 and 1/2: merge refused (exit 3) with one shard, then the same results"
else
  bad "shards (rc $rc0/$rcm0/$rc1, $(tail -2 merge.out 2>/dev/null) $(cat sh.cmp 2>/dev/null))"
fi

# ---- bundles ----
if "$ipr" bundle r0 --output b1.tar.gz > /dev/null && sleep 1.1 && "$ipr" bundle r0 --output b2.tar.gz > /dev/null &&
   cmp -s b1.tar.gz b2.tar.gz; then
  ok "two bundles of the same run are byte-identical"
else
  bad "bundles differ or failed"
fi
if "$ipr" verify b1.tar.gz > v.out 2>&1; then ok "verify passes on the bundle"; else bad "verify of a good bundle ($(cat v.out))"; fi
sha_b1=$(sha256sum < b1.tar.gz)
"$ipr" bundle r1 --output b1.tar.gz > bo.out 2>&1
rc=$?
"$ipr" bundle r0 --output no/such/dir/b.tar.gz > bp.out 2>&1
rcp=$?
if [ $rc -eq 1 ] && grep -q "b1.tar.gz exists (use --force to overwrite it)" bo.out && [ "$(sha256sum < b1.tar.gz)" = "$sha_b1" ] &&
   [ $rcp -eq 1 ] && grep -q "cannot write no/such/dir/b.tar.gz: directory no/such/dir does not exist" bp.out &&
   "$ipr" bundle r0 --output b1.tar.gz --force > /dev/null && [ "$(sha256sum < b1.tar.gz)" = "$sha_b1" ]; then
  ok "bundle: an existing file is refused without --force (kept as it was), a missing directory is named"
else
  bad "bundle overwrite/parent (rc=$rc/$rcp, $(cat bo.out bp.out))"
fi
for side in with without; do
  cp b1.tar.gz flip.tar.gz
  rm -f flip.tar.gz.sha256
  [ $side = with ] && sed 's/b1.tar.gz/flip.tar.gz/' b1.tar.gz.sha256 > flip.tar.gz.sha256
  $py -c "import sys; d = bytearray(open('flip.tar.gz', 'rb').read()); d[len(d) // 2] ^= 0x10; open('flip.tar.gz', 'wb').write(d)"
  "$ipr" verify flip.tar.gz > flip.out 2>&1
  rc=$?
  if [ $rc -eq 4 ]; then ok "a flipped byte fails verification, $side the .sha256 sidecar (exit 4)"; else bad "flipped byte $side sidecar: rc=$rc ($(cat flip.out))"; fi
done
if tar tzf b1.tar.gz > tar.list && grep -q "/MANIFEST.sha256$" tar.list && grep -q "/results/results.h5$" tar.list &&
   bsdtar tf b1.tar.gz > bsdtar.list && cmp -s tar.list bsdtar.list && mkdir x && tar xzf b1.tar.gz -C x &&
   (cd x/ipr-* && sha256sum -c --quiet MANIFEST.sha256) && mkdir y && bsdtar xf b1.tar.gz -C y && diff -r x y; then
  ok "tar and bsdtar list and extract the bundle ($(wc -l < tar.list) entries); sha256sum -c MANIFEST.sha256 passes"
else
  bad "tar/bsdtar on the bundle"
fi
if "$ipr" bundle r0 --output b.tar.zst > /dev/null && "$ipr" verify b.tar.zst > /dev/null 2>&1 && bsdtar tf b.tar.zst > /dev/null; then
  ok "a zstd bundle verifies and bsdtar reads it"
else
  bad "zstd bundle"
fi
cp -r r0 tampered
seg=$(ls tampered/segments/*/*.h5 | head -1)
$py -c "import sys; p = sys.argv[1]; d = bytearray(open(p, 'rb').read()); d[len(d) // 2] ^= 1; open(p, 'wb').write(d)" "$seg"
if "$ipr" verify r0 > /dev/null 2>&1 && ! "$ipr" verify tampered > tv.out 2>&1 && [ "$(tail -1 tv.out | grep -c FAILED)" = 1 ] &&
   ! "$ipr" bundle tampered --output t.tar.gz > /dev/null 2>&1 && [ ! -e t.tar.gz ]; then
  ok "verify of a run directory: passes, and fails (exit 4) on an altered segment, which bundle refuses"
else
  bad "verify of run directories ($(cat tv.out))"
fi

# ---- ipr status on damaged files: each is a problem that names the file, exit 4 ----
expect_status_problem() {
  local name=$1 dir=$2 pattern=$3
  "$ipr" status "$dir" > st.out 2>&1
  local rc=$?
  if [ $rc -eq 4 ] && grep -qE -- "$pattern" st.out && ! grep -q "(complete" st.out; then
    ok "status, $name: exit 4, '$(grep -m1 -E -- "$pattern" st.out | cut -c1-120)'"
  else
    bad "status, $name (rc=$rc, $(cat st.out))"
  fi
}
cp -r r0 d1 && truncate -s 5000 d1/results.h5
expect_status_problem "truncated results.h5" d1 "problem: .*d1/results.h5 is damaged: its SHA-256"
cp -r r0 d2 && truncate -s 3000 "$(ls d2/segments/*/*.h5 | head -1)"
expect_status_problem "truncated segment" d2 "problem: 1 commit record\(s\) name a segment that is missing or altered \(first: segments/"
grep -qE "problem: status.json says done, but [0-9]+ unit\(s\) are not committed" st.out ||
  bad "status, truncated segment: no 'status.json says done' problem ($(cat st.out))"
cp -r r0 d3 && head -c 300 /dev/urandom > d3/status.json
expect_status_problem "corrupt status.json" d3 "problem: .*d3/status.json is damaged"
cp -r r0 d4 && head -c 300 /dev/urandom >> "$(ls d4/journal/*.jsonl | head -1)"
expect_status_problem "random bytes appended to a journal" d4 "problem: [0-9]+ journal line\(s\) are no records \(first at journal/"
"$ipr" verify d4 > d4v.out 2>&1
rc=$?
if [ $rc -eq 4 ] && grep -q "journal line(s) are not records" d4v.out; then ok "verify: a damaged journal fails (exit 4)"; else bad "verify of a damaged journal (rc=$rc, $(cat d4v.out))"; fi
cp -r r0 d5 && sed -i 's/"run_id"/"rn_id"/' d5/run.json
expect_status_problem "corrupt run.json" d5 "error: .*d5/run.json is damaged"

# ---- analysis ----
# `python3 analysis/ipr_report.py` with a python3 that lacks h5py (-S: no site-packages) re-runs under /usr/bin/python3
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -S "$src/analysis/ipr_report.py" r0 --output report-s > report-s.out 2>&1 &&
   [ -s report-s/valid_vs_iterations.png ]; then
  ok "analysis: a python3 without h5py re-runs the script under /usr/bin/python3"
else
  bad "analysis without h5py on the first interpreter ($(tail -2 report-s.out))"
fi
if $py "$src/analysis/ipr_report.py" r0 --output report > report.out 2>&1 &&
   [ "$(head -c 4 report/valid_vs_iterations.png | od -An -c | tr -d ' ')" = "211PNG" ] &&
   [ -s report/compute_matched.png ] && [ -s report/error_vs_iterations.png ] &&
   [ "$(wc -l < report/table.csv)" -eq 7 ] && grep -q "mean error" report/table.md; then
  ok "analysis: ipr_report.py writes valid_vs_iterations.png, error_vs_iterations.png, compute_matched.png and the tables"
else
  bad "analysis report ($(cat report.out))"
fi
if $py - "$src/analysis" r0 <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
import ipr_results as R
t = R.load(sys.argv[2], as_dict=True)
assert len(t["valid"]) == 48 and set(t["model"]) == {"ep"} and set(t["selection"]) == {"uniform"}
c = R.curves(sys.argv[2])
assert len(c["rate"]) == 6 and (c["lo95"] <= c["rate"]).all() and (c["rate"] <= c["hi95"]).all()
lo, hi = R.wilson(0, 8)
assert abs(hi - 0.3244) < 1e-3, hi  # Wilson upper bound of 0/8
m = R.meta(sys.argv[2])
assert m["config"]["ipr"]["fractions"] == [0.25, 0.5] and m["model_names"] == ["ep"]
EOF
then ok "analysis: the loader's tables, Wilson intervals and metadata"; else bad "analysis loader"; fi
if "$ipr" run q.yaml -o rs --set 'ipr.selection=[uniform, uncertainty]' --set ipr.fractions=[0.25] --progress none > rs.out 2>&1 &&
   $py "$src/analysis/ipr_selection_study.py" rs --output sel > sel.out 2>&1 && [ -s sel/selection.png ] &&
   $py "$src/analysis/ipr_compare.py" r0 r1 --output cmp > cmp.out 2>&1 && [ -s cmp/compare.png ]; then
  ok "analysis: selection study (uniform vs uncertainty) and the comparison of two runs"
else
  bad "selection study / compare ($(tail -2 rs.out) $(cat sel.out cmp.out 2>/dev/null))"
fi

# ---- Sudoku: the MNIST pool's name and content hash in run.json and results.h5; a resume refuses another pool ----
mkdir -p pool
ln -s "$src/datasets/mnist/"*.gz pool/
"$mkckpt" sudoku.h5 1 252 252 28 12 32 32 32 32 32 32 >/dev/null || bad "make_test_checkpoint (sudoku)"
cat > s.yaml <<EOF
name: pool-test
benchmark: sudoku
difficulty: easy
instances: {count: 2, per_unit: 2}
model: {checkpoint: sudoku.h5}
scorer: $src/models/digit_classifier.h5
mnist_dir: pool
device: {kind: cpu, batch: 2, cpu_threads: 1}
sampler: {steps_per_region: 1, overlap: 0.9}
ipr: {iterations: 1, fractions: [0.1], steps_per_region: 1, overlap: 0.9}
seeds: [11]
EOF
if "$ipr" run s.yaml -o rp --progress none > rp.out 2>&1 &&
   $py - rp <<'EOF'
import json, sys, h5py
run = json.load(open(sys.argv[1] + "/run.json"))
f = h5py.File(sys.argv[1] + "/results.h5", "r")
sha = "877b869b7f50d8320edc865d37db9cc6d7df05ef3e7a94880b261bb8d2c8b147"  # the test split, every digit
assert run["mnist_pool"] == "all" and run["mnist_pool_sha256"] == sha, run
assert f.attrs["mnist_pool"] == "all" and f.attrs["mnist_pool_sha256"] == sha
EOF
then ok "sudoku: mnist_pool and mnist_pool_sha256 in run.json and results.h5"; else bad "sudoku pool provenance ($(tail -3 rp.out))"; fi
cp "$src/datasets/mnist/curation.txt" pool/
"$ipr" run s.yaml -o rp --progress none > rp2.out 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "another MNIST pool (all 877b869b7f50..., now curated-v1 c3bab99cd954...)" rp2.out; then
  ok "sudoku: a resume whose MNIST directory now holds another pool is refused"
else
  bad "sudoku: pool change not refused (rc=$rc, $(tail -2 rp2.out))"
fi

echo "# $pass passed, $fail failed"
[ $fail -eq 0 ]
