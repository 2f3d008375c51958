#!/usr/bin/env bash
# cli_dit.sh IPR MAKE_CKPT SRC PYTHON: the region-token DiT through the CLI on the CPU. `ipr forward` on every DiT
# fixture reproduces its golden /output/y (float64 PyTorch run) and is batch-independent; `ipr sample` with tiny
# random DiT checkpoints gives bitwise the same results for --batch 1 and 3 (Sudoku s 1 x, Even Pixels s 2 u); U-Net
# and DiT checkpoints are both accepted; an unknown format, a DiT of another benchmark (image size, channels, patch),
# a truncated file, a missing tensor and a t map not constant on regions each fail with a clear message, non-zero
# exit and no output file.
set -u
ipr=$1
mkckpt=$2
src=$3
py=${4:-/usr/bin/python3}
source "$src/tests/lib.sh"
fx=$src/tests/fixtures
digit=$fx/classifier_digit_tiny.h5
# Tolerance of the CLI forward against the fixtures: the brief and fixtures/README.md (float32 engine vs the
# float64 reference: at or below 1e-5 relative L2; tests/test_dit.c measures the same engine far below it).
FWD_REL_L2=1e-5

# ---- ipr forward on every DiT fixture (the fixture is both checkpoint and input) ----
# rel_l2 A B: relative L2 of /output/y of A against /output/y of B
rel_l2() {
  "$py" - "$1" "$2" <<'EOF'
import sys, h5py, numpy as np
a = h5py.File(sys.argv[1], "r")["/output/y"][...].astype(np.float64)
b = h5py.File(sys.argv[2], "r")["/output/y"][...].astype(np.float64)
if a.shape != b.shape:
    print(f"shape {a.shape} != {b.shape}"); sys.exit(1)
print(f"{np.linalg.norm(a - b) / np.linalg.norm(b):.3e}")
EOF
}
for name in dit_sudoku_s1_x dit_sudoku_s2_u dit_even_pixels_s1_x dit_even_pixels_s2_x dit_polygons_s1_u; do
  f=$fx/$name.h5
  if ! "$ipr" forward --checkpoint "$f" --input "$f" --output "$tmp/$name.h5" > "$tmp/fwd.log" 2>&1; then
    bad "forward $name: $(tail -2 "$tmp/fwd.log")"
    continue
  fi
  e=$(rel_l2 "$tmp/$name.h5" "$f") || { bad "forward $name: $e"; continue; }
  if "$py" -c "import sys; sys.exit(0 if float('$e') <= $FWD_REL_L2 else 1)"; then
    ok "forward $name ($(grep -o 'dit d_hid[^)]*)\?' "$tmp/fwd.log" | head -1)): rel L2 $e (limit $FWD_REL_L2)"
  else
    bad "forward $name: rel L2 $e (limit $FWD_REL_L2)"
  fi
done
# one image per pass gives bitwise the whole batch's output (the engine is row-deterministic)
for name in dit_even_pixels_s1_x dit_even_pixels_s2_x; do
  "$ipr" forward --checkpoint "$fx/$name.h5" --input "$fx/$name.h5" --output "$tmp/${name}_b1.h5" --batch 1 \
    > /dev/null 2>&1 && [ -s "$tmp/$name.h5" ] && "$py" - "$tmp/${name}_b1.h5" "$tmp/$name.h5" <<'EOF' &&
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r")["/output/y"][...] for p in sys.argv[1:3])
assert a.shape[0] > 1 and a.tobytes() == b.tobytes()
EOF
  ok "forward $name: --batch 1 == the whole batch, bitwise" || bad "forward $name: --batch 1 differs from the batch"
done
if "$py" - "$tmp/dit_sudoku_s1_x.h5" <<'EOF'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
assert f.attrs["architecture"] == "dit d_hid 32 depth 2 heads 2 mlp 4 s 1 x (t_min 0.05)", f.attrs["architecture"]
EOF
then ok "forward records the DiT architecture"; else bad "forward: architecture attribute"; fi

# ---- ipr forward: errors (non-zero exit, a message, no output) ----
# expect_fail_cmd NAME PATTERN OUT CMD...: CMD exits non-zero, stderr matches PATTERN, OUT and OUT.tmp.* absent
expect_fail_cmd() {
  local name=$1 pattern=$2 out=$3
  shift 3
  rm -f "$out"
  "$@" >"$tmp/stdout" 2>"$tmp/stderr"
  local rc=$?
  if [ $rc -ne 0 ] && grep -qE -- "$pattern" "$tmp/stderr" && [ ! -e "$out" ] &&
     ! compgen -G "$out.tmp*" > /dev/null; then
    ok "$name: $(grep -m1 error "$tmp/stderr" | cut -c1-150)"
  else
    bad "$name (rc=$rc, stderr: $(cat "$tmp/stderr"))"
  fi
}
"$py" - "$fx/dit_even_pixels_s2_x.h5" "$tmp" <<'EOF'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
x, t = f["input/x"][:], f["input/t"][:]
t2 = t.copy()
t2[0, 0, 5, 6] = 0.5 if t2[0, 0, 5, 6] != 0.5 else 0.25  # one pixel of region (1, 1) off its region's level
with h5py.File(sys.argv[2] + "/nonconst.h5", "w") as g:
    g["input/x"], g["input/t"] = x, t2
