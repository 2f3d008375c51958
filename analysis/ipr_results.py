#!/usr/bin/env python3
"""ipr_results.py: read the results.h5 of an `ipr run` (or its run directory) into tables.

    import ipr_results as R
    t = R.load("runs/quickstart")            # /results: one row per chain and iteration k
    c = R.curves("runs/quickstart")          # valid rate per (model, selection, fraction, k) + 95% Wilson CI
    m = R.meta("runs/quickstart")            # config, names, seeds, attributes

`load` returns a pandas DataFrame when pandas is installed, else a dict of NumPy arrays (column -> array);
`model` and `selection` (and /chains' `solution_match`) hold names (the integer codes stay in `model_code` /
`selection_code` / `solution_match_code`).
The file is plain HDF5 (one 1-D dataset per column), so h5py alone reads it too:
    {k: f["results"][k][()] for k in f["results"]}.  `pandas.read_hdf` does not work on it (that reads
    PyTables layouts only).
"""
import json
import math
import os

import h5py
import numpy as np

try:  # pandas is optional (Debian's python3-pandas); without it tables are dicts of arrays
    import pandas as _pd
except ImportError:  # pragma: no cover - depends on the machine
    _pd = None

TABLES = ("results", "chains", "units", "timing")
Z95 = 1.959963984540054  # two-sided 95% normal quantile


def results_path(path):
    """A run directory or a results.h5 file -> the results.h5 path."""
    p = os.path.join(path, "results.h5") if os.path.isdir(path) else path
    if not os.path.exists(p):
        raise FileNotFoundError(f"{p}: no results.h5 (has the run finished? `ipr merge` writes it)")
    return p


