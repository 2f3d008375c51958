#!/usr/bin/env python3
"""ipr_compute_matched.py: IPR against independent base samples at the same network passes (issue 15).

usage: ipr_compute_matched.py RUN_DIR|results.h5 [--output FILE.png] [--table FILE.md] [--title TEXT]

The question users ask first: is IPR's compute better spent on refinement or on drawing more samples? For each
(model, selection, fraction) of a run, the valid rate after k IPR iterations is placed at the mean network passes a
chain has spent by then (nfe at k, base generation included). Beside it, from the same run's base samples (k = 0),
with the run's seeds as independent replicates (list several seeds in the config: `seeds: [35, 36, ...]`):
  - one base sample: the base valid rate, at the passes of one base generation; drawing N samples without a way to
    tell a valid one from an invalid one leaves the rate where it is, whatever N (IPR is verifier-free too);
  - any valid among N (oracle): the fraction of instances for which at least one of N base samples is valid, at N
    base generations' passes, for N = 1 .. seeds. It needs a verifier to pick the valid sample, which IPR does not
    have: an upper bound on sampling, not a competitor. With S seeds and m valid samples of an instance, the
    expected rate over the N-subsets of the seeds is 1 - C(S - m, N) / C(S, N) (all subsets, not the first N).
Writes the figure (default RUN/report/compute_matched_vs_samples.png) and a Markdown table beside it, and prints
the table.
"""
import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import system_python  # noqa: E402  (re-runs this script under /usr/bin/python3 when h5py is missing)

system_python.ensure()

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import ipr_results as R  # noqa: E402


def any_valid_rate(valid, n):
    """valid (instances, seeds) of 0/1: the mean over instances of P(at least one valid among n seeds drawn without
    replacement), exactly: 1 - C(S - m, n) / C(S, n) for an instance with m valid of S."""
    valid = np.asarray(valid, dtype=int)
    S = valid.shape[1]
    if not 1 <= n <= S:
        raise ValueError(f"n = {n} outside 1..{S}")
    m = valid.sum(axis=1)
    p = [1.0 - math.comb(S - int(k), n) / math.comb(S, n) for k in m]  # comb(a, n) = 0 for a < n
    return float(np.mean(p)) if len(p) else math.nan


def base_matrix(t, mask):
    """(instances, seeds) valid matrix and the mean base passes of the rows in mask at k = 0; instances that lack a
    seed are dropped (a partial run)."""
    inst, seed = np.asarray(t["instance"])[mask], np.asarray(t["seed"])[mask]
    valid, nfe = np.asarray(t["valid"])[mask], np.asarray(t["nfe"], dtype=float)[mask]
    seeds = sorted(set(seed.tolist()))
    insts = sorted(set(inst.tolist()))
    col = {s: j for j, s in enumerate(seeds)}
    row = {i: j for j, i in enumerate(insts)}
    mat = np.full((len(insts), len(seeds)), -1, dtype=int)
    for i, s, v in zip(inst, seed, valid):
        mat[row[int(i)], col[int(s)]] = int(v)
    complete = (mat >= 0).all(axis=1)
    return mat[complete], float(nfe.mean()) if len(nfe) else math.nan, len(seeds)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run")
    ap.add_argument("--output")
    ap.add_argument("--table")
    ap.add_argument("--title")
    a = ap.parse_args(argv)
    path = R.results_path(a.run)
    base_dir = a.run if os.path.isdir(a.run) else os.path.dirname(os.path.abspath(a.run))
    out_png = a.output or os.path.join(base_dir, "report", "compute_matched_vs_samples.png")
    out_md = a.table or os.path.splitext(out_png)[0] + ".md"
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    m = R.meta(path)
    t = R.load(path, "results", as_dict=True)
    c = R.curves(path)
    title = a.title or f"{m.get('benchmark', 'run')}: IPR against independent base samples at equal passes"

    panels = list(dict.fromkeys((mo, se) for (mo, se, _fr), _ in R.groups(c)))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.6), squeeze=False)
    lines = [f"# {title}", "",
             "| model | selection | curve | network passes | valid rate |", "|---|---|---|---|---|"]
    for ax, (model, sel) in zip(axes[0], panels):
        # the base samples of this model: every fraction's chains share their base generation's numbers, so one
        # fraction's k = 0 rows are the independent samples (seeds x instances)
        frs = [fr for (mo, se, fr), _ in R.groups(c) if mo == model and se == sel]
        mask = (np.asarray(t["model"]) == model) & (np.asarray(t["selection"]) == sel) & \
               (np.asarray(t["fraction"]) == frs[0]) & (np.asarray(t["iteration"]) == 0)
        mat, base_nfe, S = base_matrix(t, mask)
        ns = np.arange(1, S + 1)
        oracle = [any_valid_rate(mat, int(n)) for n in ns]
        single = float(mat.mean()) if mat.size else math.nan
        xmax = base_nfe * S
        for (mo, se, fr), gm in R.groups(c):
            if mo != model or se != sel:
                continue
            ax.plot(c["mean_nfe"][gm], c["rate"][gm], marker="o", ms=3, label=f"IPR, fraction {fr:g}")
            xmax = max(xmax, float(np.max(c["mean_nfe"][gm])))
            for k, x, r in zip(c["iteration"][gm], c["mean_nfe"][gm], c["rate"][gm]):
                lines.append(f"| {model} | {sel} | IPR fraction {fr:g}, k = {int(k)} | {x:.0f} | {100 * r:.1f}% |")
        ax.plot(ns * base_nfe, np.array(oracle), ls="--", marker="s", ms=3, color="black",
                label="any valid among N base samples (oracle: needs a verifier)")
        ax.axhline(single, ls=":", color="grey", label="one base sample (N samples, no verifier)")
        for n, r in zip(ns, oracle):
            lines.append(f"| {model} | {sel} | any valid among N = {n} base samples (oracle) | {n * base_nfe:.0f} | "
                         f"{100 * r:.1f}% |")
        ax.set_xlim(0, xmax * 1.03)
        ax.set_xlabel("network passes per instance (mean)")
        ax.set_title(f"{model}, {sel}: {mat.shape[0]} instances x {S} seeds", fontsize=9)
        R.style_rate_axis(ax)
        top = max([single] + oracle + [float(np.max(c["rate"][gm])) for _k, gm in R.groups(c)])
        ax.set_ylim(-0.002, min(1.02, max(0.05, 1.15 * top)))  # low rates stay readable
        ax.legend(fontsize=7, loc="best")
    R.save_figure(fig, title, out_png)
    with open(out_md, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"ipr_compute_matched: {out_png}, {out_md}")


if __name__ == "__main__":
    main()
