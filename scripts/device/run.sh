#!/usr/bin/env bash
# device/run.sh MODE: on the GPU machine (Ubuntu 24.04, CUDA, no libarchive/libyaml/OpenBLAS/cmocka
# headers, no network): unpack the carried dependency root (scripts/device/env.sh), build with
# CUDA, then MODE = check (all tests incl. `gpu`), bench (ipr bench + PyTorch), or all.
# Prepare here first: scripts/device/prepare.sh; carry .deps/deproot.tar.xz and .deps/fixtures.
set -uo pipefail
mode=${1:-all}
root=$(pwd)
out=${OUT:-/tmp/ipr-out}
mkdir -p "$out"
source scripts/device/env.sh
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
build=/tmp/ipr-build
t0=$(date +%s)
cmake -S . -B $build -DIPR_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release \
  -DIPR_FIXTURES_DIR="$root/.deps/fixtures" -DIPR_PYTHON="$(command -v python3)" >"$out/cmake.log" 2>&1 || { tail -40 "$out/cmake.log"; exit 1; }
cmake --build $build -j"$(nproc)" >"$out/build.log" 2>&1 || { grep -E "error|Error" "$out/build.log" | head -40; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
rm -f "$out/cmake.log" "$out/build.log"  # the device tool returns at most 8 files: keep logs only on failure
status=0
configs=${IPR_BENCH_CONFIGS:-ep_4,cp_ffhq_8,ms1000_28}
variants=${IPR_TORCH_VARIANTS:-ref_eager_fp32,ref_eager_bf16,ref_compile_fp32,ref_compile_bf16,distinct_eager_bf16,distinct_eager_fp32}
warm_pids=()
if [ "${IPR_SKIP_TORCH:-0}" != 1 ] && { [ "$mode" = bench ] || [ "$mode" = all ] || [ "$mode" = torch ]; }; then
  # torch.compile's first calls take minutes for the large nets: compile every (config, compiled variant)
  # in its own process now, in parallel with the tests, so that the measured run below hits Inductor's
  # on-disk caches (bench/torch_unet_bench.py --warmup). Nothing is timed while these run.
  export TORCHINDUCTOR_CACHE_DIR=/tmp/ipr-inductor-cache TORCHINDUCTOR_FX_GRAPH_CACHE=1
  for c in ${configs//,/ }; do
    for v in ${variants//,/ }; do
      case $v in *_compile_*)
        python3 bench/torch_unet_bench.py --warmup --configs "$c" --variants "$v" \
          --batches "${IPR_BENCH_BATCHES:-1,16,64}" >"$out/warmup_${c}_$v.log" 2>&1 &
        warm_pids+=($!) ;;
      esac
    done
  done
  echo "torch.compile warm-up: ${#warm_pids[@]} processes"
fi
if [ "$mode" = check ] || [ "$mode" = all ]; then
  ctest --test-dir $build --output-on-failure -j4 --timeout 600 ${IPR_CTEST_ARGS:-} 2>&1 | tee "$out/ctest.log" | tail -40
  status=${PIPESTATUS[0]}
  $build/tests/test_unet_cuda > "$out/gpu_test.txt" 2>&1; grep -E "rel L2|independence" "$out/gpu_test.txt" 
fi
if [ "$mode" = bench ] || [ "$mode" = all ] || [ "$mode" = torch ]; then
  tw=$(date +%s)
  for p in "${warm_pids[@]}"; do wait "$p"; done
  echo "warm-up done after $(( $(date +%s) - tw )) s more"; cat "$out"/warmup_*.log 2>/dev/null | grep -h first_call > "$out/warmup.jsonl"; rm -f "$out"/warmup_*.log
  [ "$mode" = torch ] || $build/ipr bench --configs "$configs" --batches "${IPR_BENCH_BATCHES:-1,16,64}" \
    --cpu-max-batch 1 --min-time "${IPR_BENCH_MIN_TIME:-1}" --graphs "${IPR_BENCH_GRAPHS:-on}" \
    --output "$out/bench_ipr.json" 2>&1 | tee /tmp/bench_ipr.txt
  if [ "${IPR_SKIP_TORCH:-0}" = 1 ]; then exit $status; fi
  PYTHONUNBUFFERED=1 python3 bench/torch_unet_bench.py --output "$out/bench_torch.json" \
    --configs "$configs" --batches "${IPR_BENCH_BATCHES:-1,16,64}" \
    --variants "$variants" 2>&1 | tee /tmp/bench_torch.log | tail -5
  python3 bench/compare.py "$out/bench_ipr.json" "$out/bench_torch.json" | tee "$out/bench_table.md"
fi
exit $status
