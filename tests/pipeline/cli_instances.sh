#!/usr/bin/env bash
# cli_instances.sh IPR MAKE_CKPT SRC: instance files as the source of a run (issue 18), on the CPU with tiny random
# networks: the shipped example puzzles (text, CSV) and their `ipr datagen --from` files give the same results; one
# process and mpirun with 1, 2 and 3 ranks give the same results.h5; the file's SHA-256 is in the config hash,
# run.json and results.h5, and a changed file is refused on resume; every bad input fails with exit 1, a message naming the file and line, and no
# run directory; a generator's datagen file gives the generator's results; chains report whether the final grid is
# the given solution; `ipr sample --instances-file` reads the same instances.
set -u
ipr=$1
mkckpt=$2
src=$3
source "$src/tests/lib.sh"
compare="$py $src/tests/pipeline/compare_results.py"
cd "$tmp" || exit 1

# same_tables A B: the /units (but their ids, which hash the config), /chains and /results of two results.h5 agree
cat > same_tables.py <<'EOF'
import sys
import h5py
import numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
for g in ("units", "chains", "results"):
    assert set(a[g]) == set(b[g]), g
    for k in a[g]:
        if (g, k) != ("units", "unit_id"):
            assert np.array_equal(a[g][k][()], b[g][k][()], equal_nan=True), f"/{g}/{k} differs"
print(f"same tables: {len(a['results/valid'])} result rows")
EOF
same_tables="$py same_tables.py"

# ---- tiny random DiTs (Sudoku s 1 x, Even Pixels s 2 u) and the shipped example puzzles ----
"$mkckpt" --dit ms.h5 --channels 1 --size 252 --patch 28 --d-hid 32 --depth 2 --heads 2 --param x --t-min 0.1 --seed 3 &&
"$mkckpt" --dit ep.h5 --channels 3 --size 32 --patch 4 --tokens-per-side 2 --d-hid 24 --depth 2 --heads 3 --param u \
  --seed 4 > /dev/null || { echo "not ok - make_test_checkpoint"; exit 1; }
cp "$src/datasets/puzzles/example.txt" "$src/datasets/puzzles/example.csv" .
cat > s.yaml <<EOF
# 8 puzzles of a file in units of 3, K = 1, the shipped digit scorer
name: instances-test
benchmark: sudoku
instances: {file: example.txt, per_unit: 3}
model: {checkpoint: ms.h5}
scorer: $src/models/digit_classifier.h5
device: {kind: cpu, batch: 4, cpu_threads: 1}
sampler: {steps_per_region: 2, overlap: 0.5}
ipr: {iterations: 1, fractions: [0.3], steps_per_region: 2, overlap: 0.5}
seeds: [3]
EOF
with() { sed "s#file: example.txt#file: $1#" s.yaml > "$2"; }

# ---- ipr datagen --from: the two sources meet ----
sha_txt=$(sha256sum example.txt | cut -c1-64)
if "$ipr" datagen --from example.txt --output example.h5 > dg.out 2>&1 &&
   "$ipr" datagen --from example.csv --format csv --start 2 --count 3 --output part.h5 > dg2.out 2>&1 &&
   $py - "$sha_txt" <<'EOF'
import sys
import h5py
import numpy as np
a, b = h5py.File("example.h5", "r"), h5py.File("part.h5", "r")
assert a.attrs["source_sha256"] == sys.argv[1] and a.attrs["source_format"] == "text" and a.attrs["count"] == 8
assert a.attrs["solved"] == 7 and a.attrs["mnist_pool"] == "curated-v1" and list(a["index"][()]) == list(range(8))
assert list(b["index"][()]) == [2, 3, 4] and b.attrs["source_format"] == "csv"
# the same puzzles in both files; a row without a solution has zeros outside its clues and black cells there
assert np.array_equal(a["given"][2:5], b["given"][()]) and np.array_equal(a["solution"][2:5], b["solution"][()])
assert (a["solution"][7][a["given"][7] == 0] == 0).all() and (a["solution"][:7] > 0).all()
img = a["images"][7].reshape(9, 28, 9, 28).transpose(0, 2, 1, 3)
assert (img[a["given"][7] == 0] == 0).all() and (img[a["given"][7] == 1].max(axis=(1, 2)) > 0).all()
EOF
then
  ok "datagen --from: text and CSV rows with their clues, solutions and source hash"
else
  bad "datagen --from ($(cat dg.out dg2.out))"
