"""plot_losses.py: the loss-curve PNG of a model card from a train_srm.py log (CKPT_DIR/log.csv): the total loss
and its three terms (spec 2.2) against samples seen, smoothed over a few log rows.

Usage: python3 train/plot_losses.py LOG.csv OUT.png [--title TEXT]
"""
import argparse
import csv

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def smooth(y, k):
    if k <= 1 or len(y) < k:
        return np.asarray(y)
    c = np.cumsum(np.insert(np.asarray(y, dtype=float), 0, 0.0))
    head = [np.mean(y[:i + 1]) for i in range(k - 1)]
    return np.concatenate([head, (c[k:] - c[:-k]) / k])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("log")
    ap.add_argument("output")
    ap.add_argument("--title", default="")
    ap.add_argument("--smooth", type=int, default=5)
    a = ap.parse_args(argv)
    with open(a.log) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SystemExit(f"{a.log}: no rows")
    s = np.array([float(r["samples"]) for r in rows])
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    for key, label in (("loss", "total"), ("mu", "L_mu"), ("vlb", "L_vlb (bits)")):
        ax[0].plot(s, smooth([float(r[key]) for r in rows], a.smooth), label=label)
    ax[0].set_yscale("log")
    ax[0].set_xlabel("samples seen")
    ax[0].legend()
    ax[0].set_title("training losses (per-step means, smoothed)")
    ax[1].plot(s, smooth([float(r["sigma"]) for r in rows], a.smooth), color="C3", label="L_sigma (weight 0.01)")
    ax[1].set_xlabel("samples seen")
    ax[1].legend()
    ax[1].set_title("uncertainty head NLL")
    if a.title:
        fig.suptitle(a.title)
    fig.tight_layout()
    fig.savefig(a.output, dpi=100)


if __name__ == "__main__":
    main()
