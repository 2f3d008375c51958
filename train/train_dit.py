"""train_dit.py: train a region-token DiT denoiser (train/srm_dit.py, ../shared/spec/dit.md) for one benchmark with
SRM's objective (spec 2.2, 2.3: L_mu + L_vlb + 0.01 L_sigma, mean_beta levels with inverse-density weights, clue
cells at t = 0 with weight 0, add_zeros for Even Pixels and Counting Polygons), BF16 autocast, torch.compile, fused
AdamW, EMA, resumable state, in-training validation (train/dit_validate.py) and export to the HDF5 checkpoint the C
engine loads.

Data stays on the GPU: instances come from libipr's generators (the TRAIN stream of --data-seed, indices below
dit_validate.VAL_START; the same code as evaluation, so test instances never leak) through DataLoader workers into a
GPU ring of instances that training steps sample from. For MNIST Sudoku an instance is 81 digit indices and a clue
mask (the digits are gathered on the GPU from a bank of the train pool's images; with tokens_per_side 1 the
252x252 image is never built); for Even Pixels and Counting Polygons it is the uint8 image. The log says which of
data and steps bounds the run (instances made per second against samples trained per second, and the reuse).

  python3 train/train_dit.py --preset ms --minutes 8 --ckpt-dir /tmp/dit/ms --export out/ms.h5 \
      --val-count 256 --val-minutes 2 --scorer models/digit_classifier.h5
A run continues from CKPT_DIR/state.pt when it exists, else from --init FILE.h5 (weights only: model and EMA
start there, optimizer fresh with a short re-warm-up), else from scratch. Randomness is a function of (seed, step).
"""
import argparse
import copy
import csv
import json
import math
import os
import queue
import sys
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import dit_validate  # noqa: E402
import srm_data  # noqa: E402
import srm_dit  # noqa: E402
import srm_losses  # noqa: E402
import srm_noise  # noqa: E402
from train_util import save_atomic  # noqa: E402

# Architectures sized for the shipped-model budget (models/ files <= 20 MiB, the tree the GPU machine receives
# <= 64 MiB): see the model cards. The reference-shaped DiT-S (d 384, depth 12) is 32 M parameters = 64 MiB
# at float16.
PRESETS = {
    "ms": dict(bench="sudoku", image=(252, 252), d_in=1, patch=28, d_hid=192, depth=8, heads=6, s=1, param="x",
               t_min=0.05, sharpness=1.0, add_zeros=False, lr=4e-4, batch=512, ring=1 << 21),
    # depth over width (message passing between cells: one round a block), within the 20 MiB file limit at
    # float16 (7.9 M parameters, 1.39x the FLOPs of ms a sample): the candidate if ms plateaus (models/sudoku_dit.md)
    "ms_deep": dict(bench="sudoku", image=(252, 252), d_in=1, patch=28, d_hid=160, depth=16, heads=5, s=1,
                    param="x", t_min=0.05, sharpness=1.0, add_zeros=False, lr=4e-4, batch=1024, ring=1 << 21),
    "ep": dict(bench="even_pixels", image=(32, 32), d_in=3, patch=4, d_hid=128, depth=6, heads=4, s=1, param="x",
               t_min=0.05, sharpness=0.75, add_zeros=True, lr=5e-4, batch=1024, ring=1 << 20),
    "cp": dict(bench="counting_polygons", image=(128, 128), d_in=3, patch=8, d_hid=128, depth=8, heads=4, s=1,
               param="x", t_min=0.05, sharpness=0.5, add_zeros=True, lr=4e-4, batch=256, ring=1 << 17),
    # CPU tests: a few steps of a tiny Sudoku model
    "tiny_ms": dict(bench="sudoku", image=(252, 252), d_in=1, patch=28, d_hid=32, depth=2, heads=2, s=1, param="x",
                    t_min=0.05, sharpness=1.0, add_zeros=False, lr=1e-3, batch=8, ring=4096),
}
ARCH_KEYS = ("d_in", "image_size", "patch_size", "tokens_per_side", "d_hid", "depth", "num_heads", "mlp_ratio",
             "parameterization", "t_min", "input_scale")
