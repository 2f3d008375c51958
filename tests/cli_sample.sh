#!/usr/bin/env bash
# cli_sample.sh IPR MAKE_CKPT SRC: `ipr sample` end to end on random-weight networks of the benchmark sizes:
# the file's layout, results independent of --batch, Sudoku with clues and in correction mode, and the
# error paths (bad settings, mismatched checkpoint, existing output) exit non-zero and leave no file.
set -u
ipr=$1
mkckpt=$2
src=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
py=python3
python3 -c "import h5py" 2>/dev/null || py=/usr/bin/python3
export OPENBLAS_NUM_THREADS=1
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "not ok - $1"; }

"$mkckpt" "$tmp/ep.h5" 3 32 32 4 11 32 32 || { echo "cannot make the Even Pixels checkpoint"; exit 1; }
"$mkckpt" "$tmp/sudoku.h5" 1 252 252 28 12 32 32 32 32 32 32 || { echo "cannot make the Sudoku checkpoint"; exit 1; }
digit="$src/tests/fixtures/classifier_digit_tiny.h5"

# expect_fail NAME PATTERN ARGS...: non-zero exit, message matching PATTERN, no output file, no tmp file
expect_fail() {
  local name=$1 pattern=$2 out=$tmp/fail.h5
  shift 2
  rm -f "$out"
  "$ipr" sample "$@" --output "$out" >"$tmp/stdout" 2>"$tmp/stderr"
  local rc=$?
  if [ $rc -ne 0 ] && grep -qE -- "$pattern" "$tmp/stderr" && [ ! -e "$out" ] && \
     [ -z "$(ls "$tmp" | grep 'fail.h5.tmp')" ]; then
    ok "$name"
  else
    bad "$name (rc=$rc, stderr: $(cat "$tmp/stderr"))"
  fi
}

ep=(--checkpoint "$tmp/ep.h5" --benchmark even_pixels --count 3 --seed 5 --steps-per-region 1 --overlap 0.9
    --ipr-iterations 2 --ipr-steps-per-region 1 --quiet)

# a run, its layout, and the same results with another batch size
if "$ipr" sample "${ep[@]}" --batch 2 --save-images --output "$tmp/a.h5" &&
   "$ipr" sample "${ep[@]}" --batch 1 --save-images --output "$tmp/b.h5"; then
  ok "even_pixels runs (batch 2 and 1)"
else
  bad "even_pixels run failed"
fi
if $py - "$tmp/a.h5" "$tmp/b.h5" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert a.attrs["format"] == "ipr-sample" and a.attrs["benchmark"] == "even_pixels"
assert a["valid"].shape == (3, 3) and a["error"].shape == (3, 3) and a["nfe"].shape == (3, 3)
assert a["images"].shape == (3, 3, 32, 32)
assert list(a["instance"][:]) == [0, 1, 2]
assert (a["changed"][:, 0] == 64).all() and (a["changed"][:, 1:] <= 16).all()
assert (np.diff(a["nfe"][:], axis=1) > 0).all()
for k in ["valid", "error", "nfe", "changed", "iterations_run", "images", "instance"]:
    assert np.array_equal(a[k][:], b[k][:]), k
assert np.isfinite(a["images"][:]).all()
assert a["timing/instances_per_s"].shape == (3,)
PY
then ok "layout, and batch 2 == batch 1"; else bad "layout or batch independence"; fi

# another seed, other samples
"$ipr" sample "${ep[@]}" --seed 6 --output "$tmp/c.h5"
if $py - "$tmp/a.h5" "$tmp/c.h5" <<'PY'
import sys, h5py, numpy as np
a, c = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert not np.array_equal(a["error"][:], c["error"][:])
PY
then ok "another seed gives other results"; else bad "seed ignored"; fi

# Sudoku with clues (easy: few cells to generate) and the digit scorer; correction mode: no base pass
if "$ipr" sample --checkpoint "$tmp/sudoku.h5" --benchmark sudoku --difficulty easy --count 1 --seed 2 \
     --steps-per-region 1 --overlap 0.9 --scorer "$digit" --quiet --output "$tmp/s.h5" &&
   "$ipr" sample --checkpoint "$tmp/sudoku.h5" --benchmark sudoku --correction --count 1 --seed 2 \
     --ipr-iterations 1 --ipr-ratio 0.02 --ipr-steps-per-region 1 --scorer "$digit" --quiet --output "$tmp/k.h5" &&
   $py - "$tmp/s.h5" "$tmp/k.h5" <<'PY'
import sys, h5py, numpy as np
s, k = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert s["changed"][0, 0] <= 26 and s["nfe"][0, 0] >= 1 and np.isfinite(s["error"][0, 0])
assert k.attrs["correction"] == 1 and k["nfe"][0, 0] == 0 and k["nfe"][0, 1] == 1
# provenance of the digit images: the shipped curated test pool (tests/test_sudoku.c pins its hash)
for f in (s, k):
    assert f.attrs["mnist_pool"] == "curated-v1", f.attrs["mnist_pool"]
    assert f.attrs["mnist_pool_sha256"] == "c3bab99cd95456dab1eb506d8c205fc52c33f2136635660878a4e784c0fa3730"
