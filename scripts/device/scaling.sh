#!/usr/bin/env bash
# device/scaling.sh [GPUS...]: issue 20's scaling run on one host, in ONE command: build ipr with CUDA, then the
# hard-Sudoku grid (configs/scaling/sudoku_hard_dit.yaml: 500 TEST instances x fractions {0.1, 0.25, 0.5, 1.0} x
# selections {uniform, uncertainty} x K = 30, one seed, the shipped DiT) under `mpirun -n G` (one rank per GPU) for
# each G of GPUS (default: 1, 2, 4 up to the GPUs visible), timed from launch to exit; then the table: wall time,
# speed-up and parallel efficiency against the smallest G run, units per rank, and whether results.h5 equals the
# smallest G run's (tests/pipeline/compare_results.py; on GPUs rounding can differ with batch shapes: README
# "Reproducibility"). Written to $OUT/scaling.md and $OUT/scaling.json as each run ends.
#   IPR_SCALING_CONFIG  the config (default configs/scaling/sudoku_hard_dit.yaml; configs/scaling/sudoku_hard_unet.yaml
#                       is the paper-size U-Net with random weights, `ipr bench --save-checkpoint` writes it)
#   IPR_SCALING_SET     extra --set KEY=VALUE words (e.g. "instances.count=100 ipr.iterations=10")
#   IPR_SCALING_LIMIT   seconds each run may take (default 540: a run cut off is reported, and resumes if re-run)
#   IPR_SCALING_DEVICE  cuda (default) or cpu: the same on CPU ranks (a smoke test of this script on any machine)
#   IPR_PYTHON          a python3 with h5py (default python3)
# `ipr plan CONFIG --ranks G` sizes a run first: 500 instances need about 8.7 M passes of the 5.9 M-parameter DiT.
# Prepare here first: scripts/device/prepare.sh; carry .deps/deproot.tar.xz.
set -uo pipefail
out=${OUT:-/tmp/ipr-out}
mkdir -p "$out"
exec > >(tee -a "$out/scaling.txt") 2>&1
device=${IPR_SCALING_DEVICE:-cuda}
cfg=${IPR_SCALING_CONFIG:-configs/scaling/sudoku_hard_dit.yaml}
limit=${IPR_SCALING_LIMIT:-540}
py=${IPR_PYTHON:-python3}
if [ "$device" = cuda ]; then
  # shellcheck source=scripts/device/env.sh disable=SC1091
  source scripts/device/env.sh
  build=/tmp/ipr-build
  ngpu=$(nvidia-smi -L | wc -l)
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -1
  if [ ! -f $build/CMakeCache.txt ]; then
    cmake -S . -B $build -DIPR_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release \
      -DIPR_PYTHON="$(command -v python3)" >/tmp/scaling_cmake.log 2>&1 || { tail -30 /tmp/scaling_cmake.log; exit 1; }
  fi
else
  build=${IPR_BUILD:-build}
  ngpu=$(nproc)
fi
t0=$(date +%s)
cmake --build "$build" -j"$(nproc)" --target ipr >/tmp/scaling_build.log 2>&1 ||
  { grep -E "error|Error" /tmp/scaling_build.log | head -40; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
ipr="$build/ipr"
gpus=("$@")
if [ ${#gpus[@]} -eq 0 ]; then
  for g in 1 2 4; do [ "$g" -le "$ngpu" ] && gpus+=("$g"); done
fi
sets=(--set "device.kind=$device")
for kv in ${IPR_SCALING_SET:-}; do sets+=(--set "$kv"); done
$ipr plan "$cfg" "${sets[@]}" --ranks "${gpus[-1]}" | sed -n 1,8p
root=/tmp/ipr-scaling
mkdir -p $root
base="" base_wall=""
rows=()
for g in "${gpus[@]}"; do
  [ "$g" -le "$ngpu" ] || { echo "skipping $g ranks: only $ngpu devices"; continue; }
  run=$root/run_$g
  rm -rf "$run" # an earlier call's directory would resume, not re-run
  start=$(date +%s.%N)
  timeout -s TERM "$limit" mpirun -n "$g" --bind-to none --oversubscribe "$ipr" run "$cfg" "${sets[@]}" --output "$run" \
    --progress line >"$root/run_$g.log" 2>&1
  rc=$?
  wall=$($py -c "print(round($(date +%s.%N) - $start, 1))")
  units=$($py -c "import json, sys; print(' '.join(str(r['units_done']) for r in json.load(open(sys.argv[1]))['ranks']))" \
    "$run/status.json" 2>/dev/null)
  same="-"
  if [ $rc -eq 0 ] && [ -n "$base" ]; then
    if $py tests/pipeline/compare_results.py "$base/results.h5" "$run/results.h5" >"$root/compare_$g.txt" 2>&1; then
      same="identical"
    else
      same="differ ($(tail -1 "$root/compare_$g.txt"))"
    fi
  fi
  if [ $rc -eq 0 ] && [ -z "$base" ]; then base=$run base_wall=$wall base_g=$g; fi
  echo "ranks $g: exit $rc, $wall s wall; $units; results vs the first run: $same"
  tail -4 "$root/run_$g.log"
  rows+=("$g|$rc|$wall|$units|$same")
  # the table so far (a cut-off command still returns it)
  $py - "$base_wall" "${base_g:-1}" "${rows[@]}" >"$out/scaling.md" <<'EOF'
import json, os, sys
base_wall, base_g = (float(sys.argv[1]) if sys.argv[1] else None), int(sys.argv[2])
out = ["| ranks (one device each) | exit | wall s | speed-up | parallel efficiency | units per rank | results.h5 vs the first |",
       "|---|---|---|---|---|---|---|"]
js = []
for r in sys.argv[3:]:
    g, rc, wall, units, same = r.split("|")
    g, rc, wall = int(g), int(rc), float(wall)
    sp = base_wall / wall if base_wall and rc == 0 else None
    eff = sp / (g / base_g) if sp else None
    out.append(f"| {g} | {rc} | {wall:.1f} | {f'{sp:.2f}x' if sp else '-'} | {f'{eff:.0%}' if eff else '-'} | "
               f"{units.strip() or '-'} | {same} |")
    js.append(dict(ranks=g, exit=rc, wall_s=wall, speedup=sp, efficiency=eff, units=units.strip(), results=same))
print("\n".join(out))
with open(os.path.join(os.environ.get("OUT", "/tmp/ipr-out"), "scaling.json"), "w") as f:
    json.dump(js, f, indent=1)
EOF
done
echo "== scaling ($cfg)"
cat "$out/scaling.md"
