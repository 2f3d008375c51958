#!/usr/bin/env bash
# device/sampler_gpu.sh [CHAINS [K]]: on the GPU machine, the sampler with its chains on the GPU (device.sampler gpu,
# `ipr sample --gpu-sampler`; issue 16) in ONE command: build ipr with CUDA into /tmp/ipr-build (kept for later
# commands on a warm machine), then
#   1. test_sampler_cuda (the kernels' draws against src/rng.c; whole chains of a U-Net, an Even Pixels DiT and a
#      Sudoku DiT through both paths; batch 1 against 4) and compute-sanitizer memcheck + racecheck on
#      `ipr sample --gpu-sampler` of a DiT fixture;
#   2. the timing: CHAINS (default 256) hard MNIST Sudoku chains of models/sudoku_dit.h5 (BF16, batch = CHAINS,
#      the reference settings, K (default 10) IPR iterations) with the chains on the host and on the GPU, the
#      per-chain results compared (valid, error, nfe) and the wall times, forward and host seconds printed;
#   3. `ipr run configs/puzzles_example.yaml` on CUDA with the host and the GPU sampler (issue 18's GPU run; two
#      fractions sharing each base sample).
# IPR_SANITIZERS lists the compute-sanitizer tools of step 1 (default "memcheck racecheck"; "" skips them: minutes).
# IPR_SAMPLER_TIMING=0 skips 2 (when the GPU is shared with other work, e.g. a training run, its times mean nothing).
# Writes $OUT/sampler_gpu.txt. Prepare here first: scripts/device/prepare.sh; carry .deps/deproot.tar.xz.
set -uo pipefail
out=${OUT:-/tmp/ipr-out}
mkdir -p "$out"
source scripts/device/env.sh
build=/tmp/ipr-build
chains=${1:-256}
K=${2:-10}
t0=$(date +%s)
if [ ! -f $build/CMakeCache.txt ]; then
  cmake -S . -B $build -DIPR_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release \
    -DIPR_PYTHON="$(command -v python3)" >/tmp/sampler_gpu_cmake.log 2>&1 || { tail -30 /tmp/sampler_gpu_cmake.log; exit 1; }
fi
cmake --build $build -j"$(nproc)" --target ipr test_sampler_cuda >/tmp/sampler_gpu_build.log 2>&1 ||
  { grep -E "error|Error" /tmp/sampler_gpu_build.log | head -40; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
status=0
{
  echo "== test_sampler_cuda"
  $build/tests/test_sampler_cuda 2>&1 | tee /tmp/test_sampler_cuda.log | grep -E "draws|diff|PASSED|FAILED|OK|error"
  st=${PIPESTATUS[0]}; [ "$st" -ne 0 ] && { status=1; tail -20 /tmp/test_sampler_cuda.log; }
  for tool in ${IPR_SANITIZERS-memcheck racecheck}; do
    rm -f /tmp/san_sample.h5
    compute-sanitizer --tool "$tool" --error-exitcode 9 $build/ipr sample --checkpoint tests/fixtures/dit_sudoku_s1_x.h5 \
      --benchmark sudoku --count 3 --seed 1 --ipr-iterations 1 --device cuda --batch 2 --gpu-sampler \
      --output /tmp/san_sample.h5 --quiet >/tmp/san_sample.log 2>&1
    st=$?
    echo "compute-sanitizer $tool ipr sample --gpu-sampler: exit $st ($(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san_sample.log | head -1))"
    [ $st -ne 0 ] && { status=1; tail -15 /tmp/san_sample.log; }
  done
  if [ "${IPR_SAMPLER_TIMING:-1}" = 1 ]; then
  echo "== timing: $chains hard Sudoku chains, K = $K, sudoku_dit BF16, batch $chains"
  for mode in host gpu; do
    flag=""; [ $mode = gpu ] && flag="--gpu-sampler"
    # shellcheck disable=SC2086
    $build/ipr sample --checkpoint models/sudoku_dit.h5 --scorer models/digit_classifier.h5 --benchmark sudoku \
      --count "$chains" --seed 35 --ipr-iterations "$K" --device cuda --precision bf16 --batch "$chains" $flag \
      --output /tmp/sampler_$mode.h5 --force >/tmp/sampler_$mode.log 2>&1 || { status=1; tail -5 /tmp/sampler_$mode.log; }
    echo "$mode: $(grep -E 'chains in' /tmp/sampler_$mode.log)"
  done
  python3 - <<'EOF'
import h5py, numpy as np
a, b = h5py.File("/tmp/sampler_host.h5", "r"), h5py.File("/tmp/sampler_gpu.h5", "r")
for k in ("valid", "error", "nfe"):
    x, y = a[k][:], b[k][:]
    same = np.isclose(x.astype(float), y.astype(float), equal_nan=True) if k == "error" else x == y
    print(f"{k}: {same.mean() * 100:.1f}% of entries equal (host mean {np.nanmean(x.astype(float)):.3f}, "
          f"gpu {np.nanmean(y.astype(float)):.3f})")
EOF
  fi
  # 3. issue 18 on the GPU machine: the shipped puzzle file end to end through `ipr run` (CUDA, host and GPU
  #    sampler; two fractions, so each instance's base sample is shared by both: issue 16 item 4)
  echo "== ipr run configs/puzzles_example.yaml on CUDA"
  for mode in host gpu; do
    rm -rf /tmp/puzzles_$mode
    $build/ipr run configs/puzzles_example.yaml --set device.kind=cuda --set device.sampler=$mode \
      --set "ipr.fractions=[0.25, 0.5]" -o /tmp/puzzles_$mode --progress none >/tmp/puzzles_$mode.log 2>&1
    st=$?
    echo "sampler $mode: exit $st"
    [ $st -ne 0 ] && { status=1; tail -5 /tmp/puzzles_$mode.log; }
    grep -E "^\|" /tmp/puzzles_$mode.log | head -8
  done
  python3 tests/pipeline/compare_results.py /tmp/puzzles_host/results.h5 /tmp/puzzles_gpu/results.h5 ||
    echo "(host and GPU sampler differ in rounding: the table above is the comparison)"
} >"$out/sampler_gpu.txt" 2>&1
cat "$out/sampler_gpu.txt"
echo "total: $(( $(date +%s) - t0 )) s"
exit $status