PY
then ok "sudoku with clues and in correction mode"; else bad "sudoku runs"; fi

# refuses to overwrite; --force overwrites
if ! "$ipr" sample "${ep[@]}" --output "$tmp/a.h5" 2>/dev/null &&
   "$ipr" sample "${ep[@]}" --ipr-iterations 0 --output "$tmp/a.h5" --force; then
  ok "existing output refused without --force"
else
  bad "overwrite protection"
fi

if "$ipr" sample --help | grep -q -- "--ipr-ratio"; then ok "--help"; else bad "--help"; fi

base=(--checkpoint "$tmp/ep.h5" --benchmark even_pixels --count 1 --seed 1)
expect_fail "ratio 0" "ipr_ratio 0 outside \(0, 1\]" "${base[@]}" --ipr-ratio 0
expect_fail "ratio above 1" "--ipr-ratio: .*outside \(0, 1\]" "${base[@]}" --ipr-ratio 1.5
expect_fail "negative steps" "--steps-per-region: steps_per_region -2 must be >= 1" "${base[@]}" --steps-per-region -2
expect_fail "negative IPR steps" "ipr_steps_per_region -1 must be >= 1" "${base[@]}" --ipr-steps-per-region -1
expect_fail "overlap 1" "--overlap: overlap 1 outside \[0, 1\)" "${base[@]}" --overlap 1
expect_fail "ipr overlap above 1" "ipr_overlap 1.5 outside" "${base[@]}" --ipr-overlap 1.5
expect_fail "negative iterations" "ipr_iterations -1" "${base[@]}" --ipr-iterations -1
expect_fail "unknown order" "unknown order 'spiral'" "${base[@]}" --order spiral
expect_fail "graph order off Sudoku" "sudoku only" "${base[@]}" --order graph
expect_fail "checkpoint of another benchmark" "checkpoint images are 32 x 32, the benchmark's are 128 x 128" \
  --checkpoint "$tmp/ep.h5" --benchmark counting_polygons --count 1 --seed 1
expect_fail "checkpoint channels" "checkpoint images are 252 x 252" \
  --checkpoint "$tmp/sudoku.h5" --benchmark even_pixels --count 1 --seed 1
expect_fail "missing checkpoint file" "not found|cannot open|No such" \
  --checkpoint "$tmp/none.h5" --benchmark even_pixels --count 1 --seed 1
expect_fail "missing --checkpoint" "--checkpoint is required" --benchmark even_pixels --count 1 --seed 1
expect_fail "count 0" "count must be at least 1" "${base[@]}" --count 0
expect_fail "negative seed" "seed must not be negative" --checkpoint "$tmp/ep.h5" --benchmark even_pixels --count 1 --seed -3
expect_fail "unknown option" "unknown option" "${base[@]}" --colour red
expect_fail "precision on cpu" "needs --device cuda" "${base[@]}" --precision bf16
expect_fail "scorer for even pixels" "takes no classifier" "${base[@]}" --scorer "$digit"
expect_fail "correction off Sudoku" "sudoku only" "${base[@]}" --correction
expect_fail "bad scorer file" "not found|cannot open|format" --checkpoint "$tmp/sudoku.h5" --benchmark sudoku \
  --count 1 --seed 1 --scorer "$tmp/ep.h5"

expect_fail "iterations above the sampler's limit" "ipr_iterations 4096 outside 0..4095" "${base[@]}" --ipr-iterations 4096

# ipr forward: one NaN input pixel is refused by index (it would turn the whole output into NaN)
if $py - "$tmp/nan_in.h5" <<'PY'
import sys, h5py, numpy as np
x = np.zeros((2, 3, 32, 32), np.float32)
x[1, 2, 5, 7] = np.nan
with h5py.File(sys.argv[1], "w") as f:
    f["input/x"] = x
    f["input/t"] = np.full((2, 1, 32, 32), 0.5, np.float32)
PY
then
  "$ipr" forward --checkpoint "$tmp/ep.h5" --input "$tmp/nan_in.h5" --output "$tmp/nan_out.h5" >"$tmp/stdout" 2>"$tmp/stderr"
  rc=$?
  if [ $rc -eq 1 ] && grep -q "/input/x\[1, 2, 5, 7\] is nan: inputs must be finite" "$tmp/stderr" && [ ! -e "$tmp/nan_out.h5" ]; then
    ok "forward: a NaN input pixel is refused, naming its index"
  else
    bad "forward with a NaN input (rc=$rc, $(cat "$tmp/stderr"))"
  fi
else
  bad "could not write the NaN input"
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
