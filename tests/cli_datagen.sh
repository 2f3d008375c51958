#!/usr/bin/env bash
# cli_datagen.sh IPR SRC: `ipr datagen` end to end: all three benchmarks, byte-identical reruns, and
# the error paths (missing/corrupt MNIST, unknown benchmark, N = 0, negative seed) and SIGINT/SIGTERM leave no file.
set -u
ipr=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
# a Python with h5py: Debian's /usr/bin/python3 here, the PATH's python3 on machines that bring their own
py=python3
python3 -c "import h5py" 2>/dev/null || py=/usr/bin/python3
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "not ok - $1"; }

# expect_fail NAME PATTERN ARGS...: non-zero exit, message matching PATTERN, and no output file
expect_fail() {
  local name=$1 pattern=$2 out=$tmp/fail.h5
  shift 2
  rm -f "$out"
  "$ipr" datagen "$@" --output "$out" >"$tmp/stdout" 2>"$tmp/stderr"
  local rc=$?
  if [ $rc -ne 0 ] && grep -qE -- "$pattern" "$tmp/stderr" && [ ! -e "$out" ] && \
     [ -z "$(ls "$tmp" | grep 'fail.h5.tmp')" ]; then
    ok "$name"
  else
    bad "$name (rc=$rc, stderr: $(cat "$tmp/stderr"))"
  fi
}

for b in sudoku even_pixels counting_polygons; do
  if "$ipr" datagen --benchmark $b --count 70 --seed 11 --output "$tmp/$b-1.h5" --quiet &&
     "$ipr" datagen --benchmark $b --count 70 --seed 11 --output "$tmp/$b-2.h5" --quiet &&
     cmp -s "$tmp/$b-1.h5" "$tmp/$b-2.h5"; then
    ok "$b: two runs are byte-identical"
  else
    bad "$b: two runs differ or failed"
  fi
  "$ipr" datagen --benchmark $b --count 70 --seed 12 --output "$tmp/$b-3.h5" --quiet
  if ! cmp -s "$tmp/$b-1.h5" "$tmp/$b-3.h5"; then ok "$b: another seed gives another file"; else bad "$b: seed ignored"; fi
  # instances are independent of the block they are written in: [35, 70) of the run equals --start 35
  "$ipr" datagen --benchmark $b --count 35 --start 35 --seed 11 --output "$tmp/$b-4.h5" --quiet
  if $py - "$tmp/$b-1.h5" "$tmp/$b-4.h5" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert np.array_equal(a["images"][35:70], b["images"][:])
assert np.array_equal(a["index"][35:70], b["index"][:])
assert not np.array_equal(a["images"][0:35], b["images"][:])
PY
  then ok "$b: instance i does not depend on where the run starts"
  else bad "$b: --start 35 differs from rows 35..69"; fi
done

# the pool the cells are drawn from, by name and content: the shipped directory is curated (hashes as
# tests/test_sudoku.c); a directory without curation.txt (the full MNIST release) keeps every digit
mkdir -p "$tmp/all"
ln -s "$src/datasets/mnist/"*.gz "$tmp/all/"
"$ipr" datagen --benchmark sudoku --count 2 --seed 11 --split train --output "$tmp/pool-train.h5" --quiet
"$ipr" datagen --benchmark sudoku --count 2 --seed 11 --mnist-dir "$tmp/all" --output "$tmp/pool-all.h5" --quiet
if $py - "$tmp/sudoku-1.h5" "$tmp/pool-train.h5" "$tmp/pool-all.h5" <<'PY'
import sys, h5py, numpy as np
t, tr, a = (h5py.File(p, "r") for p in sys.argv[1:4])
assert t.attrs["mnist_pool"] == "curated-v1" and tr.attrs["mnist_pool"] == "curated-v1"
assert t.attrs["mnist_pool_sha256"] == "c3bab99cd95456dab1eb506d8c205fc52c33f2136635660878a4e784c0fa3730"
assert tr.attrs["mnist_pool_sha256"] == "adf8b87dbac40fda3d81cd8167b6fe54f4d0722e65ab054b016cc1c49ab49e48"
assert a.attrs["mnist_pool"] == "all"
assert a.attrs["mnist_pool_sha256"] == "877b869b7f50d8320edc865d37db9cc6d7df05ef3e7a94880b261bb8d2c8b147"
assert t.attrs["mnist_images_sha256"] == a.attrs["mnist_images_sha256"]  # same IDX file, another pool
# same grids and clues, other digit images
assert np.array_equal(t["solution"][:2], a["solution"][:]) and np.array_equal(t["given"][:2], a["given"][:])
assert not np.array_equal(t["digit_image"][:2], a["digit_image"][:])
PY
then ok "sudoku: mnist_pool and mnist_pool_sha256 (curated-v1, all)"; else bad "sudoku: pool provenance"; fi
printf 'ipr-mnist-curation 1\nname broken\nitems test 5\n' >"$tmp/all/curation.txt"
expect_fail "curation for other IDX files" "made for 5 test items" --benchmark sudoku --count 1 --seed 1 --mnist-dir "$tmp/all"

