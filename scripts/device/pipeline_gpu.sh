#!/usr/bin/env bash
# device/pipeline_gpu.sh N_INSTANCES K: on a machine with 2 GPUs, in ONE command: build ipr with CUDA, run the
# hard-Sudoku grid study (configs/grid_sudoku_hard.yaml, N instances, K iterations, one seed) on 2 GPUs and the
# same run on 1 GPU (speed-up; results must be identical), time `ipr sample` on one GPU (instances/s for base
# generation and per IPR iteration), and draw the report. $OUT gets pipeline_gpu.tar (logs, report,
# results.h5) and the report's PNGs.
set -uo pipefail
n=${1:-32}
k=${2:-10}
final=${OUT:-/tmp/ipr-out}
out=/tmp/pipeline_gpu   # everything lands here, then one tar comes back (a call returns at most 8 files)
mkdir -p "$out" "$final"
trap 'tar -cf "$final/pipeline_gpu.tar" -C /tmp pipeline_gpu; cp "$out"/report/*.png "$final"/ 2>/dev/null' EXIT
trap 'exit 124' TERM INT
source scripts/device/env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"
build=/tmp/ipr-build
t0=$(date +%s)
cmake -S . -B $build -DIPR_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release >"$out/build.log" 2>&1 &&
  cmake --build $build -j"$(nproc)" --target ipr >>"$out/build.log" 2>&1 || { grep -E "error" "$out/build.log" | head; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s"
ipr=$build/ipr
sets=(--set "instances.count=$n" --set "ipr.iterations=$k" --set "seeds=[35]" --set device.precision=bf16 \
      --set device.batch=64 --set device.kind=cuda)
$ipr plan configs/grid_sudoku_hard.yaml "${sets[@]}" --ranks 2 | sed -n 1,6p
for g in 2 1; do
  t0=$(date +%s.%N)
  # the 1-GPU run is capped (ONE_GPU_LIMIT s) so that the call ends inside its limit; it resumes if re-run
  cap=$([ $g = 1 ] && echo "${ONE_GPU_LIMIT:-260}" || echo 1000)
  timeout -s TERM $cap mpirun -n $g --bind-to none $ipr run configs/grid_sudoku_hard.yaml "${sets[@]}" --output /tmp/run_g$g \
    --progress line > "$out/run_g$g.log" 2>&1
  echo "gpus $g: exit $?, $(python3 -c "print(round($(date +%s.%N) - $t0, 1))") s wall"
  tail -12 "$out/run_g$g.log"
done
python3 tests/pipeline/compare_results.py /tmp/run_g1/results.h5 /tmp/run_g2/results.h5 && echo "1 GPU and 2 GPUs: identical results"
python3 analysis/ipr_report.py /tmp/run_g2 --output "$out/report" > "$out/report.log" 2>&1; tail -30 "$out/report.log"
cp /tmp/run_g2/results.h5 "$out/grid_results.h5"
CUDA_VISIBLE_DEVICES=0 $ipr sample --checkpoint models/mnist_sudoku.h5 --scorer models/digit_classifier.h5 \
  --benchmark sudoku --difficulty hard --count 128 --seed 35 --ipr-iterations 3 --ipr-ratio 0.25 --device cuda \
  --precision bf16 --batch 64 --output "$out/sample.h5" 2>&1 | tee "$out/sample.log" | tail -12