fi
if "$ipr" datagen --from example.txt --output again.h5 > /dev/null 2>&1 && cmp -s example.h5 again.h5 &&
   ! "$ipr" datagen --from example.txt --seed 3 --output seed.h5 > dgs.out 2>&1 && [ ! -e seed.h5 ] &&
   grep -q "belong to the generator" dgs.out; then
  ok "datagen --from: the same file twice gives the same bytes; --seed is refused"
else
  bad "datagen --from twice, or with --seed ($(cat dgs.out))"
fi
printf '%s\n' "12345" > short.txt
if ! "$ipr" datagen --from short.txt --output short.h5 > dgb.out 2>&1 && [ ! -e short.h5 ] &&
   grep -q "short.txt:1: the puzzle has 5 characters, expected 81" dgb.out; then
  ok "datagen --from a bad file: exit 1, '$(cut -c1-90 dgb.out)', nothing written"
else
  bad "datagen --from a bad file ($(cat dgb.out))"
fi

# ---- plan; the same results on no mpirun and 1, 2, 3 ranks ----
if "$ipr" plan s.yaml > plan.out 2>&1 && grep -q "rows 0..7 of example.txt (text, 8 rows" plan.out &&
   grep -q "7 of 8 with a solution" plan.out && grep -q "= 3 work units" plan.out; then
  ok "plan: $(grep -m1 'instances: rows' plan.out | cut -c1-100)"
else
  bad "plan ($(cat plan.out))"
fi
"$ipr" run s.yaml -o r0 --progress none > r0.out 2>&1 || bad "run of a puzzle file ($(tail -3 r0.out))"
for n in 1 2 3; do
  if mpirun -n $n "$ipr" run s.yaml -o r$n --progress none > r$n.out 2>&1 && $compare r0/results.h5 r$n/results.h5 > c$n.out; then
    ok "mpirun -n $n: the same results.h5 as one process ($(cat c$n.out))"
  else
    bad "mpirun -n $n ($(tail -3 r$n.out) $(cat c$n.out 2>/dev/null))"
  fi
done
if $py - "$sha_txt" <<'EOF'
import json, sys
import h5py
sha = sys.argv[1]
run = json.load(open("r0/run.json"))
assert run["instances_file_sha256"] == sha and run["instances_format"] == "text", run
assert run["instances_file"].endswith("example.txt") and run["mnist_pool"] == "curated-v1"
cfg = json.load(open("r0/config/resolved.json"))
assert cfg["instances"]["file_sha256"] == sha and cfg["instances"]["count"] == 8 and cfg["instances"]["format"] == "text"
f = h5py.File("r0/results.h5", "r")
assert f.attrs["instances_file_sha256"] == sha and f.attrs["instances_format"] == "text"
assert [s.decode() for s in f["meta/solution_match_names"][()]] == ["unknown", "match", "other", "invalid"]
m = f["chains/solution_match"][()]
assert len(m) == 8 and m[7] == 0 and (m[:7] > 0).all(), m  # row 7 has no solution
summary = json.load(open("r0/summary/summary.json"))
assert summary["solution_match"]["known"] == 7, summary["solution_match"]
EOF
then
  ok "provenance: the file's SHA-256 in resolved.json (hashed), run.json and results.h5; solution_match per chain"
else
  bad "provenance of the instances file"
fi

# ---- the other sources of the same puzzles: CSV ordering aside, the datagen file of the text gives its results ----
with example.h5 sh5.yaml
if "$ipr" run sh5.yaml -o rh --progress none > rh.out 2>&1 && $same_tables r0/results.h5 rh/results.h5 > rh.cmp; then
  ok "the datagen file of the text file: the same tables ($(cat rh.cmp))"
else
  bad "datagen file of the puzzles ($(tail -3 rh.out) $(cat rh.cmp 2>/dev/null))"
fi
with example.csv scsv.yaml
if "$ipr" run scsv.yaml -o rc --set instances.start=2 --set instances.count=3 --progress none > rc.out 2>&1 &&
   "$ipr" datagen --from example.csv --output excsv.h5 > /dev/null 2>&1 && with excsv.h5 sc5.yaml &&
   "$ipr" run sc5.yaml -o rc5 --set instances.start=2 --set instances.count=3 --progress none > rc5.out 2>&1 &&
   $same_tables rc/results.h5 rc5/results.h5 > rc.cmp; then
  ok "rows 2..4 of the CSV file and of its datagen file: the same tables ($(cat rc.cmp))"
else
  bad "CSV rows ($(tail -2 rc.out rc5.out 2>/dev/null) $(cat rc.cmp 2>/dev/null))"
fi

