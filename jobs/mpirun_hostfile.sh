#!/bin/bash
# mpirun_hostfile.sh: `ipr run` on a few machines without a scheduler, one rank per GPU.
#
#   jobs/mpirun_hostfile.sh jobs/hostfile.example configs/grid_sudoku_hard.yaml runs/grid 4
#
# HOSTFILE lists the machines (see hostfile.example); GPUS is GPUs per machine. The build directory and the
# run directory must be on a filesystem every machine shares (the ranks write segments, journals and logs
# into RUN_DIR). Interrupt with Ctrl-C or SIGTERM to this script (mpirun_drain.sh turns them into SIGUSR1 for
# mpirun, which forwards it; a second Ctrl-C stops at once): ranks drain and exit 3; rerun the same line to resume.
set -euo pipefail
hostfile=${1:?usage: mpirun_hostfile.sh HOSTFILE CONFIG RUN_DIR [GPUS_PER_HOST]}
config=${2:?CONFIG}
run_dir=${3:?RUN_DIR}
gpus=${4:-$(nvidia-smi -L 2>/dev/null | wc -l)}
[ "$gpus" -ge 1 ] || gpus=1
hosts=$(grep -cvE '^\s*(#|$)' "$hostfile")
ipr=${IPR:-$(cd "$(dirname "$0")/.." && pwd)/build/ipr}
# --map-by ppr:G:node puts G ranks on every host; ipr binds rank i of a host to GPU i.
# --bind-to none leaves the BLAS/CUDA host threads free to move; -x passes the environment ipr reads.
exec "$(dirname "$0")/mpirun_drain.sh" -np $((hosts * gpus)) --hostfile "$hostfile" --map-by "ppr:${gpus}:node" --bind-to none \
  -x PATH -x LD_LIBRARY_PATH -x CUDA_VISIBLE_DEVICES \
  "$ipr" run "$config" --output "$run_dir" --progress auto
