"""compare_runs.py: two `ipr run` results.h5 of the same instances and seed (two sets of weights, say), compared per
instance: the mean error of each at the iterations both recorded, the paired difference with its standard error, and
how many instances the second run scores lower / higher. Single model, selection and fraction per file.

  python3 train/compare_runs.py A/results.h5 B/results.h5 [--k 0,5,10]
"""
import argparse
import sys

import h5py
import numpy as np


def load(path, ks):
    with h5py.File(path, "r") as f:
        if "results" not in f:
            raise SystemExit(f"compare_runs: {path} has no /results (an `ipr run` results.h5?)")
        r = f["results"]
        inst, it, err = r["instance"][:], r["iteration"][:], r["error"][:]
        for key in ("model", "selection", "fraction", "seed"):
            if key in r and len(np.unique(r[key][:])) > 1:
                raise SystemExit(f"compare_runs: {path} holds several values of {key}; compare single-grid runs")
    out = {}
    for k in ks:
        m = it == k
        if not m.any():
            raise SystemExit(f"compare_runs: {path} has no rows at iteration {k}")
        o = np.argsort(inst[m], kind="stable")
        out[k] = (inst[m][o], err[m][o])
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--k", default="0,5,10", help="iterations to compare (default 0,5,10)")
    args = ap.parse_args(argv)
    ks = [int(x) for x in args.k.split(",")]
    a, b = load(args.a, ks), load(args.b, ks)
    print("| k | A | B | paired difference B - A (se) | B lower / higher | n |")
    print("|---|---|---|---|---|---|")
    for k in ks:
        (ia, ea), (ib, eb) = a[k], b[k]
        if len(ia) != len(ib) or not (ia == ib).all():
            raise SystemExit(f"compare_runs: the runs hold different instances at k = {k}")
        d = eb.astype(np.float64) - ea
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
        print(f"| {k} | {ea.mean():.2f} | {eb.mean():.2f} | {d.mean():+.2f} ({se:.2f}) | {(d < 0).sum()} / {(d > 0).sum()} "
              f"| {len(d)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
