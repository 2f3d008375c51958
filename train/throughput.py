"""throughput.py: measure SRM training throughput (samples/s per GPU, full training step: mean_beta levels,
BF16 forward/backward, AdamW, EMA) for a few widths per benchmark, and the data generators' rate per CPU core.

Usage: python3 train/throughput.py --output out/throughput.json [--benches ep,cp,ms] [--seconds 12]
       [--widths "ep=32,32,64,64/32,64,64,128 cp=..."] [--batches "ep=256 cp=64 ms=32"]
Prints a markdown table; the JSON holds every measurement. --profile N: also N training steps of each
configuration under torch.profiler, the top operators by device time written to OUTPUT's stem + _profile.md
(where a step's time goes, before choosing what to optimise). A width that runs out of memory is retried at half
the batch. The export columns say whether the weights fit the 16 MiB a device call returns (float32 / float16).
"""
import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import srm_data  # noqa: E402
import train_srm  # noqa: E402

DEFAULT_WIDTHS = {
    "ep": "32,32,64,64/32,64,64,128/64,64,128,128/64,128,128,256",
    "cp": "32,32,64,64,128/32,64,64,128,128/64,64,128,128,256",
    "ms": "32,32,64,64,64,128/32,32,64,64,128,128/64,64,128,128,256,256",
}
DEFAULT_BATCHES = {"ep": 512, "cp": 64, "ms": 32}


def parse_map(s, default):
    out = dict(default)
    for item in (s or "").split():
        k, v = item.split("=", 1)
        out[k] = v
    return out


def profile_steps(tr, x, g, steps, device, title, path):
    """Append to `path` the top operators of `steps` training steps by self device time (CPU time on a CPU)."""
    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.time()
    with profile(activities=acts) as prof:
        for _ in range(steps):
            tr.train_step(x, g)
        sync()
    wall = time.time() - t0
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    if device.type == "cuda" and not hasattr(prof.key_averages()[0], key):
        key = "self_device_time_total"
    table = prof.key_averages().table(sort_by=key, row_limit=25, max_name_column_width=60)
    with open(path, "a") as f:
        f.write(f"## {title}: {steps} steps in {wall:.2f} s under the profiler\n\n```\n{table}\n```\n\n")
    print(f"{title}: profile of {steps} steps written to {path}", flush=True)


def measure(preset, hid, batch, seconds, device, precision, lib, profile=0, profile_path=None):
    args = train_srm.parse_args(["--preset", preset, "--hid-dims", ",".join(map(str, hid)), "--batch", str(batch),
                                 "--warmup", "0"])
    cfg = train_srm.resolve(args)
    tr = train_srm.Trainer(cfg, device, precision=precision, density_samples=2000)
    gen = srm_data.Generator(cfg["bench"], 1, srm_data.SPLIT_TRAIN, lib=lib)
    imgs, given, _ = gen.batch(0, batch)
    x = srm_data.to_unit(imgs).to(device)
    g = torch.from_numpy(given).to(device) if given is not None else None
    for _ in range(3):
        tr.train_step(x, g)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    n, t0 = 0, time.time()
    while time.time() - t0 < seconds or n < 3:
        tr.train_step(x, g)
        n += 1
        if n % 5 == 0:
            sync()
    sync()
    dt = time.time() - t0
    if profile:
        profile_steps(tr, x, g, profile, device, f"{preset} {hid} batch {batch} ({precision})", profile_path)
    params = sum(p.numel() for p in tr.model.parameters())
    res = {"preset": preset, "hid_dims": hid, "attention": cfg["attention"], "batch": batch, "params": params,
           "steps": n, "seconds": dt, "samples_per_s": n * batch / dt, "step_ms": 1000 * dt / n,
           "export_mib_fp32": params * 4 / 2 ** 20, "export_mib_fp16": params * 2 / 2 ** 20,
           "peak_mem_gib": torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else None}
    del tr
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return res


def data_rate(preset, lib, count):
    bench = train_srm.PRESETS[preset]["bench"]
    gen = srm_data.Generator(bench, 1, srm_data.SPLIT_TRAIN, lib=lib)
    gen.batch(0, 4)
    t0 = time.time()
    imgs, _, _ = gen.batch(1000, count)
    srm_data.to_unit(imgs)
    return count / (time.time() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--output", required=True)
    ap.add_argument("--benches", default="ep,cp,ms")
    ap.add_argument("--widths", help='per preset, widths separated by "/", e.g. "ep=32,32,64,64/32,64,64,128"')
    ap.add_argument("--batches", help='per preset batch per GPU, e.g. "ep=512 cp=64 ms=32"')
    ap.add_argument("--seconds", type=float, default=12.0, help="timed seconds per configuration")
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    ap.add_argument("--lib")
    ap.add_argument("--profile", type=int, default=0, help="also profile this many steps of each configuration")
    args = ap.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    precision = args.precision if args.precision != "auto" else ("bf16" if device.type == "cuda" else "fp32")
    widths = parse_map(args.widths, DEFAULT_WIDTHS)
    batches = parse_map(args.batches, {k: str(v) for k, v in DEFAULT_BATCHES.items()})
    results = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
               "torch": torch.__version__, "precision": precision, "cpu_count": os.cpu_count(), "runs": [],
               "data_per_core": {}}
    for preset in args.benches.split(","):
        results["data_per_core"][preset] = rate = data_rate(preset, args.lib, 256 if preset != "cp" else 64)
        print(f"{preset}: data generation {rate:.0f} instances/s per CPU core", flush=True)
        for w in widths[preset].split("/"):
            hid = [int(c) for c in w.split(",")]
            b = int(batches[preset])
            while b >= 1:
                try:
                    r = measure(preset, hid, b, args.seconds, device, precision, args.lib, args.profile,
                                os.path.splitext(args.output)[0] + "_profile.md")
                    break
                except torch.cuda.OutOfMemoryError if hasattr(torch.cuda, "OutOfMemoryError") else RuntimeError:
                    torch.cuda.empty_cache()
                    print(f"{preset} {hid}: out of memory at batch {b}", flush=True)
                    b //= 2
            else:
                continue
            results["runs"].append(r)
            print(f"{preset} {hid} batch {r['batch']}: {r['samples_per_s']:.0f} samples/s, {r['step_ms']:.1f} ms/step, "
                  f"{r['params'] / 1e6:.2f} M params, peak {r['peak_mem_gib'] or 0:.1f} GiB", flush=True)
            with open(args.output, "w") as f:
                json.dump(results, f, indent=1)
    lines = ["| preset | hid_dims | batch | params (M) | samples/s per GPU | ms/step | peak GiB | export MiB fp32 / fp16 |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results["runs"]:
        lines.append(f"| {r['preset']} | {r['hid_dims']} | {r['batch']} | {r['params'] / 1e6:.2f} | "
                     f"{r['samples_per_s']:.0f} | {r['step_ms']:.1f} | {r['peak_mem_gib'] or 0:.1f} | "
                     f"{r['export_mib_fp32']:.1f} / {r['export_mib_fp16']:.1f} |")
    lines.append("")
    lines.append("data generation, instances/s per CPU core: " + ", ".join(
        f"{k} {v:.0f}" for k, v in results["data_per_core"].items()) + f" ({results['cpu_count']} cores)")
    table = "\n".join(lines)
    print(table)
    with open(os.path.splitext(args.output)[0] + ".md", "w") as f:
        f.write(f"{results['device']}, torch {results['torch']}, {precision}\n\n{table}\n")
    with open(args.output, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
