"""train_polygons.py: train the Counting Polygons four-head classifier (train/classifiers.py, spec 4.3 heads) on
generated TRAIN-split images and report per-head accuracy on held-out TEST-split images; export to HDF5.

The generator only makes uniform images (every polygon has the same vertex count), so the `is_uniform` head
needs negatives: an image is re-rendered with libipr's own rasterizer (same background, circles, colour and
numerals, through ctypes) with k of its n >= 2 polygons given another vertex count. Re-rendering with the
original counts reproduces the generator's image byte for byte, so the rendering path carries no label;
`--rerender` of the images are re-rendered and `--nonuniform` of those made non-uniform. On non-uniform images the num_vertices head is not trained (no single count exists); the
numerals still show (count, original vertex count), the numbers_label target. `--mismatch` of the re-rendered
images get numerals of another pair than their counts (label: the pair drawn): on the generator's images the
numerals always match the shapes, and a network trained on those alone can infer the pair from the shapes
instead of reading it, which makes IPR's consistency check vacuous (train/audit_polygons_scorer.py measures
this: the first shipped scorer, trained without mismatches, accepted 63% of images with wrong numerals).

The network (classifiers.CountingPolygonsClassifier): by default 10 conv layers, strides 1,2,1,2,1,2,1,2,1,1 (a
125 px receptive field; the first scorer's 4 layers of stride 2 saw 31 px, less than a polygon, and could not
count vertices or read numerals: 59% and 49%). BF16 autocast on CUDA.

Usage: python3 train/train_polygons.py --output models/polygons_classifier.h5 --minutes 7 [--workers 12]
"""
import argparse
import contextlib
import ctypes
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import classifiers  # noqa: E402
import srm_data  # noqa: E402

SIDE, SS = 128, 4


class Coverage(ctypes.Structure):  # src/bench/raster.h ipr_coverage
    _fields_ = [("w", ctypes.c_int), ("h", ctypes.c_int), ("bits", ctypes.POINTER(ctypes.c_uint16))]


class Renderer:
    """Counting Polygons images with a chosen vertex count per polygon, drawn by libipr's rasterizer."""

    def __init__(self, seed, split, lib=None):
        self.gen = srm_data.Generator("counting_polygons", seed, split, lib=lib)
        lib = self.lib = self.gen.lib
        lib.ipr_polygons_background.argtypes = [ctypes.c_uint64, ctypes.c_int, ctypes.c_uint64, ctypes.c_void_p]
        lib.ipr_cov_clear.argtypes = [ctypes.POINTER(Coverage)]
        lib.ipr_cov_polygon.argtypes = [ctypes.POINTER(Coverage), ctypes.POINTER(ctypes.c_double), ctypes.c_int]
        lib.ipr_font_digit.argtypes = [ctypes.POINTER(Coverage), ctypes.c_int, ctypes.c_double, ctypes.c_double,
                                       ctypes.c_double]
        lib.ipr_cov_composite.argtypes = [ctypes.POINTER(Coverage), ctypes.c_void_p, ctypes.c_void_p]
        self.bits = (ctypes.c_uint16 * (SIDE * SIDE))()
        self.cov = Coverage(SIDE, SIDE, self.bits)
        self.xy = (ctypes.c_double * 14)()

    def render(self, index, inst, vertices, digits=None, draw=None):
        """(128, 128, 3) uint8 of instance `index` (its metadata `inst`) with polygon p drawn with vertices[p];
        digits: the two numerals to write (default: the instance's count and vertex count); draw: which
        polygons to draw (default all)."""
        lib = self.lib
        img = np.empty((SIDE, SIDE, 3), dtype=np.uint8)
        lib.ipr_polygons_background(self.gen.seed, self.gen.split, index, img.ctypes.data)
        lib.ipr_cov_clear(ctypes.byref(self.cov))
        for p in range(inst.num_polygons):
            if draw is not None and p not in draw:
                continue
            cx, cy, r = inst.cx[p] * SS, inst.cy[p] * SS, inst.radius[p] * SS
            nv = int(vertices[p])
            for k in range(nv):
                a = 2 * math.pi * k / nv + inst.rotation[p]
                self.xy[2 * k], self.xy[2 * k + 1] = cx + r * math.cos(a), cy + r * math.sin(a)
            lib.ipr_cov_polygon(ctypes.byref(self.cov), self.xy, nv)
        for k, digit in enumerate(digits or (inst.num_polygons, inst.num_vertices)):
            c = inst.num_polygons + k
            rc = lib.ipr_font_digit(ctypes.byref(self.cov), digit, inst.cx[c] * SS, inst.cy[c] * SS,
                                    inst.radius[c] * SS)
            if rc != 0:
                raise RuntimeError(f"ipr_font_digit failed for instance {index}")
        color = np.frombuffer(bytes(inst.color), dtype=np.uint8).copy()
        lib.ipr_cov_composite(ctypes.byref(self.cov), color.ctypes.data, img.ctypes.data)
        return img

    def sample(self, index, rng, rerender_p, nonuniform_p, mismatch_p=0.0):
        """One training image and its labels (is_uniform 0/1; num_vertices -1 = not trained). mismatch_p: of the
        re-rendered images, the share whose numerals are another pair than the counts (labels: what is drawn),
        so that numbers_label must read the numerals instead of inferring them from the shapes."""
        inst = self.gen.make(index)
        n, v = inst.num_polygons, inst.num_vertices
        lab = {"num_polygons": n - 1, "num_vertices": v - 3, "is_uniform": 1, "numbers_label": inst.pair_label}
        if rng.random() >= rerender_p:
            img = np.frombuffer(inst.image, dtype=np.uint8).reshape(SIDE, SIDE, 3).copy()
            return img, lab
        digits = None
        if mismatch_p > 0 and rng.random() < mismatch_p:
            a, b = random_other_pair(rng, n, v)
            digits = (a, b) if rng.random() < 0.5 else (b, a)
            lab["numbers_label"] = classifiers.pair_index(a, b)
        verts = [v] * n
        if n >= 2 and rng.random() < nonuniform_p:
            k = int(rng.integers(1, n))  # 1 .. n-1 polygons change, so the image mixes two or more counts
            for p in rng.choice(n, size=k, replace=False):
                verts[p] = int(rng.choice([u for u in range(3, 8) if u != v]))
            lab["is_uniform"], lab["num_vertices"] = 0, -1
        return self.render(index, inst, verts, digits), lab


