#!/usr/bin/env python3
"""ipr_report.py: figures and tables of one `ipr run`.

usage: ipr_report.py RUN_DIR|results.h5 [--output DIR] [--title TEXT]

Writes into DIR (default RUN_DIR/report):
  valid_vs_iterations.png   valid rate against IPR iterations k, one line per resampling fraction, shaded
                            95% Wilson intervals; one panel per (model, selection)
  error_vs_iterations.png   mean error (Sudoku distance, Even Pixels |count - 512|, polygons: failed checks)
                            against k per fraction, shaded +-1.96 standard errors: the signal that remains
                            where a weak model's valid rate is 0 everywhere
  compute_matched.png       the same rates against network passes spent per chain (mean nfe at k): which
                            fraction buys the most validity per unit of compute
  table.md, table.csv       the numbers (CSV: every k; Markdown: a few k)
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import system_python  # noqa: E402  (re-runs this script under /usr/bin/python3 when h5py is missing)

system_python.ensure()

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ipr_results as R  # noqa: E402


def panels(c):
    keys = []
    for key, _ in R.groups(c, by=("model", "selection")):
        keys.append(key)
    return keys


def plot(c, x_key, xlabel, path, title, y="rate"):
    keys = panels(c)
    fig, axes = plt.subplots(1, len(keys), figsize=(5.2 * len(keys), 4.0), squeeze=False)
    fractions = sorted(set(float(f) for f in c["fraction"]))
    cmap = plt.get_cmap("viridis")
    markers = ["o", "s", "^", "D", "v", "P", "X"]
    for ax, (model, sel) in zip(axes[0], keys):
        for j, fr in enumerate(fractions):
            m = (c["model"] == model) & (c["selection"] == sel) & (c["fraction"] == np.float32(fr))
            if not m.any():
                continue
            order = np.argsort(c["iteration"][m])
            x = np.asarray(c[x_key][m], dtype=float)[order]
            # identical curves (a fraction whose subset is every region, early stop...) would hide each other:
            # each fraction gets its own marker and a small horizontal offset; viridis stops short of its pale
            # yellow end, which is faint on white
            spread = (np.ptp(x) if len(x) > 1 else 1.0) or 1.0
            x = x + (j - (len(fractions) - 1) / 2.0) * 0.006 * spread
            color = cmap(0.85 * j / max(1, len(fractions) - 1))
            if y == "rate":
                lo, mid, hi = c["lo95"][m][order], c["rate"][m][order], c["hi95"][m][order]
            else:
                mid = c["mean_error"][m][order]
                half = 1.96 * np.nan_to_num(c["se_error"][m][order])
                lo, hi = mid - half, mid + half
            ax.plot(x, mid, marker=markers[j % len(markers)], ms=3.5, lw=1.4, color=color, label=f"fraction {fr:g}")
            ax.fill_between(x, lo, hi, color=color, alpha=0.18, lw=0)
        n = int(c["n"][(c["model"] == model) & (c["selection"] == sel)].max())
        ax.set_title(f"{model}, {sel} selection (n = {n} chains per point)", fontsize=9)
        ax.set_xlabel(xlabel)
        if x_key == "iteration":
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        if y == "rate":
            R.style_rate_axis(ax)
        else:
            ax.set_ylabel("mean error (lower is better)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    R.save_figure(fig, title, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", help="run directory or results.h5")
    ap.add_argument("--output", help="output directory (default RUN_DIR/report)")
    ap.add_argument("--title", help="figure title")
    a = ap.parse_args(argv)
    m = R.meta(a.run)
    c = R.curves(a.run)
    if not len(c["iteration"]):
        print("ipr_report: the run has no results rows", file=sys.stderr)
        return 1
    out = a.output or os.path.join(a.run if os.path.isdir(a.run) else os.path.dirname(a.run), "report")
    os.makedirs(out, exist_ok=True)
    limited = " [LIMITED RUN]" if int(m.get("limited", 0)) else ""
    title = a.title or (f"{m.get('benchmark', '?')}: valid rate with 95% Wilson intervals (run {m.get('run_id', '?')[:8]})"
                        + limited)
    plot(c, "iteration", "IPR iterations k", os.path.join(out, "valid_vs_iterations.png"), title)
    plot(c, "iteration", "IPR iterations k", os.path.join(out, "error_vs_iterations.png"),
         title.replace("valid rate with 95% Wilson intervals", "mean error with 95% intervals"), y="error")
    plot(c, "mean_nfe", "network passes per chain (mean, up to k)", os.path.join(out, "compute_matched.png"),
         title + ": compute-matched")
    R.write_table(c, os.path.join(out, "table.csv"), os.path.join(out, "table.md"), f"# {title}")
    print(f"ipr_report: {out}/valid_vs_iterations.png, error_vs_iterations.png, compute_matched.png, table.md, table.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
