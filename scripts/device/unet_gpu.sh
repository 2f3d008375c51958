#!/usr/bin/env bash
# device/unet_gpu.sh MODE...: on the GPU machine, the U-Net's CUDA engine and its CUDA graphs (issue 16): build ipr
# with CUDA into /tmp/ipr-build (kept for later commands on a warm machine), then each MODE in turn:
#   check  test_unet_cuda (the fixture and random nets in FP32/TF32/BF16 against the CPU engine, graphs on and off
#          bitwise equal, the graph cache through captures, replays and LRU evictions), test_sampler_cuda (U-Net
#          chains through ipr_unet_cuda_forward_device on the sampler's own buffers), and compute-sanitizer
#          memcheck, racecheck and initcheck (the padded rows of the level tables read initialised memory) on
#          `ipr forward` of the U-Net fixture in FP32 and BF16, graphs on
#   bench  `ipr bench --graphs both` on ep_4, cp_ffhq_8, ms1000_28 at B = 1, 16, 64 in FP32, TF32 and BF16: every
#          row with graphs on and off and the ratio per batch; writes $OUT/bench_unet_graphs.json and .txt
# Prepare here first: scripts/device/prepare.sh; carry .deps/deproot.tar.xz and .deps/fixtures.
set -uo pipefail
root=$(pwd)
out=${OUT:-/tmp/ipr-out}
mkdir -p "$out"
source scripts/device/env.sh
build=/tmp/ipr-build
t0=$(date +%s)
targets="--target ipr"
[[ " $* " == *" check "* ]] && targets="--target ipr test_unet_cuda test_sampler_cuda"
if [ ! -f $build/CMakeCache.txt ]; then
  cmake -S . -B $build -DIPR_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release \
    -DIPR_FIXTURES_DIR="$root/.deps/fixtures" -DIPR_PYTHON="$(command -v python3)" >/tmp/unet_gpu_cmake.log 2>&1 ||
    { tail -30 /tmp/unet_gpu_cmake.log; exit 1; }
fi
# shellcheck disable=SC2086
cmake --build $build -j"$(nproc)" $targets >/tmp/unet_gpu_build.log 2>&1 ||
  { grep -E "error|Error" /tmp/unet_gpu_build.log | head -40; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
status=0
for mode in "$@"; do
  case $mode in
  check)
    for t in test_unet_cuda test_sampler_cuda; do
      $build/tests/$t >/tmp/$t.log 2>&1
      st=$?
      grep -E "rel L2|independence|graphs|diff|PASSED|FAILED|OK|error" /tmp/$t.log | head -90
      echo "$t: exit $st"
      [ "$st" -ne 0 ] && { status=1; tail -20 /tmp/$t.log; }
    done
    # the reference fixture when carried (14 MB: with the tree it may not fit the 64 MiB a call carries), else the
    # random-weight `tiny` U-Net of ipr bench, graphs on (the sanitizers see the same kernels either way)
    fixture="$root/.deps/fixtures/srm_unet_tiny.h5"
    for prec in fp32 bf16; do
      for tool in memcheck racecheck initcheck; do
        rm -f /tmp/san_out.h5
        if [ -f "$fixture" ]; then
          what="ipr forward U-Net fixture"
          compute-sanitizer --tool $tool --error-exitcode 9 $build/ipr forward --checkpoint "$fixture" \
            --input "$fixture" --output /tmp/san_out.h5 --device cuda --precision $prec --force >/tmp/san.log 2>&1
        else
          what="ipr bench tiny U-Net"
          compute-sanitizer --tool $tool --error-exitcode 9 $build/ipr bench --configs tiny --batches 1,3 \
            --backends cuda-$prec --min-time 0.01 >/tmp/san.log 2>&1
        fi
        st=$?
        summary=$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' /tmp/san.log | head -1)
        echo "compute-sanitizer $tool $what $prec: exit $st ($summary)"
        [ $st -ne 0 ] && { status=1; tail -15 /tmp/san.log; }
      done
    done
    ;;
  bench)
    $build/ipr bench --configs "${IPR_BENCH_CONFIGS:-ep_4,cp_ffhq_8,ms1000_28}" \
      --batches "${IPR_BENCH_BATCHES:-1,16,64}" --backends cuda-fp32,cuda-tf32,cuda-bf16 --graphs both \
      --min-time "${IPR_BENCH_MIN_TIME:-0.5}" \
      --output "$out/bench_unet_graphs.json" 2>&1 | tee "$out/bench_unet_graphs.txt" | tail -80
    [ "${PIPESTATUS[0]}" -ne 0 ] && status=1
    echo "== graphs on / off"; grep "graphs on" "$out/bench_unet_graphs.txt"
    ;;
  *) echo "unknown mode $mode"; status=2 ;;
  esac
done
echo "unet_gpu: $(( $(date +%s) - t0 )) s, status $status"
exit $status
