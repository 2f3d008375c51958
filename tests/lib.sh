# lib.sh (sourced by the shell tests after they read their arguments): a scratch directory $tmp removed at exit,
# pass/fail counters with ok/bad, $py a Python with h5py (the caller's $py when it has h5py, else python3, else
# Debian's /usr/bin/python3), Open MPI allowed as root and oversubscribed (CI's 2-core root machines), one BLAS thread.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1
py=${py:-python3}
"$py" -c "import h5py" 2>/dev/null || py=/usr/bin/python3
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "not ok - $1"; }
