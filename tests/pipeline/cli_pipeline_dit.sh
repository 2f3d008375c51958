#!/usr/bin/env bash
# cli_pipeline_dit.sh IPR MAKE_CKPT SRC: the evaluation pipeline with region-token DiT checkpoints on the CPU:
# `ipr plan` accepts a DiT config; `ipr run` gives the same results.h5 without mpirun and on 1/2/3 ranks (Even Pixels,
# s 2 u) and on 1/3 ranks (Sudoku with clues and the digit scorer, s 1 x); the run's model card holds the DiT
# architecture; a U-Net and a DiT side by side in one grid give each model's results as when run alone; a DiT of
# another benchmark is refused before anything is written.
set -u
ipr=$1
mkckpt=$2
src=$3
source "$src/tests/lib.sh"
compare="$py $src/tests/pipeline/compare_results.py"
cd "$tmp" || exit 1

# ---- tiny random checkpoints: DiTs of Even Pixels (s 2, u) and Sudoku (s 1, x), a U-Net of Even Pixels ----
"$mkckpt" --dit ep_dit.h5 --channels 3 --size 32 --patch 4 --tokens-per-side 2 --d-hid 24 --depth 2 --heads 3 \
  --param u --seed 4 &&
"$mkckpt" --dit ms_dit.h5 --channels 1 --size 252 --patch 28 --d-hid 32 --depth 2 --heads 2 --param x --t-min 0.1 \
  --seed 3 &&
"$mkckpt" ep_unet.h5 3 32 32 4 7 32 32 || { echo "not ok - make_test_checkpoint"; exit 1; }
cat > d.yaml <<'EOF'
# DiT pipeline test: 8 instances x 2 fractions in units of 2, K = 2, final images kept
name: pipeline-dit-test
benchmark: even_pixels
instances: {count: 8, per_unit: 2}
model: {checkpoint: ep_dit.h5}
device: {kind: cpu, batch: 4, cpu_threads: 1}
sampler: {steps_per_region: 1, overlap: 0.9}
ipr: {iterations: 2, fractions: [0.25, 0.5], steps_per_region: 2, overlap: 0.9}
seeds: [11]
output: {keep_images: true}
EOF
cat > s.yaml <<EOF
# Sudoku (easy: clues) with a DiT and the tiny digit scorer: 4 instances in units of 2, K = 1
name: pipeline-dit-sudoku
benchmark: sudoku
difficulty: easy
instances: {count: 4, per_unit: 2}
model: {checkpoint: ms_dit.h5}
scorer: $src/tests/fixtures/classifier_digit_tiny.h5
device: {kind: cpu, batch: 2, cpu_threads: 1}
sampler: {steps_per_region: 2, overlap: 0.5}
ipr: {iterations: 1, fractions: [0.3], steps_per_region: 2, overlap: 0.5}
seeds: [3]
EOF

# ---- plan ----
if "$ipr" plan d.yaml --ranks 2 > plan.out 2>&1 && grep -q "= 8 work units" plan.out && grep -q "network passes" plan.out &&
   grep -q "model ep_dit: 64 regions" plan.out && "$ipr" plan s.yaml --ranks 3 > plans.out 2>&1 &&
   grep -q "model ms_dit: 81 regions" plans.out; then
  ok "plan accepts DiT configs: $(grep -m1 'model ep_dit' plan.out)"
else
  bad "plan of a DiT config ($(cat plan.out plans.out 2>/dev/null))"
fi

# ---- the same results on 1 rank without mpirun, and on 1, 2, 3 ranks ----
if "$ipr" run d.yaml -o r0 --progress none > r0.out 2>&1 && [ -f r0/results.h5 ] && [ -f r0/DONE ] &&
   grep -q "| ep_dit | uniform | 0.25 |" r0.out; then
  ok "run without mpirun: exit 0, results.h5, DONE and the summary table"
else
  bad "run without mpirun ($(tail -5 r0.out))"
fi
for n in 1 2 3; do
  if mpirun -n $n "$ipr" run d.yaml -o r$n --progress none > r$n.out 2>&1 &&
     $compare r0/results.h5 r$n/results.h5 > cmp$n.out; then
    ok "mpirun -n $n: exit 0 and the same results.h5 contents ($(cat cmp$n.out))"
  else
    bad "mpirun -n $n ($(tail -3 r$n.out) $(cat cmp$n.out 2>/dev/null))"
  fi
