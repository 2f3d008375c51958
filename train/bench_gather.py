"""bench_gather.py: time the backward of the distinct-level embedding gather (srm_unet.GatherRows) on the GPU,
against the alternatives it replaces, at the shape of an MNIST Sudoku training step's full-resolution ResBlock.

  python3 train/bench_gather.py [--batch 56 --size 252 --grid 9 --channels 32 --zero 0.35 --repeat 10]

A batch of level maps: per image, each of grid x grid regions is level 0 with probability --zero (Sudoku clues and
add_zeros) and else uniform; one row of p per distinct level. Each variant computes d(sum(out * w))/dp; the
printed figure is the median wall time of forward + backward over --repeat runs (CUDA events), and each variant's
result is checked against the float64 index_add reference. Prints one line per variant plus a JSON line.
"""
import argparse
import json
import statistics

import torch
import torch.nn.functional as F

import srm_noise
import srm_unet


def custom_backward(backward):
    """A gather p[inv] whose backward is backward(g, p, inv, perm, counts) (the variants below differ only there)."""
    def fn(p, inv, perm, counts):
        class G(torch.autograd.Function):
            @staticmethod
            def forward(ctx, p):
                return p.index_select(0, inv)

            @staticmethod
            def backward(ctx, g):
                return backward(g, p, inv, perm, counts).to(p.dtype)
        return G.apply(p)
    return fn


def variants():
    def embedding(p, inv, perm, counts):
        return F.embedding(inv, p)

    # session 10's backward: PyTorch walks a 2-D segment with one thread per (segment, channel)
    segment_2d = custom_backward(lambda g, p, inv, perm, counts: torch.segment_reduce(
        g.index_select(0, perm).float(), "sum", lengths=counts, axis=0))
    index_add = custom_backward(lambda g, p, inv, perm, counts: torch.zeros(
        p.shape, dtype=torch.float32, device=g.device).index_add_(0, inv, g.float()))

    def gather_rows(p, inv, perm, counts):  # this project's (segment_sum_rows: C x n 1-D segments, CUB)
        return srm_unet.GatherRows.apply(p, inv, perm, counts)

    return {"embedding": embedding, "index_add": index_add, "segment_2d": segment_2d, "gather_rows": gather_rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=56)
    ap.add_argument("--size", type=int, default=252)
    ap.add_argument("--grid", type=int, default=9)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--zero", type=float, default=0.35)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--skip", default="", help="comma-separated variants not to run")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_gather.py: needs a CUDA GPU")
    dev = torch.device("cuda")
    g = torch.Generator(device="cpu").manual_seed(1)
    lv = torch.rand(a.batch, a.grid, a.grid, generator=g)
    lv[torch.rand(a.batch, a.grid, a.grid, generator=g) < a.zero] = 0.0
    t = srm_noise.to_pixels(lv[:, None], a.size // a.grid).to(dev)
    uniq, inv, perm, counts = srm_unet.distinct_levels(t[:, 0])
    n, N = uniq.numel(), inv.numel()
    p0 = torch.randn(n, a.channels, device=dev, dtype=torch.bfloat16)
    w = torch.randn(N, a.channels, device=dev, dtype=torch.bfloat16)
    ref = torch.zeros(n, a.channels, dtype=torch.float64, device=dev).index_add_(0, inv, w.double())
    print(f"bench_gather: {torch.cuda.get_device_name(dev)}, torch {torch.__version__}; {N} pixels x {a.channels} "
          f"channels (bfloat16), {n} distinct levels, largest segment {int(counts.max())} pixels")
    res = {}
    for name, fn in variants().items():
        if name in a.skip.split(","):
            continue
        times = []
        for i in range(a.repeat + 2):
            p = p0.clone().requires_grad_(True)
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            out = fn(p, inv, perm, counts)
            (gp,) = torch.autograd.grad(out, p, w)
            e1.record()
            torch.cuda.synchronize()
            if i >= 2:
                times.append(e0.elapsed_time(e1))
        err = float((gp.double() - ref).norm() / ref.norm())
        res[name] = {"ms": round(statistics.median(times), 3), "rel_l2": err}
        print(f"  {name:12s} {statistics.median(times):9.3f} ms forward+backward   rel L2 vs float64 {err:.2g}")
    print(json.dumps({"bench_gather": res, "pixels": N, "channels": a.channels, "levels": n,
                      "device": torch.cuda.get_device_name(dev), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