# refuses to overwrite, --force overwrites
if ! "$ipr" datagen --benchmark even_pixels --count 2 --seed 1 --output "$tmp/even_pixels-1.h5" 2>/dev/null &&
   "$ipr" datagen --benchmark even_pixels --count 2 --seed 1 --output "$tmp/even_pixels-1.h5" --force --quiet; then
  ok "existing output refused without --force"
else
  bad "overwrite protection"
fi

expect_fail "unknown benchmark" "unknown benchmark 'chess'" --benchmark chess --count 3 --seed 1
expect_fail "count 0" "count must be at least 1" --benchmark sudoku --count 0 --seed 1
expect_fail "negative seed" "seed must not be negative" --benchmark sudoku --count 3 --seed -5
expect_fail "seed not a number" "not an integer" --benchmark sudoku --count 3 --seed 12abc
expect_fail "missing count" "--count is required" --benchmark sudoku --seed 1
expect_fail "unknown option" "unknown option" --benchmark sudoku --count 1 --seed 1 --colour red
expect_fail "difficulty on wrong benchmark" "sudoku only" --benchmark even_pixels --count 1 --seed 1 --difficulty hard
expect_fail "missing MNIST" "not found" --benchmark sudoku --count 3 --seed 1 --mnist-dir "$tmp/nowhere"
mkdir -p "$tmp/corrupt"
cp "$src/datasets/mnist/"*.gz "$tmp/corrupt/"
head -c 100000 "$src/datasets/mnist/t10k-images-idx3-ubyte.gz" >"$tmp/corrupt/t10k-images-idx3-ubyte.gz"
expect_fail "truncated MNIST" "truncated|corrupt" --benchmark sudoku --count 3 --seed 1 --mnist-dir "$tmp/corrupt"
printf 'not a gzip file at all, and no IDX header either' >"$tmp/corrupt/t10k-images-idx3-ubyte.gz"
expect_fail "garbage MNIST" "magic|truncated" --benchmark sudoku --count 3 --seed 1 --mnist-dir "$tmp/corrupt"
if ! "$ipr" datagen --benchmark even_pixels --count 1 --seed 1 --output "$tmp/no/such/dir/x.h5" 2>"$tmp/stderr" &&
   grep -q "cannot create" "$tmp/stderr"; then ok "unwritable output"; else bad "unwritable output"; fi

# SIGINT and SIGTERM (Ctrl-C, a scheduler's kill): the process dies of the signal and leaves no FILE.tmp.PID
for sig in INT TERM; do
  rm -f "$tmp"/sig.h5*
  # env --default-signal: a background job of a script starts with SIGINT ignored (no job control)
  env --default-signal=INT "$ipr" datagen --benchmark counting_polygons --count 3000 --seed 1 --output "$tmp/sig.h5" \
    --quiet 2>/dev/null &
  pid=$!
  for _ in $(seq 1 200); do ls "$tmp"/sig.h5.tmp.* >/dev/null 2>&1 && break; sleep 0.05; done
  had_tmp=$(ls "$tmp"/sig.h5.tmp.* 2>/dev/null | wc -l)
  sleep 0.2
  kill -s $sig $pid
  wait $pid
  rc=$?
  if [ "$had_tmp" = 1 ] && [ $rc -gt 128 ] && [ -z "$(ls "$tmp" | grep '^sig.h5')" ]; then
    ok "SIG$sig during datagen: killed (rc $rc), no sig.h5 and no sig.h5.tmp.PID left"
  else
    bad "SIG$sig during datagen (tmp seen: $had_tmp, rc=$rc, left: $(ls "$tmp" | grep '^sig.h5'))"
  fi
done

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
