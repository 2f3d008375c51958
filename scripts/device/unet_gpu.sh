#!/usr/bin/env bash
# device/unet_gpu.sh MODE...: on the GPU machine, the U-Net's CUDA engine and its CUDA graphs (issue 16): build ipr
# with CUDA into /tmp/ipr-build (kept for later commands on a warm machine), then each MODE in turn:
#   check  test_unet_cuda (the fixture and random nets in FP32/TF32/BF16 against the CPU engine, graphs on and off
#          bitwise equal, the graph cache through captures, replays and LRU evictions), test_sampler_cuda (U-Net
#          chains through ipr_unet_cuda_forward_device on the sampler's own buffers), and compute-sanitizer
#          memcheck, racecheck and initcheck (the padded rows of the level tables read initialised memory) on
#          `ipr forward` of the U-Net fixture in FP32 and BF16, graphs on
#          ($IPR_SANITIZERS lists the tools, default "memcheck racecheck initcheck"; "" skips them: they take minutes)
#   bench  `ipr bench --graphs both` on ep_4, cp_ffhq_8, ms1000_28 at B = 1, 16, 64 in FP32, TF32 and BF16 (and BF16
#          through cuDNN where the build found it; $IPR_BENCH_BACKENDS overrides): every row with graphs on and off
#          and the ratio per batch, then each backend's stage profile (`--profile`: where a pass's time goes);
#          writes $OUT/bench_unet_graphs.json and .txt
#   gnbench  the split-statistics GroupNorm (IPR_UNET_GN=split, the default) against fused: `ipr bench` of cp_ffhq_8 and
#          ms1000_28 at B = 1, 16, 64 through cuDNN BF16 with stage profiles, each way; $OUT/bench_gn_{fused,split}.*
#   gnrace  compute-sanitizer racecheck and synccheck of the split GroupNorm's kernels alone over test_unet_cuda
#   study [N] [K]  the end-to-end hard-Sudoku study of issue 16 (item 5) with a RANDOM-weight ms1000_28 U-Net, the
#          net `ipr bench` times (the valid rate means nothing; the time is the point). `ipr bench --save-checkpoint`
#          writes it to /tmp; `ipr plan` counts the passes of N and of 500 instances; `ipr run
#          configs/reference/sudoku_hard.yaml` (reference IPR settings, K iterations, N hard TEST instances, CUDA
#          BF16, device.batch $IPR_STUDY_BATCH or 64) runs on one GPU under `mpirun -n 1`, timed from launch to exit
#          (checkpoint load and graph captures included); its passes/s then EXTRAPOLATES the time of 500 instances.
#          The reference IPR code runs one chain at a time, so its time is the passes of the 500 instances at the
#          B = 1 rate of the reference network in PyTorch (bench/torch_unet_bench.py, per-pixel embedding, eager;
#          ref_eager_bf16: the reference samples under BF16 autocast, spec 9e; ref_eager_fp32 beside it) measured
#          on the same GPU: a lower bound on the reference's time (its Python sampler and scoring between passes
#          are not counted), so the ratio printed is a lower bound on the speed-up. Defaults N = 16, K = 30: about
#          23,400 passes, 2.3 min at ms1000_28's documented 171 passes/s (H200 BF16, docs/bench/README.md), the
#          mode about 3-4 min on a warm build (64 instances would be about 9 min: past one 10-minute command with
#          the build). The run is capped at $IPR_STUDY_RUN_LIMIT s (default 360). Writes $OUT/study.txt,
#          $OUT/study.json and $OUT/study_run.log.
# Everything printed also goes to $OUT/unet_gpu.txt as it is printed, so a command cut off by its time limit still
# brings back what it did.
# Prepare here first: scripts/device/prepare.sh; carry .deps/deproot.tar.xz and .deps/fixtures.
set -uo pipefail
root=$(pwd)
out=${OUT:-/tmp/ipr-out}
mkdir -p "$out"
exec > >(tee -a "$out/unet_gpu.txt") 2>&1
# shellcheck source=scripts/device/env.sh disable=SC1091  # followed with `shellcheck -x` from the repository root
source scripts/device/env.sh
build=/tmp/ipr-build
t0=$(date +%s)
targets="--target ipr"
[[ " $* " == *" check "* || " $* " == *" gnrace "* ]] && targets="--target ipr test_unet_cuda test_sampler_cuda"
if [ ! -f $build/CMakeCache.txt ]; then
  cmake -S . -B $build -DIPR_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release \
    -DIPR_FIXTURES_DIR="$root/.deps/fixtures" -DIPR_PYTHON="$(command -v python3)" >/tmp/unet_gpu_cmake.log 2>&1 ||
    { tail -30 /tmp/unet_gpu_cmake.log; exit 1; }
