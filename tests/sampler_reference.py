#!/usr/bin/python3
"""sampler_reference.py: an independent PyTorch (float64) reference of the sampler, run against libipr.

Written from the spec (srm-ipr.md 2.5, 2.6, 3.1, 3.2, 9) for this project: the transition, the float32 block
arithmetic as torch computes it, the four orders (adaptive, random, graph, parallel) and IPR with uniform
subsets. It takes the same random numbers as the C code through ctypes (Philox from libipr: counter-indexed
normals, ipr_rng_below for shuffles and tie breaks) and the same network (the C forward of the tiny fixture
network, srm_unet_tiny.h5), so the two must choose the same region orders and land on the same samples
within float32 tolerance. Any difference is a bug in one of the two.

usage: sampler_reference.py LIBIPR.so FIXTURES_DIR
Exits 0 on success, 1 on a mismatch, 77 (ctest's skip code) when PyTorch is not installed.
"""
import ctypes as C
import math
import os
import sys

try:
    import numpy as np
    import torch
except ImportError as e:  # only a missing torch/numpy skips; everything else must run
    print(f"SKIP: {e} (install python3-torch and python3-numpy: scripts/install-deps)")
    sys.exit(77)

torch.set_default_dtype(torch.float32)

# ---- tolerances: one table, where each number comes from ----
TOL_SAMPLE = 1e-5      # max |C - reference| of a sample: C stores float32 after each float64 step, as this does
TOL_TRANSITION = 1e-6  # one transition on float32 inputs: the same float64 formula, one float32 rounding

RNG_INIT_NOISE, RNG_STEP_NOISE, RNG_IPR_SUBSET, RNG_IPR_NOISE, RNG_TIE_BREAK, RNG_ORDER = 32, 33, 34, 35, 37, 38
STEP_BITS = 20
WAITING, CLEAN = -1, -2


# ================================ libipr through ctypes ================================

class Rng(C.Structure):
    _fields_ = [("key", C.c_uint32 * 2), ("ctr", C.c_uint32 * 4), ("buf", C.c_uint32 * 4), ("pos", C.c_uint),
                ("has_spare", C.c_int), ("spare", C.c_double)]


class DenoiserConfig(C.Structure):
    _fields_ = [("device", C.c_int), ("gpu", C.c_int), ("precision", C.c_int), ("max_batch", C.c_int),
                ("cpu_threads", C.c_int)]


class ChainResult(C.Structure):
    _fields_ = [("instance", C.c_uint64), ("iterations", C.c_int), ("iterations_run", C.c_int),
                ("valid", C.POINTER(C.c_uint8)), ("error", C.POINTER(C.c_float)), ("nfe", C.POINTER(C.c_uint32)),
                ("changed", C.POINTER(C.c_uint16)), ("image", C.POINTER(C.c_float)), ("nfe_saved", C.c_uint32),
                ("solution_match", C.c_uint8)]


class BlockPlan(C.Structure):
    _fields_ = [("regions", C.c_int), ("max_steps", C.c_int), ("L_ideal", C.c_float), ("L", C.c_int),
                ("ramp", C.c_int)]


NOISE_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_uint32, C.c_uint64, C.c_uint32, C.POINTER(C.c_float), C.c_size_t)
SUBSET_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_uint64, C.c_int, C.POINTER(C.c_uint16), C.c_int, C.c_int,
                        C.POINTER(C.c_uint16))
INSTANCE_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_uint64, C.POINTER(C.c_float), C.POINTER(C.c_uint8))
PASS_FN = C.CFUNCTYPE(None, C.c_void_p, C.c_uint64, C.c_int, C.c_int, C.POINTER(C.c_float), C.POINTER(C.c_float),
                      C.c_int)
CHOICE_FN = C.CFUNCTYPE(None, C.c_void_p, C.c_uint64, C.c_int, C.c_int, C.c_int, C.POINTER(C.c_float), C.c_int)
GEN_FN = C.CFUNCTYPE(None, C.c_void_p, C.c_uint64, C.c_int, C.c_int, C.POINTER(C.c_float))


