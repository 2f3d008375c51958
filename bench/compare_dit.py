#!/usr/bin/env python3
"""compare_dit.py: merge `ipr bench --configs dit_* --output` and torch_dit_bench.py JSON into one Markdown table.

usage: compare_dit.py BENCH_IPR.json BENCH_TORCH.json
Ratios: ipr BF16 / torch.compile BF16 and / the best PyTorch BF16 variant; ipr FP32 / PyTorch eager FP32. The
fraction of the measured BF16 matrix rate counts the FLOPs the engine performs (modulation once per distinct level).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_util import fmt, passes as ps, ratio as _ratio  # noqa: E402

ORDER = ["dit_ms", "dit_ep", "dit_cp", "dit_tiny"]


def main(ipr_path, torch_path):
    ipr = json.load(open(ipr_path))
    tor = json.load(open(torch_path))
    peak = ipr.get("bf16_gemm_tflops", 0.0)
    I = {(r["config"], r["batch"], r["backend"]): r for r in ipr["results"] if r["config"].startswith("dit")}
    T = {(r["config"], r["batch"], r["variant"]): r for r in tor["results"]}

    def ratio(a, b):
        return _ratio(a, b, 2)

    print(f"GPU: {tor.get('device')}, PyTorch {tor.get('torch')}; measured BF16 GEMM rate {peak:.0f} TFLOP/s\n")
    print("| config | B | ipr cpu | ipr fp32 | ipr tf32 | ipr bf16 | torch eager fp32 | torch eager bf16 | "
          "torch compile bf16 | bf16: ipr / compile | bf16: ipr / best torch | fp32: ipr / eager | "
          "ipr bf16 TFLOP/s (% of peak) |")
    print("|---" * 13 + "|")
    keys = sorted({(k[0], k[1]) for k in I}, key=lambda k: (ORDER.index(k[0]) if k[0] in ORDER else 9, k[1]))
    for cfg, b in keys:
        i = {bk: ps(I, (cfg, b, bk)) for bk in ["cpu", "cuda-fp32", "cuda-tf32", "cuda-bf16"]}
        t = {v: ps(T, (cfg, b, v)) for v in ["eager_fp32", "eager_bf16", "compile_bf16"]}
        best = max([v for v in (t["eager_bf16"], t["compile_bf16"]) if v], default=None)
        r = I.get((cfg, b, "cuda-bf16"))
        tf = r["gflop_per_pass"] * r["passes_per_s"] / 1e3 if r else None
        util = f"{tf:.0f} ({100 * tf / peak:.0f}%)" if tf and peak else "-"
        print(f"| {cfg} | {b} | {fmt(i['cpu'])} | {fmt(i['cuda-fp32'])} | {fmt(i['cuda-tf32'])} | "
              f"{fmt(i['cuda-bf16'])} | {fmt(t['eager_fp32'])} | {fmt(t['eager_bf16'])} | {fmt(t['compile_bf16'])} | "
              f"{ratio(i['cuda-bf16'], t['compile_bf16'])} | {ratio(i['cuda-bf16'], best)} | "
              f"{ratio(i['cuda-fp32'], t['eager_fp32'])} | {util} |")
    for r in tor["results"]:
        if "error" in r:
            print(f"\ntorch {r['config']} B={r['batch']} {r['variant']}: {r['error']}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
