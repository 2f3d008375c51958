#!/usr/bin/env python3
"""torch_unet_bench.py: forward passes per second of the SRM U-Net in PyTorch, the comparison for
`ipr bench`. Same configs, random weights, per-region noise maps and batch sizes as the C benchmark.

Variants: the reference formulation (embedding MLP per pixel) eager and torch.compile'd, float32 and
BF16 autocast; and this project's distinct-level formulation (exact, same outputs) eager. Prints one
JSON line per measurement and writes them all to --output (JSON list).
usage: torch_unet_bench.py --output FILE.json [--configs ep_4,cp_ffhq_8,ms1000_28] [--batches 1,16,64]
       torch_unet_bench.py --warmup --configs C --variants V ...   (compile only: fills Inductor's caches)

`torch.compile` costs minutes per graph for the large configurations, more than one device command allows
for all of them in sequence; scripts/device/run.sh therefore first runs one --warmup process per compiled
(config, variant) in parallel, which fills Inductor's on-disk FX-graph and Triton caches, and then the
measured run, whose compiles are cache hits. The time of each first call (compile included) is recorded.
"""
import argparse
import json
import os
import sys

import torch
import torch._dynamo  # noqa: F401 - its config is set in main()

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_util import measure, save  # noqa: E402
import srm_unet  # noqa: E402

# spec 1.2 / fixtures manifest
CONFIGS = {
    "ep_4": dict(hid_dims=[64, 128, 128, 256], attention=[0, 0, 1, 1], d_in=3, d_out=7, size=32, patch=4),
    "cp_ffhq_8": dict(hid_dims=[128, 128, 256, 256, 512], attention=[0, 0, 0, 1, 1], d_in=3, d_out=7, size=128,
                      patch=8),
    "ms1000_28": dict(hid_dims=[128, 128, 256, 256, 512, 512], attention=[0, 0, 0, 0, 1, 1], d_in=1, d_out=3,
                      size=252, patch=28),
}


def noise_map(b, size, patch, gen):
    """per-region levels: a third clean, a third pure noise, a third in between (a sampler's mid-run)"""
    g = size // patch
    r = torch.rand(b, 1, g, g, generator=gen)
    lv = torch.where(r < 1 / 3, torch.zeros_like(r), torch.where(r < 2 / 3, torch.ones_like(r), torch.rand(b, 1, g, g,
                                                                                                              generator=gen)))
    return lv.repeat_interleave(patch, 2).repeat_interleave(patch, 3)






def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--output")
    ap.add_argument("--configs", default="ep_4,cp_ffhq_8,ms1000_28")
    ap.add_argument("--batches", default="1,16,64")
    ap.add_argument("--variants", default="ref_eager_fp32,ref_eager_bf16,ref_compile_fp32,ref_compile_bf16,"
                                          "distinct_eager_bf16,distinct_eager_fp32")
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--warmup", action="store_true", help="compile and run each batch once, measure nothing")
    args = ap.parse_args(argv)
    if not args.warmup and not args.output:
        ap.error("--output is required (except with --warmup)")
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    # Every net below runs SRMUNet.forward, one code object: without a reset per variant, Dynamo counts each
    # new net as a recompile and, past its limit, silently runs the rest eagerly. Fail loudly instead.
    for flag in ("fail_on_recompile_limit_hit", "fail_on_cache_limit_hit"):
        if hasattr(torch._dynamo.config, flag):
            setattr(torch._dynamo.config, flag, True)
    results = []
    for name in args.configs.split(","):
        c = CONFIGS[name]
        for variant in args.variants.split(","):
            form, mode, dtype = variant.split("_")
            torch._dynamo.reset()
            torch.manual_seed(0)
            net = srm_unet.from_config(c, temb="per_pixel" if form == "ref" else "distinct").to(dev).eval()
            for p in net.parameters():  # random weights, none zero (zero-init layers would hide work)
                torch.nn.init.normal_(p, std=0.02)
            fwd = torch.compile(net) if mode == "compile" else net
            for b in [int(x) for x in args.batches.split(",")]:
                gen = torch.Generator().manual_seed(b)
                x = torch.randn(b, c["d_in"], c["size"], c["size"], generator=gen).to(dev)
                t = noise_map(b, c["size"], c["patch"], gen).to(dev)

                def run():
                    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == "bf16"):
                        fwd(x, t)

                rec = measure(run, dict(config=name, variant=variant, batch=b), b, args.min_time, args.warmup)
                print(json.dumps(rec), flush=True)
                if args.warmup:
                    continue
                results.append(rec)
                save(args.output, results)  # after every record: a run cut short keeps what it measured
            del net, fwd
            torch.cuda.empty_cache()
    if not args.warmup:
        save(args.output, results)


if __name__ == "__main__":
    main(sys.argv[1:])