class Hooks(C.Structure):
    _fields_ = [("ctx", C.c_void_p), ("noise", NOISE_FN), ("subset", SUBSET_FN), ("instance", INSTANCE_FN),
                ("on_pass", PASS_FN), ("on_choice", CHOICE_FN), ("on_generation", GEN_FN)]


def load_lib(path):
    lib = C.CDLL(path)
    lib.ipr_rng_init.argtypes = [C.POINTER(Rng), C.c_uint64, C.c_uint32, C.c_uint64, C.c_uint32]
    lib.ipr_rng_below.argtypes = [C.POINTER(Rng), C.c_uint32]
    lib.ipr_rng_below.restype = C.c_uint32
    lib.ipr_rng_fill_normal.argtypes = [C.c_uint64, C.c_uint32, C.c_uint64, C.c_uint32, C.POINTER(C.c_float),
                                        C.c_uint64]
    lib.ipr_denoiser_config_init.argtypes = [C.POINTER(DenoiserConfig)]
    lib.ipr_denoiser_open.argtypes = [C.c_char_p, C.POINTER(DenoiserConfig)]
    lib.ipr_denoiser_open.restype = C.c_void_p
    lib.ipr_denoiser_forward.argtypes = [C.c_void_p, C.POINTER(C.c_float), C.POINTER(C.c_float), C.c_int,
                                         C.POINTER(C.c_float)]
    lib.ipr_denoiser_free.argtypes = [C.c_void_p]
    lib.ipr_task_new_custom.argtypes = [C.c_int] * 4
    lib.ipr_task_new_custom.restype = C.c_void_p
    lib.ipr_task_free.argtypes = [C.c_void_p]
    lib.ipr_sampler_config_size.restype = C.c_size_t
    lib.ipr_sampler_config_init.argtypes = [C.c_void_p]
    lib.ipr_sampler_config_set.argtypes = [C.c_void_p, C.c_char_p, C.c_char_p]
    lib.ipr_runner_new.argtypes = [C.c_void_p, C.c_void_p, C.c_void_p]
    lib.ipr_runner_new.restype = C.c_void_p
    lib.ipr_runner_free.argtypes = [C.c_void_p]
    lib.ipr_runner_set_hooks.argtypes = [C.c_void_p, C.POINTER(Hooks)]
    lib.ipr_runner_run.argtypes = [C.c_void_p, C.c_uint64, C.POINTER(C.c_uint64), C.c_int, C.POINTER(ChainResult),
                                   C.c_void_p, C.c_void_p]
    lib.ipr_chain_result_alloc.argtypes = [C.POINTER(ChainResult), C.c_int, C.c_size_t]
    lib.ipr_chain_result_free.argtypes = [C.POINTER(ChainResult)]
    lib.ipr_block_plan_make.argtypes = [C.c_int, C.c_int, C.c_double, C.c_int, C.c_int, C.POINTER(BlockPlan),
                                        C.POINTER(C.c_int)]
    lib.ipr_block_plan_parallel.argtypes = [C.c_int, C.c_int, C.c_double, C.c_int, C.POINTER(BlockPlan),
                                            C.POINTER(C.c_int)]
    lib.ipr_block_level.argtypes = [C.POINTER(BlockPlan), C.c_int, C.c_int]
    lib.ipr_block_level.restype = C.c_float
    lib.ipr_transition.argtypes = [C.POINTER(C.c_float)] * 5 + [C.c_int] * 4 + [C.c_double] * 2
    lib.ipr_error_message.restype = C.c_char_p
    return lib


def fptr(a):
    return a.ctypes.data_as(C.POINTER(C.c_float))


def check(cond, what):
    if not cond:
        raise AssertionError(what)


# ================================ the reference, from the spec ================================

def normals(lib, seed, purpose, instance, step, n):
    """Counter-indexed N(0, 1): element i is a function of (seed, purpose, instance, step, i) alone."""
    out = np.empty(n, dtype=np.float32)
    lib.ipr_rng_fill_normal(seed, purpose, instance, step, fptr(out), n)
    return out


