"""check_export.py: check that an exported SRM checkpoint loads in the C engine (`ipr forward`, CPU) and that
its output matches the PyTorch forward of the same file within 1e-4 relative L2 (fixtures/README.md bound).

Usage: python3 train/check_export.py CKPT.h5 [--ipr build/ipr] [--batch 2]   (exit 1 on a mismatch)
"""
import argparse
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import srm_checkpoint  # noqa: E402
import srm_noise  # noqa: E402

REL_L2_MAX = 1e-4


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ckpt")
    ap.add_argument("--ipr", default=os.path.join(os.path.dirname(HERE), "build", "ipr"))
    ap.add_argument("--batch", type=int, default=2)
    a = ap.parse_args(argv)
    model, attrs = srm_checkpoint.load_model(a.ckpt)
    model = model.double().eval()
    H, W = [int(v) for v in attrs["image_size"]]
    p = int(attrs["patch_size"])
    g = torch.Generator().manual_seed(0)
    x = torch.randn(a.batch, int(attrs["d_in"]), H, W, generator=g)
    t = torch.rand(a.batch, H // p, W // p, generator=g)
    t[0, 0] = 0.0
    t[-1, -1] = 1.0
    t = srm_noise.to_pixels(t, p)
    with tempfile.TemporaryDirectory() as d:
        inp, out = os.path.join(d, "in.h5"), os.path.join(d, "out.h5")
        with h5py.File(inp, "w") as f:
            f["input/x"] = x.numpy().astype(np.float32)
            f["input/t"] = t.numpy().astype(np.float32)
        r = subprocess.run([a.ipr, "forward", "--checkpoint", a.ckpt, "--input", inp, "--output", out],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"check_export: ipr forward failed: {r.stderr.strip()}")
            return 1
        with h5py.File(out, "r") as f:
            y_c = torch.from_numpy(f["output/y"][:]).double()
    with torch.no_grad():
        y = model(x.double(), t.double())
    rel = float((y_c - y).norm() / y.norm())
    n = sum(q.numel() for q in model.parameters())
    ok = rel < REL_L2_MAX
    print(f"check_export: {a.ckpt}: {n / 1e6:.2f} M params, storage {attrs.get('weight_storage', 'float32')}, "
          f"{os.path.getsize(a.ckpt) / 2 ** 20:.2f} MiB; C engine vs PyTorch rel L2 {rel:.3g} "
          f"({'ok' if ok else 'MISMATCH'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
