"""system_python.py: run an analysis script under a Python that has h5py, NumPy and matplotlib.

The scripts need Debian's python3-h5py, python3-numpy and python3-matplotlib (scripts/install-deps), which live in
/usr/bin/python3. `python3` on the PATH is often another interpreter without them (pyenv, a virtualenv, conda, a GPU
machine's PyTorch build). ensure() re-executes the calling script under $IPR_PYTHON or /usr/bin/python3 when the
running interpreter lacks a module, once; otherwise it exits with a message naming what to install.

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import system_python  # before numpy, h5py, matplotlib
    system_python.ensure()
"""
import importlib.util
import os
import sys

_GUARD = "IPR_ANALYSIS_REEXEC"


def ensure(modules=("h5py", "numpy", "matplotlib")):
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return
    if not os.environ.get(_GUARD):
        for cand in (os.environ.get("IPR_PYTHON"), "/usr/bin/python3"):
            if cand and os.access(cand, os.X_OK):
                os.environ[_GUARD] = sys.executable or "python"
                os.execv(cand, [cand] + sys.argv)  # argv[0] is the script
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "analysis"
    sys.exit("%s: %s lacks %s; run it with /usr/bin/python3 (Debian: apt-get install python3-h5py python3-numpy "
             "python3-matplotlib, or scripts/install-deps)" % (script, sys.executable, ", ".join(missing)))
