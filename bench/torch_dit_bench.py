#!/usr/bin/env python3
"""torch_dit_bench.py: forward passes per second of the region-token DiT (train/srm_dit.py, the same network the C
engine runs) in PyTorch, the comparison for `ipr bench --configs dit_ms,dit_ep,dit_cp`. Same configurations (d 384,
depth 12, 6 heads, one token per region, x-prediction), random weights, a sampler's noise maps (each region clean,
waiting or on a ramp k / 10) and batch sizes as the C benchmark.

Variants: eager and torch.compile (default mode, and mode "max-autotune-no-cudagraphs" is not used: its tuning
takes minutes), float32 and BF16 autocast; the image-level forward (tokenize, network, untokenize, velocity), as the
sampler calls it. Prints one JSON line per measurement and writes them all to --output.
usage: torch_dit_bench.py --output FILE.json [--configs dit_ms,dit_ep,dit_cp] [--batches 1,64,512]
"""
import argparse
import json
import os
import sys

import torch
import torch._dynamo  # noqa: F401

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_util import measure, save  # noqa: E402
import srm_dit  # noqa: E402

CONFIGS = {
    "dit_ms": dict(d_in=1, image_size=[252, 252], patch_size=28),
    "dit_ep": dict(d_in=3, image_size=[32, 32], patch_size=4),
    "dit_cp": dict(d_in=3, image_size=[128, 128], patch_size=8),
}
ARCH = dict(tokens_per_side=1, d_hid=384, depth=12, num_heads=6, mlp_ratio=4, parameterization="x", t_min=0.05)


def noise_map(b, size, patch, gen):
    """a sampler's map: each region clean (0), waiting (1) or on a ramp k / 10 (at most 11 levels)"""
    g = size // patch
    r = torch.rand(b, 1, g, g, generator=gen)
    ramp = torch.randint(1, 10, (b, 1, g, g), generator=gen).float() / 10.0
    lv = torch.where(r < 1 / 3, torch.zeros_like(r), torch.where(r < 2 / 3, torch.ones_like(r), ramp))
    return lv.repeat_interleave(patch, 2).repeat_interleave(patch, 3)






def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--output", required=True)
    ap.add_argument("--configs", default="dit_ms,dit_ep,dit_cp")
    ap.add_argument("--batches", default="1,64,512")
    ap.add_argument("--variants", default="eager_fp32,eager_bf16,compile_bf16")
    ap.add_argument("--min-time", type=float, default=1.0)
    args = ap.parse_args(argv)
    torch.backends.cuda.matmul.allow_tf32 = False
    dev = torch.device("cuda")
    for flag in ("fail_on_recompile_limit_hit", "fail_on_cache_limit_hit"):
        if hasattr(torch._dynamo.config, flag):
            setattr(torch._dynamo.config, flag, True)
    results = []
    for name in args.configs.split(","):
        c = dict(CONFIGS[name], **ARCH)
        for variant in args.variants.split(","):
            mode, dtype = variant.split("_")
            torch._dynamo.reset()
            torch.manual_seed(0)
            net = srm_dit.from_config(c).to(dev).eval()
            for p in net.parameters():  # random weights, none zero (the zero-init layers would hide work)
                torch.nn.init.normal_(p, std=0.02)
            fwd = torch.compile(net) if mode == "compile" else net
            for b in [int(x) for x in args.batches.split(",")]:
                gen = torch.Generator().manual_seed(b)
                S = c["image_size"][0]
                x = torch.randn(b, c["d_in"], S, S, generator=gen).to(dev)
                t = noise_map(b, S, c["patch_size"], gen).to(dev)

                def run():
                    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == "bf16"):
                        fwd(x, t)

                rec = measure(run, dict(config=name, variant=variant, batch=b), b, args.min_time)
                print(json.dumps(rec), flush=True)
                results.append(rec)
                save(args.output, results)
            del net, fwd
            torch.cuda.empty_cache()
    save(args.output, results)


if __name__ == "__main__":
    main(sys.argv[1:])
