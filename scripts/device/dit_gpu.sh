#!/usr/bin/env bash
# device/dit_gpu.sh MODE...: on the GPU machine, the region-token DiT's CUDA engine: build ipr with CUDA into
# /tmp/ipr-build (kept for later commands on a warm machine), then each MODE in turn:
#   check  the GPU tests (test_dit_cuda: every fixture and random nets in FP32/TF32/BF16 against the CPU engine,
#          batch independence, graphs on/off) and compute-sanitizer memcheck + racecheck on `ipr forward` of a DiT
#          fixture (FP32 and BF16: both attention kernels; $IPR_SANITIZERS lists the tools, "" skips them)
#   bench  `ipr bench` on dit_ms, dit_ep, dit_cp at B = 1, 64, 512 beside the same network in PyTorch (eager FP32 and
#          BF16, torch.compile BF16) in this one command; writes $OUT/bench_dit.md (the table) and the JSONs
# Prepare here first: scripts/device/prepare.sh; carry .deps/deproot.tar.xz.
set -uo pipefail
out=${OUT:-/tmp/ipr-out}
mkdir -p "$out"
source scripts/device/env.sh
export PYTHONUNBUFFERED=1
build=/tmp/ipr-build
t0=$(date +%s)
# the bench needs only the CLI; the check needs the tests too
targets="--target ipr"
[[ " $* " == *" check "* ]] && targets=""
if [ ! -f $build/CMakeCache.txt ]; then
  cmake -S . -B $build -DIPR_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release \
    -DIPR_PYTHON="$(command -v python3)" >/tmp/dit_gpu_cmake.log 2>&1 || { tail -30 /tmp/dit_gpu_cmake.log; exit 1; }
fi
# shellcheck disable=SC2086
cmake --build $build -j"$(nproc)" $targets >/tmp/dit_gpu_build.log 2>&1 || { grep -E "error|Error" /tmp/dit_gpu_build.log | head -40; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
status=0
for mode in "$@"; do
  case $mode in
  check)
    $build/tests/test_dit_cuda 2>&1 | tee /tmp/test_dit_cuda.log | grep -E "rel L2|PASSED|FAILED|OK|error" | head -60
    st=${PIPESTATUS[0]}; [ "$st" -ne 0 ] && { status=1; tail -20 /tmp/test_dit_cuda.log; }
    # the same with GELU as a kernel instead of cuBLASLt's epilogue: which one is the tanh approximation
    IPR_DIT_LT_GELU=0 $build/tests/test_dit_cuda 2>&1 | grep -E "fp32 graphs 0|FAILED|PASSED" | sed 's/^/[gelu kernel] /' | head -12
    for prec in fp32 bf16; do
      for tool in ${IPR_SANITIZERS-memcheck racecheck}; do
        rm -f /tmp/san_out.h5
        compute-sanitizer --tool "$tool" --error-exitcode 9 $build/ipr forward \
          --checkpoint tests/fixtures/dit_sudoku_s1_x.h5 --input tests/fixtures/dit_sudoku_s1_x.h5 \
          --output /tmp/san_out.h5 --device cuda --precision $prec --force >/tmp/san.log 2>&1
        st=$?
        echo "compute-sanitizer $tool ipr forward DiT $prec: exit $st ($(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san.log | head -1))"
        [ $st -ne 0 ] && { status=1; tail -15 /tmp/san.log; }
      done
    done
    ;;
  bench)
    export TORCHINDUCTOR_CACHE_DIR=/tmp/ipr-inductor-cache TORCHINDUCTOR_FX_GRAPH_CACHE=1
    batches=${IPR_BENCH_BATCHES:-1,64,512}
    # compile warm-ups in parallel processes (Inductor's caches make the measured run's compiles hits)
    pids=()
    for c in dit_ms dit_ep dit_cp; do
      python3 bench/torch_dit_bench.py --output /tmp/warm_$c.json --configs $c --variants compile_bf16 \
        --batches "$batches" --min-time 0.05 >/tmp/warm_$c.log 2>&1 &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    echo "torch.compile warm-ups: $(( $(date +%s) - t0 )) s"
    # nothing else runs on the GPU from here on
    $build/ipr bench --configs dit_ms,dit_ep,dit_cp --batches "$batches" --cpu-max-batch 1 \
      --min-time "${IPR_BENCH_MIN_TIME:-1}" --output "$out/bench_dit_ipr.json" 2>&1 | tail -40
    python3 bench/torch_dit_bench.py --output "$out/bench_dit_torch.json" --configs dit_ms,dit_ep,dit_cp \
      --batches "$batches" --min-time "${IPR_BENCH_MIN_TIME:-1}" 2>&1 | tail -30
    python3 bench/compare_dit.py "$out/bench_dit_ipr.json" "$out/bench_dit_torch.json" | tee "$out/bench_dit.md"
    ;;
  *) echo "unknown mode $mode"; status=2 ;;
  esac
done
echo "dit_gpu: $(( $(date +%s) - t0 )) s, status $status"
exit $status
