#!/usr/bin/env bash
# device/validate.sh NAME[:COUNT[:BATCH]] ...: the model cards' validation figures (issue 5) on the GPU machine, in
# ONE command: build ipr with CUDA (or reuse the build a previous command on this machine left), then for each
# NAME run configs/reference/NAME.yaml (reference sampler and IPR settings of spec 3.3, K = 30: one chain
# records k = 0 (base), 10 and 30) with COUNT TEST instances (default 500), BATCH chains per forward (default: the
# config's; keep it at most COUNT / (16 x GPUs) so that units commit as they go and the ranks share the last ones),
# over all GPUs (one rank each). Each results.h5 is copied to $OUT/NAME.h5 as soon as it exists. A run still going
# at VALIDATE_LIMIT s (default 280) is stopped; re-running resumes it on the same machine. A stopped run also leaves
# $OUT/NAME.partial.h5 (`ipr merge --partial`: the units done, complete = 0) and $OUT/NAME.run.tar.gz, its run
# directory: put that under .deps/ here and carry it, and the next machine resumes the run from it (the units
# done are not run again) instead of starting over. VALIDATE_MODELS=DIR takes
# the config's denoiser and scorer files from DIR (same file names) where DIR has them, else from models/ (DIR:
# the checkpoints train_all.sh left on this machine, /tmp/train_all). VALIDATE_SET="KEY=VALUE ..." adds config
# overrides to every run, e.g. VALIDATE_SET=device.sampler=gpu (chains on the GPU).
set -uo pipefail
out=${OUT:-/tmp/ipr-out}
mkdir -p "$out"
source scripts/device/env.sh
build=/tmp/ipr-build
if [ ! -x $build/ipr ]; then
  t0=$(date +%s)
  cmake -S . -B $build -DIPR_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release >/tmp/build.log 2>&1 &&
    cmake --build $build -j"$(nproc)" --target ipr >>/tmp/build.log 2>&1 || { grep -E "error" /tmp/build.log | head; exit 1; }
  echo "build: $(( $(date +%s) - t0 )) s"
fi
ngpu=$(nvidia-smi -L | wc -l)
status=0
for spec in "$@"; do
  IFS=: read -r name count batch <<<"$spec"
  sets=(--set device.kind=cuda --set "instances.count=${count:-500}")
  [ -n "$batch" ] && sets+=(--set "device.batch=$batch")
  for kv in ${VALIDATE_SET:-}; do sets+=(--set "$kv"); done
  if [ ! -d "/tmp/val_$name" ] && [ -f ".deps/val_$name.run.tar.gz" ]; then
    tar -xzf ".deps/val_$name.run.tar.gz" -C /tmp && echo "$name: resuming the run carried in .deps/val_$name.run.tar.gz"
  fi
  if [ -n "${VALIDATE_MODELS:-}" ]; then
    ckpt=$(sed -n 's/^  checkpoint: *\([^ #]*\).*/\1/p' "configs/reference/$name.yaml")
    [ -f "$VALIDATE_MODELS/$(basename "$ckpt")" ] && sets+=(--set "model.checkpoint=$VALIDATE_MODELS/$(basename "$ckpt")")
    scorer=$(sed -n 's/^scorer: *\([^ #]*\).*/\1/p' "configs/reference/$name.yaml")
    [ -n "$scorer" ] && [ -f "$VALIDATE_MODELS/$(basename "$scorer")" ] &&
      sets+=(--set "scorer=$VALIDATE_MODELS/$(basename "$scorer")")
    echo "$name: ${sets[*]}"
  fi
  t0=$(date +%s.%N)
  timeout -s TERM "${VALIDATE_LIMIT:-280}" mpirun -n "$ngpu" --bind-to none $build/ipr run "configs/reference/$name.yaml" \
    "${sets[@]}" --output "/tmp/val_$name" --progress line > "/tmp/val_$name.log" 2>&1
  rc=$?
  echo "$name: exit $rc, $(python3 -c "print(round($(date +%s.%N) - $t0, 1))") s wall on $ngpu GPU(s)"
  tail -6 "/tmp/val_$name.log"
  if [ $rc -eq 0 ] && [ -f "/tmp/val_$name/results.h5" ]; then
    cp "/tmp/val_$name/results.h5" "$out/$name.h5"
  else
    status=1
    if [ -d "/tmp/val_$name" ]; then  # what is done so far: results to look at, and the run to resume elsewhere
      rm -f "/tmp/val_$name/results.h5"
      $build/ipr merge "/tmp/val_$name" --partial --quiet  # exit 3: units missing, results.h5 has complete = 0
      [ -f "/tmp/val_$name/results.h5" ] && cp "/tmp/val_$name/results.h5" "$out/$name.partial.h5"
      tar -czf "$out/$name.run.tar.gz" -C /tmp --exclude "val_$name/results.h5" "val_$name"
      echo "$name: stopped unfinished; $out/$name.partial.h5 and $name.run.tar.gz hold the units done"
    fi
  fi
done
exit $status