def shuffle(lib, seed, purpose, instance, step, items):
    """Fisher-Yates from the last element down, j = below(i) on the stream (the project's shuffle)."""
    r = Rng()
    lib.ipr_rng_init(C.byref(r), seed, purpose, instance, step)
    v = list(items)
    for i in range(len(v), 1, -1):
        j = lib.ipr_rng_below(C.byref(r), i)
        v[i - 1], v[j] = v[j], v[i - 1]
    return v


def torch_plan(B, p, o, max_steps=0, floor_length=False):
    """Spec 3.1 / 9a block arithmetic, computed the way torch computes it: B an int32 tensor, (1 - o) a
    Python float meeting float32 tensors, max_steps / tensor as torch evaluates it."""
    n = torch.tensor([B], dtype=torch.int32)
    ms = max_steps if max_steps > 0 else math.ceil(p + (n - 1) * (1 - o) * p)
    ideal = ms / ((n - 1) * (1 - o) + 1)
    if floor_length:
        L = max(1, int(ideal.floor()))
        starts = (torch.arange(B, dtype=torch.float32) * float(L) * (1 - o)).floor()
    else:
        L = max(1, int(ideal.ceil()))
        starts = (torch.arange(B).unsqueeze(0) * ideal.unsqueeze(1) * (1 - o)).floor()[0]
    starts = [min(int(s), ms - 1) for s in starts]
    return ms, float(ideal), L, starts


def linspace_cuda(n):
    """torch.linspace(1, 0, n) in float32 as torch's CUDA kernel computes it (the reference samples on GPUs):
    step = (0 - 1) / (n - 1); the first half start + step * i, the second end - step * (n - 1 - i). (The CPU
    kernel's vectorised path differs by an ulp at places that depend on the SIMD width.)"""
    step = np.float32(-1.0) / np.float32(n - 1)
    out = [np.float32(1.0) + step * np.float32(i) if i < n // 2 else np.float32(0.0) - step * np.float32(n - 1 - i)
           for i in range(n)]
    return torch.tensor(np.array(out, dtype=np.float32))


class Plan:
    def __init__(self, B, p, o, max_steps=0, kind="adaptive"):
        if kind == "parallel":
            self.ms = max_steps if max_steps > 0 else torch_plan(B, p, o)[0]
            self.L = self.ms
            self.starts = [0] * B
            self.ramp = linspace_cuda(self.ms + 1)
        else:
            floor_length = max_steps > 0 and kind in ("random", "graph")
            self.ms, _, self.L, self.starts = torch_plan(B, p, o, max_steps, floor_length)
            # the ramp 1, (L-1)/L, ..., 1/L, as float32 divisions
            steps_left = torch.arange(self.L, 0, -1, dtype=torch.float32)
            self.ramp = steps_left / torch.tensor(float(self.L), dtype=torch.float32)

    def level(self, start, s):
        if s >= self.ms:
            return 0.0
        j = s - start
        if j < 0:
            return 1.0
        if j >= self.L:
            return 0.0
        return float(self.ramp[j])


def transition(z, y, t, tn, alpha, temperature, noise, patch):
    """Spec 2.5 in float64 on float32 inputs, per pixel; returns float32. t, tn: per-region (gh, gw)."""
    Cc = z.shape[0]
    z64 = torch.from_numpy(z).double()
    u = torch.from_numpy(y[:Cc]).double()
    v = ((torch.from_numpy(y[Cc:2 * Cc]) + 1.0) / 2.0).double()  # spec 1.6, float32 then widened
    tp = torch.from_numpy(np.kron(t, np.ones((patch, patch)))).double()[None]
    tnp = torch.from_numpy(np.kron(tn, np.ones((patch, patch)))).double()[None]
    x_hat = z64 - tp * u
    e_hat = z64 + (1 - tp) * u
    # torch divides by zero quietly; the where() calls below replace those entries (t = 0 or t* = 1)
    r = ((1 - tp) * tnp) / ((1 - tnp) * tp)
    one_r2 = torch.clamp(1 - r * r, min=0.0)
    gamma = tnp * torch.sqrt(1 - alpha * alpha * one_r2)
    gamma = torch.where(tp == 0, torch.zeros_like(gamma), gamma)
    gamma = torch.where(tnp == 1, tnp, gamma)
    off = (tp == 0) | (tnp == 1)
    s_lo = torch.where(off, torch.zeros_like(tp), alpha * tnp * torch.sqrt(one_r2))
    s_hi = torch.where(off, torch.zeros_like(tp), alpha * tp * torch.sqrt(one_r2))
    learned = (s_lo > 0) & (s_hi > 0)
    sigma = torch.where(learned, torch.exp(v * torch.log(s_hi) + (1 - v) * torch.log(s_lo)), torch.zeros_like(v))
    std = torch.clamp(sigma, min=math.exp(-15.0))  # spec 9b: variance floor e^-30
    mean = (1 - tnp) * x_hat + gamma * e_hat
    out = torch.where(tnp > 0, mean + temperature * std * torch.from_numpy(noise).double(), mean)
    out = torch.where((tp == 0) & (tnp == 0), z64, out)  # t* = t = 0: untouched
    return out.float().numpy()


