"""bench_util.py: what the PyTorch benchmarks (torch_unet_bench.py, torch_dit_bench.py) and their comparison tables
(compare.py, compare_dit.py) share: median GPU time per call, the JSON they write, and the table cells."""
import json
import os
import time


def time_it(fn, min_time=1.0, max_iters=300):
    """Median seconds per call of fn on the GPU (CUDA events; 3 warm-ups, at least 5 and up to max_iters calls,
    for at least min_time seconds)."""
    import torch

    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    start = time.perf_counter()
    while len(times) < max_iters and (time.perf_counter() - start < min_time or len(times) < 5):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e) / 1000.0)
    times.sort()
    return times[len(times) // 2]


def measure(run, rec, batch, min_time, warmup=False):
    """Fill rec with the first call's seconds (compile included) and, unless warmup, the median seconds and
    passes/s of run() at this batch; an out-of-memory or any other failure is recorded in rec["error"] (a failed
    variant is reported, the rest still run). Returns rec."""
    import torch

    try:
        t0 = time.perf_counter()
        run()
        torch.cuda.synchronize()
        rec.update(first_call_s=round(time.perf_counter() - t0, 2))
        if not warmup:
            sec = time_it(run, min_time)
            rec.update(seconds=sec, passes_per_s=batch / sec)
    except torch.cuda.OutOfMemoryError:
        rec.update(error="out of memory")
        torch.cuda.empty_cache()
    except Exception as e:  # noqa: BLE001
        rec.update(error=f"{type(e).__name__}: {str(e)[:200]}")
    return rec


def save(path, results):
    """The results (a list of records) with the PyTorch version and GPU name, atomically."""
    import torch

    with open(path + ".tmp", "w") as f:
        json.dump(dict(torch=torch.__version__, device=torch.cuda.get_device_name(), results=results), f, indent=1)
    os.replace(path + ".tmp", path)


def passes(table, key):
    """passes/s of a record of table (a dict keyed like the caller's), None when absent or failed."""
    r = table.get(key)
    return r.get("passes_per_s") if r else None


def fmt(v):
    return "-" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:.1f}")


def ratio(a, b, digits=1):
    return "-" if a is None or b is None else f"{a / b:.{digits}f}x"