done
if mpirun -n 2 "$ipr" run d.yaml -o rb --set device.batch=3 --set run.units_per_request=1 --progress none > rb.out 2>&1 &&
   $compare r0/results.h5 rb/results.h5 > cmpb.out; then
  ok "another batch size (3) and one unit per request: the same results ($(cat cmpb.out))"
else
  bad "batch size 3 ($(tail -3 rb.out) $(cat cmpb.out 2>/dev/null))"
fi
if $py - r0 ep_dit.h5 <<'EOF'
import hashlib, json, sys
import h5py, numpy as np
run, ck = sys.argv[1], sys.argv[2]
sha = hashlib.sha256(open(ck, "rb").read()).hexdigest()
f = h5py.File(run + "/results.h5", "r")
n = len(f["chains/instance"])
assert n == 16 and len(f["results/valid"]) == n * 3, n
assert f["images/final"].shape == (16, 32, 32, 3) and f.attrs["complete"] == 1 and f.attrs["n_units"] == 8
assert list(f["units/status"][()]) == [0] * 8
assert np.isfinite(f["results/error"][()]).all()
assert [s.decode() if isinstance(s, bytes) else s for s in f["meta/model_sha256"][()]] == [sha]
# run.json names the model by its hash; the model card (models/NAME.json) holds the architecture
r = json.load(open(run + "/run.json"))
assert r["model_sha256"] == [sha], r
card = json.load(open(run + "/models/ep_dit.json"))
want = {"backbone": "dit", "format": "srm-dit-checkpoint", "sha256": sha, "benchmark": "even_pixels",
        "image_size": [32, 32], "d_in": 3, "d_out": 7, "patch_size": 4, "tokens_per_side": 2, "d_hid": 24,
        "depth": 2, "num_heads": 3, "mlp_ratio": 4, "parameterization": "u",
        "architecture": "dit d_hid 24 depth 2 heads 3 mlp 4 s 2 u"}
for k, v in want.items():
    assert card.get(k) == v, (k, card.get(k), v)
assert "hid_dims" not in card
EOF
then ok "results.h5 layout (16 chains x (K + 1) rows, final images); run.json and the model card: the DiT's hash and architecture"
else bad "results.h5 / run.json / model card of a DiT run"; fi
if "$ipr" bundle r0 --output b.tar.gz > /dev/null && "$ipr" verify b.tar.gz > /dev/null 2>&1 &&
   tar xzf b.tar.gz --wildcards --to-stdout '*/models/ep_dit.json' 2>/dev/null | grep -q '"backbone": "dit"'; then
  ok "the bundle verifies and carries the DiT model card"
else
  bad "bundle of a DiT run"
fi

# ---- Sudoku with clues and a scorer: 1 and 3 ranks ----
if "$ipr" run s.yaml -o s1 --progress none > s1.out 2>&1 && mpirun -n 3 "$ipr" run s.yaml -o s3 --progress none > s3.out 2>&1 &&
   $compare s1/results.h5 s3/results.h5 > cmps.out && $py - s1 <<'EOF'
import json, sys
import h5py, numpy as np
f = h5py.File(sys.argv[1] + "/results.h5", "r")
assert len(f["chains/instance"]) == 4 and np.isfinite(f["results/error"][()]).all()
assert (f["results/changed"][()][f["results/iteration"][()] == 0] <= 27).all()  # easy: at most 81 - 54 to generate
card = json.load(open(sys.argv[1] + "/models/ms_dit.json"))
assert card["backbone"] == "dit" and card["parameterization"] == "x" and card["t_min"] == 0.1, card
assert card["architecture"] == "dit d_hid 32 depth 2 heads 2 mlp 4 s 1 x (t_min 0.1)", card["architecture"]
EOF
then
  ok "sudoku DiT (s 1, x) with clues and the digit scorer: 1 rank == 3 ranks ($(cat cmps.out))"
else
  bad "sudoku DiT runs ($(tail -3 s1.out s3.out) $(cat cmps.out 2>/dev/null))"
