"""curate_digits.py: the curated MNIST Sudoku digit pools (datasets/mnist/curation.txt): per split and class, the
digits a classifier reads with the highest confidence, as the reference keeps the 1,000 most confident MNIST
training images per class (spec 4.1, "mnist_sudoku_top1000").

Not circular: each split is ranked by a network trained on the OTHER split only (TEST digits by a ranker trained
on the train pool, TRAIN digits by one trained on the test pool), never by the shipped scorer
models/digit_classifier.h5, and with other seeds than it (7). Confidence = the logit margin of the true class
(logit[label] - max of the other logits, float64): softmax probabilities saturate at 1.0 in float32 and would tie.
Ties in the margin go to the lower IDX index. Each class keeps a fixed count, so the pools are balanced as the
reference's are: KEEP[split] = (train 400, test 100), about half of each class (691-902 train, 172-225 test).

Usage: /usr/bin/python3 train/curate_digits.py [--output datasets/mnist/curation.txt] [--check-scorer]
Deterministic (fixed seeds, 1 thread) for a given PyTorch build; about 3 CPU-minutes. --check-scorer only
reports how the shipped scorer reads the curated TEST pool (it plays no part in the selection).
"""
import argparse
import hashlib
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import classifiers  # noqa: E402
import train_digit  # noqa: E402

FORMAT = "ipr-mnist-curation"
FORMAT_VERSION = 1
NAME = "curated-v1"
KEEP = {"train": 400, "test": 100}
# ranker of a split = a network trained on the other split; seeds differ from the shipped scorer's (7)
RANKER = {"test": {"train_on": "train", "seed": 1001, "epochs": 8},
          "train": {"train_on": "test", "seed": 1002, "epochs": 24}}
BATCH, LR = 128, 2e-3


def train_ranker(x, y, seed, epochs):
    """The spec 4.1 network, trained briefly: AdamW, one-cycle lr, affine + noise augmentation (train_digit.py's,
    no elastic distortion: it doubles the cost), no label smoothing (it would compress the margins we rank by)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = classifiers.MNISTClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=1e-4)
    total = epochs * math.ceil(len(x) / BATCH)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=total, pct_start=0.15)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), BATCH):
            idx = perm[i:i + BATCH]
            loss = F.cross_entropy(model(train_digit.augment(x[idx], gen)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def logits_of(model, x, batch=500):
    return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)]).double()


def margins(logits, y):
    """logit of the label minus the largest other logit (> 0: read correctly)."""
    true = logits.gather(1, y[:, None])[:, 0]
    other = logits.clone()
    other.scatter_(1, y[:, None], -math.inf)
    return true - other.max(1).values


def select(margin, labels, keep):
    """Per class the `keep` largest margins (ties: lower index first), each class's indices ascending."""
    out = {}
    for d in range(10):
        idx = np.flatnonzero(labels == d)
        order = np.lexsort((idx, -margin[idx]))  # primary: margin descending; then index ascending
        if len(idx) < keep:
            raise SystemExit(f"class {d} has {len(idx)} digits, fewer than the {keep} to keep")
        out[d] = np.sort(idx[order[:keep]])
    return out


def pool_sha256(images, chosen):
    """SHA-256 of the pool's content as src/mnist.c computes it: per digit 0..9, its count (uint32 LE), then
    the 784 bytes of each of its images, in pool order (IDX index ascending)."""
    h = hashlib.sha256()
    for d in range(10):
        h.update(struct.pack("<I", len(chosen[d])))
        h.update(np.ascontiguousarray(images[chosen[d]]).tobytes())
    return h.hexdigest()


