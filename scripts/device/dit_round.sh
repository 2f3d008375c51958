#!/usr/bin/env bash
# device/dit_round.sh JOB... : one round of a DiT model in ONE command on the GPU machine: ipr is built with CUDA in
# the background (niced) while scripts/device/train_dit.sh trains the JOBs, then scripts/device/validate.sh runs
# $ROUND_VALIDATE (e.g. "sudoku_hard:500:32") with the weights just trained: VALIDATE_MODELS=/tmp/dit/NAME, NAME the
# first job's name, which must then be the config's checkpoint name (sudoku_dit, even_pixels_dit, ...), or
# ROUND_CHECKPOINT=FILE (e.g. sudoku_dit.h5) copies the first job's weights under that name. The validation
# gets what is left of ROUND_LIMIT s (default 570) as its VALIDATE_LIMIT. Other variables: those of train_dit.sh and
# validate.sh (VALIDATE_SET=device.sampler=gpu puts the chains on the GPU).
set -uo pipefail
t0=$(date +%s)
out=${OUT:-/tmp/ipr-out}
mkdir -p "$out"
build=/tmp/ipr-build
(
  source scripts/device/env.sh
  if [ ! -x $build/ipr ]; then
    nice -n 10 cmake -S . -B $build -DIPR_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release \
      >/tmp/build.log 2>&1 && nice -n 10 cmake --build $build -j8 --target ipr >>/tmp/build.log 2>&1
  fi
) &
bpid=$!
bash scripts/device/train_dit.sh "$@"
wait $bpid || { echo "dit_round: the CUDA build failed"; grep -E "error" /tmp/build.log | head; exit 1; }
[ -x $build/ipr ] || { echo "dit_round: no ipr after the build"; tail -20 /tmp/build.log; exit 1; }
echo "dit_round: training and build done at $(( $(date +%s) - t0 )) s"
[ -n "${ROUND_VALIDATE:-}" ] || exit 0
name=${1#+*/}; name=${name%%:*}
left=$(( ${ROUND_LIMIT:-570} - ($(date +%s) - t0) ))
[ $left -lt 30 ] && { echo "dit_round: $left s left, no validation"; exit 0; }
models=/tmp/dit/$name
if [ -n "${ROUND_CHECKPOINT:-}" ]; then  # the job's weights under the config's checkpoint name
  models=/tmp/dit/round_models
  mkdir -p $models && cp "/tmp/dit/$name/$name.h5" "$models/$ROUND_CHECKPOINT"
fi
VALIDATE_MODELS=$models VALIDATE_LIMIT=$left bash scripts/device/validate.sh $ROUND_VALIDATE
