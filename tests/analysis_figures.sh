#!/usr/bin/env bash
# analysis_figures.sh LIBIPR MAKE_CKPT SRC [PYTHON]: the issue-15 figures end to end on tiny inputs.
#   analysis/ipr_paper_figure.py on the shipped Even Pixels results (no paper points, said in the output) and on the
#   hard-Sudoku results (with them); analysis/ipr_gallery.py through libipr's sampler (ctypes hooks) with a tiny
#   random Sudoku DiT (make_test_checkpoint --dit), 1 chain, K = 1; a checkpoint of another benchmark must be refused
#   with a message and exit 1. Each PNG must exist, be larger than a blank figure and have plausible dimensions and
#   content (more than one grey level).
set -u
lib=$1
mkckpt=$2
src=$3
py=${4:-/usr/bin/python3}
source "$src/tests/lib.sh"
export OMP_NUM_THREADS=1 MPLBACKEND=Agg MPLCONFIGDIR="$tmp/mpl"

# A sanitizer build's libipr.so needs ASan's runtime loaded first in an uninstrumented python3 (as tests/CMakeLists.txt
# does for the other ctypes tests); only the gallery loads the library.
gallery_env=()
asan=$(ldd "$lib" 2>/dev/null | awk '/libasan/ {print $3; exit}')
if [ -n "$asan" ]; then gallery_env=(env "LD_PRELOAD=$asan" "ASAN_OPTIONS=detect_leaks=0"); fi

# png_check FILE MIN_BYTES MIN_W MIN_H: exists, size, dimensions, more than a blank canvas
png_check() {
  "$py" - "$@" <<'EOF'
import os, struct, sys
path, min_bytes, min_w, min_h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if not os.path.exists(path):
    sys.exit(f"{path}: missing")
size = os.path.getsize(path)
with open(path, "rb") as f:
    head = f.read(24)
if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
    sys.exit(f"{path}: not a PNG")
w, h = struct.unpack(">II", head[16:24])
import matplotlib.image as mpimg
import numpy as np
img = mpimg.imread(path)[..., :3]
levels = len(np.unique((img * 255).astype(np.uint8).reshape(-1, 3), axis=0))
print(f"  {os.path.basename(path)}: {size} bytes, {w} x {h}, {levels} colours")
if size < min_bytes or w < min_w or h < min_h or levels < 16:
    sys.exit(f"{path}: too small or blank ({size} bytes < {min_bytes}, {w} x {h} < {min_w} x {min_h}, "
             f"or {levels} colours)")
EOF
}

# ---- the paper figure ----
out=$("$py" "$src/analysis/ipr_paper_figure.py" "$src/docs/validation/even_pixels_dit_500_results.h5" \
      --output "$tmp/paper_ep.png" 2>&1)
rc=$?
echo "$out" | sed 's/^/  /'
if [ $rc -eq 0 ] && echo "$out" | grep -q "no paper points" && png_check "$tmp/paper_ep.png" 30000 600 400; then
  ok "ipr_paper_figure on Even Pixels results (no paper points)"
else
  bad "ipr_paper_figure on Even Pixels results (rc $rc)"
fi
out=$("$py" "$src/analysis/ipr_paper_figure.py" "$src/docs/validation/sudoku_hard_500_results.h5" \
      --output "$tmp/paper_sudoku.png" 2>&1)
rc=$?
echo "$out" | sed 's/^/  /'
if [ $rc -eq 0 ] && echo "$out" | grep -q "with the paper's points" && png_check "$tmp/paper_sudoku.png" 30000 600 400
then
  ok "ipr_paper_figure on hard-Sudoku results (the paper's points)"
else
  bad "ipr_paper_figure on hard-Sudoku results (rc $rc)"
fi

# ---- the gallery: a tiny random Sudoku DiT, 1 chain, K = 1 ----
if "$mkckpt" --dit "$tmp/ms_dit.h5" --channels 1 --size 252 --patch 28 --d-hid 32 --depth 2 --heads 2 --param x \
     --seed 3 >/dev/null && "$mkckpt" "$tmp/ep.h5" 3 32 32 4 11 32 32 >/dev/null; then
  ok "make_test_checkpoint (tiny Sudoku DiT, tiny Even Pixels U-Net)"
else
  bad "make_test_checkpoint"
fi
start=$(date +%s)
out=$("${gallery_env[@]}" "$py" "$src/analysis/ipr_gallery.py" --checkpoint "$tmp/ms_dit.h5" \
      --scorer "$src/models/digit_classifier.h5" --count 1 --iterations 1 --output "$tmp/gallery.png" --lib "$lib" \
      --seed 5 2>&1)
rc=$?
echo "$out" | sed 's/^/  /'
# one row of 3 panels (base, re-noised at k = 1, after k = 1) at 2.55 in x 110 dpi each
if [ $rc -eq 0 ] && echo "$out" | grep -q "instance 0: distance" && png_check "$tmp/gallery.png" 50000 800 300; then
  ok "ipr_gallery with a tiny DiT ($(($(date +%s) - start)) s)"
else
  bad "ipr_gallery with a tiny DiT (rc $rc)"
fi
out=$("${gallery_env[@]}" "$py" "$src/analysis/ipr_gallery.py" --checkpoint "$tmp/ep.h5" \
      --scorer "$src/models/digit_classifier.h5" --count 1 --iterations 1 --output "$tmp/wrong.png" --lib "$lib" 2>&1)
rc=$?
echo "$out" | sed 's/^/  /'
if [ $rc -eq 1 ] && echo "$out" | grep -q "not a MNIST Sudoku model" && [ ! -e "$tmp/wrong.png" ]; then
  ok "ipr_gallery refuses an Even Pixels checkpoint"
else
  bad "ipr_gallery with an Even Pixels checkpoint: rc $rc"
fi

echo "analysis_figures: $pass passed, $fail failed"
[ $fail -eq 0 ]