def sudoku_digit(logits):
    """The Sudoku reading rule (spec 4.1, ipr_sudoku_digit_from_logits): top-1, the top-2 class when top-1 is 0."""
    top2 = logits.topk(2, dim=1).indices
    return torch.where(top2[:, 0] == 0, top2[:, 1], top2[:, 0])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mnist-dir", default=os.path.join(ROOT, "datasets", "mnist"))
    ap.add_argument("--output", default=os.path.join(ROOT, "datasets", "mnist", "curation.txt"))
    ap.add_argument("--check-scorer", action="store_true",
                    help="report how models/digit_classifier.h5 reads the curated TEST pool")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()
    pools = {s: train_digit.load_pool(args.mnist_dir, s) for s in ("train", "test")}
    x = {s: train_digit.to_unit(pools[s][0]) for s in pools}
    y = {s: torch.from_numpy(pools[s][1]) for s in pools}
    chosen, notes = {}, []
    for split in ("test", "train"):
        r = RANKER[split]
        src = r["train_on"]
        model = train_ranker(x[src], y[src], r["seed"], r["epochs"])
        lg = logits_of(model, x[split])
        m = margins(lg, y[split]).numpy()
        acc = float((lg.argmax(1) == y[split]).double().mean())
        chosen[split] = select(m, pools[split][1], KEEP[split])
        kept = np.concatenate([chosen[split][d] for d in range(10)])
        min_kept = min(float(m[chosen[split][d]].min()) for d in range(10))
        wrong_kept = int((lg.argmax(1).numpy()[kept] != pools[split][1][kept]).sum())
        sha = pool_sha256(pools[split][0], chosen[split])
        line = (f"{split}: ranker trained on the {src} pool ({len(y[src])} digits, seed {r['seed']}, {r['epochs']} "
                f"epochs), accuracy on the {split} pool {100 * acc:.2f}% ({int(round((1 - acc) * len(y[split])))} of "
                f"{len(y[split])} wrong); kept {KEEP[split]} per class ({len(kept)}), smallest kept margin "
                f"{min_kept:.2f}, ranker errors kept {wrong_kept}; pool sha256 {sha}")
        print(f"curate_digits: {line} [{(time.time() - t0) / 60:.1f} min]", flush=True)
        notes.append(line)
    lines = [f"{FORMAT} {FORMAT_VERSION}", f"name {NAME}",
             "# Curated MNIST Sudoku digit pools (train/curate_digits.py; datasets/mnist/README.md). Per split and",
             "# class the digits a ranker reads with the largest logit margin (logit of the label minus the largest",
             "# other logit); each split is ranked by a spec 4.1 network trained on the OTHER split, not the scorer.",
             f"# torch {torch.__version__}, 1 thread; rankers: the spec 4.1 network, AdamW lr {LR}, batch {BATCH}, "
             "affine + noise augmentation"]
    lines += [f"# {n}" for n in notes]
    lines += ["# lines: 'items SPLIT N' = the IDX files' item count; 'SPLIT DIGIT COUNT INDEX...' = the kept items",
              "# (0-based indices into the split's IDX files, ascending; the pool order)."]
    for split in ("train", "test"):
        lines.append(f"items {split} {len(y[split])}")
    for split in ("train", "test"):
        for d in range(10):
            lines.append(f"{split} {d} {len(chosen[split][d])} " + " ".join(str(int(i)) for i in chosen[split][d]))
    with open(args.output + ".tmp", "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(args.output + ".tmp", args.output)
    print(f"curate_digits: wrote {args.output} ({(time.time() - t0) / 60:.1f} CPU-minutes)", flush=True)

    if args.check_scorer:
        scorer = classifiers.load_h5(os.path.join(ROOT, "models", "digit_classifier.h5")).eval()
        kept = np.concatenate([chosen["test"][d] for d in range(1, 10)])
        lg = logits_of(scorer, x["test"][kept])
        read = sudoku_digit(lg).numpy()
        want = pools["test"][1][kept]
        bad = np.flatnonzero(read != want)
        print(f"curate_digits: shipped scorer on the curated TEST digits 1-9 (Sudoku rule): "
              f"{100 * (1 - len(bad) / len(kept)):.3f}% ({len(bad)} of {len(kept)} misread"
              + "".join(f"; item {kept[i]}: {want[i]} -> {read[i]}" for i in bad) + ")", flush=True)
        allv = np.arange(len(y["test"]))
        allv = allv[pools["test"][1] > 0]
        read_all = sudoku_digit(logits_of(scorer, x["test"][allv])).numpy()
        print(f"curate_digits: for comparison, all {len(allv)} TEST digits 1-9: "
              f"{int((read_all != pools['test'][1][allv]).sum())} misread", flush=True)


if __name__ == "__main__":
    main()