def random_other_pair(rng, n, v):
    """A numeral pair (a count 1..9, a vertex count 3..7) whose unordered set differs from {n, v}."""
    while True:
        a, b = int(rng.integers(1, 10)), int(rng.integers(3, 8))
        if sorted((a, b)) != sorted((n, v)):
            return a, b


class PolygonStream(torch.utils.data.IterableDataset):
    """Batches b = first, first + 1, ... of (images float (B, 3, 128, 128) in [-1, 1], labels dict)."""

    def __init__(self, seed, split, batch, first=0, rerender_p=0.8, nonuniform_p=0.5, lib=None, run_seed=0,
                 mismatch_p=0.0):
        super().__init__()
        self.seed, self.split, self.B, self.first = seed, split, batch, first
        self.rp, self.np_, self.lib, self.run_seed, self.mp = rerender_p, nonuniform_p, lib, run_seed, mismatch_p

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        r = Renderer(self.seed, self.split, self.lib)
        b = self.first + wid
        while True:
            yield make_batch(r, b * self.B, self.B, np.random.default_rng([self.run_seed, b]), self.rp, self.np_,
                             self.mp)
            b += nw


def make_batch(r, start, count, rng, rerender_p, nonuniform_p, mismatch_p=0.0):
    imgs = np.empty((count, 3, SIDE, SIDE), dtype=np.uint8)
    labs = {k: np.empty(count, dtype=np.int64) for k, _ in classifiers.HEADS}
    for i in range(count):
        img, lab = r.sample(start + i, rng, rerender_p, nonuniform_p, mismatch_p)
        imgs[i] = img.transpose(2, 0, 1)
        for k in labs:
            labs[k][i] = lab[k]
    return srm_data.to_unit(imgs), {k: torch.from_numpy(v) for k, v in labs.items()}


