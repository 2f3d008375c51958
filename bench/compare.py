#!/usr/bin/env python3
"""compare.py: merge `ipr bench --output` and torch_unet_bench.py JSON into one Markdown table with ratios.

usage: compare.py BENCH_IPR.json BENCH_TORCH.json
Ratios: ipr / PyTorch at the same precision, against the reference formulation (per-pixel embedding),
eager and torch.compile, and against this project's distinct-level formulation in PyTorch. The "ipr bf16" column is
the fastest of the engine's BF16 convolution paths in the run (cuda-bf16 im2col, cuda-bf16-implicit,
cuda-bf16-cudnn), named by its suffix (i: implicit, d: cuDNN).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_util import fmt, passes as ps, ratio as _ratio  # noqa: E402


BF16_PATHS = [("cuda-bf16", ""), ("cuda-bf16-implicit", " (i)"), ("cuda-bf16-cudnn", " (d)")]


def main(ipr_path, torch_path):
    ipr = json.load(open(ipr_path))
    tor = json.load(open(torch_path))
    peak = ipr.get("bf16_gemm_tflops", 0.0)
    I = {(r["config"], r["batch"], r["backend"]): r for r in ipr["results"]}
    T = {(r["config"], r["batch"], r["variant"]): r for r in tor["results"]}

    def ratio(a, b):
        return _ratio(a, b, 1)

    print(f"GPU: {tor.get('device')}, PyTorch {tor.get('torch')}; measured BF16 GEMM rate {peak:.0f} TFLOP/s\n")
    print("| config | B | ipr cpu | ipr fp32 | ipr tf32 | ipr bf16 | torch ref fp32 | torch ref bf16 | "
          "torch ref compile fp32 | torch ref compile bf16 | torch distinct bf16 | bf16: ipr / best torch ref | "
          "fp32: ipr / torch ref | ipr bf16 TFLOP/s (% of peak) |")
    print("|---" * 14 + "|")
    for cfg, b in sorted({(k[0], k[1]) for k in I}, key=lambda k: (["ep_4", "cp_ffhq_8", "ms1000_28", "tiny"].index(k[0])
                                                                   if k[0] in ["ep_4", "cp_ffhq_8", "ms1000_28", "tiny"]
                                                                   else 9, k[1])):
        i = {bk: ps(I, (cfg, b, bk)) for bk in ["cpu", "cuda-fp32", "cuda-tf32"]}
        bf = [(ps(I, (cfg, b, bk)), bk, tag) for bk, tag in BF16_PATHS if ps(I, (cfg, b, bk))]
        best = max(bf) if bf else (None, "cuda-bf16", "")
        i["cuda-bf16"] = best[0]
        t = {v: ps(T, (cfg, b, v)) for v in ["ref_eager_fp32", "ref_eager_bf16", "ref_compile_fp32",
                                              "ref_compile_bf16", "distinct_eager_bf16"]}
        best_bf16 = max([v for v in (t["ref_eager_bf16"], t["ref_compile_bf16"]) if v] or [None]) if any(
            (t["ref_eager_bf16"], t["ref_compile_bf16"])) else None
        best_fp32 = max([v for v in (t["ref_eager_fp32"], t["ref_compile_fp32"]) if v] or [None]) if any(
            (t["ref_eager_fp32"], t["ref_compile_fp32"])) else None
        r = I.get((cfg, b, best[1]))
        tf = r["gflop_per_pass"] * r["passes_per_s"] / 1e3 if r else None
        util = f"{tf:.0f} ({100 * tf / peak:.0f}%)" if tf and peak else "-"
        print(f"| {cfg} | {b} | {fmt(i['cpu'])} | {fmt(i['cuda-fp32'])} | {fmt(i['cuda-tf32'])} | "
              f"{fmt(i['cuda-bf16'])}{best[2]} | {fmt(t['ref_eager_fp32'])} | {fmt(t['ref_eager_bf16'])} | "
              f"{fmt(t['ref_compile_fp32'])} | {fmt(t['ref_compile_bf16'])} | {fmt(t['distinct_eager_bf16'])} | "
              f"{ratio(i['cuda-bf16'], best_bf16)} | {ratio(i['cuda-fp32'], best_fp32)} | {util} |")
    errs = [r for r in tor["results"] if "error" in r]
    for r in errs:
        print(f"\ntorch {r['config']} B={r['batch']} {r['variant']}: {r['error']}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
