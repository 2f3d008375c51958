#!/usr/bin/env bash
# device/gpu_checks.sh: every GPU test of the engines and the sampler in ONE command, fastest first, each step's
# output in $OUT as it is printed (a command cut off by its limit still returns what ran): one CUDA build
# (/tmp/ipr-build, kept on a warm machine), then
#   1. test_dit_cuda      (scripts/device/dit_gpu.sh check)   every DiT fixture, the wiener input scale included
#   2. test_unet_cuda, test_sampler_cuda (unet_gpu.sh check)  graphs, the implicit and cuDNN convolutions, chains
#   3. issue 18's `ipr run configs/puzzles_example.yaml` on CUDA, host and GPU sampler (sampler_gpu.sh step 3)
#   4. `ipr bench` of ms1000_28 and cp_ffhq_8 at B = 1, 16, 64: im2col, implicit and cuDNN BF16 rows
# The compute-sanitizer runs are left out unless IPR_SANITIZERS names them (they take minutes each; the scripts
# above run them by default). About 6-8 minutes on an H100 with the build.
# Prepare here first: scripts/device/prepare.sh; carry .deps/deproot.tar.xz.
set -uo pipefail
out=${OUT:-/tmp/ipr-out}
mkdir -p "$out"
export IPR_SANITIZERS=${IPR_SANITIZERS-}
status=0
t0=$(date +%s)
step() {
  local name=$1
  shift
  echo "=== $name ($(( $(date +%s) - t0 )) s)"
  "$@" >"$out/$name.txt" 2>&1
  local st=$?
  tail -40 "$out/$name.txt"
  echo "=== $name: exit $st"
  [ $st -ne 0 ] && status=1
}
step dit_check bash scripts/device/dit_gpu.sh check
step unet_check bash scripts/device/unet_gpu.sh check
IPR_SAMPLER_TIMING=0 step sampler_check bash scripts/device/sampler_gpu.sh
backends=cuda-bf16,cuda-bf16-implicit
grep -q "^IPR_CUDNN_LIBRARY:FILEPATH=/" /tmp/ipr-build/CMakeCache.txt 2>/dev/null && backends=$backends,cuda-bf16-cudnn
IPR_BENCH_CONFIGS=${IPR_BENCH_CONFIGS:-cp_ffhq_8,ms1000_28} IPR_BENCH_BACKENDS=$backends \
  step unet_bench bash scripts/device/unet_gpu.sh bench
echo "total: $(( $(date +%s) - t0 )) s, status $status"
exit $status
