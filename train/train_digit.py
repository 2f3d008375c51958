"""train_digit.py: train the Sudoku digit classifier (spec 4.1 architecture, train/classifiers.py) on the TRAIN
pool of datasets/mnist (the C loader's split) and report its accuracy on the TEST pool; export to HDF5.

Usage: python3 train/train_digit.py --output models/digit_classifier.h5 [--epochs 40] [--threads 1]
Writes OUTPUT, OUTPUT minus .h5 + "_metrics.json" and "_loss.png". Images are fed in [-1, 1] (x / 127.5 - 1),
as the scorer sees generated Sudoku cells. The schedule is fixed in advance; the test pool is only reported.
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import classifiers  # noqa: E402


def read_idx(path, magic, header):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        raw = f.read()
    got = int.from_bytes(raw[:4], "big")
    if got != magic:
        raise ValueError(f"{path}: magic {got:#x}, expected {magic:#x}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header)


def load_pool(mnist_dir, split):
    """(images uint8 (N, 28, 28), labels (N,)) of a pool, with the file names of src/mnist.c."""
    prefix = "train" if split == "train" else "t10k"
    def path(kind):
        p = os.path.join(mnist_dir, f"{prefix}-{kind}")
        return p if os.path.exists(p) else p + ".gz"
    imgs = read_idx(path("images-idx3-ubyte"), 0x803, 16).reshape(-1, 28, 28)
    labels = read_idx(path("labels-idx1-ubyte"), 0x801, 8)
    assert len(imgs) == len(labels)
    return imgs, labels.astype(np.int64)


def to_unit(u8):
    return torch.from_numpy(u8.astype(np.float32) / 127.5 - 1.0)[:, None]


def elastic_field(B, gen, alpha, sigma, size=28):
    """Smooth random displacement (B, size, size, 2) in grid units (Simard et al. 2003 elastic distortion):
    uniform noise blurred by a Gaussian of `sigma` px, scaled to an RMS displacement of `alpha` px."""
    r = int(3 * sigma)
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float32) / sigma) ** 2)
    k = k / k.sum()
    d = torch.rand(B * 2, 1, size, size, generator=gen) * 2 - 1
    d = F.conv2d(F.pad(d, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
    d = F.conv2d(F.pad(d, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))
    d = d.view(B, 2, size, size)
    d = d / d.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp(min=1e-8)
    return d.permute(0, 2, 3, 1) * (alpha * 2.0 / size)


def augment(x, gen, max_rot=12.0, max_shift=2.5, scale=(0.9, 1.1), noise_p=0.5, noise_max=0.15, elastic=0.0,
            elastic_sigma=4.0):
    """Random affine (rotation, scale, shift; background -1), an optional elastic distortion (`elastic` px)
    and, for a fraction of the batch, Gaussian noise: the cells the classifier scores come out of a
    diffusion model, not out of MNIST."""
    B = x.shape[0]
    ang = (torch.rand(B, generator=gen) * 2 - 1) * math.radians(max_rot)
    s = scale[0] + (scale[1] - scale[0]) * torch.rand(B, generator=gen)
    sh = (torch.rand(B, 2, generator=gen) * 2 - 1) * (2 * max_shift / 28)
    cos, sin = torch.cos(ang) / s, torch.sin(ang) / s
    theta = torch.stack([torch.stack([cos, -sin, sh[:, 0]], 1), torch.stack([sin, cos, sh[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if elastic > 0:
        grid = grid + elastic_field(B, gen, elastic, elastic_sigma)
    y = F.grid_sample(x + 1.0, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1.0
    noisy = (torch.rand(B, 1, 1, 1, generator=gen) < noise_p).float()
    sigma = torch.rand(B, 1, 1, 1, generator=gen) * noise_max
    return (y + noisy * sigma * torch.randn(y.shape, generator=gen)).clamp(-1.0, 1.0)


@torch.no_grad()
def accuracy(model, x, y, batch=500):
    model.eval()
    pred = torch.cat([model(x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)])
    return float((pred == y).float().mean()), pred


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--output", required=True)
    ap.add_argument("--mnist-dir", default=os.path.join(ROOT, "datasets", "mnist"))
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--elastic", type=float, default=0.0, help="elastic distortion strength in px (0: off)")
    ap.add_argument("--noise-max", type=float, default=0.15, help="max std of the noise augmentation")
    ap.add_argument("--average-last", type=int, default=10, help="average the weights of the last N epochs (0: off)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    tr_u8, tr_y = load_pool(args.mnist_dir, "train")
    te_u8, te_y = load_pool(args.mnist_dir, "test")
    xtr, ytr = to_unit(tr_u8), torch.from_numpy(tr_y)
    xte, yte = to_unit(te_u8), torch.from_numpy(te_y)
    print(f"train_digit: train pool {len(xtr)}, test pool {len(xte)} (from {args.mnist_dir})", flush=True)

    model = classifiers.MNISTClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(xtr) / args.batch)
    total = args.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total, pct_start=0.15)
    avg, n_avg = None, 0
    log = []
    t0 = time.time()
    for ep in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        tot, n = 0.0, 0
        for i in range(0, len(xtr), args.batch):
            idx = perm[i:i + args.batch]
            xb = augment(xtr[idx], gen, noise_max=args.noise_max, elastic=args.elastic)
            loss = F.cross_entropy(model(xb), ytr[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss) * len(idx)
            n += len(idx)
        if args.average_last and ep >= args.epochs - args.average_last:
            sd = {k: v.detach().clone().double() for k, v in model.state_dict().items()}
            avg = sd if avg is None else {k: avg[k] + sd[k] for k in avg}
            n_avg += 1
        train_acc, _ = accuracy(model, xtr, ytr)
        log.append({"epoch": ep + 1, "train_loss": tot / n, "train_acc_clean": train_acc,
                    "minutes": (time.time() - t0) / 60})
        print(f"epoch {ep + 1}/{args.epochs} loss {tot / n:.4f} train acc {train_acc:.4f} "
              f"{(time.time() - t0) / 60:.1f} min", flush=True)
    if avg is not None:
        model.load_state_dict({k: (v / n_avg).float() for k, v in avg.items()})
    test_acc, pred = accuracy(model, xte, yte)
    train_acc, _ = accuracy(model, xtr, ytr)
    wrong = (pred != yte).nonzero().flatten().tolist()
    cpu_min = (time.time() - t0) / 60
    print(f"train_digit: test pool accuracy {test_acc:.4f} ({len(wrong)} of {len(yte)} wrong), train {train_acc:.4f}, "
          f"{cpu_min:.1f} CPU-minutes ({args.threads} thread(s))", flush=True)
    classifiers.export_h5(model, args.output, classifiers.KIND_DIGIT)
    stem = args.output[:-3] if args.output.endswith(".h5") else args.output
    metrics = {"test_accuracy": test_acc, "test_errors": len(wrong), "test_count": len(yte),
               "train_accuracy": train_acc, "train_count": len(ytr), "epochs": args.epochs, "batch": args.batch,
               "lr": args.lr, "seed": args.seed, "elastic_px": args.elastic, "noise_max": args.noise_max, "weight_average_last_epochs": n_avg, "cpu_minutes": cpu_min,
               "threads": args.threads, "torch": torch.__version__,
               "wrong": [{"index": i, "label": int(yte[i]), "pred": int(pred[i])} for i in wrong], "log": log}
    with open(stem + "_metrics.json", "w") as f:
        json.dump(metrics, f, indent=1)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot([r["epoch"] for r in log], [r["train_loss"] for r in log], label="train loss (augmented, smoothed labels)")
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
        ax.set_title(f"digit classifier: test-pool accuracy {100 * test_acc:.2f}%")
        ax.legend()
        fig.tight_layout()
        fig.savefig(stem + "_loss.png", dpi=100)
    except ImportError:
        pass
    return metrics


if __name__ == "__main__":
    main()