@torch.no_grad()
def evaluate(model, x, labs, device, batch=256):
    model.eval()
    correct = {k: 0 for k, _ in classifiers.HEADS}
    count = {k: 0 for k, _ in classifiers.HEADS}
    valid_agree = 0
    for i in range(0, len(x), batch):
        out = model(x[i:i + batch].to(device))
        for k, _ in classifiers.HEADS:
            y = labs[k][i:i + batch].to(device)
            keep = y >= 0
            correct[k] += int((out[k].argmax(1)[keep] == y[keep]).sum())
            count[k] += int(keep.sum())
    model.train()
    return {k: correct[k] / max(count[k], 1) for k in correct}, count


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--output", required=True)
    ap.add_argument("--minutes", type=float, default=7.0, help="training wall time")
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--channels", default="32,32,64,64,128,128,256,256,256,256",
                    help="conv widths, one per layer (ignored with --init: the file's architecture)")
    ap.add_argument("--strides", default="1,2,1,2,1,2,1,2,1,1",
                    help="conv strides (1 or 2), one per layer: the default sees a 125 px field, a polygon whole")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--norm-groups", type=int, default=8)
    ap.add_argument("--data-seed", type=int, default=20250601, help="generator seed (the SRM training data's)")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--rerender", type=float, default=0.8, help="fraction of images re-rendered in Python")
    ap.add_argument("--nonuniform", type=float, default=0.5, help="fraction of re-rendered images made non-uniform")
    ap.add_argument("--mismatch", type=float, default=0.3,
                    help="fraction of re-rendered images whose numerals are another pair than the counts")
    ap.add_argument("--heldout", type=int, default=2000, help="TEST-split images for the reported accuracy")
    ap.add_argument("--workers", type=int, default=-1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--init", help="continue from this classifier .h5")
    ap.add_argument("--storage", default="float16", choices=["float16", "float32"],
                    help="weights in the exported file (float16: half the size; the accuracy is measured after)")
    ap.add_argument("--lib")
    args = ap.parse_args(argv)
    t_start = time.time()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(args.seed)
    chans = [int(c) for c in args.channels.split(",")]
    strides = [int(c) for c in args.strides.split(",")]
    if args.init:
        model = classifiers.load_h5(args.init).train()
    else:
        model = classifiers.CountingPolygonsClassifier(chans, args.hidden, args.norm_groups, strides=strides)
    model = model.to(device)
    if args.workers < 0:
        args.workers = max(1, (os.cpu_count() or 2) - 2) if device.type == "cuda" else 0
    # held-out: the TEST split, same mixture (so is_uniform has negatives), fixed rng
    ev_r = Renderer(args.data_seed, srm_data.SPLIT_TEST, args.lib)
    ev_x, ev_l = make_batch(ev_r, 0, args.heldout, np.random.default_rng([args.seed, 999]), args.rerender,
                            args.nonuniform, args.mismatch)
    print(f"train_polygons: {sum(p.numel() for p in model.parameters()) / 1e6:.3f} M params on {device}, "
          f"{args.workers} data workers; held-out {args.heldout} test-split images ready in "
          f"{time.time() - t_start:.0f} s", flush=True)
    ds = PolygonStream(args.data_seed, srm_data.SPLIT_TRAIN, args.batch, 0, args.rerender, args.nonuniform,
                       args.lib, args.seed, args.mismatch)
    kw = {"prefetch_factor": 4} if args.workers > 0 else {}
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=args.workers,
                                         pin_memory=device.type == "cuda", **kw)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    budget = args.minutes * 60
    log, step, samples = [], 0, 0
    acc_loss, acc_n = 0.0, 0
    t_loop = time.time()
    for x, labs in loader:
        elapsed = time.time() - t_start
        frac = min(1.0, elapsed / budget) if budget else min(1.0, step / max(args.max_steps, 1))
        # warm-up over the first 3% then cosine to zero over the time budget
        lr = args.lr * min(1.0, frac / 0.03) * 0.5 * (1 + math.cos(math.pi * frac))
        for g in opt.param_groups:
            g["lr"] = lr
        x = x.to(device, non_blocking=True)
        with (torch.autocast(device_type="cuda", dtype=torch.bfloat16) if device.type == "cuda"
              else contextlib.nullcontext()):
            out = model(x)
        loss = 0.0
        for k, _ in classifiers.HEADS:
            y = labs[k].to(device)  # -1 = not trained (num_vertices of a non-uniform image)
            ce = F.cross_entropy(out[k].float(), y, ignore_index=-1, reduction="sum")
            loss = loss + ce / (y >= 0).sum().clamp(min=1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        samples += len(x)
        acc_loss += float(loss)
        acc_n += 1
        if step % 100 == 0:
            row = {"step": step, "samples": samples, "loss": acc_loss / acc_n, "lr": lr,
                   "minutes": (time.time() - t_start) / 60,
                   "samples_per_s": samples / max(time.time() - t_loop, 1e-9)}
            if step % 1000 == 0:
                row["heldout"], _ = evaluate(model, ev_x, ev_l, device)
            log.append(row)
            print(json.dumps(row), flush=True)
            acc_loss, acc_n = 0.0, 0
        if (budget and time.time() - t_start >= budget) or (args.max_steps and step >= args.max_steps):
            break
    # the reported accuracy is the exported file's (float16 storage rounds the weights)
    model = model.cpu().eval()
    classifiers.export_h5(model, args.output, classifiers.KIND_POLYGONS, storage=args.storage)
    acc, count = evaluate(classifiers.load_h5(args.output).to(device), ev_x, ev_l, device)
    minutes = (time.time() - t_start) / 60
    print(f"train_polygons: {step} steps, {samples} samples, {minutes:.1f} min; held-out accuracy per head "
          f"{json.dumps(acc)} (counts {count})", flush=True)
    stem = args.output[:-3] if args.output.endswith(".h5") else args.output
    metrics = {"heldout_accuracy": acc, "heldout_counts": count, "steps": step, "samples_seen": samples,
               "minutes": minutes, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
               "args": vars(args), "torch": torch.__version__, "log": log}
    with open(stem + "_metrics.json", "w") as f:
        json.dump(metrics, f, indent=1)
    return metrics


if __name__ == "__main__":
    main()