with h5py.File(sys.argv[2] + "/small.h5", "w") as g:
    g["input/x"], g["input/t"] = x[:, :, :16, :16], t[:, :, :16, :16]
EOF
expect_fail_cmd "forward: t not constant on a region" "not constant on region 9 \(row 1, column 1" "$tmp/bad.h5" \
  "$ipr" forward --checkpoint "$fx/dit_even_pixels_s2_x.h5" --input "$tmp/nonconst.h5" --output "$tmp/bad.h5"
expect_fail_cmd "forward: input of another image size" "/input/x is 16 x 16; the DiT .* works on its own image size, 32 x 32" \
  "$tmp/bad.h5" "$ipr" forward --checkpoint "$fx/dit_even_pixels_s2_x.h5" --input "$tmp/small.h5" --output "$tmp/bad.h5"

# ---- tiny random DiT checkpoints (and a U-Net) of the benchmark sizes ----
"$mkckpt" --dit "$tmp/ms_dit.h5" --channels 1 --size 252 --patch 28 --d-hid 32 --depth 2 --heads 2 --param x --seed 3 &&
"$mkckpt" --dit "$tmp/ep_dit.h5" --channels 3 --size 32 --patch 4 --tokens-per-side 2 --d-hid 24 --depth 2 --heads 3 \
  --param u --seed 4 &&
"$mkckpt" "$tmp/ep_unet.h5" 3 32 32 4 11 32 32 || { echo "not ok - make_test_checkpoint"; exit 1; }

# same_results A B: every dataset outside /timing exists in both and is bitwise equal; same checkpoint
same_results() {
  "$py" - "$1" "$2" <<'EOF'
import sys, h5py
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
def datasets(f):
    out = []
    f.visititems(lambda n, o: out.append(n) if isinstance(o, h5py.Dataset) and not n.startswith("timing") else None)
    return sorted(out)
na, nb = datasets(a), datasets(b)
assert na == nb, (na, nb)
for n in na:
    assert a[n].shape == b[n].shape and a[n].dtype == b[n].dtype, n
    assert a[n][()].tobytes() == b[n][()].tobytes(), f"{n} differs"
assert a.attrs["checkpoint_sha256"] == b.attrs["checkpoint_sha256"]
assert a.attrs["batch"] != b.attrs["batch"]
print(len(na), "datasets:", " ".join(na))
EOF
}

# ---- ipr sample with a DiT: --batch 1 and --batch 3 give bitwise the same results ----
ms=(--checkpoint "$tmp/ms_dit.h5" --benchmark sudoku --count 3 --seed 5 --ipr-iterations 2 --scorer "$digit"
    --save-images --quiet)
ep=(--checkpoint "$tmp/ep_dit.h5" --benchmark even_pixels --count 3 --seed 5 --steps-per-region 1 --overlap 0.9
    --ipr-iterations 2 --ipr-steps-per-region 3 --save-images --quiet)
# batch_1_3 NAME ARGS...: `ipr sample ARGS` with --batch 1 and --batch 3 (NAME_b1.h5, NAME_b3.h5), same results
batch_1_3() {
  local bench=$1
  shift
  if "$ipr" sample "$@" --batch 1 --output "$tmp/${bench}_b1.h5" 2>"$tmp/err" &&
     "$ipr" sample "$@" --batch 3 --output "$tmp/${bench}_b3.h5" 2>>"$tmp/err" &&
     same_results "$tmp/${bench}_b1.h5" "$tmp/${bench}_b3.h5" > "$tmp/cmp" 2>&1; then
    ok "sample $bench DiT: --batch 1 == --batch 3 bitwise ($(cat "$tmp/cmp"))"
  else
    bad "sample $bench DiT, batch 1 vs 3: $(tail -3 "$tmp/err") $(tail -3 "$tmp/cmp" 2>/dev/null)"
  fi
}
batch_1_3 ms "${ms[@]}"
batch_1_3 ep "${ep[@]}"
if "$py" - "$tmp/ms_b1.h5" "$tmp/ep_b1.h5" <<'EOF'
import sys, h5py, numpy as np
s, e = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
for f, regions in ((s, 81), (e, 64)):
    assert f["valid"].shape == (3, 3) and np.isfinite(f["error"][:]).all(), f["error"][:]
    assert (np.diff(f["nfe"][:], axis=1) > 0).all() and (f["changed"][:, 0] <= regions).all()
    assert np.isfinite(f["images"][:]).all()
assert s["images"].shape == (3, 1, 252, 252) and e["images"].shape == (3, 3, 32, 32)  # final images (N, C, H, W)
assert s.attrs["mnist_pool"] == "curated-v1" and s.attrs["difficulty"] == "hard"
EOF
then ok "sample DiT results: finite scores (Sudoku through the digit scorer), growing nfe, final images"
else bad "sample DiT results layout"; fi

