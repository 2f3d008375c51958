#!/usr/bin/env python3
"""ipr_paper_figure.py: one figure of an `ipr run` against the IPR paper's headline numbers.

usage: ipr_paper_figure.py RUN_DIR|results.h5 [--output FILE.png] [--title TEXT]

Plots the valid rate against IPR iterations k = 0..K, one line per (model, selection, fraction) of the run
(its own colour and marker), with 95% Wilson intervals (shaded, and as error bars at the ends) pooled over
seeds. For hard MNIST Sudoku in generate mode it marks the paper's two numbers (IPR abstract, Kang, Yoon, Ahn,
ICLR 2026 workshop; spec 5.1): the base SRM sampler's 55.8% at k = 0 and 75.0% with IPR, placed at k = 30
because the reference ran max_ipr_budget = 30 (spec 3.3). The paper gives no sample count, so those two points
carry no interval. For any other benchmark, difficulty or mode the points are left out and the title says so.

Default output: RUN_DIR/report/paper_figure.png, or <results>_paper_figure.png beside a results file.
"""
import argparse
import os
import sys
import textwrap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import system_python  # noqa: E402  (re-runs this script under /usr/bin/python3 when h5py is missing)

system_python.ensure()

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

import ipr_results as R  # noqa: E402

# The paper's numbers (spec 5.1: IPR abstract, OpenReview QopjICzGwr / arXiv 2605.19317).
PAPER_CITE = "Kang, Yoon, Ahn, ICLR 2026 workshop"
PAPER_BASE = 0.558   # base SRM sampler, k = 0
PAPER_IPR = 0.750    # with IPR
PAPER_K = 30         # the reference's max_ipr_budget (ms_hard_test, spec 3.3)

# Saturated colours only (no yellow, light grey or pastel), and one marker each.
COLORS = ["#1f4e9c", "#c0392b", "#1e8449", "#7d3c98", "#d35400", "#117a65", "#a93226", "#2e4053",
          "#b9770e", "#6c3483"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "h"]


def _int_attr(m, key, default=0):
    try:
        return int(m.get(key, default))
    except (TypeError, ValueError):
        return default


def describe(m):
    """(benchmark label, whether the paper's points apply, why not) from the run's metadata."""
    cfg = m.get("config", {})
    bench = str(m.get("benchmark") or cfg.get("benchmark") or "?")
    if bench == "mnist_sudoku":
        bench = "sudoku"
    difficulty = cfg.get("difficulty")
    mode = cfg.get("mode", "generate")
    from_file = bool((cfg.get("instances") or {}).get("file")) if isinstance(cfg.get("instances"), dict) else False
    if bench == "sudoku":
        label = "MNIST Sudoku"
        if from_file:
            label += " (instance file)"
        elif difficulty:
            label += f" ({difficulty})"
        if mode == "correction":
            label += ", correction mode"
        ok = bench == "sudoku" and difficulty == "hard" and mode != "correction" and not from_file
        why = "" if ok else "the paper's numbers are for hard Sudoku generated from clues"
        return label, ok, why
    label = {"even_pixels": "Even Pixels", "counting_polygons": "Counting Polygons"}.get(bench, bench)
    return label, False, "the paper's numbers are for hard Sudoku only"


