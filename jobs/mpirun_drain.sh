#!/usr/bin/env bash
# mpirun_drain.sh MPIRUN_ARGS...: mpirun, with Ctrl-C (SIGINT) and SIGTERM turned into a drain of `ipr run`.
#
#   jobs/mpirun_drain.sh -n 8 build/ipr run configs/grid_sudoku_hard.yaml -o runs/grid
#
# Open MPI's mpirun answers SIGINT and SIGTERM by killing the ranks (SIGTERM, then SIGKILL a second later) and
# exits 1 whatever they do; it cannot forward SIGINT (ess_base_forward_signals refuses it). It does forward
# SIGUSR1, on which `ipr run` drains: running batches finish and commit, every rank exits 3, and so does mpirun.
# This wrapper starts mpirun in a session of its own, so a Ctrl-C at the terminal reaches only the wrapper, and
# sends mpirun SIGUSR1 instead; a second Ctrl-C (or SIGTERM) stops at once (SIGTERM to mpirun). Its exit code is
# mpirun's: 3 after a drain (run the same line again to resume).
set -u
command -v mpirun >/dev/null || { echo "mpirun_drain.sh: mpirun not found" >&2; exit 1; }
setsid mpirun "$@" &
pid=$!
signals=0
forward() {
  signals=$((signals + 1))
  if [ $signals -eq 1 ]; then
    echo "mpirun_drain.sh: draining (running batches finish and commit); Ctrl-C again to stop at once" >&2
    kill -USR1 "$pid" 2>/dev/null
  else
    kill -TERM "$pid" 2>/dev/null
  fi
}
trap forward INT TERM
# `wait` returns early when a trapped signal arrives: wait again until mpirun is gone, then take its status
while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done
wait "$pid"
