#!/usr/bin/env bash
# device/train.sh MODE ...: training on the GPU machine in ONE command (<= ~9 min): build libipr there (CPU
# only: the benchmark generators feed the training data through ctypes), then run one job; results under $OUT.
#   throughput [BENCHES]          samples/s per GPU for a few widths (train/throughput.py), e.g. ep,cp,ms
#   srm PRESET MINUTES [ARGS...]  train the denoiser PRESET (ep | cp | ms) for MINUTES on every GPU (torchrun),
#                                 resuming from $IPR_CKPT_ROOT/PRESET (default /tmp/ckpt/PRESET) when it holds a
#                                 state; ARGS go to train/train_srm.py (--hid-dims, --batch, --init FILE.h5, ...)
#   polygons MINUTES [ARGS...]    train the Counting Polygons classifier (train/train_polygons.py)
# Prepare here first: scripts/device/prepare.sh (the .deb files the machine lacks, carried in .deps/).
# Examples (one device call each; MINUTES is the training time, the build adds ~1 min on a fresh machine):
#   scripts/device/train.sh throughput ep,cp,ms
#   scripts/device/train.sh srm ep 7 --hid-dims 32,64,64,128 --batch 512 --warmup 500   (repeat: resumes)
#   scripts/device/train.sh srm ms 7 --init models/mnist_sudoku.h5 --init-log models/mnist_sudoku_log.csv ...
#   scripts/device/train.sh polygons 7
set -uo pipefail
mode=${1:?usage: scripts/device/train.sh throughput|srm|polygons ...}
shift
root=$(pwd)
out=${OUT:-/tmp/ipr-out}
mkdir -p "$out"
t0=$(date +%s)

# ---- the carried packages, as scripts/device/run.sh unpacks them (skipped where none are carried) ----
dep=/tmp/deproot
if compgen -G ".deps/debs/*.deb" >/dev/null; then
  if [ ! -d $dep/usr ]; then
    mkdir -p $dep
    for f in .deps/debs/*.deb; do dpkg -x "$f" $dep; done
    for l in nettle:8 hogweed:6; do
      n=${l%%:*} v=${l##*:}
      rm -f $dep/usr/lib/x86_64-linux-gnu/lib$n.so.$v*
      ln -sf /usr/lib/x86_64-linux-gnu/lib$n.so.$v $dep/usr/lib/x86_64-linux-gnu/lib$n.so
    done
  fi
  export PKG_CONFIG_LIBDIR=$dep/usr/lib/x86_64-linux-gnu/pkgconfig:$dep/usr/share/pkgconfig
  export PKG_CONFIG_SYSROOT_DIR=$dep
  export CMAKE_PREFIX_PATH=$dep/usr
  export LD_LIBRARY_PATH=$dep/usr/lib/x86_64-linux-gnu:$dep/usr/lib/x86_64-linux-gnu/openblas-pthread:${LD_LIBRARY_PATH:-}
fi
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONUNBUFFERED=1

# ---- libipr without CUDA (the generators and the CPU engine; cached while the machine stays warm) ----
build=/tmp/ipr-train-build
cmake -S . -B $build -DIPR_CUDA=OFF -DCMAKE_BUILD_TYPE=Release >"$out/cmake.log" 2>&1 \
  || { tail -30 "$out/cmake.log"; exit 1; }
cmake --build $build -j"$(nproc)" --target ipr_lib ipr >"$out/build.log" 2>&1 \
  || { grep -E "error|Error" "$out/build.log" | head -30; exit 1; }
export IPR_LIB=$build/libipr.so
echo "train.sh: libipr built in $(( $(date +%s) - t0 )) s"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"
ngpu=$(nvidia-smi -L | wc -l)
py=${PYTHON:-python3}

case "$mode" in
throughput)
  "$py" train/throughput.py --output "$out/throughput.json" --benches "${1:-ep,cp,ms}" \
    ${IPR_THROUGHPUT_ARGS:-} 2>&1 | tail -40
  ;;
srm)
  preset=${1:?srm PRESET MINUTES}
  minutes=${2:?srm PRESET MINUTES}
  shift 2
  case "$preset" in ep) name=even_pixels ;; cp) name=counting_polygons ;; ms) name=mnist_sudoku ;;
    *) echo "unknown preset $preset"; exit 1 ;; esac
  ckpt=${IPR_CKPT_ROOT:-/tmp/ckpt}/$preset
  mkdir -p "$ckpt"
  launch=("$py")
  if [ "$ngpu" -gt 1 ]; then launch=(torchrun --standalone --nproc_per_node="$ngpu"); fi
  "${launch[@]}" train/train_srm.py --preset "$preset" --minutes "$minutes" --ckpt-dir "$ckpt" \
    --export "$out/$name.h5" "$@" 2>&1 | tee "$out/train.log" | grep -vE "^step [0-9]+ " | tail -20
  status=${PIPESTATUS[0]}
  grep -E "^step [0-9]+ " "$out/train.log" | tail -5
  cp "$ckpt/log.csv" "$out/${name}_log.csv" 2>/dev/null
  cp "$ckpt/summary.json" "$out/${name}_summary.json" 2>/dev/null
  "$py" train/plot_losses.py "$ckpt/log.csv" "$out/${name}_loss.png" --title "$name" || true
  # the export must load in the C engine and compute what PyTorch computes
  if [ -f "$out/$name.h5" ]; then
    "$py" train/check_export.py "$out/$name.h5" --ipr $build/ipr 2>&1 | tee "$out/${name}_check.txt"
    # a device call returns files of at most 16 MiB: split a larger export, reassemble with
    #   cat NAME.h5.part* > NAME.h5 && sha256sum -c NAME.h5.sha256
    if [ "$(stat -c %s "$out/$name.h5")" -gt $((15 * 1024 * 1024)) ]; then
      (cd "$out" && sha256sum "$name.h5" > "$name.h5.sha256" && split -b 15M -d "$name.h5" "$name.h5.part" \
        && rm "$name.h5" && ls -l "$name.h5".part*)
    fi
  fi
  exit $status
  ;;
polygons)
  minutes=${1:?polygons MINUTES}
  shift
  "$py" train/train_polygons.py --output "$out/polygons_classifier.h5" --minutes "$minutes" "$@" 2>&1 \
    | tee "$out/polygons_train.log" | tail -25
  exit "${PIPESTATUS[0]}"
  ;;
*)
  echo "unknown mode $mode (throughput | srm | polygons)"
  exit 1
  ;;
esac
