#!/usr/bin/env python3
"""ipr_compare.py: compare two `ipr run`s (or two conditions) point by point.

usage: ipr_compare.py RUN_A RUN_B [--labels A B] [--output DIR] [--ignore-model]

For every (model, selection, fraction, k) present in both runs: valid rates with 95% Wilson intervals, the
difference B - A with Newcombe's 95% interval, and, for chains present in both (same instance and seed:
the runs sampled the same problems), the discordant counts and McNemar's exact p-value, and the paired mean
error difference B - A with its standard error and how many chains B scores lower / higher (the signal where
every valid rate is 0). Writes compare.png (valid rate against k, A dashed, B solid, per fraction),
compare.csv and compare.md. Models are matched by name, so two checkpoints of the same name in different runs
are compared; --ignore-model matches (selection, fraction, k) alone, for two single-model runs of checkpoints
with different names (two trainings of one model, say).
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

POINT = ("model", "selection", "fraction", "iteration")
POINT_ANY_MODEL = ("selection", "fraction", "iteration")
CHAIN = ("seed", "instance")


def index(t, keys):
    """dict key tuple -> row indices."""
    out = {}
    cols = [t[k] for k in keys]
    for i in range(len(cols[0])):
        out.setdefault(tuple(c[i].item() if hasattr(c[i], "item") else c[i] for c in cols), []).append(i)
    return out


def compare(ta, tb, point_a=POINT, point_b=POINT):
    """Rows of the comparison of two results tables (dicts of arrays). point_a/point_b name the key columns
    of each side (they differ when comparing two selections of one run)."""
    ia, ib = index(ta, point_a), index(tb, point_b)
    rows = []
    for key in sorted(set(ia) & set(ib), key=lambda k: tuple(str(x) for x in k[:-1]) + (k[-1],)):
        ra, rb = np.array(ia[key]), np.array(ib[key])
        ka, kb = float(ta["valid"][ra].sum()), float(tb["valid"][rb].sum())
        na, nb = len(ra), len(rb)
        la, ha = R.wilson(ka, na)
        lb, hb = R.wilson(kb, nb)
        d, dlo, dhi = R.newcombe(ka, na, kb, nb)
        # pairs: the same (seed, instance) on both sides
        pa = {(int(ta["seed"][i]), int(ta["instance"][i])): i for i in ra}
        b = c = npair = 0
        ed = []  # paired error differences B - A where both are scored
        for i in rb:
            k = (int(tb["seed"][i]), int(tb["instance"][i]))
            if k in pa:
                npair += 1
                va, vb = int(ta["valid"][pa[k]]), int(tb["valid"][i])
                b += va and not vb
                c += vb and not va
                e = float(tb["error"][i]) - float(ta["error"][pa[k]])
                if np.isfinite(e):
                    ed.append(e)
        ed = np.array(ed)
        rows.append({"err_a": float(np.nanmean(ta["error"][ra])) if np.isfinite(ta["error"][ra]).any() else float("nan"),
                     "err_b": float(np.nanmean(tb["error"][rb])) if np.isfinite(tb["error"][rb]).any() else float("nan"),
                     "err_diff": float(ed.mean()) if len(ed) else float("nan"),
                     "err_se": float(ed.std(ddof=1) / np.sqrt(len(ed))) if len(ed) > 1 else float("nan"),
                     "err_lower": int((ed < 0).sum()), "err_higher": int((ed > 0).sum()),"point": key, "n_a": na, "rate_a": ka / na, "lo_a": float(la), "hi_a": float(ha), "n_b": nb,
                     "rate_b": kb / nb, "lo_b": float(lb), "hi_b": float(hb), "diff": d, "diff_lo": dlo,
                     "diff_hi": dhi, "pairs": npair, "a_only": b, "b_only": c,
                     "mcnemar_p": R.mcnemar_exact(b, c) if npair else float("nan")})
    return rows


def write(rows, labels, out, title, point_names=POINT):
    a, b = labels
    with open(os.path.join(out, "compare.csv"), "w") as f:
        f.write(",".join(point_names) + f",n_{a},rate_{a},lo95_{a},hi95_{a},n_{b},rate_{b},lo95_{b},hi95_{b},"
                "diff,diff_lo95,diff_hi95,pairs,only_a_valid,only_b_valid,mcnemar_p,error_a,error_b,error_diff,"
                "error_diff_se,b_error_lower,b_error_higher\n")
        for r in rows:
            f.write(",".join(str(x) for x in r["point"]) +
                    f",{r['n_a']},{r['rate_a']:.6f},{r['lo_a']:.6f},{r['hi_a']:.6f},{r['n_b']},{r['rate_b']:.6f},"
                    f"{r['lo_b']:.6f},{r['hi_b']:.6f},{r['diff']:.6f},{r['diff_lo']:.6f},{r['diff_hi']:.6f},"
                    f"{r['pairs']},{r['a_only']},{r['b_only']},{r['mcnemar_p']:.6g},{r['err_a']:.6g},{r['err_b']:.6g},"
                    f"{r['err_diff']:.6g},{r['err_se']:.6g},{r['err_lower']},{r['err_higher']}\n")
    with open(os.path.join(out, "compare.md"), "w") as f:
        f.write(f"# {title}\n\nA = {a}, B = {b}. Difference B - A with Newcombe's 95% interval; McNemar's exact "
                "test over chains present in both (same seed and instance); mean error of each side and the paired "
                "error difference B - A (standard error), with the chains B scores lower / higher.\n\n")
        f.write("| " + " | ".join(point_names) + " | rate A | rate B | B - A [95% CI] | pairs | only A | only B | "
                "McNemar p | error A | error B | error B - A (se) | B lower / higher |\n|" +
                "---|" * (len(point_names) + 11) + "\n")
        for r in rows:
            f.write("| " + " | ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in r["point"]) +
                    f" | {r['rate_a']:.3f} | {r['rate_b']:.3f} | {r['diff']:+.3f} [{r['diff_lo']:+.3f}, "
                    f"{r['diff_hi']:+.3f}] | {r['pairs']} | {r['a_only']} | {r['b_only']} | {r['mcnemar_p']:.3g} | "
                    f"{r['err_a']:.2f} | {r['err_b']:.2f} | {r['err_diff']:+.2f} ({r['err_se']:.2f}) | "
                    f"{r['err_lower']} / {r['err_higher']} |\n")


def plot(rows, labels, path, title):
    """One panel per fraction (and model/selection when several): A dashed, B solid, Wilson bands."""
    panels = sorted({r["point"][:-1] for r in rows}, key=lambda k: tuple(str(x) for x in k))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
    for ax, p in zip(axes[0], panels):
        sel = sorted((r for r in rows if r["point"][:-1] == p), key=lambda r: r["point"][-1])
        k = [r["point"][-1] for r in sel]
        for side, style, lab in (("a", "--", labels[0]), ("b", "-", labels[1])):
            y = [r["rate_" + side] for r in sel]
            ax.plot(k, y, style, marker="o", ms=3, label=lab)
            ax.fill_between(k, [r["lo_" + side] for r in sel], [r["hi_" + side] for r in sel], alpha=0.15, lw=0)
        ax.set_title(", ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in p), fontsize=9)
        ax.set_xlabel("IPR iterations k")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        R.style_rate_axis(ax)
    R.save_figure(fig, title, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_a")
    ap.add_argument("run_b")
    ap.add_argument("--labels", nargs=2, default=None)
    ap.add_argument("--output", default="compare")
    ap.add_argument("--ignore-model", action="store_true",
                    help="match (selection, fraction, k) alone: two single-model runs of differently named checkpoints")
    a = ap.parse_args(argv)
    labels = a.labels or [os.path.basename(os.path.normpath(a.run_a)), os.path.basename(os.path.normpath(a.run_b))]
    ta = R.load(a.run_a, as_dict=True)
    tb = R.load(a.run_b, as_dict=True)
    point = POINT_ANY_MODEL if a.ignore_model else POINT
    if a.ignore_model:
        for t, run in ((ta, a.run_a), (tb, a.run_b)):
            if len(np.unique(t["model"])) > 1:
                print(f"ipr_compare: --ignore-model needs single-model runs; {run} holds several", file=sys.stderr)
                return 1
    rows = compare(ta, tb, point, point)
    if not rows:
        print(f"ipr_compare: the runs share no ({', '.join(point)}) point", file=sys.stderr)
        return 1
    os.makedirs(a.output, exist_ok=True)
    title = f"{labels[1]} vs {labels[0]}"
    write(rows, labels, a.output, title, point)
    plot(rows, labels, os.path.join(a.output, "compare.png"), title)
    print(f"ipr_compare: {a.output}/compare.png, compare.md, compare.csv ({len(rows)} points)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
