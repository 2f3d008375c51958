#!/usr/bin/env bash
# device/train_dit.sh JOB...: on the GPU machine, train region-token DiT denoisers (train/train_dit.py) in ONE
# command. A JOB is [+SECONDS/]NAME:PRESET:MINUTES[:EXTRA ARGS], e.g. "ms_s2x:ms:2.5:--param x --tokens-per-side 2";
# IPR_DIT_PARALLEL=1 runs the jobs at once (they share the GPU; +SECONDS/ delays a job's start), else one after
# another. IPR_DIT_GPU_CHECK=1 also builds the CUDA ipr and runs scripts/device/dit_gpu.sh check in the background
# (its report comes back as $OUT/gpu_check.txt).
# Each job resumes from /tmp/dit/NAME/state.pt when an earlier command on this (warm) machine left one, else
# starts from models/NAME.h5 when IPR_DIT_INIT=1 and that file exists (weights only, counters carried on), else
# from scratch; IPR_DIT_INIT_FROM=MODEL starts every job from models/MODEL.h5 instead (variants of one model side by
# side, e.g. "sudoku_dit_a:ms:5:--mu-tau 0.4" "sudoku_dit_b:ms:5:--mu-tau 1" from MODEL sudoku_dit).
# Validation (train/dit_validate.py) runs every IPR_DIT_VAL_MINUTES (default 1) on IPR_DIT_VAL_COUNT
# (default 256) held-out TRAIN-stream instances with the reference settings. A validation takes 1-4 minutes on a GPU
# shared with other jobs (three jobs, a CUDA build and the GPU tests on one H100, 2026-12-06: 119-236 s each, and the
# 4.5-minute runs trained 180 steps): in a short run set IPR_DIT_VAL_MINUTES above its minutes (only the final
# validation runs) and keep builds and tests out of the same command.
# IPR_DIT_JOB_LIMIT=SECONDS stops a job's process (training, validation) after that long, so that its files still come
# back inside the device call's limit: train_dit exports the weights before its final validation.
# IPR_GIT_SHA=COMMIT (set it in the command: the GPU machine receives no .git) records the code in the exports.
# Comes back: $OUT/NAME.tar (the exported EMA weights NAME.h5, log.csv, val.csv, summary.json, the job's output)
# per job, at most 8 files of 16 MiB (device tool limits).
set -uo pipefail
out=${OUT:-/tmp/ipr-out}
mkdir -p "$out" /tmp/dit
source scripts/device/env.sh
export PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=/tmp/ipr-inductor-cache
build=/tmp/ipr-train-build
t0=$(date +%s)
if [ ! -f $build/libipr.so ]; then
  cmake -S . -B $build -DIPR_CUDA=OFF -DCMAKE_BUILD_TYPE=Release >/tmp/dit/cmake.log 2>&1 &&
    cmake --build $build -j"$(nproc)" --target ipr_lib ipr >/tmp/dit/build.log 2>&1 || { tail -30 /tmp/dit/build.log; exit 1; }
fi
echo "libipr: $(( $(date +%s) - t0 )) s"
export IPR_LIB=$build/libipr.so
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
njobs=$#
ncpu=$(nproc)
if [ "${IPR_DIT_PARALLEL:-0}" = 1 ]; then
  workers=$(( (ncpu - 2) / njobs ))
  # each job's torch and libipr CPU threads (the validation's scorer): a share of the cores, not all of them each
  # (three jobs validating at once with every core each ran past a 10-minute call, 2026-12-06)
  export OMP_NUM_THREADS=$(( ncpu / njobs > 1 ? ncpu / njobs : 1 ))
else
  workers=$(( ncpu - 2 ))
fi
[ $workers -lt 1 ] && workers=1
[ $workers -gt 12 ] && workers=12

job() {
  local spec=$1
  if [[ $spec == +* ]]; then
    local delay=${spec%%/*}; delay=${delay#+}; spec=${spec#*/}
    sleep "$delay"
  fi
  local name=${spec%%:*}; spec=${spec#*:}
  local preset=${spec%%:*}; spec=${spec#*:}
  local minutes=${spec%%:*}
  local extra=""
  [ "$spec" != "$minutes" ] && extra=${spec#*:}
  local dir=/tmp/dit/$name
  mkdir -p "$dir"
  local init=()
  local from=models/$name
  [ -n "${IPR_DIT_INIT_FROM:-}" ] && from=models/$IPR_DIT_INIT_FROM
  if [ ! -f "$dir/state.pt" ] && [ "${IPR_DIT_INIT:-0}" = 1 ] && [ -f "$from.h5" ]; then
    init=(--init "$from.h5")
    [ -f "${from}_log.csv" ] && init+=(--init-log "${from}_log.csv")
  fi
  local scorer=()
  case $preset in
    ms*) scorer=(--scorer models/digit_classifier.h5) ;;
    cp*) scorer=(--scorer models/polygons_classifier.h5) ;;
  esac
  # shellcheck disable=SC2086
  local limit=()
  [ -n "${IPR_DIT_JOB_LIMIT:-}" ] && limit=(timeout -s TERM "$IPR_DIT_JOB_LIMIT")
  "${limit[@]}" python3 train/train_dit.py --preset "$preset" --minutes "$minutes" --ckpt-dir "$dir" --export "$dir/$name.h5" \
    --compile --workers $workers --val-count "${IPR_DIT_VAL_COUNT:-256}" --val-minutes "${IPR_DIT_VAL_MINUTES:-1}" \
    --val-k "${IPR_DIT_VAL_K:-0,5,10}" --tag "$name" "${scorer[@]}" "${init[@]}" $extra >"$dir/train.out" 2>&1
  local rc=$?
  echo "== $name (exit $rc)"; grep -E "^train_dit|^validate" "$dir/train.out" | tail -12
  [ $rc -ne 0 ] && tail -25 "$dir/train.out"
  (cd "$dir" && tar -cf "$out/$name.tar" --ignore-failed-read "$name.h5" log.csv val.csv summary.json train.out 2>/dev/null)
}

check_pid=""
if [ "${IPR_DIT_GPU_CHECK:-0}" = 1 ]; then
  (nice -n 10 bash scripts/device/dit_gpu.sh check >"$out/gpu_check.txt" 2>&1) &
  check_pid=$!
fi
if [ "${IPR_DIT_PARALLEL:-0}" = 1 ]; then
  pids=()
  for j in "$@"; do job "$j" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
else
  for j in "$@"; do job "$j"; done
fi
[ -n "$check_pid" ] && { wait "$check_pid"; echo "== GPU check"; tail -25 "$out/gpu_check.txt"; }
echo "total: $(( $(date +%s) - t0 )) s"