fi
# shellcheck disable=SC2086
cmake --build $build -j"$(nproc)" $targets >/tmp/unet_gpu_build.log 2>&1 ||
  { grep -E "error|Error" /tmp/unet_gpu_build.log | head -40; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"

# study N K: the study mode (see the header); returns non-zero when a step failed or the run did not finish
study() {
  local n=$1 k=$2 dir=/tmp/ipr-study cfg=configs/reference/sudoku_hard.yaml
  local ckpt=$dir/ms1000_28_random.h5 run=$dir/run batch=${IPR_STUDY_BATCH:-64} limit=${IPR_STUDY_RUN_LIMIT:-360}
  local ipr=$build/ipr gpu t_start wall rc
  mkdir -p "$dir"
  rm -rf "$run" # a run directory of an earlier call would be resumed (nothing left to time), never re-run
  gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)
  echo "== study: $n hard Sudoku instances, K = $k, random-weight ms1000_28, one GPU ($gpu)"
  "$ipr" bench --save-checkpoint "ms1000_28=$ckpt" --force || return 1
  local sets=(--set "model.checkpoint=$ckpt" --set "ipr.iterations=$k" --set device.kind=cuda
              --set device.precision=bf16 --set "device.batch=$batch")
  # the estimate at the engine's documented ms1000_28 BF16 rate (docs/bench/README.md, H200, B = 64)
  "$ipr" plan $cfg "${sets[@]}" --set "instances.count=$n" --set "estimate.passes_per_s=${IPR_STUDY_PPS:-171}" \
    >"$dir/plan.txt" 2>&1 || { cat "$dir/plan.txt"; return 1; }
  "$ipr" plan $cfg "${sets[@]}" --set instances.count=500 >"$dir/plan500.txt" 2>&1 ||
    { cat "$dir/plan500.txt"; return 1; }
  sed -n 3,6p "$dir/plan.txt"
  # the reference network at B = 1 on this GPU (a few seconds a variant); a failure falls back to the documented
  # H200 figures, labelled as such
  PYTHONUNBUFFERED=1 python3 bench/torch_unet_bench.py --output "$dir/torch_b1.json" --configs ms1000_28 \
    --batches 1 --variants ref_eager_bf16,ref_eager_fp32 --min-time 3 >"$dir/torch.log" 2>&1 ||
    { echo "torch_unet_bench.py failed:"; tail -5 "$dir/torch.log"; rm -f "$dir/torch_b1.json"; }
  t_start=$(date +%s.%N)
  timeout -s TERM "$limit" mpirun -n 1 --bind-to none "$ipr" run $cfg "${sets[@]}" --set "instances.count=$n" \
    --output "$run" --progress line >"$out/study_run.log" 2>&1
  rc=$?
  wall=$(python3 -c "print(round($(date +%s.%N) - $t_start, 2))")
  tail -12 "$out/study_run.log"
  python3 - "$out" "$n" "$k" "$batch" "$wall" "$rc" "$gpu" "$dir" "${IPR_UNET_CONV:-im2col (default)}" <<'PY'
import json, os, re, sys
out, n, k, batch, wall, rc, gpu, d, conv = sys.argv[1:]
n, k, batch, wall, rc = int(n), int(k), int(batch), float(wall), int(rc)
def passes(path):
    m = re.search(r"^network passes \(images through the net\): ([0-9,]+)", open(path).read(), re.M)
    return int(m.group(1).replace(",", ""))
# ipr plan counts passes with the mean number of regions to generate (68 of 81 for hard); the run's summary table
# has the mean passes per chain its chains spent ("passes at K", last column of the ms1000_28_random row)
p_plan, p_500 = passes(f"{d}/plan.txt"), passes(f"{d}/plan500.txt")
m = re.search(r"^\| ms1000_28_random \|.*\| ([0-9.]+) \|$", open(f"{out}/study_run.log").read(), re.M)
p_n = round(float(m.group(1)) * n) if m else p_plan
ok = rc == 0
res = dict(gpu=gpu, weights="random (ipr bench ms1000_28, seed 1): valid rates are meaningless", instances=n,
           iterations=k, device_batch=batch, precision="bf16", unet_conv=conv, run_exit=rc, wall_s=wall,
           passes=p_n, passes_source="run summary" if m else "ipr plan", passes_plan=p_plan,
           passes_per_instance=p_n / n, passes_500_plan=p_500, passes_per_instance_500=p_500 / 500)
L = [f"hard Sudoku, reference IPR settings (configs/reference/sudoku_hard.yaml), K = {k}, RANDOM-weight ms1000_28",
     f"U-Net (119.0 M parameters; the valid rate is meaningless), CUDA BF16, device.batch {batch}, conv {conv}",
     f"GPU: {gpu}", ""]
if ok:
    pps = p_n / wall
    t500 = p_500 / pps
    res.update(passes_per_s=pps, s_per_instance=wall / n, extrapolated_500_s=t500, extrapolated=True)
    L += [f"ipr run, {n} instances: {wall:.1f} s wall (launch to exit, one GPU), {p_n:,} passes "
          f"({res['passes_source']}; ipr plan: {p_plan:,}),",
          f"  {pps:.1f} passes/s, {wall / n:.2f} s per instance ({p_n / n:.0f} passes per instance)",
          f"500 instances ({p_500:,} passes, ipr plan): {t500:.0f} s = {t500 / 60:.1f} min at that rate",
          "  (an EXTRAPOLATION from the run above, not a measured 500-instance run)"]
else:
    L += [f"ipr run exited {rc} after {wall:.0f} s (124: cut at IPR_STUDY_RUN_LIMIT): no time to report"]
L += ["", "the reference IPR loop (one chain at a time): the passes of 500 instances at the reference network's",
      "B = 1 rate (bench/torch_unet_bench.py, per-pixel embedding, eager); network time only, a lower bound:"]
ref = {}
try:
    recs = json.load(open(f"{d}/torch_b1.json"))
    for r in recs["results"]:
        if "passes_per_s" in r:
            ref[r["variant"]] = (r["passes_per_s"], f"measured here (torch {recs['torch']}, {recs['device']})")
except (OSError, ValueError, KeyError) as e:
    L.append(f"  (no PyTorch measurement: {type(e).__name__}; documented H200 figures, another GPU)")
for v, pps_doc in (("ref_eager_bf16", 38.5), ("ref_eager_fp32", 33.3)):  # docs/bench/README.md, H200, B = 1
    ref.setdefault(v, (pps_doc, "documented (docs/bench/README.md, H200 2026-11-22), NOT this GPU"))
res["reference"] = {}
for v, (rp, src) in ref.items():
    t_ref = p_500 / rp
    e = dict(passes_per_s_b1=rp, source=src, seconds_500=t_ref, s_per_instance=t_ref / 500)
    line = f"  {v}: {rp:.1f} passes/s at B = 1, {src}: 500 instances {t_ref / 3600:.2f} h"
    if ok:
        e["speedup_vs_ipr_run"] = t_ref / res["extrapolated_500_s"]
        line += f"; ipr run is {e['speedup_vs_ipr_run']:.1f}x faster"
    res["reference"][v] = e
    L.append(line)
L += ["  (the reference samples under BF16 autocast, spec 9e: ref_eager_bf16 is the comparison)"]
txt = "\n".join(L) + "\n"
print(txt, end="")
open(os.path.join(out, "study.txt"), "w").write(txt)
json.dump(res, open(os.path.join(out, "study.json"), "w"), indent=1)
sys.exit(0 if ok else 1)
PY
}

