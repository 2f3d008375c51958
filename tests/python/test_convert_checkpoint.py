"""test_convert_checkpoint.py: scripts/convert_checkpoint.py on a Lightning-style and a plain checkpoint of
the tiny architecture; the C engine (`ipr forward`) must compute the PyTorch forward of what was converted."""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch

ROOT, IPR, FIXTURES = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, os.path.join(ROOT, "train"))
from srm_checkpoint import PRESETS, load_h5  # noqa: E402
from srm_unet import from_config  # noqa: E402

CONVERT = [sys.executable, os.path.join(ROOT, "scripts", "convert_checkpoint.py")]
TOL = 1e-4  # issue 3: float32 engine vs the float32 PyTorch forward, relative L2


def random_net(seed):
    torch.manual_seed(seed)
    net = from_config(PRESETS["tiny"]).eval()
    with torch.no_grad():  # undo the zero init so every layer matters
        for p in net.parameters():
            if float(p.abs().max()) == 0.0:
                p.normal_(0, 0.05)
    return net


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def run(cmd, expect_ok=True):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if (r.returncode == 0) != expect_ok:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {r.returncode}\n{r.stdout}{r.stderr}")
    return r


def main():
    failures = checks = 0
    tmp = tempfile.mkdtemp(prefix="convert_ckpt.")
    with h5py.File(os.path.join(FIXTURES, "srm_unet_tiny.h5"), "r") as f:
        x, t = f["input/x"][()], f["input/t"][()]
    inp = os.path.join(tmp, "in.h5")
    with h5py.File(inp, "w") as f:
        f["input/x"], f["input/t"] = x, t

    raw, ema = random_net(1), random_net(2)
    sd = {f"denoiser.{k}": v for k, v in raw.state_dict().items()}
    sd.update({f"ema_denoiser.module.{k}": v for k, v in ema.state_dict().items()})
    sd["ema_denoiser.n_averaged"] = torch.tensor(7)
    lightning = os.path.join(tmp, "last.ckpt")
    torch.save({"state_dict": sd, "global_step": 7}, lightning)
    plain = os.path.join(tmp, "plain.pt")
    torch.save({f"module.{k}": v for k, v in raw.state_dict().items()}, plain)

    for src, extra, ref, what in ((lightning, [], ema, "Lightning EMA"), (lightning, ["--no-ema"], raw, "Lightning raw"),
                                  (plain, [], raw, "DDP state_dict")):
        out = os.path.join(tmp, f"conv{len(extra)}{os.path.basename(src)}.h5")
        run(CONVERT + [src, "--preset", "tiny", "-o", out] + extra)
        cfg, state = load_h5(out)
        with h5py.File(out, "r") as f:  # the shared MLP is stored once, the aliases are hard links
            a, b = f["weights/time_embedding.mlp.0.weight"], f["weights/model.encoder.blocks.1.0.norm_with_embedding.t_emb.mlp.0.weight"]
            linked = h5py.h5o.get_info(a.id).addr == h5py.h5o.get_info(b.id).addr
        y_path = os.path.join(tmp, "y.h5")
        if os.path.exists(y_path):
            os.unlink(y_path)
        run([IPR, "forward", "--checkpoint", out, "--input", inp, "--output", y_path])
        with h5py.File(y_path, "r") as f:
            y = f["output/y"][()]
        with torch.no_grad():
            y_ref = ref(torch.from_numpy(x), torch.from_numpy(t)).numpy()
        e = rel_l2(y.astype(np.float64), y_ref.astype(np.float64))
        ok = e <= TOL and linked
        failures += not ok
        checks += 1
        print(f"  {what:15s}: ipr forward vs torch rel L2 {e:.2e} (tol {TOL:g}), aliases hard-linked {linked} "
              f"-> {'ok' if ok else 'FAIL'}")

    # a wrong architecture is refused with a message and no output file
    bad = os.path.join(tmp, "bad.h5")
    r = run(CONVERT + [plain, "--preset", "ep_4", "-o", bad], expect_ok=False)
    msg = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
    ok = not os.path.exists(bad) and ("missing tensor" in msg or "expected shape" in msg)
    failures += not ok
    checks += 1
    print(f"  wrong preset   : exit {r.returncode}, '{msg[:110]}...' -> {'ok' if ok else 'FAIL'}")
    r = run(CONVERT + [os.path.join(tmp, "nope.pt"), "--preset", "tiny", "-o", bad], expect_ok=False)
    failures += os.path.exists(bad) or "no such file" not in r.stderr
    checks += 1

    # the golden fixture reads back through the same module (it is a checkpoint too)
    cfg, state = load_h5(os.path.join(FIXTURES, "srm_unet_tiny.h5"))
    ok = len(state) == 422 and cfg["hid_dims"] == [32, 32, 64, 64]
    failures += not ok
    checks += 1
    print(f"  fixture        : {len(state)} state_dict names -> {'ok' if ok else 'FAIL'}")
    print(f"{checks - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
