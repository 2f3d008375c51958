#!/bin/bash
# nightly.sh: the nightly evaluation, ready for cron: run every config of a set, bundle and verify each
# finished run, keep the last N bundles per config, and exit with a code a scheduler can act on.
#
#   crontab:  15 1 * * *  /path/to/ipr/jobs/nightly.sh >> /var/log/ipr-nightly.log 2>&1
#
# Environment (all optional):
#   IPR_NIGHTLY_CONFIGS  directory of configs (default configs/nightly)
#   IPR_NIGHTLY_DIR      where runs and bundles go (default out/nightly)
#   IPR_NIGHTLY_KEEP     bundles kept per config (default 14)
#   IPR_NIGHTLY_RANKS    MPI ranks (default 2; 1 runs without mpirun)
#   IPR_NIGHTLY_LIMIT    pass --limit N to every run (a smoke test, marked limited in every output)
#   IPR                  the ipr binary (default build/ipr)
# Exit code: the worst over the configs: 0 all ok, 2 some units failed, 3 interrupted (rerun resumes the
# same night's runs), 4 a bundle failed verification, 1 a config or usage error; 5 another nightly is
# still running (lock held).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
configs=${IPR_NIGHTLY_CONFIGS:-configs/nightly}
out=${IPR_NIGHTLY_DIR:-out/nightly}
keep=${IPR_NIGHTLY_KEEP:-14}
ranks=${IPR_NIGHTLY_RANKS:-2}
ipr=${IPR:-build/ipr}
night=$(date -u +%Y%m%d)
mkdir -p "$out/runs" "$out/bundles"
exec 9>"$out/.lock"
if ! flock -n 9; then
  echo "nightly: another nightly holds $out/.lock"
  exit 5
fi
export OMPI_MCA_rmaps_base_oversubscribe=${OMPI_MCA_rmaps_base_oversubscribe:-1}
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

severity() { # order of badness of exit codes: 0 < 2 < 3 < 4 < 1 (config errors need a human first)
  case $1 in 0) echo 0 ;; 2) echo 1 ;; 3) echo 2 ;; 4) echo 3 ;; *) echo 4 ;; esac
}
worst=0
for cfg in "$configs"/*.yaml; do
  [ -e "$cfg" ] || { echo "nightly: no configs in $configs"; exit 1; }
  name=$(basename "$cfg" .yaml)
  run="$out/runs/$night-$name"
  echo "nightly: $(date -u +%FT%TZ) $name -> $run"
  args=(run "$cfg" --output "$run" --progress line)
  [ -n "${IPR_NIGHTLY_LIMIT:-}" ] && args+=(--limit "$IPR_NIGHTLY_LIMIT")
  if [ "$ranks" -gt 1 ]; then
    mpirun -n "$ranks" "$ipr" "${args[@]}"
  else
    "$ipr" "${args[@]}"
  fi
  rc=$?
  if [ $rc -eq 0 ] || [ $rc -eq 2 ]; then
    bundle="$out/bundles/$night-$name.tar.gz"
    # --force: a second nightly of the same night re-bundles the same run (the same bytes)
    if "$ipr" bundle "$run" --output "$bundle" --force && "$ipr" verify "$bundle"; then
      # keep the newest $keep bundles of this config (names sort by date)
      ls -1 "$out/bundles/"*"-$name.tar.gz" 2>/dev/null | sort | head -n -"$keep" | while read -r old; do
        rm -f "$old" "$old.sha256"
      done
    else
      rc=4
    fi
  fi
  echo "nightly: $name exit $rc"
  if [ "$(severity $rc)" -gt "$(severity $worst)" ]; then worst=$rc; fi
done
echo "nightly: $(date -u +%FT%TZ) done, exit $worst"
exit "$worst"