def plot(path, out, title=None):
    m = R.meta(path)
    c = R.curves(path)
    if not len(c["iteration"]):
        raise SystemExit("ipr_paper_figure: the run has no results rows")
    bench, paper, why = describe(m)
    K = int(c["iteration"].max())

    fig, ax = plt.subplots(figsize=(7.6, 5.0))
    groups = list(R.groups(c))
    n_groups = len(groups)
    for j, ((model, sel, frac), mask) in enumerate(groups):
        order = np.argsort(c["iteration"][mask])
        k = np.asarray(c["iteration"][mask], dtype=float)[order]
        valid = np.asarray(c["valid"][mask], dtype=float)[order]
        n = np.asarray(c["n"][mask], dtype=float)[order]
        rate = np.where(n > 0, valid / np.maximum(n, 1), 0.0)
        lo, hi = R.wilson(valid, n)
        # a small horizontal offset per line, so that identical curves (all 0, say) stay visible
        x = k + (j - (n_groups - 1) / 2.0) * 0.12 if n_groups > 1 else k
        color, marker = COLORS[j % len(COLORS)], MARKERS[j % len(MARKERS)]
        label = (f"{model}, {sel}, fraction {float(frac):g}: {rate[0]:.1%} at k=0 -> {rate[-1]:.1%} at k={int(k[-1])}"
                 f" (n = {int(n.max())})")
        ax.fill_between(x, lo, hi, color=color, alpha=0.16, lw=0)
        ax.plot(x, rate, color=color, marker=marker, ms=4.5, lw=1.6, markevery=max(1, len(x) // 16) if len(x) > 40
                else 1, label=label, zorder=3)
        ends = [0, len(x) - 1] if len(x) > 1 else [0]
        yerr = [np.maximum(rate[ends] - lo[ends], 0), np.maximum(hi[ends] - rate[ends], 0)]
        ax.errorbar(x[ends], rate[ends], yerr=yerr, fmt="none", ecolor=color, elinewidth=1.3, capsize=4, zorder=3)

    if paper:
        kw = dict(marker="*", ms=15, color="black", mec="black", ls="none", zorder=5)
        ax.plot([0], [PAPER_BASE], **kw, label=f"IPR paper ({PAPER_CITE}): base SRM {PAPER_BASE:.1%}, "
                                                f"with IPR {PAPER_IPR:.1%} (at K = {PAPER_K})")
        ax.plot([PAPER_K], [PAPER_IPR], **kw)
        box = dict(boxstyle="round,pad=0.25", fc="white", ec="black", lw=0.8)
        ax.annotate(f"paper: base SRM\n{PAPER_BASE:.1%} (k = 0)", (0, PAPER_BASE), xytext=(12, -6),
                    textcoords="offset points", fontsize=8.5, va="top", bbox=box)
        ax.annotate(f"paper: with IPR\n{PAPER_IPR:.1%} (k = {PAPER_K})", (PAPER_K, PAPER_IPR), xytext=(-12, 10),
                    textcoords="offset points", fontsize=8.5, ha="right", va="bottom", bbox=box)
    right = max(K, PAPER_K if paper else 0)
    ax.set_xlim(-0.6 - 0.04 * right, right + 0.6 + 0.04 * right)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("IPR iterations k (k = 0: the base SRM sample)")
    ax.set_ylabel("valid rate (95% Wilson interval)")
    ax.set_ylim(-0.02, 1.02)
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
    ax.grid(alpha=0.35)
    ax.legend(fontsize=7.5, loc="best", framealpha=0.95)

    lo_n, hi_n = int(np.min(c["n"])), int(np.max(c["n"]))
    chains = f"{hi_n}" if lo_n == hi_n else f"{lo_n}..{hi_n}"
    limited = " [LIMITED RUN]" if _int_attr(m, "limited") else ""
    partial = "" if _int_attr(m, "complete", 1) else " [PARTIAL MERGE]"
    if title is None:
        title = (f"{bench}: valid rate against IPR iterations k = 0..{K} ({chains} chains per point, "
                 f"95% Wilson intervals)")
        if paper:
            title += (f"; stars: the IPR paper ({PAPER_CITE}), base SRM {PAPER_BASE:.1%} at k = 0 and "
                      f"{PAPER_IPR:.1%} with IPR at k = {PAPER_K}")
            if K < PAPER_K:
                title += f" (this run stops at K = {K})"
        else:
            title += f"; paper points not shown: {why}"
        title += limited + partial
    lines = textwrap.wrap(title, 92)
    ax.set_title("\n".join(lines), fontsize=9.5)
    fig.tight_layout()
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return paper


def default_output(path):
    if os.path.isdir(path):
        return os.path.join(path, "report", "paper_figure.png")
    stem = os.path.splitext(path)[0]
    return stem + "_paper_figure.png"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", help="run directory or results.h5")
    ap.add_argument("--output", help="PNG to write (default RUN_DIR/report/paper_figure.png or "
                                     "<results>_paper_figure.png)")
    ap.add_argument("--title", help="figure title instead of the generated one")
    a = ap.parse_args(argv)
    out = a.output or default_output(a.run)
    if os.path.dirname(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
    paper = plot(a.run, out, a.title)
    print(f"ipr_paper_figure: {out}" +
          (" (with the paper's points)" if paper else " (no paper points: not hard Sudoku)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
