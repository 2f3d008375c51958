#!/usr/bin/env python3
"""audit_polygons_scorer.py: how far a Counting Polygons scorer can be trusted as the judge of validity.

IPR's checker (spec 4.3, src/sampler/task.c) calls a generated image valid when the scorer finds its
polygons uniform and its numeral pair equal to {predicted polygon count, predicted vertex count}. A scorer
that infers the numerals from the shapes, instead of reading them, accepts images whose numerals are wrong;
one that cannot count accepts images with a polygon missing. This audit renders held-out TEST-split images
with libipr's rasterizer (train_polygons.Renderer) in five sets and reports the share the checker accepts:

  correct       the generator's images (all valid): should be accepted
  wrong_pair    numerals of another pair than the counts: should be rejected
  missing_one   one polygon left out (n >= 2), numerals unchanged: should be rejected
  extra_vertex  every polygon drawn with one vertex more or less, numerals unchanged: should be rejected
  nonuniform    some polygons with another vertex count: should be rejected

usage: audit_polygons_scorer.py --scorer models/polygons_classifier.h5 [--count 300] [--output FILE.json]
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import classifiers  # noqa: E402
import srm_data  # noqa: E402
from train_polygons import Renderer, random_other_pair  # noqa: E402

SETS = ("correct", "wrong_pair", "missing_one", "extra_vertex", "nonuniform")


def wilson(k, n, z=1.959964):
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def checker(n, v, uniform, pair):
    """IPR's checker (src/sampler/task.c): uniform and the numeral pair == {polygon count, vertex count}."""
    return bool(uniform) and sorted(pair) == sorted((int(n), int(v)))


def accepted(out):
    """The checker on a batch of the scorer's logits."""
    n = out["num_polygons"].argmax(1) + 1
    v = out["num_vertices"].argmax(1) + 3
    uni = out["is_uniform"].argmax(1) == 1
    lab = out["numbers_label"].argmax(1)
    return np.array([checker(n[i], v[i], uni[i], classifiers.NUMBER_PAIRS[int(lab[i])]) for i in range(len(n))])


def render_set(r, name, first, count, rng):
    """(images (count, 3, 128, 128) in [-1, 1], truth): truth[i] = (polygons drawn, their vertex count or -1
    when mixed, uniform, numeral pair drawn), what an oracle scorer would read."""
    imgs, truth, i = [], [], first
    while len(imgs) < count:
        inst = r.gen.make(i)
        n, v = inst.num_polygons, inst.num_vertices
        verts, digits, draw = [v] * n, (n, v), None
        if name == "wrong_pair":
            digits = random_other_pair(rng, n, v)
        elif name == "missing_one":
            if n < 2:
                i += 1
                continue
            draw = set(range(n)) - {int(rng.integers(n))}
        elif name == "extra_vertex":
            v2 = v + 1 if (v == 3 or (v < 7 and rng.random() < 0.5)) else v - 1
            if n == v2:  # {n, v2} == {v2, v} only if n == v: keep the pair inconsistent
                i += 1
                continue
            verts = [v2] * n
        elif name == "nonuniform":
            if n < 2:
                i += 1
                continue
            for p in rng.choice(n, size=int(rng.integers(1, n)), replace=False):
                verts[p] = int(rng.choice([u for u in range(3, 8) if u != v]))
        drawn = [verts[p] for p in range(n) if draw is None or p in draw]
        uniform = len(set(drawn)) == 1
        truth.append((len(drawn), drawn[0] if uniform else -1, uniform, tuple(digits)))
        imgs.append(r.render(i, inst, verts, None if name != "wrong_pair" else digits, draw).transpose(2, 0, 1))
        i += 1
    return srm_data.to_unit(np.stack(imgs)), truth


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scorer", required=True)
    ap.add_argument("--count", type=int, default=300, help="images per set")
    ap.add_argument("--data-seed", type=int, default=0, help="generator seed (evaluation runs use 0)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--output", help="write the figures as JSON here")
    ap.add_argument("--lib")
    a = ap.parse_args(argv)
    torch.set_grad_enabled(False)
    model = classifiers.load_h5(a.scorer).eval()
    r = Renderer(a.data_seed, srm_data.SPLIT_TEST, a.lib)
    rng = np.random.default_rng(a.seed)
    res = {}
    print(f"| set | accepted | share | 95% CI | should be |\n|---|---|---|---|---|")
    for name in SETS:
        x, truth = render_set(r, name, 0, a.count, rng)
        oracle = sum(checker(*t) for t in truth)
        if oracle != (len(truth) if name == "correct" else 0):
            raise RuntimeError(f"set {name}: the oracle accepts {oracle}/{len(truth)}: the set is mis-built")
        acc = np.concatenate([accepted(model(x[j:j + 100])) for j in range(0, len(x), 100)])
        k, n = int(acc.sum()), len(acc)
        lo, hi = wilson(k, n)
        res[name] = {"accepted": k, "n": n, "share": k / n, "lo95": lo, "hi95": hi}
        print(f"| {name} | {k}/{n} | {k / n:.3f} | [{lo:.3f}, {hi:.3f}] | "
              f"{'accepted' if name == 'correct' else 'rejected'} |", flush=True)
    if a.output:
        with open(a.output + ".tmp", "w") as f:
            json.dump({"scorer": os.path.basename(a.scorer), "data_seed": a.data_seed, "sets": res}, f, indent=1)
        os.replace(a.output + ".tmp", a.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
