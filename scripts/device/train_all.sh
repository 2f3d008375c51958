#!/usr/bin/env bash
# device/train_all.sh MINUTES: on the GPU machine, continue training the shipped models in ONE command, the jobs
# spread over the GPUs (job i on GPU i mod N; on one GPU they share it, none fills it alone):
#   ms    the MNIST Sudoku denoiser        ep    the Even Pixels denoiser     cp   the Counting Polygons denoiser
#   poly  the Counting Polygons classifier (with numeral-mismatch negatives)   digit  the Sudoku digit classifier (CPU)
# IPR_JOBS picks them (default "ms ep cp poly": one per GPU of an nvidia-h200-x4, the kind that gives the most
# GPU-minutes per minute of device time); a denoiser written JOB:N trains on N GPUs (torchrun, DDP; N x the
# batch), e.g. IPR_JOBS="ms:3 ep" on an x4. Each denoiser resumes from its state under /tmp/train_all/JOB when a
# previous command on this machine left one, else starts from models/NAME.h5 (--init; IPR_FRESH=1: from
# scratch), and the classifier from its last export or models/polygons_classifier.h5, so repeating the command on a
# warm machine continues the same runs. IPR_FRESH_JOBS="poly ..." starts the jobs named from scratch (a new
# architecture); IPR_POLY_LR sets the classifier's peak learning rate (cosine to 0 within each command);
# IPR_EP_DIMS=64,128,128,256 (likewise IPR_MS_DIMS, IPR_CP_DIMS) trains that denoiser at other widths, from
# scratch (attention stays on the last two levels); IPR_EMA sets the denoisers' EMA decay (default 0.999, spec 6's
# is 0.9999); IPR_PREBUILD_CUDA=1 also builds the CUDA ipr in the background (nice) for validate.sh's next
# command. The SRM jobs get up to 6 data workers each (their generators are fast), the classifier the rest of the
# cores (its negatives are re-rendered in Python, about 4 ms an image).
# Everything comes back as $OUT/models.tar.partNN (15 MiB parts; device calls return at most 8 files of 16 MiB)
# plus the logs' tails.
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
ngpu=$(nvidia-smi -L 2>/dev/null | wc -l)
ncpu=$(nproc)
jobs=(${IPR_JOBS:-ms ep cp poly})
workers=$(( ncpu / ${#jobs[@]} > 2 ? ncpu / ${#jobs[@]} - 1 : 1 ))
[ $workers -gt 6 ] && workers=6
poly_workers=$(( ncpu - workers * (${#jobs[@]} - 1) - 2 ))
[ $poly_workers -lt 1 ] && poly_workers=1
# the denoisers' widths: the shipped ones unless IPR_MS_DIMS / IPR_EP_DIMS / IPR_CP_DIMS say otherwise (a width
# other than the shipped one starts that job from scratch: the shipped weights do not fit it)
ms_dims=${IPR_MS_DIMS:-32,32,64,64,128,128}
ep_dims=${IPR_EP_DIMS:-32,64,64,128}
cp_dims=${IPR_CP_DIMS:-32,32,64,64,128}
[ "$ms_dims" != 32,32,64,64,128,128 ] && IPR_FRESH_JOBS="${IPR_FRESH_JOBS:-} ms"
[ "$ep_dims" != 32,64,64,128 ] && IPR_FRESH_JOBS="${IPR_FRESH_JOBS:-} ep"
[ "$cp_dims" != 32,32,64,64,128 ] && IPR_FRESH_JOBS="${IPR_FRESH_JOBS:-} cp"
fresh() { [ "${IPR_FRESH:-0}" = 1 ] || [[ " ${IPR_FRESH_JOBS:-} " == *" $1 "* ]]; }
if [ "${IPR_PREBUILD_CUDA:-0}" = 1 ] && [ ! -x /tmp/ipr-build/ipr ]; then
  (cmake -S . -B /tmp/ipr-build -DIPR_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release >/tmp/build.log 2>&1 &&
     nice -n 19 cmake --build /tmp/ipr-build -j8 --target ipr >>/tmp/build.log 2>&1; echo "cuda build: exit $?") &
fi

# srm JOB NAME PRESET ARGS...: one denoiser, resumed or initialised from the shipped weights
srm() {
  local job=$1 name=$2 preset=$3
  shift 3
  local init=()
  if ! fresh "$job" && [ ! -f "$work/$job/state.pt" ] && [ -f "models/$name.h5" ]; then
    init=(--init "models/$name.h5" --init-log "models/${name}_log.csv")
  fi
  local launch=("$py") t0=$SECONDS
  [ "$ngpus_job" -gt 1 ] && launch=("$py" -m torch.distributed.run --standalone --nproc_per_node="$ngpus_job")
  "${launch[@]}" train/train_srm.py --preset "$preset" --minutes "$minutes" --workers "$workers" --ckpt-dir "$work/$job" \
    --export "$work/$name.h5" "${init[@]}" "$@" >"$work/$job.log" 2>&1 && return 0
  # a multi-GPU launch that failed: keep the rest of the command's minutes by training on one GPU
  local left
  left=$(python3 -c "print(max(0.0, $minutes - ($SECONDS - $t0) / 60 - 0.5))")
  if [ "$ngpus_job" -gt 1 ] && [ ! -f "$work/$job/state.pt" ] && python3 -c "import sys; sys.exit($left < 1)"; then
    mv "$work/$job.log" "$work/$job.ddp-failed.log"
    echo "train_all.sh: $job on $ngpus_job GPUs failed (log: $job.ddp-failed.log); $left min on one GPU instead"
    CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES%%,*} "$py" train/train_srm.py --preset "$preset" --minutes "$left" \
      --workers "$workers" --ckpt-dir "$work/$job" --export "$work/$name.h5" "${init[@]}" "$@" >"$work/$job.log" 2>&1
  fi
}

i=0
names=()
for spec in "${jobs[@]}"; do
  job=${spec%%:*}
  ngpus_job=1
  [ "$spec" != "$job" ] && ngpus_job=${spec#*:}
  [[ "$ngpus_job" =~ ^[1-9][0-9]*$ ]] || { echo "train_all.sh: bad job $spec (JOB or JOB:NGPUS)"; exit 1; }
  [ "$ngpu" -gt 0 ] && [ "$ngpus_job" -gt "$ngpu" ] && { echo "train_all.sh: $spec wants more than the $ngpu GPUs"; exit 1; }
  names+=("$job")
  gpu=""
  for ((g = 0; g < ngpus_job; g++)); do gpu+="${gpu:+,}$(( ngpu > 0 ? (i + g) % ngpu : 0 ))"; done
  case $job in
  ms) CUDA_VISIBLE_DEVICES=$gpu srm ms mnist_sudoku ms --hid-dims "$ms_dims" --batch 56 --lr 2e-4 \
        --warmup 200 --ema "${IPR_EMA:-0.999}" --log-every 50 & ;;
  ep) CUDA_VISIBLE_DEVICES=$gpu srm ep even_pixels ep --hid-dims "$ep_dims" --batch 2048 --lr 8e-4 --warmup 500 \
        --ema "${IPR_EMA:-0.999}" --log-every 100 & ;;
  cp) CUDA_VISIBLE_DEVICES=$gpu srm cp counting_polygons cp --hid-dims "$cp_dims" --batch 56 --lr 2e-4 \
        --warmup 300 --ema "${IPR_EMA:-0.999}" --log-every 50 & ;;
  poly) pinit=()  # the classifier continues from the last command's export, else from the shipped one
        if [ -f "$work/polygons_classifier.h5" ]; then pinit=(--init "$work/polygons_classifier.h5")
        elif ! fresh poly; then pinit=(--init models/polygons_classifier.h5); fi
        CUDA_VISIBLE_DEVICES=$gpu "$py" train/train_polygons.py --output "$work/polygons_classifier.h5" \
          --minutes "$minutes" --workers "$poly_workers" --batch 256 --lr "${IPR_POLY_LR:-2e-3}" --mismatch 0.3 \
          "${pinit[@]}" >"$work/poly.log" 2>&1 & ;;
  digit) "$py" train/train_digit.py --output "$work/digit_classifier.h5" --epochs 40 --elastic 1.5 --noise-max 0.1 \
           --threads 2 >"$work/digit.log" 2>&1 & ;;
  *) echo "train_all.sh: unknown job $job (ms ep cp poly digit)"; exit 1 ;;
  esac
  echo "job $job on GPU(s) $gpu of $ngpu"
  i=$((i + ngpus_job))
done
wait
[ -f /tmp/build.log ] && tail -1 /tmp/build.log
for j in ms ep cp; do [ -f $work/$j/log.csv ] && cp $work/$j/log.csv $work/${j}_log.csv; done
for j in "${names[@]}"; do echo "== $j"; grep -v "^step " $work/$j.log | tail -4; done
for f in mnist_sudoku even_pixels counting_polygons; do
  [ -f $work/$f.h5 ] && "$py" train/check_export.py $work/$f.h5 --ipr $build/ipr 2>&1 | tail -1
done
[ -f $work/polygons_classifier.h5 ] &&
  "$py" train/audit_polygons_scorer.py --scorer $work/polygons_classifier.h5 --count 300 --lib "$IPR_LIB" \
    --output $work/polygons_scorer_audit.json 2>&1 | tail -7
(cd $work && tar -cf - *.h5 *_log.csv *.json *.log 2>/dev/null) | split -b 15M -d - "$out/models.tar.part"
ls -la "$out"
