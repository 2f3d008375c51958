#!/usr/bin/env bash
# device/pipeline_gpu.sh N_INSTANCES K [PER_UNIT]: on a machine with 2 GPUs, in ONE command: build ipr with
# CUDA, run the hard-Sudoku grid study (configs/grid_sudoku_hard.yaml, N instances in units of PER_UNIT, K
# iterations, one seed, BF16, 32 chains per forward) on 2 GPUs and the same run on 1 GPU (speed-up; results
# must be identical), and draw the report. IPR_SAMPLE_BENCH=1 also times `ipr sample` on one GPU. Sized by
# `ipr plan`: 32 instances x K = 10 x 4 fractions is about 116,000 network passes (2 H200s: 2-3 minutes).
set -uo pipefail
n=${1:-32}
k=${2:-10}
per_unit=${3:-8}
# Everything is written straight into $OUT as it happens (a call killed at its limit returns only what is
# already there), in few files: a call returns at most 8.
out=${OUT:-/tmp/ipr-out}
mkdir -p "$out"
source scripts/device/env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"
build=/tmp/ipr-build
t0=$(date +%s)
cmake -S . -B $build -DIPR_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release >/tmp/build.log 2>&1 &&
  cmake --build $build -j"$(nproc)" --target ipr >>/tmp/build.log 2>&1 || { grep -E "error" /tmp/build.log | head; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
ipr=$build/ipr
sets=(--set "instances.count=$n" --set "ipr.iterations=$k" --set "seeds=[35]" --set device.precision=bf16 \
      --set device.batch=32 --set device.kind=cuda --set "instances.per_unit=$per_unit")
$ipr plan configs/grid_sudoku_hard.yaml "${sets[@]}" --ranks 2 | sed -n 1,8p
for g in 2 1; do
  t0=$(date +%s.%N)
  # the 1-GPU run is capped (ONE_GPU_LIMIT s) so that the call ends inside its limit; it resumes if re-run
  cap=$([ $g = 1 ] && echo "${ONE_GPU_LIMIT:-400}" || echo 1000)
  timeout -s TERM $cap mpirun -n $g --bind-to none $ipr run configs/grid_sudoku_hard.yaml "${sets[@]}" --output /tmp/run_g$g \
    --progress line > "$out/run_g$g.log" 2>&1
  echo "gpus $g: exit $?, $(python3 -c "print(round($(date +%s.%N) - $t0, 1))") s wall"
  tail -12 "$out/run_g$g.log"
done
python3 tests/pipeline/compare_results.py /tmp/run_g1/results.h5 /tmp/run_g2/results.h5 && echo "1 GPU and 2 GPUs: identical results"
# the figures are drawn here from results.h5 as well; only the result files travel back (a call returns <= 8 files)
python3 analysis/ipr_report.py /tmp/run_g2 --output /tmp/report 2>&1 | tail -3; cat /tmp/report/table.md
cp /tmp/run_g2/results.h5 "$out/results_2gpu.h5"; cp /tmp/run_g1/results.h5 "$out/results_1gpu.h5"
$ipr status /tmp/run_g1; $ipr status /tmp/run_g2
[ "${IPR_SAMPLE_BENCH:-0}" = 1 ] || exit 0
CUDA_VISIBLE_DEVICES=0 $ipr sample --checkpoint models/mnist_sudoku.h5 --scorer models/digit_classifier.h5 \
  --benchmark sudoku --difficulty hard --count 128 --seed 35 --ipr-iterations 3 --ipr-ratio 0.25 --device cuda \
  --precision bf16 --batch 64 --output /tmp/sample.h5 2>&1 | tee "$out/sample.log" | tail -12
