#!/usr/bin/env python3
"""compare_results.py A.h5 B.h5: exit 0 when two results.h5 files hold the same results.

Every dataset is compared element by element, except those that record where, when and how units ran
(/timing/*, /meta/provenance_json, /meta/operational_json (batch size, threads), and
/meta/{host,session,device}_names); root attributes likewise except run_id. Prints the first
differences and exits 1 otherwise."""
import sys

import h5py
import numpy as np

VARYING = {"/meta/provenance_json", "/meta/operational_json", "/meta/host_names", "/meta/session_names",
           "/meta/device_names"}
VARYING_ATTRS = {"run_id"}


def datasets(f):
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            path = "/" + name
            if not path.startswith("/timing/") and path not in VARYING:
                out[path] = obj[()]

    f.visititems(visit)
    return out


def main():
    a_path, b_path = sys.argv[1], sys.argv[2]
    problems = []
    with h5py.File(a_path, "r") as a, h5py.File(b_path, "r") as b:
        da, db = datasets(a), datasets(b)
        if set(da) != set(db):
            problems.append(f"dataset sets differ: {sorted(set(da) ^ set(db))}")
        for k in sorted(set(da) & set(db)):
            x, y = da[k], db[k]
            if isinstance(x, np.ndarray) and isinstance(y, np.ndarray):
                if x.shape != y.shape or x.dtype != y.dtype or not np.array_equal(x, y):
                    problems.append(f"{k}: differs (shapes {x.shape} / {y.shape})")
            elif x != y:
                problems.append(f"{k}: differs")
        for k in sorted(set(a.attrs) | set(b.attrs)):
            if k in VARYING_ATTRS:
                continue
            if k not in a.attrs or k not in b.attrs or a.attrs[k] != b.attrs[k]:
                problems.append(f"attribute {k}: {a.attrs.get(k)!r} / {b.attrs.get(k)!r}")
        n = len(da.get("/results/valid", []))
    if problems:
        for p in problems[:20]:
            print("differ:", p)
        return 1
    print(f"same results: {len(da)} datasets, {n} result rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