LOG_FIELDS = ["step", "samples", "train_seconds", "lr", "loss", "mu", "vlb", "sigma", "grad_norm", "samples_per_s",
              "data_per_s", "reuse"]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", required=True, choices=sorted(PRESETS))
    ap.add_argument("--d-hid", type=int)
    ap.add_argument("--depth", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--tokens-per-side", type=int, help="s: s^2 tokens per region (1 or 2)")
    ap.add_argument("--param", choices=["u", "x"], help="parameterization (spec dit.md)")
    ap.add_argument("--t-min", type=float)
    ap.add_argument("--input-scale", choices=list(srm_dit.INPUT_SCALES),
                    help="how a token enters the patch embedding (default none, spec dit.md's network): wiener "
                    "multiplies it by (1 - t) / ((1 - t)^2 + t^2), so a pure-noise token enters as a mask token (a "
                    "departure of ours, models/sudoku_dit.md; the C engines read it from the checkpoint)")
    ap.add_argument("--mu-tau", type=float,
                    help="x-parameterization: weigh L_mu by (max(t, t_min) / max(t, TAU))^2, i.e. cap the 1 / t^2 "
                    "that u = (z - x_hat) / max(t, t_min) puts on x_hat's error at TAU instead of t_min (default: "
                    "t_min, spec 2.2 unchanged). A departure to measure (models/sudoku_dit.md): below TAU the "
                    "token's x_hat error floor, not the reasoning at t = 1, would otherwise drive the gradient")
    ap.add_argument("--seq-frac", type=float, default=0.0,
                    help="fraction of each batch whose levels are a sequential sampler's state instead of mean_beta's: "
                    "every region to generate at t = 1 except --seq-active of them at t ~ U(0, 1), the given ones clean "
                    "(spec 2.6/3.2: what the adaptive sampler and IPR feed the network), loss weight --seq-weight a "
                    "region (a departure of ours, models/sudoku_dit.md). Default 0: spec 2.3 unchanged")
    ap.add_argument("--seq-weight", type=float, default=1.0,
                    help="with --seq-frac: loss weight of each region of a sequential state (default 1, the weight of "
                    "spec 2.3's `independent`; 0: mean_beta's inverse density, which is 0.11 at t = 1 on Sudoku, where "
                    "mean_beta's levels pile up, against 2.1 at t = 0.5)")
    ap.add_argument("--seq-active", type=int, default=1,
                    help="with --seq-frac: regions of a sequential state at an intermediate level (default 1: overlap 0)")
    ap.add_argument("--seq-reveal", type=float, default=0.0,
                    help="with --seq-frac: fraction of the sequential rows that also show part of the solution, as the "
                    "sampler's later states do (cells it has committed): each region to generate other than the active "
                    "ones is revealed clean (t = 0, weight 0) with probability 1 - r, r ~ U(0, 1) per row (masked "
                    "diffusion's uniform masking ratio). Default 0: every region to generate at t = 1")
    ap.add_argument("--aux-digit", type=float, default=0.0,
                    help="Sudoku: add W x the cross-entropy of a training-only head (LayerNorm, Linear(d -> 10)) that "
                    "reads each cell's digit from the last block's token, on every cell to generate (a departure of "
                    "ours, models/sudoku_dit.md: L_mu's pixel error is mostly the handwriting, which no cell's "
                    "row, column and box can predict; the digit is the part they do). The head is not exported: "
                    "the checkpoint and the engines are unchanged. Default 0: spec 2.2's objective alone")
    ap.add_argument("--batch", type=int, help="instances per step")
    ap.add_argument("--lr", type=float)
    ap.add_argument("--warmup", type=int, default=1000, help="linear lr warm-up steps (spec dit.md: about 1,000)")
    ap.add_argument("--cooldown", type=float, default=0.0,
                    help="fraction of --minutes at the end over which the lr decays linearly to 0 (0: constant)")
    ap.add_argument("--ema", type=float, default=0.999, help="EMA decay (spec dit.md: 0.999 for short runs)")
    ap.add_argument("--weight-decay", type=float, default=1e-6)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data-seed", type=int, default=20250601, help="generator seed of the TRAIN stream")
    ap.add_argument("--minutes", type=float, default=0.0, help="stop after this much wall time (0: no limit)")
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--ckpt-dir", help="state.pt, log.csv, val.csv live here")
    ap.add_argument("--save-minutes", type=float, default=2.0)
    ap.add_argument("--init", help="start from the weights of a DiT checkpoint .h5 (when CKPT_DIR holds no state)")
    ap.add_argument("--init-log", help="with --init: earlier log.csv / val.csv prefix (NAME_log.csv; NAME_val.csv "
                    "beside it is used too), copied to the head of CKPT_DIR's logs")
    ap.add_argument("--rewarmup", type=int, default=300, help="after --init: lr ramp over this many steps")
    ap.add_argument("--export", help="write the EMA weights here (.h5) at the end and after each validation")
    ap.add_argument("--storage", default="float16", choices=["float32", "float16"])
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--workers", type=int, default=-1, help="data worker processes (-1: from the CPU count)")
    ap.add_argument("--chunk", type=int, default=1024, help="instances per data worker batch")
    ap.add_argument("--ring", type=int, help="instances the GPU ring holds (default: the preset's)")
    ap.add_argument("--min-fill", type=int, default=0, help="instances in the ring before training starts "
                    "(default: 8 batches)")
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    ap.add_argument("--compile", action="store_true", help="torch.compile the loss (model + SRM losses)")
    ap.add_argument("--lib", help="libipr.so (default: $IPR_LIB or build/libipr.so)")
    ap.add_argument("--density-samples", type=int, default=80000, help="images for the spec 2.3 weight histogram")
    ap.add_argument("--val-count", type=int, default=0, help="validation instances (0: no validation)")
    ap.add_argument("--val-minutes", type=float, default=2.0, help="validate at least this often (and at the end)")
    ap.add_argument("--val-k", default="0,5,10", help="IPR iterations at which validation scores the chains")
    ap.add_argument("--scorer", help="scorer checkpoint (digit classifier for Sudoku, polygons classifier)")
    ap.add_argument("--tag", default="", help="free text recorded in the export (the run's purpose)")
    ap.add_argument("--quiet", action="store_true")
    return ap.parse_args(argv)


def resolve(args):
    cfg = dict(PRESETS[args.preset])
    over = {"d_hid": args.d_hid, "depth": args.depth, "heads": args.heads, "s": args.tokens_per_side,
            "param": args.param, "t_min": args.t_min, "input_scale": args.input_scale, "batch": args.batch,
            "lr": args.lr, "ring": args.ring}
    cfg.update({k: v for k, v in over.items() if v is not None})
    cfg.setdefault("input_scale", "none")
    cfg["mu_tau"] = float(args.mu_tau) if args.mu_tau is not None else float(cfg["t_min"])
    if cfg["mu_tau"] < cfg["t_min"] or cfg["mu_tau"] > 1.0:
        raise SystemExit(f"train_dit: --mu-tau {cfg['mu_tau']} outside [t_min = {cfg['t_min']}, 1]")
    if cfg["mu_tau"] != cfg["t_min"] and cfg["param"] != "x":
        raise SystemExit("train_dit: --mu-tau applies to the x parameterization only")
    cfg["grid"] = (cfg["image"][0] // cfg["patch"], cfg["image"][1] // cfg["patch"])
    cfg["seq_frac"], cfg["seq_active"] = float(args.seq_frac), int(args.seq_active)
    cfg["seq_weight"] = float(args.seq_weight)
    cfg["seq_reveal"] = float(args.seq_reveal)
    cfg["aux_digit"] = float(args.aux_digit)
    if cfg["aux_digit"] < 0 or (cfg["aux_digit"] > 0 and cfg["bench"] != "sudoku"):
        raise SystemExit(f"train_dit: --aux-digit {cfg['aux_digit']}: a weight >= 0, and only for Sudoku")
    if not 0.0 <= cfg["seq_reveal"] <= 1.0:
        raise SystemExit(f"train_dit: --seq-reveal {cfg['seq_reveal']} outside [0, 1]")
    if cfg["seq_weight"] < 0:
        raise SystemExit(f"train_dit: --seq-weight {cfg['seq_weight']} is negative")
    if not 0.0 <= cfg["seq_frac"] <= 1.0:
        raise SystemExit(f"train_dit: --seq-frac {cfg['seq_frac']} outside [0, 1]")
    if not 1 <= cfg["seq_active"] <= cfg["grid"][0] * cfg["grid"][1]:
        raise SystemExit(f"train_dit: --seq-active {cfg['seq_active']} outside [1, regions]")
    for k in ("warmup", "ema", "weight_decay", "grad_clip", "seed", "data_seed", "cooldown"):
        cfg[k] = getattr(args, k)
    cfg["preset"] = args.preset
    return cfg


def arch_of(cfg):
    return dict(d_in=cfg["d_in"], image_size=list(cfg["image"]), patch_size=cfg["patch"], tokens_per_side=cfg["s"],
                d_hid=cfg["d_hid"], depth=cfg["depth"], num_heads=cfg["heads"], mlp_ratio=4,
                parameterization=cfg["param"], t_min=float(cfg["t_min"]), input_scale=cfg.get("input_scale", "none"))


def step_seed(seed, step, purpose=0):
    return ((((seed * 1000003) ^ (purpose * 7919)) * 1000003 + step) * 1024) % (2 ** 63 - 1)


# ---------------------------------------------------------------------------------------------------------------
# data: instances from libipr's generators -> a GPU ring

class InstanceStream(torch.utils.data.IterableDataset):
    """Chunks c = first, first + 1, ... of `chunk` TRAIN instances (indices c * chunk ...): for Sudoku (digit
    indices int32 (n, 81), given uint8 (n, 81)); otherwise images uint8 (n, C, H, W). Worker k makes the chunks
    c = first + k (mod workers)."""

    def __init__(self, bench, seed, chunk, first=0, lib=None):
        super().__init__()
        self.bench, self.seed, self.chunk, self.first, self.lib = bench, int(seed), int(chunk), int(first), lib

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid, nw = (info.id, info.num_workers) if info else (0, 1)
        gen = srm_data.Generator(self.bench, self.seed, srm_data.SPLIT_TRAIN, difficulty="any", lib=self.lib)
        c = self.first + wid
        n = self.chunk
        while True:
            start = c * n
            if start + n > dit_validate.VAL_START:
                raise RuntimeError("the TRAIN stream reached the held-out validation indices")
            if self.bench == "sudoku":
                digits = np.empty((n, 81), dtype=np.int32)
                given = np.empty((n, 81), dtype=np.uint8)
                for i in range(n):
                    inst = gen.make(start + i)
                    digits[i] = np.frombuffer(inst.digit_image, dtype=np.uint32)
                    given[i] = np.frombuffer(inst.given, dtype=np.uint8)
                yield c, torch.from_numpy(digits), torch.from_numpy(given)
            else:
                imgs, _, _ = gen.batch(start, n)
                yield c, torch.from_numpy(imgs), torch.zeros(0, dtype=torch.uint8)
            c += nw


class Ring:
    """Instances on the device; training steps draw uniformly from what is filled; new chunks overwrite the
    oldest. A background thread pulls the DataLoader so that data work overlaps the steps."""

    def __init__(self, bench, capacity, device, loader, sample_shape):
        self.bench, self.cap, self.dev = bench, int(capacity), device
        if bench == "sudoku":
            self.a = torch.empty((self.cap, 81), dtype=torch.int32, device=device)
            self.b = torch.empty((self.cap, 81), dtype=torch.bool, device=device)
        else:
            self.a = torch.empty((self.cap,) + tuple(sample_shape), dtype=torch.uint8, device=device)
            self.b = None
        self.filled = self.pos = 0
        self.made = 0          # instances received
        self.last_chunk = -1   # highest chunk id received (the resume point)
        self.q = queue.Queue(maxsize=16)
        self.stop = False
        self.t0 = time.time()

        def pull():
            try:
                for item in loader:
                    while not self.stop:
                        try:
                            self.q.put(item, timeout=0.5)
                            break
                        except queue.Full:
                            continue
                    if self.stop:
                        return
            except Exception as e:  # surfaced by the main loop
                self.q.put(e)

        self.thread = threading.Thread(target=pull, daemon=True)
        self.thread.start()

    def _push(self, item):
        if isinstance(item, Exception):
            raise RuntimeError(f"data worker failed: {item}") from item
        c, a, b = item
        n = a.shape[0]
        idx = (torch.arange(n) + self.pos) % self.cap
        idx = idx.to(self.dev)
        self.a[idx] = a.to(self.dev, non_blocking=True)
        if self.b is not None:
            self.b[idx] = b.to(self.dev, non_blocking=True).bool()
        self.pos = (self.pos + n) % self.cap
        self.filled = min(self.cap, self.filled + n)
        self.made += n
        self.last_chunk = max(self.last_chunk, int(c))

    def poll(self, wait_for=0):
        """Take what the workers have made; block until at least `wait_for` instances are filled."""
        while True:
            try:
                while True:
                    self._push(self.q.get_nowait())
            except queue.Empty:
                pass
            if self.filled >= wait_for:
                return
            self._push(self.q.get())

    def sample(self, B, gen):
        i = torch.randint(0, self.filled, (B,), generator=gen, device=self.dev)
        return self.a[i], (self.b[i] if self.b is not None else None)

    def close(self):
        self.stop = True


# ---------------------------------------------------------------------------------------------------------------

class Trainer:
    def __init__(self, cfg, device, precision, lib=None, density_samples=80000, density=None, compile_model=False):
        self.cfg, self.dev = cfg, device
        self.amp = precision == "bf16"
        torch.manual_seed(step_seed(cfg["seed"], 0, purpose=1))
        self.model = srm_dit.from_config(arch_of(cfg)).init_weights().to(device)
        self.ema = copy.deepcopy(self.model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.ema_updates = 0
        self.f, self.s, self.N = self.model.f, self.model.s, self.model.N
        self.noise = srm_noise.RegionNoiseSampler("mean_beta", cfg["grid"], cfg["sharpness"], cfg["add_zeros"],
                                                  density_samples=0 if density is not None else density_samples,
                                                  seed=cfg["seed"])
        if density is not None:
            self.noise.density = density.float()
        self.noise.density = self.noise.density.to(device)
        self.noise.device = torch.device(device)
        fused = {"fused": True} if device.type == "cuda" else {}
        self.aux = None
        params = list(self.model.parameters())
        if cfg.get("aux_digit", 0.0) > 0:
            self.aux = nn.Linear(cfg["d_hid"], 10).to(device)  # training only: never exported
            params += list(self.aux.parameters())
        self.opt = torch.optim.AdamW(params, lr=cfg["lr"], betas=(0.95, 0.999),
                                     eps=1e-7 if self.amp else 1e-8, weight_decay=cfg["weight_decay"], **fused)
        self.step = self.samples = 0
        self.train_seconds = 0.0
        self.rewarm_from, self.rewarm = 0, 0
        self.bank = None
        self.loss_fn = self._loss
        self.compiled_ran = False
        if compile_model:
            self.loss_fn = torch.compile(self._loss)

    def set_digit_bank(self, lib):
        """Sudoku: every train-pool MNIST image (the indices ipr_sudoku_make draws) as (n, 784) in [-1, 1]."""
        g = srm_data.Generator("sudoku", 0, srm_data.SPLIT_TRAIN, lib=lib)
        n = g.pool.set.count
        raw = np.ctypeslib.as_array((np.ctypeslib.ctypes.c_uint8 * (n * 784)).from_address(g.pool.set.images))
        self.bank = torch.from_numpy(raw.reshape(n, 784).astype(np.float32) / 127.5 - 1.0).to(self.dev)
        lab = np.ctypeslib.as_array((np.ctypeslib.ctypes.c_uint8 * n).from_address(g.pool.set.labels))
        self.bank_labels = torch.from_numpy(lab.astype(np.int64)).to(self.dev)

    def lr_at(self, step, frac_done=0.0):
        c = self.cfg
        f = min(1.0, (step + 1) / max(1, c["warmup"]))
        if self.rewarm > 0:
            f *= min(1.0, (step - self.rewarm_from + 1) / self.rewarm)
        if c["cooldown"] > 0 and frac_done > 1.0 - c["cooldown"]:
            f *= max(0.0, (1.0 - frac_done) / c["cooldown"])
        return c["lr"] * f

    def tokens(self, a, given):
        """x tokens (B, N, f) in [-1, 1] and region given mask (B, R) of one ring sample."""
        s, f = self.s, self.f
        if self.cfg["bench"] == "sudoku":
            reg = self.bank[a.long()]  # (B, 81, 784): region vectors in (c, p1, p2) order
            B = reg.shape[0]
            tok = reg.reshape(B, 81, f, s * s).transpose(2, 3).reshape(B, 81 * s * s, f)
            return tok, given
        x = a.float().div_(127.5).sub_(1.0)
        return srm_dit.tokenize(x, self.cfg["patch"], s), None

    def _loss(self, net, x, t_tok, w_tok, eps, labels=None):
        """SRM losses (spec 2.2) in token space: x, eps (B, N, f); t_tok, w_tok (B, N); with --aux-digit, labels
        (B, N) the cells' digits and the auxiliary cross-entropy added."""
        f, s = self.f, self.s
        t = t_tok[..., None]
        z = (1.0 - t) * x + t * eps
        with torch.autocast(device_type=self.dev.type, dtype=torch.bfloat16, enabled=self.amp):
            if labels is None:
                out = net.forward_tokens(z, t_tok)
            else:
                out, h = net.forward_tokens(z, t_tok, hidden=True)
                logits = self.aux(F.layer_norm(h, (h.shape[-1],), eps=1e-6))
        out = out.float()
        u = net.velocity_tokens(out, z, t_tok)
        v = (out[..., f:2 * f] + 1.0) / 2.0
        B, N = t_tok.shape
        lv = out[..., 2 * f].reshape(B, N // (s * s), s * s).mean(dim=2).repeat_interleave(s * s, dim=1)[..., None]
        mu_factor = None
        tau, t_min = self.cfg.get("mu_tau", self.cfg["t_min"]), self.cfg["t_min"]
        if tau != t_min:
            mu_factor = (torch.clamp(t, min=t_min) / torch.clamp(t, min=tau)) ** 2
        total, parts = srm_losses.losses_from_parts(u, v, lv, x, eps, t, w_tok[..., None], mu_factor=mu_factor)
        if labels is not None:
            ce = F.cross_entropy(logits.float().reshape(-1, 10), labels.reshape(-1), reduction="none").reshape(B, N)
            gen = (w_tok > 0).float()  # the cells to generate
            aux = (ce * gen).sum() / gen.sum().clamp(min=1.0)
            total = total + self.cfg["aux_digit"] * aux
            parts = dict(parts, aux=aux.detach())
        return total, parts

    def levels(self, B, given):
        t, w = self.noise.sample(B)
        t, w = t.reshape(B, -1), w.reshape(B, -1)
        if self.cfg.get("seq_frac", 0.0) > 0.0:
            t, w = self.sequential_states(t, w, given)
        if given is not None:
            keep = (~given).float()
            t, w = t * keep, w * keep
        s2 = self.s * self.s
        return t.repeat_interleave(s2, dim=1), w.repeat_interleave(s2, dim=1)

    def sequential_states(self, t, w, given=None):
        """--seq-frac: replace the levels of a random fraction of the rows by a sequential sampler's state: every
        region at t = 1 except `seq_active` random ones at t ~ U(0, 1) (the given regions are zeroed by the caller,
        as for mean_beta; add_zeros' clean regions stay clean); loss weight `seq_weight` on each of their regions;
        with `seq_reveal`, that fraction of the rows shows a random part of the other regions clean with weight 0
        (0: mean_beta's inverse density at the new levels, about 0.11 at t = 1 on Sudoku, 2.1 at t = 0.5)."""
        B, R = t.shape
        dev = t.device
        rows = torch.rand(B, 1, device=dev) < self.cfg["seq_frac"]
        keys = torch.rand(B, R, device=dev)
        if given is not None:  # the active regions are among those to generate, as in the sampler
            keys = keys + 2.0 * given.float()
        rank = torch.argsort(keys, dim=1).argsort(dim=1)
        active = rank < self.cfg["seq_active"]
        ts = torch.where(active, torch.rand(B, R, device=dev), torch.ones_like(t))
        ws = torch.full_like(ts, self.cfg["seq_weight"]) if self.cfg["seq_weight"] > 0 else self.noise.weights_of(ts)
        if self.cfg.get("seq_reveal", 0.0) > 0.0:
            # committed cells: a row keeps a fraction r ~ U(0, 1) of its other regions at t = 1, the rest clean
            reveal_rows = torch.rand(B, 1, device=dev) < self.cfg["seq_reveal"]
            r = torch.rand(B, 1, device=dev)
            shown = reveal_rows & ~active & (torch.rand(B, R, device=dev) >= r)
            ts, ws = torch.where(shown, torch.zeros_like(ts), ts), torch.where(shown, torch.zeros_like(ws), ws)
        zeroed = (t == 0) & (w == 0)  # add_zeros' clean context (EP, CP) stays clean
        ts, ws = torch.where(zeroed, t, ts), torch.where(zeroed, w, ws)
        t = torch.where(rows, ts, t)
        w = torch.where(rows, ws, w)
        return t, w

    def train_step(self, a, given, frac_done):
        torch.manual_seed(step_seed(self.cfg["seed"], self.step))
        self.model.train()
        for g in self.opt.param_groups:
            g["lr"] = self.lr_at(self.step, frac_done)
        x, giv = self.tokens(a, given)
        t, w = self.levels(x.shape[0], giv)
        eps = torch.randn_like(x)
        labels = None
        if self.aux is not None:
            labels = self.bank_labels[a.long()].repeat_interleave(self.s * self.s, dim=1)
        try:
            total, parts = self.loss_fn(self.model, x, t, w, eps, labels)
        except Exception as e:  # noqa: BLE001 - a failed compile must not cost the run: eager is the same math
            if self.loss_fn is self._loss or self.compiled_ran:
                raise
            print(f"train_dit: torch.compile failed ({type(e).__name__}: {str(e)[:200]}); continuing eager",
                  flush=True)
            self.loss_fn = self._loss
            total, parts = self.loss_fn(self.model, x, t, w, eps, labels)
        self.compiled_ran = True
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        gn = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg["grad_clip"])
        self.opt.step()
        self.update_ema()
        self.step += 1
        self.samples += x.shape[0]
        return dict(parts, loss=total.detach(), grad_norm=gn.detach())

    @torch.no_grad()
    def update_ema(self):
        d = min(self.cfg["ema"], (1.0 + self.ema_updates) / (10.0 + self.ema_updates))
        ema_p, cur_p = list(self.ema.parameters()), list(self.model.parameters())
        torch._foreach_mul_(ema_p, d)
        torch._foreach_add_(ema_p, cur_p, alpha=1.0 - d)
        self.ema_updates += 1

    def state(self, last_chunk):
        return {"model": self.model.state_dict(), "ema": self.ema.state_dict(), "opt": self.opt.state_dict(),
                "step": self.step, "samples": self.samples, "train_seconds": self.train_seconds,
                "ema_updates": self.ema_updates, "rewarm": [self.rewarm_from, self.rewarm], "cfg": self.cfg,
                "density": self.noise.density.cpu(), "last_chunk": last_chunk, "torch": torch.__version__,
                "aux": self.aux.state_dict() if self.aux is not None else None}

    def load_state(self, st):
        if arch_of(st["cfg"]) != arch_of(self.cfg) or st["cfg"]["bench"] != self.cfg["bench"]:
            raise SystemExit(f"state architecture {arch_of(st['cfg'])} differs from this run's {arch_of(self.cfg)}")
        self.model.load_state_dict(st["model"])
        self.ema.load_state_dict(st["ema"])
        if (st.get("aux") is not None) != (self.aux is not None):
            raise SystemExit("state and this run differ in --aux-digit (the head's weights and optimizer state)")
        if self.aux is not None:
            self.aux.load_state_dict(st["aux"])
        self.opt.load_state_dict(st["opt"])
        self.step, self.samples = st["step"], st["samples"]
        self.train_seconds, self.ema_updates = st["train_seconds"], st["ema_updates"]
        self.rewarm_from, self.rewarm = st.get("rewarm", [0, 0])
        return st.get("last_chunk", -1)

    def load_weights(self, path, rewarm):
        m, attrs = srm_dit.load_model(path)
        want = {k: v for k, v in arch_of(self.cfg).items()}
        if m.config["d_in"] != want["d_in"] or any(m.config[k] != want[k] for k in ARCH_KEYS if k != "t_min"):
            raise SystemExit(f"{path}: architecture {m.config} differs from this run's {want}")
        self.model.load_state_dict(m.state_dict())
        self.ema.load_state_dict(m.state_dict())
        last_chunk = -1
        if "training" in attrs:
            prev = json.loads(attrs["training"])
            self.step, self.samples = int(prev["steps"]), int(prev["samples_seen"])
            self.train_seconds = 60.0 * float(prev["train_minutes"])
            self.ema_updates = self.step
            last_chunk = int(prev.get("last_chunk", -1))
        self.rewarm_from, self.rewarm = self.step, int(rewarm)
        return last_chunk



def append_csv(path, fields, row):
    """Append row to the CSV at path. An existing file keeps its column order; fields it lacks (a run that logs more
    than the one before it, e.g. a continued model) extend its header, earlier rows blank there (rewritten
    atomically)."""
    def cell(k):
        v = row.get(k, "")
        return f"{v:.6g}" if isinstance(v, float) else v

    if os.path.exists(path):
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        header = rows[0] if rows else []
        extra = [k for k in fields if k not in header]
        if extra or not rows:
            header = header + extra
            tmp = path + ".tmp"
            with open(tmp, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(header)
                for r in rows[1:]:
                    w.writerow(r + [""] * (len(header) - len(r)))
            os.replace(tmp, path)
        with open(path, "a", newline="") as f:
            csv.writer(f).writerow([cell(k) for k in header])
        return
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(fields)
        w.writerow([cell(k) for k in fields])


def main(argv=None):
    args = parse_args(argv)
    cfg = resolve(args)
    t_start = time.time()
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
    else:
        device = torch.device("cpu")
    precision = args.precision if args.precision != "auto" else ("bf16" if device.type == "cuda" else "fp32")
    say = (lambda *a: print(*a, flush=True)) if not args.quiet else (lambda *a: None)

    state_path = os.path.join(args.ckpt_dir, "state.pt") if args.ckpt_dir else None
    state = torch.load(state_path, map_location="cpu", weights_only=False) \
        if state_path and os.path.exists(state_path) else None
    tr = Trainer(cfg, device, precision, args.lib, args.density_samples,
                 density=state["density"] if state else None, compile_model=args.compile)
    last_chunk, origin = -1, "scratch"
    if state:
        last_chunk = tr.load_state(state)
        origin = f"resumed {state_path} at step {tr.step}"
    elif args.init:
        last_chunk = tr.load_weights(args.init, args.rewarmup)
        origin = f"initialised from {args.init} (step {tr.step}, {tr.samples} samples)"
    del state
    if cfg["bench"] == "sudoku":
        tr.set_digit_bank(args.lib)
    n_params = sum(p.numel() for p in tr.model.parameters())
    say(f"train_dit: {cfg['preset']} ({cfg['bench']}) d {cfg['d_hid']} depth {cfg['depth']} heads {cfg['heads']} "
        f"s {cfg['s']} param {cfg['param']}: {tr.N} tokens of {tr.f}, {n_params / 1e6:.2f} M params, batch "
        f"{cfg['batch']}, lr {cfg['lr']}, {precision} on {device}; {origin}")

    # data
    workers = args.workers if args.workers >= 0 else max(1, min(12, (os.cpu_count() or 2) - 2))
    stream = InstanceStream(cfg["bench"], cfg["data_seed"], args.chunk, first=last_chunk + 1, lib=args.lib)
    kw = {"prefetch_factor": 4} if workers > 0 else {}
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers,
                                         pin_memory=device.type == "cuda", **kw)
    shape = (cfg["d_in"],) + tuple(cfg["image"])
    ring = Ring(cfg["bench"], cfg["ring"], device, loader, shape)
    min_fill = args.min_fill or min(cfg["ring"], 8 * cfg["batch"])
    t_fill = time.time()
    ring.poll(wait_for=min_fill)
    say(f"train_dit: ring filled to {ring.filled} instances in {time.time() - t_fill:.1f} s ({workers} workers)")

    validator = None
    if args.val_count > 0:
        validator = dit_validate.Validator(cfg["bench"], cfg["data_seed"], args.val_count, args.scorer, device,
                                           [int(k) for k in args.val_k.split(",")], args.lib)

    if args.ckpt_dir:
        os.makedirs(args.ckpt_dir, exist_ok=True)
    log_path = os.path.join(args.ckpt_dir, "log.csv") if args.ckpt_dir else None
    val_path = os.path.join(args.ckpt_dir, "val.csv") if args.ckpt_dir else None
    if log_path and not os.path.exists(log_path) and args.init_log:
        for src, dst in ((args.init_log, log_path), (args.init_log.replace("_log.csv", "_val.csv"), val_path)):
            if os.path.exists(src):
                with open(src) as a, open(dst, "w") as b:
                    b.write(a.read())

    gen = torch.Generator(device=device)
    gen.manual_seed(step_seed(cfg["seed"], tr.step, purpose=2))
    acc, acc_n = {}, 0
    seconds_before = tr.train_seconds
    t_loop = time.time()
    t_log, samples_log, made_log = t_loop, tr.samples, ring.made
    t_saved = t_val = t_loop
    val_seconds = 0.0
    stop_reason = "end"
    budget = args.minutes * 60.0
    summary_val = {}

    def export(tag):
        if not args.export:
            return
        summary = run_summary()
        srm_dit.export_h5(tr.ema, args.export, args.storage, {"training": json.dumps(summary), "tag": args.tag})
        say(f"train_dit: exported EMA weights ({tag}) to {args.export} "
            f"({os.path.getsize(args.export) / 2 ** 20:.2f} MiB, {args.storage})")

    def run_summary():
        return {"preset": cfg["preset"], "benchmark": cfg["bench"], "arch": arch_of(cfg), "steps": tr.step,
                "samples_seen": tr.samples, "train_minutes": round(tr.train_seconds / 60, 3),
                "validation_minutes_this_run": round(val_seconds / 60, 3), "last_chunk": ring.last_chunk,
                "unique_instances_this_run": ring.made, "batch": cfg["batch"], "lr": cfg["lr"],
                "mu_tau": cfg["mu_tau"], "ema": cfg["ema"],
                "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                "precision": precision, "params": n_params, "torch": torch.__version__, "validation": summary_val,
                "git_sha": os.environ.get("IPR_GIT_SHA", "unknown"), "stop": stop_reason, "cfg": cfg}

    def validate():
        nonlocal val_seconds, summary_val
        if validator is None:
            return
        t0 = time.time()
        res = validator(tr.ema)
        dt = time.time() - t0
        val_seconds += dt
        summary_val = dict(res, step=tr.step, samples=tr.samples, train_minutes=round(tr.train_seconds / 60, 3))
        if val_path:
            fields = ["step", "samples", "train_minutes", "val_n", "val_passes"] + \
                [f"{p}_k{k}" for k in validator.score_at for p in ("valid", "error")] + \
                sorted(k for k in res if k.startswith("probe"))
            append_csv(val_path, fields, summary_val)
        say("validate: " + " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                    for k, v in summary_val.items()) + f" ({dt:.1f} s)")

    try:
        while True:
            frac = (time.time() - t_start) / budget if budget > 0 else 0.0
            ring.poll()
            a, given = ring.sample(cfg["batch"], gen)
            parts = tr.train_step(a, given, frac)
            tr.train_seconds = seconds_before + (time.time() - t_loop - val_seconds)
            for k, v in parts.items():
                acc[k] = acc.get(k, 0.0) + v
            acc_n += 1
            if tr.step % args.log_every == 0:
                vals = {k: float(v) / acc_n for k, v in acc.items()}
                now = time.time()
                sps = (tr.samples - samples_log) / max(now - t_log, 1e-9)
                dps = (ring.made - made_log) / max(now - t_log, 1e-9)
                t_log, samples_log, made_log = now, tr.samples, ring.made
                row = dict(vals, step=tr.step, samples=tr.samples, train_seconds=round(tr.train_seconds, 2),
                           lr=tr.lr_at(tr.step - 1, frac), samples_per_s=round(sps, 1), data_per_s=round(dps, 1),
                           reuse=round(tr.samples / max(1, ring.made), 2))
                if log_path:
                    append_csv(log_path, LOG_FIELDS + (["aux"] if "aux" in row else []), row)
                eta = f", {max(0.0, budget - (now - t_start)) / 60:.1f} min left" if budget else ""
                say(f"step {tr.step} samples {tr.samples} loss {vals['loss']:.4f} (mu {vals['mu']:.4f} vlb "
                    f"{vals['vlb']:.4f} sigma {vals['sigma']:.4f}" + (f" aux {vals['aux']:.4f}" if "aux" in vals else "") +
                    f") gnorm {vals['grad_norm']:.3f} {sps:.0f} samples/s, "
                    f"data {dps:.0f}/s, reuse {row['reuse']}{eta}")
                acc, acc_n = {}, 0
                if not all(math.isfinite(v) for v in vals.values()):
                    stop_reason = "non-finite loss"
                    break
            if args.max_steps and tr.step >= args.max_steps:
                stop_reason = f"max steps {args.max_steps}"
                break
            if budget and time.time() - t_start >= budget:
                stop_reason = f"time limit {args.minutes} min"
                break
            if validator is not None and time.time() - t_val >= args.val_minutes * 60:
                validate()
                export("after validation")
                t_val = time.time()
            if state_path and time.time() - t_saved >= args.save_minutes * 60:
                save_atomic(tr.state(ring.last_chunk), state_path)
                t_saved = time.time()
    finally:
        ring.close()
    if state_path:
        save_atomic(tr.state(ring.last_chunk), state_path)
    if validator is not None:  # the weights first: a validation cut short loses nothing
        export("final, before its validation")
    validate()
    say(f"train_dit: stopped ({stop_reason}) at step {tr.step}, {tr.samples} samples, "
        f"{tr.train_seconds / 60:.2f} GPU-minutes of training in all ({val_seconds / 60:.2f} of validation in this run)")
    export("final")
    summary = run_summary()
    if args.ckpt_dir:
        with open(os.path.join(args.ckpt_dir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=1)
    return summary


if __name__ == "__main__":
    main()
