#!/usr/bin/env python3
"""ipr_selection_study.py: which regions to re-noise: uniform (the reference) vs uncertainty (highest
pooled sigma) selection, from one run with `ipr.selection: [uniform, uncertainty]` (configs/selection_study.yaml)
or from two runs that differ only in ipr.selection.

usage: ipr_selection_study.py RUN [RUN_B] [--baseline uniform] [--other uncertainty] [--output DIR]

Chains are paired by (model, fraction, seed, instance, k): both selections start from the same base sample
(same seed), so McNemar's exact test on the discordant chains is the sharp comparison. Writes
selection.png, selection.md and selection.csv (ipr_compare's columns, A = baseline, B = other).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import system_python  # noqa: E402  (re-runs this script under /usr/bin/python3 when h5py is missing)

system_python.ensure()

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ipr_compare as C  # noqa: E402
import ipr_results as R  # noqa: E402

POINT = ("model", "fraction", "iteration")


def subset(t, mask):
    return {k: np.asarray(v)[mask] for k, v in t.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--baseline", default="uniform")
    ap.add_argument("--other", default="uncertainty")
    ap.add_argument("--output", default="selection_study")
    a = ap.parse_args(argv)
    if len(a.runs) > 2:
        ap.error("one or two runs")
    tables = [R.load(r, as_dict=True) for r in a.runs]
    allt = {k: np.concatenate([t[k] for t in tables]) for k in tables[0]}
    sel = np.asarray(allt["selection"])
    ta, tb = subset(allt, sel == a.baseline), subset(allt, sel == a.other)
    if not len(ta["valid"]) or not len(tb["valid"]):
        found = sorted(set(sel.tolist()))
        print(f"ipr_selection_study: need chains of both '{a.baseline}' and '{a.other}' selection; found {found}",
              file=sys.stderr)
        return 1
    rows = C.compare(ta, tb, POINT, POINT)
    if not rows:
        print("ipr_selection_study: the two selections share no (model, fraction, k) point", file=sys.stderr)
        return 1
    os.makedirs(a.output, exist_ok=True)
    labels = [a.baseline, a.other]
    title = f"IPR region selection: {a.other} vs {a.baseline}"
    C.write(rows, labels, a.output, title, POINT)
    os.replace(os.path.join(a.output, "compare.csv"), os.path.join(a.output, "selection.csv"))
    os.replace(os.path.join(a.output, "compare.md"), os.path.join(a.output, "selection.md"))
    C.plot(rows, labels, os.path.join(a.output, "selection.png"), title)
    print(f"ipr_selection_study: {a.output}/selection.png, selection.md, selection.csv ({len(rows)} points)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