status=0
while [ $# -gt 0 ]; do
  mode=$1
  shift
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
      for tool in ${IPR_SANITIZERS-memcheck racecheck initcheck}; do
        rm -f /tmp/san_out.h5
        if [ -f "$fixture" ]; then
          what="ipr forward U-Net fixture"
          compute-sanitizer --tool "$tool" --error-exitcode 9 $build/ipr forward --checkpoint "$fixture" \
            --input "$fixture" --output /tmp/san_out.h5 --device cuda --precision $prec --force >/tmp/san.log 2>&1
        else
          what="ipr bench tiny U-Net"
          compute-sanitizer --tool "$tool" --error-exitcode 9 $build/ipr bench --configs tiny --batches 1,3 \
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
    backends=cuda-fp32,cuda-tf32,cuda-bf16
    grep -q "^IPR_CUDNN_LIBRARY:FILEPATH=/" $build/CMakeCache.txt && backends=$backends,cuda-bf16-cudnn
    $build/ipr bench --configs "${IPR_BENCH_CONFIGS:-ep_4,cp_ffhq_8,ms1000_28}" \
      --batches "${IPR_BENCH_BATCHES:-1,16,64}" --backends "${IPR_BENCH_BACKENDS:-$backends}" --graphs both \
      --min-time "${IPR_BENCH_MIN_TIME:-0.5}" --profile \
      --output "$out/bench_unet_graphs.json" 2>&1 | tee "$out/bench_unet_graphs.txt" | tail -80
    [ "${PIPESTATUS[0]}" -ne 0 ] && status=1
    echo "== graphs on / off"; grep "graphs on" "$out/bench_unet_graphs.txt"
    echo "== stage profiles"; grep "^profile" "$out/bench_unet_graphs.txt"
    ;;
  gnbench)  # IPR_UNET_GN=split (the default) against fused: cuDNN BF16, same machine, with the stage profiles
    for gnv in fused split; do
      IPR_UNET_GN=$gnv $build/ipr bench --configs "${IPR_BENCH_CONFIGS:-cp_ffhq_8,ms1000_28}" \
        --batches "${IPR_BENCH_BATCHES:-1,16,64}" --backends cuda-bf16-cudnn --min-time "${IPR_BENCH_MIN_TIME:-0.5}" \
        --profile --output "$out/bench_gn_$gnv.json" >"$out/bench_gn_$gnv.txt" 2>&1 || status=1
      echo "== IPR_UNET_GN=$gnv"; grep -vE "^ *$" "$out/bench_gn_$gnv.txt" | tail -24
    done
    ;;
  gnrace)  # racecheck and synccheck of the split GroupNorm's kernels alone (gn_stats, gn_finalize, gn_apply_*) over
    # test_unet_cuda: the kernel-name filter leaves cuBLAS's and cuDNN's kernels uninstrumented (racecheck of the
    # whole binary reports hazards inside cuBLAS's own nvjet GEMM kernels and runs past a call's limit)
    for tool in racecheck synccheck; do
      compute-sanitizer --tool "$tool" --kernel-name kns=gn_ --error-exitcode 9 $build/tests/test_unet_cuda \
        >/tmp/gnrace_$tool.log 2>&1
      st=$?
      echo "compute-sanitizer $tool (kernels gn_*) test_unet_cuda: exit $st ($(grep -E 'SUMMARY' /tmp/gnrace_$tool.log | head -1))"
      [ $st -ne 0 ] && { status=1; grep -E "hazard|Error|FAILED" /tmp/gnrace_$tool.log | head -15; }
    done
    ;;
  study)
    n=16 k=30 # the optional N and K that follow
    if [[ ${1:-} =~ ^[0-9]+$ ]]; then n=$1; shift; fi
    if [[ ${1:-} =~ ^[0-9]+$ ]]; then k=$1; shift; fi
    study "$n" "$k" || status=1
    ;;
  *) echo "unknown mode $mode"; status=2 ;;
  esac
done
echo "unet_gpu: $(( $(date +%s) - t0 )) s, status $status"
exit $status