def _str(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def _strings(ds):
    return [_str(x) for x in ds[()]]


def meta(path):
    """The run's self-description: attributes, the resolved config and the code tables."""
    with h5py.File(results_path(path), "r") as f:
        m = {k: (_str(v) if isinstance(v, (bytes, str)) else v.item() if hasattr(v, "item") else v)
             for k, v in f.attrs.items()}
        g = f["meta"]
        m["config"] = json.loads(_str(g["config_json"][()]))
        for k in ("model_names", "selection_names", "model_sha256", "host_names", "session_names", "device_names",
                  "benchmark_names"):
            if k in g:
                m[k] = _strings(g[k])
        m["fractions"] = g["fractions"][()].tolist()
        m["seeds"] = [int(s) for s in g["seeds"][()]]
        m["provenance"] = json.loads(_str(g["provenance_json"][()]))
    return m


def _frame(cols):
    return _pd.DataFrame(cols) if _pd is not None else cols


def load(path, table="results", names=True, as_dict=False):
    """One table of results.h5 as a DataFrame (dict of arrays without pandas, or with as_dict=True)."""
    if table not in TABLES:
        raise ValueError(f"table must be one of {TABLES}")
    with h5py.File(results_path(path), "r") as f:
        cols = {k: f[table][k][()] for k in f[table]}
        if names and table != "timing":
            for key, lookup in (("model", "model_names"), ("selection", "selection_names"),
                                ("solution_match", "solution_match_names")):
                if key in cols and lookup in f["meta"]:
                    table_names = np.array(_strings(f["meta"][lookup]), dtype=object)
                    cols[key + "_code"] = cols[key]
                    cols[key] = table_names[cols[key].astype(np.int64)]
        if table == "timing":
            for key, lookup in (("host", "host_names"), ("session", "session_names"), ("device", "device_names")):
                table_names = np.array(_strings(f["meta"][lookup]) or [""], dtype=object)
                cols[key + "_code"] = cols[key]
                cols[key] = table_names[np.minimum(cols[key].astype(np.int64), len(table_names) - 1)]
    return cols if as_dict else _frame(cols)


def wilson(k, n, z=Z95):
    """Wilson score interval of k successes in n trials (arrays or scalars); n = 0 gives [0, 1]."""
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(n > 0, k / np.maximum(n, 1), 0.0)
        den = 1 + z * z / np.maximum(n, 1)
        centre = (p + z * z / (2 * np.maximum(n, 1))) / den
        half = z * np.sqrt(p * (1 - p) / np.maximum(n, 1) + z * z / (4 * np.maximum(n, 1) ** 2)) / den
    lo = np.where(n > 0, np.clip(centre - half, 0, 1), 0.0)
    hi = np.where(n > 0, np.clip(centre + half, 0, 1), 1.0)
    return lo, hi


def curves(path, by=("model", "selection", "fraction")):
    """Valid rate against k per group: a dict of arrays (columns: the `by` keys, iteration, n, valid, rate,
    lo95, hi95, mean_error, se_error, mean_nfe), rows sorted by group then k; se_error is the standard error of
    mean_error (sample standard deviation / sqrt(n)). Only units with status ok contribute."""
    t = load(path, "results", as_dict=True)
    keys = list(by) + ["iteration"]
    # sort on the integer codes where there are some (config order), report names
    cols = [np.asarray(t[k]) for k in keys]
    sort_cols = [np.asarray(t.get(k + "_code", t[k])) for k in keys]
    order = np.lexsort(sort_cols[::-1])
    sorted_cols = [c[order] for c in cols]
    change = np.zeros(len(order), dtype=bool)
    if len(order):
        change[0] = True
        for c in sorted_cols:
            change[1:] |= c[1:] != c[:-1]
    starts = np.flatnonzero(change)
    ends = np.append(starts[1:], len(order))
    out = {k: [] for k in keys + ["n", "valid", "rate", "lo95", "hi95", "mean_error", "se_error", "mean_nfe"]}
    valid = np.asarray(t["valid"], dtype=float)[order]
    err = np.asarray(t["error"], dtype=float)[order]
    nfe = np.asarray(t["nfe"], dtype=float)[order]
    for s, e in zip(starts, ends):
        for k, c in zip(keys, sorted_cols):
            out[k].append(c[s])
        n = e - s
        v = valid[s:e].sum()
        out["n"].append(n)
        out["valid"].append(v)
        out["rate"].append(v / n if n else 0.0)
        out["mean_error"].append(float(np.nanmean(err[s:e])) if n else math.nan)
        out["se_error"].append(float(np.nanstd(err[s:e], ddof=1) / math.sqrt(n)) if n > 1 else math.nan)
        out["mean_nfe"].append(nfe[s:e].mean() if n else math.nan)
    lo, hi = wilson(np.array(out["valid"]), np.array(out["n"]))
    out["lo95"], out["hi95"] = list(lo), list(hi)
    return {k: np.array(v) for k, v in out.items()}


def groups(c, by=("model", "selection", "fraction")):
    """Distinct groups of a curves() table in order, each as (key tuple, row mask)."""
    seen = []
    for i in range(len(c["iteration"])):
        key = tuple(c[k][i] for k in by)
        if key not in seen:
            seen.append(key)
    for key in seen:
        mask = np.ones(len(c["iteration"]), dtype=bool)
        for k, v in zip(by, key):
            mask &= c[k] == v
        yield key, mask


def mcnemar_exact(b, c):
    """Two-sided exact McNemar p-value from the discordant counts b (A valid, B not) and c (B valid, A not)."""
    n = int(b + c)
    if n == 0:
        return 1.0
    k = int(min(b, c))
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


def newcombe(k1, n1, k2, n2, z=Z95):
    """95% CI of p2 - p1 for independent proportions (Newcombe's hybrid Wilson score method 10)."""
    p1, p2 = k1 / n1 if n1 else 0.0, k2 / n2 if n2 else 0.0
    l1, u1 = wilson(k1, n1, z)
    l2, u2 = wilson(k2, n2, z)
    d = p2 - p1
    lo = d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    hi = d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return d, float(lo), float(hi)


def write_table(c, path_csv, path_md, title, k_columns=None):
    """curves() as CSV (every row) and Markdown (one row per group, a few k columns)."""
    names = ["model", "selection", "fraction", "iteration", "n", "valid", "rate", "lo95", "hi95", "mean_error",
             "se_error", "mean_nfe"]
    with open(path_csv, "w") as out:
        out.write(",".join(names) + "\n")
        for i in range(len(c["iteration"])):
            row = []
            for k in names:
                v = c[k][i]
                row.append(f"{v:.6g}" if isinstance(v, (float, np.floating)) else str(v))
            out.write(",".join(row) + "\n")
    K = int(c["iteration"].max()) if len(c["iteration"]) else 0
    ks = k_columns or (list(range(K + 1)) if K <= 6 else sorted({0, 1, 2, 5, 10, 20, 30, K} & set(range(K + 1))))
    with open(path_md, "w") as out:
        out.write(f"{title}\n\n| model | selection | fraction | n |" + "".join(f" k={k} |" for k in ks) +
                  " 95% CI at K | mean error k=0 -> K | passes at K |\n|---|---|---|---|" + "---|" * len(ks) +
                  "---|---|---|\n")
        for key, mask in groups(c):
            rows = {int(c["iteration"][i]): i for i in np.flatnonzero(mask)}
            last = rows[max(rows)]
            out.write(f"| {key[0]} | {key[1]} | {key[2]:g} | {int(c['n'][last])} |" +
                      "".join(f" {c['rate'][rows[k]]:.3f} |" if k in rows else " |" for k in ks) +
                      f" [{c['lo95'][last]:.3f}, {c['hi95'][last]:.3f}] |"
                      f" {c['mean_error'][rows[min(rows)]]:.2f} -> {c['mean_error'][last]:.2f} |"
                      f" {c['mean_nfe'][last]:.0f} |\n")


def style_rate_axis(ax):
    """The y axis, grid and legend every valid-rate panel of analysis/ shares."""
    ax.set_ylabel("valid rate")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def save_figure(fig, title, path):
    """Title, lay out, write (120 dpi) and close a figure."""
    import matplotlib.pyplot as plt  # here, so that loading results never needs matplotlib

    import textwrap

    # wrap the title to the figure's width (about 11 characters an inch at 10 pt and 120 dpi), so that a one-panel figure
    # does not cut a long title at both ends, and keep room for it above the panels
    width_in = fig.get_size_inches()[0]
    lines = textwrap.wrap(title, max(30, int(width_in * 11)))
    fig.suptitle("\n".join(lines), fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.03 * len(lines) * 4.0 / fig.get_size_inches()[1]))
    fig.savefig(path, dpi=120)
    plt.close(fig)