# ---- a changed file is refused on resume, like a changed checkpoint ----
sha_before=$(sha256sum r0/results.h5)
cp example.txt example.orig
echo "# edited" >> example.txt
"$ipr" run s.yaml -o r0 --progress none > changed.out 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "holds a run whose instances file .*example.txt had another SHA-256" changed.out &&
   [ "$(sha256sum r0/results.h5)" = "$sha_before" ]; then
  ok "a changed instances file is refused on resume: '$(grep -m1 -o 'holds a run whose instances file.*changed' changed.out | cut -c1-110)'"
else
  bad "changed file on resume (rc=$rc, $(cat changed.out))"
fi
mv example.orig example.txt

# ---- bad inputs: exit 1, the file and line and problem, no run directory ----
expect_error() {
  local name=$1 pattern=$2 file=$3
  shift 3
  "$ipr" run "$file" -o bad "$@" > bad.out 2>&1
  local rc=$?
  if [ $rc -eq 1 ] && grep -qE -- "$pattern" bad.out && [ ! -e bad ]; then
    ok "$name: exit 1, '$(grep -m1 error bad.out | sed 's/^ipr run: error: //' | cut -c1-120)'"
  else
    bad "$name (rc=$rc, $(cat bad.out), $(ls bad 2>&1))"
  fi
  rm -rf bad
}
p1=$(sed -n 4p example.txt | cut -d, -f1)   # the first puzzle (0 = blank) and its solution
s1=$(sed -n 4p example.txt | cut -d, -f2)
bad_file() { printf '%s\n' "$2" > "$1"; with "$1" "$1.yaml"; }
bad_file len.txt "${p1:0:80}"
expect_error "wrong length" "len.txt:1: the puzzle has 80 characters, expected 81" len.txt.yaml
bad_file char.txt "${p1:0:10}?${p1:11}"
expect_error "a character that is not a digit or '.'" "char.txt:1: column 11: '\?' in the puzzle is not a digit or '.'" char.txt.yaml
bad_file contra.txt "${p1:0:80}${p1:0:1}"    # the first clue again in the last cell: its row holds it twice
expect_error "clues that contradict each other" "contra.txt:1: the clues contradict each other: [1-9] appears twice in (row|column|box) [1-9] \(r[1-9]c[1-9] and r9c9\)" contra.txt.yaml
bad_file sol.txt "$p1,${s1:1:1}${s1:1}"      # the solution's first two cells equal: not a valid grid
expect_error "a solution that is not a valid grid" "sol.txt:1: the solution (is not a valid grid|does not match the clues)" sol.txt.yaml
bad_file mism.txt "$p1,$(echo "$s1" | tr 123456789 234567891)"
expect_error "a solution that does not match its clues" "mism.txt:1: the solution does not match the clues: it has" mism.txt.yaml
: > empty.txt
with empty.txt empty.yaml
expect_error "an empty file" "empty.txt: the file is empty" empty.yaml
printf 'id,difficulty\n1,hard\n' > nocol.csv
with nocol.csv nocol.yaml
expect_error "a CSV without a puzzle column" "nocol.csv:1: the CSV header 'id,difficulty' names no puzzle column" nocol.yaml
expect_error "a row past the end" "key 'instances.count': rows 5..9 were asked for, but .*example.txt has 8 rows" s.yaml \
  --set instances.start=5 --set instances.count=5
expect_error "instances.file with data_seed" "key 'data_seed' belongs to the instance generator, and instances.file" s.yaml --set data_seed=4
expect_error "correction mode without a solution" "key 'mode': correction mode corrupts each puzzle's solved grid, but .*example.txt:11 \(row 7\) has no solution" \
  s.yaml --set mode=correction
expect_error "a puzzle file for even_pixels" "puzzle files \(text, csv\) hold Sudoku puzzles" s.yaml --set benchmark=even_pixels \
  --set scorer= --set model.checkpoint=ep.h5
expect_error "the computed hash set by hand" "key 'instances.file_sha256' is computed" s.yaml --set instances.file_sha256=abc

# ---- whether the final grid is the given solution: full grids (nothing to generate) read back by the scorer ----
grep -v '^#' example.txt | grep ',' | cut -d, -f2 | head -4 | awk '{print $1 "," $1}' > full.txt
"$ipr" datagen --from full.txt --output full.h5 > /dev/null 2>&1
# the clue images of rows 0 and 1 exchanged: each row shows a valid grid that is not its recorded solution
$py -c "
import h5py
f = h5py.File('full.h5', 'a')
a, b = f['images'][0], f['images'][1]
f['images'][0], f['images'][1] = b, a"
with full.txt full.yaml
with full.h5 fullh5.yaml
if "$ipr" run full.yaml -o rf --progress none > rf.out 2>&1 && "$ipr" run fullh5.yaml -o rfh --progress none > rfh.out 2>&1 &&
   $py - <<'EOF'
