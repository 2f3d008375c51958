#!/usr/bin/env python3
"""plot_instances.py: draw the first few instances of `ipr datagen` files, one row per file.

usage: plot_instances.py [--count K] --output PNG FILE.h5 [FILE.h5 ...]
Sudoku cells that are clues are outlined; Counting Polygons panels are titled with their labels.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import system_python  # noqa: E402  (re-runs this script under /usr/bin/python3 when h5py is missing)

system_python.ensure()

import h5py  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def attr(f, name):
    v = f.attrs[name]
    return v.decode() if isinstance(v, bytes) else v


def title(f, bench, i):
    if bench == "sudoku":
        return f"#{f['index'][i]}: {int(f['num_given'][i])} clues"
    if bench == "even_pixels":
        return f"#{f['index'][i]}: h0={f['hue_offset'][i]:.2f}"
    return f"#{f['index'][i]}: {int(f['num_polygons'][i])} x {int(f['num_vertices'][i])}-gon"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--output", required=True)
    ap.add_argument("--count", type=int, default=6)
    args = ap.parse_args(argv)
    fig, axes = plt.subplots(len(args.files), args.count, figsize=(2.2 * args.count, 2.5 * len(args.files)),
                             squeeze=False)
    for row, path in enumerate(args.files):
        with h5py.File(path, "r") as f:
            if attr(f, "format") != "ipr-datagen":
                sys.exit(f"{path}: not an `ipr datagen` file")
            bench = attr(f, "benchmark")
            n = min(args.count, f["images"].shape[0])
            for i in range(args.count):
                ax = axes[row][i]
                ax.axis("off")
                if i >= n:
                    continue
                img = f["images"][i]
                ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=255,
                          interpolation="nearest")
                if bench == "sudoku":
                    given = f["given"][i]
                    for r, c in zip(*np.nonzero(given)):
                        ax.add_patch(plt.Rectangle((c * 28 - 0.5, r * 28 - 0.5), 28, 28, fill=False,
                                                   edgecolor="tab:orange", linewidth=0.8))
                ax.set_title(title(f, bench, i), fontsize=8)
            axes[row][0].text(-0.08, 0.5, bench, transform=axes[row][0].transAxes, rotation=90,
                              va="center", ha="right", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main(sys.argv[1:])
