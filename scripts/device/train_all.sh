#!/usr/bin/env bash
# device/train_all.sh MINUTES: on the GPU machine, train every model but the Sudoku denoiser in ONE command, all
# at once on one GPU (none of them fills it alone): the Even Pixels and Counting Polygons SRM denoisers, the
# Counting Polygons classifier (GPU) and the Sudoku digit classifier (CPU threads). Everything comes back as
# $OUT/models.tar.partNN (15 MiB parts; device calls return at most 8 files of 16 MiB) plus the logs' tails.
# Reassemble here: cat models.tar.part* | tar -x
set -uo pipefail
minutes=${1:?usage: scripts/device/train_all.sh MINUTES}
out=${OUT:-/tmp/ipr-out}
work=/tmp/train_all
mkdir -p "$out" "$work"
source scripts/device/env.sh
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
build=/tmp/ipr-train-build
cmake -S . -B $build -DIPR_CUDA=OFF -DCMAKE_BUILD_TYPE=Release >"$work/cmake.log" 2>&1 &&
  cmake --build $build -j"$(nproc)" --target ipr_lib ipr >"$work/build.log" 2>&1 || { tail -20 "$work/build.log"; exit 1; }
export IPR_LIB=$build/libipr.so
"$py" train/train_srm.py --preset ep --hid-dims 32,64,64,128 --batch 256 --lr 8e-4 --warmup 500 --ema 0.999 \
  --minutes "$minutes" --workers 4 --ckpt-dir $work/ep --export $work/even_pixels.h5 --log-every 100 >$work/ep.log 2>&1 &
"$py" train/train_srm.py --preset cp --hid-dims 32,32,64,64,128 --batch 32 --lr 2e-4 --warmup 300 --ema 0.999 \
  --minutes "$minutes" --workers 6 --ckpt-dir $work/cp --export $work/counting_polygons.h5 --log-every 50 >$work/cp.log 2>&1 &
"$py" train/train_polygons.py --output $work/polygons_classifier.h5 --minutes "$minutes" --workers 4 >$work/poly.log 2>&1 &
"$py" train/train_digit.py --output $work/digit_classifier.h5 --epochs 40 --elastic 1.5 --noise-max 0.1 \
  --threads 2 >$work/digit.log 2>&1 &
wait
for j in ep cp; do cp $work/$j/log.csv $work/${j}_log.csv 2>/dev/null; done
for j in ep cp poly digit; do echo "== $j"; grep -v "^step " $work/$j.log | tail -4; done
for f in even_pixels counting_polygons; do
  [ -f $work/$f.h5 ] && "$py" train/check_export.py $work/$f.h5 --ipr $build/ipr 2>&1 | tail -1
done
(cd $work && tar -cf - *.h5 *_log.csv *_metrics.json *.log 2>/dev/null) | split -b 15M -d - "$out/models.tar.part"
ls -la "$out"
