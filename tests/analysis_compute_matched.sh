#!/usr/bin/env bash
# analysis_compute_matched.sh IPR SRC [PYTHON]: analysis/ipr_compute_matched.py (issue 15: IPR against independent
# base samples at equal network passes). The oracle "any valid among N" against hand-computed values
# (1 - C(S - m, N) / C(S, N) averaged over instances); then end to end on a real run: the shipped Even Pixels DiT,
# 8 TEST instances x 3 seeds, K = 1, on the CPU: the figure and the table exist, the table's N = 1 row equals the base
# rate of the run's k = 0 rows, and the oracle never falls as N grows.
set -u
ipr=$1
src=$2
py=${3:-/usr/bin/python3}
source "$src/tests/lib.sh"
export MPLBACKEND=Agg MPLCONFIGDIR="$tmp/mpl"
cd "$tmp" || exit 1

if "$py" - "$src/analysis" <<'EOF'
import math, sys
sys.path.insert(0, sys.argv[1])
import ipr_compute_matched as M
v = [[1, 0, 0], [0, 0, 0], [1, 1, 1]]
want = {1: (1 / 3 + 0 + 1) / 3, 2: (2 / 3 + 0 + 1) / 3, 3: (1 + 0 + 1) / 3}
for n, w in want.items():
    got = M.any_valid_rate(v, n)
    assert math.isclose(got, w, rel_tol=1e-12), (n, got, w)
try:
    M.any_valid_rate(v, 4)
except ValueError:
    pass
else:
    raise AssertionError("N above the seed count accepted")
EOF
then ok "any valid among N: exact values for N = 1, 2, 3 of 3 seeds; N = 4 refused"
else bad "any valid among N"; fi

cat > r.yaml <<EOF
name: compute-matched-test
benchmark: even_pixels
instances: {count: 8, per_unit: 8}
model: {checkpoint: $src/models/even_pixels_dit.h5}
device: {kind: cpu, batch: 8, cpu_threads: 1}
sampler: {steps_per_region: 1, overlap: 0.5}
ipr: {iterations: 1, fractions: [0.25], steps_per_region: 2, overlap: 0.5}
seeds: [1, 2, 3]
EOF
if "$ipr" run r.yaml -o run --progress none > run.out 2>&1 &&
   "$py" "$src/analysis/ipr_compute_matched.py" run --output cm.png > cm.out 2>&1 && [ -s cm.png ] && [ -s cm.md ]; then
  ok "ipr_compute_matched on a 3-seed run: cm.png ($(stat -c %s cm.png) bytes) and cm.md"
else
  bad "ipr_compute_matched end to end ($(tail -3 run.out cm.out 2>/dev/null))"
fi
if "$py" - "$src/analysis" run cm.md <<'EOF'
import re, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import ipr_results as R
t = R.load(sys.argv[2], "results", as_dict=True)
base = float(np.mean(np.asarray(t["valid"])[np.asarray(t["iteration"]) == 0]))
rows = [l for l in open(sys.argv[3]) if "oracle" in l]
rates = [float(re.search(r"\| ([0-9.]+)% \|$", l.strip()).group(1)) / 100 for l in rows]
assert len(rates) == 3, rows
assert abs(rates[0] - base) < 1e-3, (rates[0], base)
assert all(b >= a for a, b in zip(rates, rates[1:])), rates
print(f"  base rate {base:.3f}, oracle {rates}")
EOF
then ok "the table: N = 1 is the base rate, the oracle grows with N"
else bad "the compute-matched table"; fi
echo "# $pass passed, $fail failed"
[ "$fail" -eq 0 ]