def pooled_sigma(y, patch):
    """Spec 1.6: exp(0.5 * mean of the log-variance channel over each region), mean in float64."""
    lv = torch.from_numpy(y[-1]).double()[None, None]
    m = torch.nn.functional.avg_pool2d(lv, patch)[0, 0]
    return torch.exp(0.5 * m).float().numpy()


def graph_order(lib, seed, instance, iteration, unknown, g):
    """Spec 2.6 max_order 1 on a g x g Sudoku grid (boxes b x b, g = b^2): most known peers first, ties by
    below(#ties) on the tie-break stream over the candidates in ascending order."""
    b = int(round(math.sqrt(g)))
    known = [not u for u in unknown]
    r = Rng()
    lib.ipr_rng_init(C.byref(r), seed, RNG_TIE_BREAK, instance, iteration)
    order = []
    for _ in range(sum(unknown)):
        best, cand = -1, []
        for c in range(g * g):
            if known[c]:
                continue
            row, col = divmod(c, g)
            peers = sum(1 for q in range(g * g) if q != c and known[q] and (
                q // g == row or q % g == col or (q // g // b == row // b and q % g // b == col // b)))
            if peers > best:
                best, cand = peers, []
            if peers == best:
                cand.append(c)
        pick = cand[lib.ipr_rng_below(C.byref(r), len(cand))]
        order.append(pick)
        known[pick] = True
    return order


class Reference:
    def __init__(self, lib, den, shape, patch, cfg, seed):
        self.lib, self.den = lib, den
        self.C, self.H, self.W = shape
        self.patch = patch
        self.gh, self.gw = self.H // patch, self.W // patch
        self.R = self.gh * self.gw
        self.cfg, self.seed = cfg, seed
        self.choices = []  # (iteration, pass, region)
        self.samples = []

    def forward(self, z, t_region):
        x = np.ascontiguousarray(z[None], dtype=np.float32)
        t = np.ascontiguousarray(np.kron(t_region.reshape(self.gh, self.gw), np.ones((self.patch, self.patch)))
                                 [None, None], dtype=np.float32)
        y = np.empty((1, 2 * self.C + 1, self.H, self.W), dtype=np.float32)
        check(self.lib.ipr_denoiser_forward(self.den, fptr(x), fptr(t), 1, fptr(y)) == 0, "forward failed")
        return y[0]

    def region_slices(self, r):
        gy, gx = divmod(r, self.gw)
        return slice(gy * self.patch, (gy + 1) * self.patch), slice(gx * self.patch, (gx + 1) * self.patch)

    def paste(self, z, clean, given):
        for r in range(self.R):
            if given[r]:
                ys, xs = self.region_slices(r)
                z[:, ys, xs] = clean[:, ys, xs]

    def generate(self, z, gen, it, clean, given, instance):
        cfg = self.cfg
        B = int(sum(gen))
        if B == 0:
            return z
        kind = "adaptive" if it > 0 else cfg["order"]
        if it > 0:
            plan = Plan(B, cfg["ipr_steps_per_region"], cfg["ipr_overlap"])
        else:
            plan = Plan(B, cfg["steps_per_region"], cfg["overlap"], cfg.get("max_steps", 0), kind)
        if kind == "random":
            order = shuffle(self.lib, self.seed, RNG_ORDER, instance, it, [r for r in range(self.R) if gen[r]])
        elif kind == "graph":
            order = graph_order(self.lib, self.seed, instance, it, list(gen), self.gw)
        elif kind == "parallel":
            order = [r for r in range(self.R) if gen[r]]
        start = [WAITING if gen[r] else CLEAN for r in range(self.R)]

        def levels(s):
            return np.array([0.0 if start[r] == CLEAN or s >= plan.ms else
                             1.0 if start[r] == WAITING else plan.level(start[r], s) for r in range(self.R)],
                            dtype=np.float32)

        k = 0
        for s in range(plan.ms):
            t_cur = levels(s)
            y = self.forward(z, t_cur)
            sigma = pooled_sigma(y, self.patch).reshape(-1)
            while k < B and plan.starts[k] == s:
                if kind == "adaptive":
                    waiting = [r for r in range(self.R) if start[r] == WAITING]
                    reg = min(waiting, key=lambda q: (sigma[q], q))  # lowest sigma, ties to the lowest index
                else:
                    reg = order[k]
                start[reg] = s
                self.choices.append((it, s, reg))
                k += 1
            t_next = levels(s + 1)
            noise = normals(self.lib, self.seed, RNG_STEP_NOISE, instance, (it << STEP_BITS) | s,
                            self.C * self.H * self.W).reshape(self.C, self.H, self.W)
            z = transition(z, y, t_cur.reshape(self.gh, self.gw), t_next.reshape(self.gh, self.gw), cfg["alpha"],
                           cfg["temperature"], noise, self.patch)
            self.paste(z, clean, given)
        return z

    def chain(self, instance, clean, given):
        n = self.C * self.H * self.W
        z = normals(self.lib, self.seed, RNG_INIT_NOISE, instance, 0, n).reshape(self.C, self.H, self.W)
        self.paste(z, clean, given)
        gen = [not g for g in given]
        z = self.generate(z, gen, 0, clean, given, instance)
        self.samples.append(z.copy())
        refinable = [r for r in range(self.R) if not given[r]]
        for it in range(1, self.cfg["ipr_iterations"] + 1):
            m = max(1, int(len(refinable) * self.cfg["ipr_ratio"])) if refinable else 0
            chosen = sorted(shuffle(self.lib, self.seed, RNG_IPR_SUBSET, instance, it, refinable)[:m])
            fresh = normals(self.lib, self.seed, RNG_IPR_NOISE, instance, it, n).reshape(self.C, self.H, self.W)
            for r in chosen:
                ys, xs = self.region_slices(r)
                z[:, ys, xs] = fresh[:, ys, xs]
            self.paste(z, clean, given)
            z = self.generate(z, [r in chosen for r in range(self.R)], it, clean, given, instance)
            self.samples.append(z.copy())
        return z


# ================================ the C side ================================

def run_c(lib, den, task, cfg, seed, instance, clean, given, npix):
    buf = C.create_string_buffer(lib.ipr_sampler_config_size())
    lib.ipr_sampler_config_init(buf)
    for k, v in cfg.items():
        check(lib.ipr_sampler_config_set(buf, k.encode(), str(v).encode()) == 0,
              f"config {k}: {lib.ipr_error_message().decode()}")
    lib.ipr_sampler_config_set(buf, b"keep_images", b"1")
    run = lib.ipr_runner_new(den, task, buf)
    check(run, f"runner: {lib.ipr_error_message().decode()}")
    choices, samples = [], []

    def on_instance(ctx, inst, cl, gv):
        C.memmove(cl, clean.ctypes.data, clean.nbytes)
        for r, g in enumerate(given):
            gv[r] = 1 if g else 0
        return 0

    def on_choice(ctx, inst, it, s, reg, sigma, R):
        choices.append((it, s, reg))

    def on_gen(ctx, inst, it, passes, z):
        samples.append(np.ctypeslib.as_array(z, shape=(npix,)).copy())

    hooks = Hooks()
    hooks.instance = INSTANCE_FN(on_instance)
    hooks.on_choice = CHOICE_FN(on_choice)
    hooks.on_generation = GEN_FN(on_gen)
    lib.ipr_runner_set_hooks(run, C.byref(hooks))
    res = ChainResult()
    K = int(cfg.get("ipr_iterations", 0))
    check(lib.ipr_chain_result_alloc(C.byref(res), K, npix) == 0, "result alloc")
    inst = (C.c_uint64 * 1)(instance)
    check(lib.ipr_runner_run(run, seed, inst, 1, C.byref(res), None, None) == 0,
          f"run: {lib.ipr_error_message().decode()}")
    final = np.ctypeslib.as_array(res.image, shape=(npix,)).copy()
    lib.ipr_chain_result_free(C.byref(res))
    lib.ipr_runner_free(run)
    return choices, samples, final


# ================================ the checks ================================

def check_plans(lib):
    """C block arithmetic against torch's, bit for bit (max_steps, ramp, starts, levels)."""
    n = 0
    starts = (C.c_int * 256)()
    for o in (0.0, 0.5, 0.75, 0.8, 0.85, 0.9, 0.95):
        for p in (1, 2, 3, 10, 30):
            for B in list(range(1, 82)) + [128, 200, 255, 256]:
                plan = BlockPlan()
                check(lib.ipr_block_plan_make(B, p, o, 0, 0, C.byref(plan), starts) == 0, "plan")
                ms, ideal, L, st = torch_plan(B, p, o)
                got = (plan.max_steps, plan.L, list(starts[:B]))
                check(got == (ms, L, st), f"plan B={B} p={p} o={o}: C {got[:2]}, torch {(ms, L)}")
                check(np.float32(plan.L_ideal) == np.float32(ideal), f"L_ideal B={B} p={p} o={o}")
                ref = Plan(B, p, o)
                for j in range(plan.L):
                    check(np.float32(lib.ipr_block_level(C.byref(plan), 0, j)) == np.float32(ref.level(0, j)),
                          f"ramp B={B} p={p} o={o} j={j}")
                n += 1
    for ms in (1, 7, 100, 1000):  # parallel: torch.linspace(1, 0, ms + 1)
        plan = BlockPlan()
        check(lib.ipr_block_plan_parallel(3, 1, 0.0, ms, C.byref(plan), starts) == 0, "parallel plan")
        ref = Plan(3, 1, 0.0, ms, "parallel")
        for j in range(ms + 1):
            check(np.float32(lib.ipr_block_level(C.byref(plan), 0, j)) == np.float32(ref.level(0, j)),
                  f"linspace {ms} at {j}")
    for B in (5, 81, 256):  # SRM's given max_steps, manual scheduler (floor) and adaptive (ceil)
        for fl in (0, 1):
            plan = BlockPlan()
            check(lib.ipr_block_plan_make(B, 1, 0.75, 100, fl, C.byref(plan), starts) == 0, "plan 100")
            ms, _, L, st = torch_plan(B, 1, 0.75, 100, bool(fl))
            check((plan.max_steps, plan.L, list(starts[:B])) == (ms, L, st), f"max_steps 100, B={B}, floor {fl}")
    print(f"  block plans: {n} (B, p, o) equal to torch's float32 arithmetic, linspace and max_steps variants too")


def check_transition(lib):
    rng = np.random.default_rng(3)
    Cc, H, W, P = 3, 12, 12, 3
    pairs = [(0, 0), (1, 1), (1, 2 / 3), (0.5, 0.25), (1 / 3, 0), (1, 0), (0.9, 0.8), (0.001, 0), (0.6, 0.6),
             (0.2, 0.1), (0.999, 0.998), (1, 0.5), (0.05, 0.04), (0.7, 0.0), (0.3, 0.29), (0.8, 0.1)]
    t = np.array([a for a, _ in pairs], dtype=np.float32)
    tn = np.array([b for _, b in pairs], dtype=np.float32)
    worst = 0.0
    for alpha in (0.0, 0.5, 1.0):
        for temp in (1.0, 0.7):
            z = rng.standard_normal((Cc, H, W)).astype(np.float32)
            y = rng.standard_normal((2 * Cc + 1, H, W)).astype(np.float32)
            noise = rng.standard_normal((Cc, H, W)).astype(np.float32)
            ref = transition(z, y, t.reshape(4, 4), tn.reshape(4, 4), alpha, temp, noise, P)
            zc = z.copy()
            lib.ipr_transition(fptr(zc), fptr(y), fptr(noise), fptr(t), fptr(tn), Cc, H, W, P, alpha, temp)
            worst = max(worst, float(np.abs(zc - ref).max()))
            check(np.array_equal(zc[:, 0:3, 0:3], z[:, 0:3, 0:3]), "(0, 0) region changed")
    print(f"  transition: max abs {worst:.2e} over alpha 0 / 0.5 / 1, temperature 1 / 0.7")
    check(worst <= TOL_TRANSITION, f"transition differs by {worst:.3e}")


def check_chains(lib, fixtures):
    dc = DenoiserConfig()
    lib.ipr_denoiser_config_init(C.byref(dc))
    dc.max_batch = 1
    den = lib.ipr_denoiser_open(os.path.join(fixtures, "srm_unet_tiny.h5").encode(), C.byref(dc))
    check(den, f"denoiser: {lib.ipr_error_message().decode()}")
    task = lib.ipr_task_new_custom(1, 28, 28, 7)
    H = W = 28
    given = [r in (0, 3, 5, 9, 12, 15) for r in range(16)]  # the fixture's clue regions
    rng = np.random.default_rng(7)
    clean = np.zeros((1, H, W), dtype=np.float32)
    for r in range(16):
        if given[r]:
            gy, gx = divmod(r, 4)
            clean[:, gy * 7:(gy + 1) * 7, gx * 7:(gx + 1) * 7] = rng.uniform(-1, 1, (1, 7, 7))
    base = {"steps_per_region": 2, "overlap": 0.5, "alpha": 0.5, "temperature": 1.0, "ipr_iterations": 0,
            "ipr_ratio": 0.25, "ipr_steps_per_region": 3, "ipr_overlap": 0.8}
    runs = [("adaptive", {}), ("random", {}), ("graph", {}), ("parallel", {}),
            ("random", {"max_steps": 25}), ("adaptive", {"ipr_iterations": 3}),
            ("adaptive", {"ipr_iterations": 3, "ipr_ratio": 0.6, "overlap": 0.0, "alpha": 0.0})]
    seed, instance = 1234, 3
    for order, extra in runs:
        cfg = dict(base, order=order, **extra)
        ref = Reference(lib, den, (1, H, W), 7, cfg, seed)
        zr = ref.chain(instance, clean, given)
        choices, samples, final = run_c(lib, den, task, cfg, seed, instance, clean, given, H * W)
        label = f"{order}" + "".join(f", {k} {v}" for k, v in extra.items())
        check(choices == ref.choices, f"{label}: orders differ\n  C   {choices}\n  ref {ref.choices}")
        check(len(samples) == len(ref.samples), f"{label}: {len(samples)} generations, reference {len(ref.samples)}")
        errs = [float(np.abs(a - b.reshape(-1)).max()) for a, b in zip(samples, ref.samples)]
        ef = float(np.abs(final - zr.reshape(-1)).max())
        print(f"  {label:44s} {len(choices):3d} choices equal; max abs per generation "
              + " ".join(f"{e:.1e}" for e in errs))
        check(max(errs + [ef]) <= TOL_SAMPLE, f"{label}: samples differ by {max(errs + [ef]):.3e}")
    lib.ipr_task_free(task)
    lib.ipr_denoiser_free(den)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    lib = load_lib(sys.argv[1])
    try:
        check_plans(lib)
        check_transition(lib)
        check_chains(lib, sys.argv[2])
    except AssertionError as e:
        print(f"FAIL: {e}")
        return 1
    print("sampler_reference: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
