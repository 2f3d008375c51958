"""probe_sudoku.py: what a Sudoku denoiser (a region-token DiT, train/srm_dit.py) has learned of the rules, without
the sampler. For each count of blank cells, every held-out grid's solution image gets that many random cells at
t = 1 (fresh noise) and the rest clean at t = 0; one forward pass; each blank cell's x_hat is read by the digit
classifier and compared with the solution's digit. Cells are grouped by how many digits their row, column and box
leave open among the known cells (1 = a naked single: one elimination step forces it). The last column counts the
readings that are one of those open digits, right or not (with many blanks a puzzle has other valid completions, and
a sampler needs each committed cell to be consistent, not the generator's solution), beside the open digits'
share of nine (a uniform guess's rate).

    python3 train/probe_sudoku.py models/sudoku_dit.h5 --count 64 --blanks 1,3,10,30,60
    python3 train/probe_sudoku.py models/sudoku_dit.h5 --count 256 --blanks 10,20,30,40 --units
    python3 train/probe_sudoku.py models/sudoku_dit.h5 --blanks 10,30 --noise-scale 0.5

--units groups the cells by what forces their digit instead: a "full house" (one of its row, column or box has every
other digit known), two units together (row + column, or a line + the box), only all three, or nothing (more than
one digit open). --noise-scale multiplies the blank cells' noise (still at t = 1): a model that has learned that such
a token carries nothing does not care (models/sudoku_dit.md).

The grids are the in-training validation's (dit_validate.VAL_START + i of the TRAIN stream; the TEST split is never
touched). Needs libipr (IPR_LIB or the build directory) for the instances. Prints a table; --json writes it.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import classifiers  # noqa: E402
import dit_validate as dv  # noqa: E402
import srm_data  # noqa: E402
import srm_dit  # noqa: E402


UNIT_KINDS = ("full house", "row + column", "line + box", "all three", "not forced")


def forced_by(truth, blank):
    """(B, 9, 9) digits and blank mask -> per blank cell (row-major order), the index in UNIT_KINDS of what forces its
    digit among the known cells: one unit alone, a row and a column, a line and the box, only all three, or nothing."""
    out = []
    for b in range(truth.shape[0]):
        for r in range(9):
            for c in range(9):
                if not blank[b, r, c]:
                    continue
                known = ~blank[b]
                row = set(truth[b, r][known[r]].tolist())
                col = set(truth[b, :, c][known[:, c]].tolist())
                br, bc = 3 * (r // 3), 3 * (c // 3)
                box = set(truth[b, br:br + 3, bc:bc + 3][known[br:br + 3, bc:bc + 3]].tolist())
                if len(row | col | box) < 8:
                    out.append(4)
                elif max(len(row), len(col), len(box)) == 8:
                    out.append(0)
                elif len(row | col) == 8:
                    out.append(1)
                elif len(row | box) == 8 or len(col | box) == 8:
                    out.append(2)
                else:
                    out.append(3)
    return np.array(out, dtype=np.int64)


def open_digits(truth, blank):
    """(B, 9, 9) digits and blank mask -> per blank cell (row-major order of the blank cells), the set of digits 1-9
    that its row, column and box leave open among the known cells."""
    B = truth.shape[0]
    out = []
    for b in range(B):
        for r in range(9):
            for c in range(9):
                if not blank[b, r, c]:
                    continue
                seen = set(truth[b, r][~blank[b, r]].tolist()) | set(truth[b, :, c][~blank[b, :, c]].tolist())
                br, bc = 3 * (r // 3), 3 * (c // 3)
                box, bbox = truth[b, br:br + 3, bc:bc + 3], blank[b, br:br + 3, bc:bc + 3]
                seen |= set(box[~bbox].tolist())
                out.append(set(range(1, 10)) - seen)
    return out


def candidates(truth, blank):
    """(B, 9, 9) digits and blank mask -> open digits per blank cell (row-major order of the blank cells)."""
    return np.array([len(o) for o in open_digits(truth, blank)])


@torch.no_grad()
def probe(model, clf, count, blanks_list, seed=5, data_seed=20250601, lib=None, noise_scale=1.0):
    """Rows of the table: per count of blank cells, the classifier's accuracy on the blank cells' x_hat against the
    solution digits (the generator's), overall and by open digits, and the fraction of grids with every blank right."""
    if (model.C, model.H, model.W, model.gh, model.gw) != (1, 252, 252, 9, 9):
        raise SystemExit("probe_sudoku: the model is not a Sudoku model (1 x 252 x 252, 9 x 9 regions)")
    gen = srm_data.Generator("sudoku", data_seed, srm_data.SPLIT_TRAIN, lib=lib)
    imgs, _, _ = gen.batch(dv.VAL_START, count)
    solution = np.stack([np.frombuffer(gen.make(dv.VAL_START + i).solution, dtype=np.uint8).copy()
                         for i in range(count)]).astype(np.int64)
    sm = dv.Sampler(model, None, torch.device("cpu"), amp=False)
    cr = sm.to_regions(srm_data.to_unit(imgs))
    B, R = cr.shape[:2]
    truth = torch.from_numpy(solution)
    g = torch.Generator().manual_seed(seed)
    rows = []
    for blanks in blanks_list:
        key = torch.rand((B, R), generator=g)
        blank = torch.argsort(torch.argsort(key, dim=1), dim=1) < blanks
        t = blank.float()
        z = torch.where(blank[..., None], noise_scale * torch.randn(cr.shape, generator=g), cr)
        u, _, _ = sm.net(z, t)
        x_hat = torch.clamp(z - t[..., None] * u, -1.0, 1.0)
        read = clf(x_hat[blank].reshape(-1, 1, 28, 28)).argmax(1)
        right = (read == truth[blank]).numpy()
        opened = open_digits(truth.reshape(B, 9, 9).numpy(), blank.reshape(B, 9, 9).numpy())
        ncand = np.array([len(o) for o in opened])
        # a reading among the digits the known cells leave open: what a sampler needs of a cell it commits while
        # other valid completions exist (a hard puzzle's random clues rarely force one solution)
        consistent = np.array([int(d) in o for d, o in zip(read.tolist(), opened)])
        kinds = forced_by(truth.reshape(B, 9, 9).numpy(), blank.reshape(B, 9, 9).numpy())
        row = {"blanks": blanks, "cells": int(right.size), "cell_acc": float(right.mean()),
               "cell_consistent": float(consistent.mean()), "open_mean": float(ncand.mean()),
               "grid_all_right": float(right.reshape(B, blanks).all(1).mean()), "by_candidates": {}, "by_unit": {}}
        for k in range(1, 10):
            m = ncand == k
            if m.any():
                row["by_candidates"][k] = {"n": int(m.sum()), "acc": float(right[m].mean())}
        for k, name in enumerate(UNIT_KINDS):
            m = kinds == k
            if m.any():
                row["by_unit"][name] = {"n": int(m.sum()), "acc": float(right[m].mean())}
        rows.append(row)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--count", type=int, default=64, help="held-out grids")
    ap.add_argument("--blanks", default="1,3,10,30,60", help="comma-separated counts of blank cells (1..81)")
    ap.add_argument("--scorer", default=os.path.join(os.path.dirname(__file__), "..", "models", "digit_classifier.h5"))
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--units", action="store_true", help="group the cells by what forces their digit")
    ap.add_argument("--noise-scale", type=float, default=1.0, help="multiply the blank cells' noise (t stays 1)")
    ap.add_argument("--lib", help="libipr.so (default: IPR_LIB or the build directory)")
    ap.add_argument("--json", help="also write the table here")
    args = ap.parse_args(argv)
    try:
        blanks = [int(b) for b in args.blanks.split(",")]
    except ValueError:
        raise SystemExit(f"probe_sudoku: --blanks {args.blanks!r} is not a list of integers")
    if not blanks or any(b < 1 or b > 81 for b in blanks):
        raise SystemExit("probe_sudoku: every --blanks count must be in 1..81")
    if args.count < 1:
        raise SystemExit("probe_sudoku: --count must be at least 1")
    if not np.isfinite(args.noise_scale) or args.noise_scale < 0:
        raise SystemExit("probe_sudoku: --noise-scale must be a finite number >= 0")
    torch.set_grad_enabled(False)
    model = srm_dit.load_model(args.checkpoint)[0].eval()
    clf = classifiers.load_h5(args.scorer)
    rows = probe(model, clf, args.count, blanks, args.seed, lib=args.lib, noise_scale=args.noise_scale)
    scaled = f", their noise times {args.noise_scale:g}" if args.noise_scale != 1.0 else ""
    if args.units:
        print(f"{args.checkpoint}: {args.count} held-out grids, blank cells at t = 1{scaled}, one forward, x_hat read by "
              "the digit classifier; accuracy by what forces the digit among the known cells")
        print("| blank cells | all | " + " | ".join(UNIT_KINDS) + " |")
        print("|---|---|" + "---|" * len(UNIT_KINDS))
        for r in rows:
            bu = r["by_unit"]
            print(f"| {r['blanks']} | {r['cell_acc']:.1%} ({r['cells']}) | " + " | ".join(
                f"{bu[k]['acc']:.1%} ({bu[k]['n']})" if k in bu else "-" for k in UNIT_KINDS) + " |")
        rows_print = []
    else:
        rows_print = rows
        print(f"{args.checkpoint}: {args.count} held-out grids, blank cells at t = 1{scaled}, one forward, x_hat read by "
              "the digit classifier; accuracy by the digits left open among the known cells")
        print("| blank cells | all | 1 candidate | 2 | 3 | 4-9 | grids all right | read as an open digit (chance) |")
        print("|---|---|---|---|---|---|---|---|")
    for r in rows_print:
        bc = r["by_candidates"]

        def cell(ks):
            n = sum(bc[k]["n"] for k in ks if k in bc)
            if n == 0:
                return "-"
            return f"{sum(bc[k]['acc'] * bc[k]['n'] for k in ks if k in bc) / n:.1%} ({n})"
        print(f"| {r['blanks']} | {r['cell_acc']:.1%} ({r['cells']}) | {cell([1])} | {cell([2])} | {cell([3])} | "
              f"{cell(range(4, 10))} | {r['grid_all_right']:.1%} | {r['cell_consistent']:.1%} "
              f"({r['open_mean'] / 9:.0%}) |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"checkpoint": args.checkpoint, "count": args.count, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