import h5py
a = h5py.File("rf/results.h5", "r")["chains/solution_match"][()]
b = h5py.File("rfh/results.h5", "r")["chains/solution_match"][()]
assert list(a) == [1, 1, 1, 1], a  # valid and equal to the given solution
assert list(b) == [2, 2, 1, 1], b  # valid, but another grid than the recorded one
EOF
then
  ok "solution_match: 'match' for a grid equal to its solution, 'other' for another valid grid"
else
  bad "solution_match ($(tail -2 rf.out rfh.out))"
fi

# ---- a generator's datagen file gives the generator's results (Sudoku with clues; Even Pixels, unconditional) ----
"$ipr" datagen --benchmark sudoku --seed 5 --difficulty easy --count 4 --output gen.h5 > /dev/null &&
"$ipr" datagen --benchmark even_pixels --seed 5 --count 4 --output genep.h5 > /dev/null
sed -e 's#instances: {file: example.txt, per_unit: 3}#instances: {count: 4, per_unit: 3}\ndata_seed: 5\ndifficulty: easy#' s.yaml > gen.yaml
with gen.h5 genf.yaml
sed -e 's/benchmark: sudoku/benchmark: even_pixels/' -e 's/ms.h5/ep.h5/' -e '/^scorer:/d' -e '/^difficulty:/d' gen.yaml > genep.yaml
sed -e 's/benchmark: sudoku/benchmark: even_pixels/' -e 's/ms.h5/ep.h5/' -e '/^scorer:/d' -e 's/gen.h5/genep.h5/' genf.yaml > genepf.yaml
# a config without instances.file keeps the canonical form (and hash) it had before the keys existed
if "$ipr" show-config gen.yaml > gen.json 2>&1 && grep -q '"count": 4,' gen.json && ! grep -qE '"(file|format|file_sha256)"' gen.json; then
  ok "a generator config's canonical form holds no instances.file, instances.format or instances.file_sha256"
else
  bad "generator config's canonical form ($(cat gen.json))"
fi
if "$ipr" run gen.yaml -o rg --progress none > rg.out 2>&1 && "$ipr" run genf.yaml -o rgf --progress none > rgf.out 2>&1 &&
   $same_tables rg/results.h5 rgf/results.h5 > rg.cmp &&
   "$ipr" run genep.yaml -o re --progress none > re.out 2>&1 && "$ipr" run genepf.yaml -o ref --progress none > ref.out 2>&1 &&
   $same_tables re/results.h5 ref/results.h5 > re.cmp; then
  ok "a generator's datagen file: the generator's results for sudoku ($(cat rg.cmp)) and even_pixels ($(cat re.cmp))"
else
  bad "generator datagen files ($(tail -2 rg.out rgf.out re.out ref.out) $(cat rg.cmp re.cmp 2>/dev/null))"
fi

# ---- ipr sample --instances-file ----
sample() { "$ipr" sample --checkpoint ms.h5 --benchmark sudoku --scorer "$src/models/digit_classifier.h5" --seed 3 \
  --steps-per-region 2 --ipr-iterations 1 --ipr-steps-per-region 2 --batch 4 --threads 1 --quiet --force "$@"; }
if sample --instances-file example.txt --start 5 --count 3 --output st.h5 > st.out 2>&1 &&
   sample --instances-file example.h5 --start 5 --count 3 --output sh.h5 > sh.out 2>&1 && $py - "$sha_txt" <<'EOF'
import sys
import h5py
import numpy as np
a, b = h5py.File("st.h5", "r"), h5py.File("sh.h5", "r")
assert a.attrs["instances_file_sha256"] == sys.argv[1] and b.attrs["instances_format"] == "datagen"
assert list(a["instance"][()]) == [5, 6, 7]
for k in ("valid", "error", "nfe", "changed", "solution_match"):
    assert np.array_equal(a[k][()], b[k][()], equal_nan=True), k
assert a["solution_match"][2] == 0 and (a["solution_match"][:2] > 0).all()
EOF
then
  ok "sample --instances-file: the text file and its datagen file give the same chains"
else
  bad "sample --instances-file ($(tail -2 st.out sh.out))"
fi
if ! sample --instances-file example.txt --count 2 --data-seed 4 --output sx.h5 > sx.out 2>&1 && [ ! -e sx.h5 ] &&
   grep -q "belong to the generator; --instances-file replaces it" sx.out; then
  ok "sample: --data-seed with --instances-file is refused"
else
  bad "sample --data-seed with a file ($(cat sx.out))"
fi

echo "# $pass passed, $fail failed"
[ $fail -eq 0 ]
