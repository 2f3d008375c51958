#!/usr/bin/env bash
# cli_forward_cuda.sh IPR PYTHON FIXTURES: `ipr forward --device cuda` end to end on the reference fixture
# (GPU machine only, ctest label gpu). The fixture is both the checkpoint and the input; /output/y of each
# run is compared with the fixture's golden /output/y (float64 reference) and with the CPU backend's
# output, in relative L2, against the limits of issue 3 (fp32 1e-4; TF32 and BF16 reported with looser
# limits), and with --batch 1 against the whole batch (batch independence through the CLI).
set -u
ipr=$1
py=$2
fx=$3/srm_unet_tiny.h5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "not ok - $1"; }

# rel_l2 A B: relative L2 of /output/y in A against /output/y in B (shapes must agree)
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

# check NAME FILE REF LIMIT: FILE's output within LIMIT of REF's
check() {
  local e
  e=$(rel_l2 "$2" "$3") || { bad "$1 ($e)"; return; }
  if "$py" -c "import sys; sys.exit(0 if float('$e') <= $4 else 1)"; then ok "$1: rel L2 $e (limit $4)"
  else bad "$1: rel L2 $e (limit $4)"; fi
}

"$ipr" forward --checkpoint "$fx" --input "$fx" --output "$tmp/cpu.h5" --device cpu >/dev/null ||
  bad "ipr forward --device cpu"
for prec in fp32 tf32 bf16; do
  if "$ipr" forward --checkpoint "$fx" --input "$fx" --output "$tmp/$prec.h5" --device cuda --precision $prec \
       >"$tmp/$prec.log" 2>&1; then
    ok "ipr forward --device cuda --precision $prec"
  else
    bad "ipr forward --device cuda --precision $prec: $(tail -3 "$tmp/$prec.log")"; continue
  fi
  case $prec in fp32) lim=1e-4 ;; tf32) lim=5e-3 ;; bf16) lim=3e-2 ;; esac
  check "cuda $prec vs the fixture" "$tmp/$prec.h5" "$fx" $lim
  check "cuda $prec vs cpu" "$tmp/$prec.h5" "$tmp/cpu.h5" $lim
done
"$ipr" forward --checkpoint "$fx" --input "$fx" --output "$tmp/b1.h5" --device cuda --batch 1 >/dev/null &&
  check "cuda fp32 --batch 1 vs the whole batch" "$tmp/b1.h5" "$tmp/fp32.h5" 1e-5 || bad "ipr forward --batch 1"

# errors on the GPU path: an impossible device index and an existing output
if "$ipr" forward --checkpoint "$fx" --input "$fx" --output "$tmp/bad.h5" --device cuda:99 >/dev/null 2>"$tmp/err" ||
   [ -e "$tmp/bad.h5" ]; then bad "--device cuda:99 must fail without output"
else ok "--device cuda:99 fails: $(head -1 "$tmp/err")"; fi
if "$ipr" forward --checkpoint "$fx" --input "$fx" --output "$tmp/fp32.h5" --device cuda >/dev/null 2>&1; then
  bad "an existing output without --force must fail"
else ok "an existing output without --force fails"; fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