fi
# the threads of a rank: 2 against 1 (OpenBLAS's own threading rounded differently with each count, so the number of
# ranks sharing a node moved a run's results; the engines' GEMMs are now fixed blocks of single-threaded calls)
if "$ipr" run s.yaml -o s1t2 --set device.cpu_threads=2 --progress none > s1t2.out 2>&1 &&
   $compare s1/results.h5 s1t2/results.h5 > cmpt.out; then
  ok "sudoku DiT: 2 CPU threads == 1 ($(cat cmpt.out))"
else
  bad "sudoku DiT with 2 CPU threads ($(tail -3 s1t2.out) $(cat cmpt.out 2>/dev/null))"
fi

# ---- a U-Net and a DiT in one grid: each model's rows equal its own run's ----
# (4 instances in units of 2 here, 8 in the DiT's own run above: a chain's results depend on its instance only)
sed -e 's/checkpoint: ep_dit.h5/checkpoint: [ep_unet.h5, ep_dit.h5]/' -e 's/name: pipeline-dit-test/name: pipeline-mixed/' \
  -e 's/count: 8, per_unit: 2/count: 4, per_unit: 2/' d.yaml > mixed.yaml
sed -e 's/checkpoint: ep_dit.h5/checkpoint: ep_unet.h5/' -e 's/count: 8, per_unit: 2/count: 4, per_unit: 1/' d.yaml > unet.yaml
if mpirun -n 2 "$ipr" run mixed.yaml -o mx --progress none > mx.out 2>&1 &&
   "$ipr" run unet.yaml -o ru --progress none > ru.out 2>&1 && $py - mx r0 ru <<'EOF'
import json, sys
import h5py, numpy as np
mx, dit, unet = (h5py.File(p + "/results.h5", "r") for p in sys.argv[1:4])
names = [n.decode() if isinstance(n, bytes) else n for n in mx["meta/model_names"][()]]
assert names == ["ep_unet", "ep_dit"], names
cols = ["instance", "fraction", "iteration", "valid", "error", "nfe", "changed"]
def rows(f, model=None):
    r = f["results"]
    keep = r["instance"][()] < 4
    if model is not None:
        keep &= r["model"][()] == model
    a = np.stack([r[c][()][keep].astype(np.float64) for c in cols], axis=1)
    return a[np.lexsort(a[:, :3].T[::-1])]
for m, alone in ((0, unet), (1, dit)):
    x, y = rows(mx, m), rows(alone)
    assert x.shape == (4 * 2 * 3, len(cols)) and x.shape == y.shape and np.array_equal(x, y), \
        f"model {names[m]}: rows differ from its own run"
assert json.load(open(sys.argv[1] + "/models/ep_unet.json"))["backbone"] == "unet"
assert json.load(open(sys.argv[1] + "/models/ep_dit.json"))["backbone"] == "dit"
EOF
then
  ok "a U-Net and a DiT in one grid (2 ranks): each model's results equal its own run's; one card per backbone"
else
  bad "mixed U-Net + DiT grid ($(tail -3 mx.out ru.out))"
fi

# ---- a DiT of another benchmark: exit 1, a clear message, no run directory ----
sed 's/checkpoint: ep_dit.h5/checkpoint: ms_dit.h5/' d.yaml > wrong.yaml
"$ipr" run wrong.yaml -o bad > bad.out 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -qE "wrong.yaml:[0-9]+: key 'model.checkpoint': .*ms_dit.h5 was trained on 252x252 images with 1 channels; even_pixels has 32x32 with 3" bad.out &&
   [ ! -e bad ]; then
  ok "a Sudoku DiT in an Even Pixels config: exit 1, '$(grep -m1 error bad.out | cut -c1-120)'"
else
  bad "wrong-benchmark DiT (rc=$rc, $(cat bad.out))"
fi
"$ipr" plan wrong.yaml > badplan.out 2>&1
rc=$?
if [ $rc -ne 0 ] && grep -q "ms_dit.h5 was trained on 252x252" badplan.out; then
  ok "plan refuses it too"
else
  bad "plan of a wrong-benchmark DiT (rc=$rc, $(cat badplan.out))"
fi

echo "# $pass passed, $fail failed"
[ $fail -eq 0 ]