# ---- a U-Net and a DiT checkpoint of the same benchmark: both accepted ----
if "$ipr" sample --checkpoint "$tmp/ep_unet.h5" --benchmark even_pixels --count 1 --seed 2 --steps-per-region 1 \
     --overlap 0.9 --ipr-iterations 1 --ipr-steps-per-region 1 --save-images --quiet --output "$tmp/u.h5" 2>"$tmp/err" &&
   "$ipr" sample --checkpoint "$tmp/ep_dit.h5" --benchmark even_pixels --count 1 --seed 2 --steps-per-region 1 \
     --overlap 0.9 --ipr-iterations 1 --ipr-steps-per-region 1 --save-images --quiet --output "$tmp/d.h5" 2>>"$tmp/err" &&
   "$py" - "$tmp/u.h5" "$tmp/d.h5" <<'EOF'
import sys, h5py, numpy as np
u, d = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert u["nfe"][()].tolist() == d["nfe"][()].tolist()  # the same schedule, whatever the backbone
assert u.attrs["checkpoint_sha256"] != d.attrs["checkpoint_sha256"]
assert u["images"].shape == d["images"].shape == (1, 3, 32, 32)
assert not np.array_equal(u["images"][()], d["images"][()])  # two networks, two samples
EOF
then ok "sample: a U-Net and a DiT checkpoint of Even Pixels both run (same passes, other results)"
else bad "sample: U-Net and DiT side by side ($(tail -3 "$tmp/err"))"; fi

# ---- ipr sample: DiT checkpoint errors ----
"$mkckpt" --dit "$tmp/c1.h5" --channels 1 --size 32 --patch 4 >/dev/null &&
"$mkckpt" --dit "$tmp/p8.h5" --channels 3 --size 32 --patch 8 >/dev/null || bad "make_test_checkpoint (mismatched DiTs)"
cp "$tmp/ep_dit.h5" "$tmp/fmt.h5"
cp "$tmp/ep_dit.h5" "$tmp/miss.h5"
"$py" - "$tmp/fmt.h5" "$tmp/miss.h5" <<'EOF'
import sys, h5py
with h5py.File(sys.argv[1], "a") as f:
    f.attrs["format"] = "srm-vit-checkpoint"
with h5py.File(sys.argv[2], "a") as f:
    del f["weights/blocks.1.attn.qkv.weight"]
EOF
head -c $(( $(stat -c %s "$tmp/ep_dit.h5") / 2 )) "$tmp/ep_dit.h5" > "$tmp/trunc.h5"
one=(--benchmark even_pixels --count 1 --seed 1 --steps-per-region 1 --overlap 0.9)
expect_fail_cmd "sample: unknown format" \
  "attribute 'format' is \"srm-vit-checkpoint\"; this build reads \"srm-unet-checkpoint\" \(U-Net\) and \"srm-dit-checkpoint\" \(DiT\)" \
  "$tmp/bad.h5" "$ipr" sample --checkpoint "$tmp/fmt.h5" "${one[@]}" --output "$tmp/bad.h5"
expect_fail_cmd "forward: unknown format" "attribute 'format' is \"srm-vit-checkpoint\"" "$tmp/bad.h5" \
  "$ipr" forward --checkpoint "$tmp/fmt.h5" --input "$fx/dit_even_pixels_s2_x.h5" --output "$tmp/bad.h5"
expect_fail_cmd "sample: DiT of another image size" "ms_dit.h5 with --benchmark even_pixels: checkpoint images are 252 x 252, the benchmark's are 32 x 32" \
  "$tmp/bad.h5" "$ipr" sample --checkpoint "$tmp/ms_dit.h5" "${one[@]}" --output "$tmp/bad.h5"
expect_fail_cmd "sample: DiT of other channels" "checkpoint takes 1 channels \(d_in\), the benchmark's images have 3" \
  "$tmp/bad.h5" "$ipr" sample --checkpoint "$tmp/c1.h5" "${one[@]}" --output "$tmp/bad.h5"
expect_fail_cmd "sample: DiT of another region size" "checkpoint regions are 8 pixels wide, the benchmark's are 4" \
  "$tmp/bad.h5" "$ipr" sample --checkpoint "$tmp/p8.h5" "${one[@]}" --output "$tmp/bad.h5"
expect_fail_cmd "sample: truncated DiT file" "cannot open .*trunc.h5.*truncated file" \
  "$tmp/bad.h5" "$ipr" sample --checkpoint "$tmp/trunc.h5" "${one[@]}" --output "$tmp/bad.h5"
expect_fail_cmd "forward: truncated DiT file" "cannot open .*trunc.h5.*truncated file" "$tmp/bad.h5" \
  "$ipr" forward --checkpoint "$tmp/trunc.h5" --input "$fx/dit_even_pixels_s2_x.h5" --output "$tmp/bad.h5"
expect_fail_cmd "sample: DiT with a missing tensor" "missing tensor 'blocks.1.attn.qkv.weight' \(expected shape \[72, 24\]\)" \
  "$tmp/bad.h5" "$ipr" sample --checkpoint "$tmp/miss.h5" "${one[@]}" --output "$tmp/bad.h5"
# (a t map not constant on regions cannot come from the sampler, whose maps are per region: forward covers it)

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
