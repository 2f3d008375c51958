"""train_srm.py: train an SRM denoiser (spec 1, 2.1-2.4, 6) on one of the three benchmarks, on CPU or on GPUs
(torchrun / DDP, BF16 autocast), resumable from a checkpoint directory, exporting the EMA weights to HDF5.

Usage (one process, or `torchrun --nproc_per_node N train/train_srm.py ...`):
  python3 train/train_srm.py --preset ep --hid-dims 32,64,64,128 --batch 256 --minutes 8 \
      --ckpt-dir /tmp/ckpt/ep --export out/ep.h5
A run continues from CKPT_DIR/state.pt when it exists (model, EMA, optimizer, step, loss log), else from
--init FILE.h5 (shipped weights: model and EMA start there, optimizer fresh), else from scratch.
Randomness is a function of (seed, rank, step): a resumed run draws what an uninterrupted one would have.
"""
import argparse
import copy
import csv
import json
import math
import os
import subprocess
import sys
import time

import torch
import torch.distributed as dist

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import srm_checkpoint  # noqa: E402
import srm_data  # noqa: E402
import srm_losses  # noqa: E402
import srm_noise  # noqa: E402
import srm_unet  # noqa: E402
from train_util import save_atomic  # noqa: E402

# spec 1.2, 2.3, 2.4, 6: the reference configs. hid_dims / attention / batch are overridable (budget).
PRESETS = {
    "ep": dict(bench="even_pixels", image=(32, 32), d_in=3, patch=4, hid_dims=[64, 128, 128, 256],
               attention=[0, 0, 1, 1], sharpness=0.75, add_zeros=True, lr=8e-4, batch=2048),
    "cp": dict(bench="counting_polygons", image=(128, 128), d_in=3, patch=8, hid_dims=[128, 128, 256, 256, 512],
               attention=[0, 0, 0, 1, 1], sharpness=0.5, add_zeros=True, lr=1e-4, batch=56),
    "ms": dict(bench="sudoku", image=(252, 252), d_in=1, patch=28, hid_dims=[128, 128, 256, 256, 512, 512],
               attention=[0, 0, 0, 0, 1, 1], sharpness=1.0, add_zeros=False, lr=1e-4, batch=28),
    # the CPU quickstart / test model: Even Pixels, two levels, attention only at the lowest
    "tiny_ep": dict(bench="even_pixels", image=(32, 32), d_in=3, patch=4, hid_dims=[32, 64], attention=[0, 1],
                    sharpness=0.75, add_zeros=True, lr=8e-4, batch=32),
}

LOG_FIELDS = ["step", "samples", "train_seconds", "lr", "loss", "mu", "vlb", "sigma", "grad_norm", "samples_per_s"]


def int_list(s):
    return [int(v) for v in s.split(",")] if s else None


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", required=True, choices=sorted(PRESETS))
    ap.add_argument("--hid-dims", type=int_list, help="channels per level (default: the preset's)")
    ap.add_argument("--attention", type=int_list, help="0/1 per level (default: the preset's, or attention at "
                    "the last two levels when --hid-dims changes the level count)")
    ap.add_argument("--batch", type=int, help="images per step per process (default: the preset's)")
    ap.add_argument("--lr", type=float, help="peak learning rate (spec 6: 1e-4, EP 8e-4)")
    ap.add_argument("--warmup", type=int, default=5000, help="LinearLR warm-up steps from 2e-4 x lr (spec 6: 5000)")
    ap.add_argument("--ema", type=float, default=0.9999, help="EMA decay (spec 6: 0.9999)")
    ap.add_argument("--ema-warmup", type=int, default=1, help="1: decay min(ema, (1+n)/(10+n)) after n updates, so "
                    "a short run's EMA is not mostly its initialisation (departure from spec 6); 0: plain decay")
    ap.add_argument("--weight-decay", type=float, default=1e-6)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1, help="run seed: data indices and noise derive from it")
    ap.add_argument("--data-seed", type=int, default=20250601, help="generator seed of the training instances")
    ap.add_argument("--minutes", type=float, default=0.0, help="stop after this much wall time (0: no limit)")
    ap.add_argument("--max-steps", type=int, default=0, help="stop at this global step (0: no limit)")
    ap.add_argument("--ckpt-dir", help="resumable state (state.pt) and the loss log (log.csv) live here")
    ap.add_argument("--save-minutes", type=float, default=3.0, help="save the state at least this often")
    ap.add_argument("--init", help="start from the weights of a checkpoint .h5 (when CKPT_DIR holds no state); "
                    "its step / sample / time counters carry on, the optimizer starts afresh")
    ap.add_argument("--init-log", help="with --init: the loss log (.csv) of the run that made it, copied to the head "
                    "of CKPT_DIR/log.csv so the curve covers every session")
    ap.add_argument("--rewarmup", type=int, default=200, help="after --init: ramp the lr up over this many steps "
                    "(fresh AdamW moments)")
    ap.add_argument("--export", help="write the EMA weights here (.h5) at the end")
    ap.add_argument("--storage", default="auto", choices=["auto", "float32", "float16"],
                    help="weight storage of the export; auto: float32 unless it exceeds 15.5 MiB")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--eval-batch", type=int, default=64, help="held-out (test split) batch for the final loss")
    ap.add_argument("--workers", type=int, default=-1, help="data workers per process (-1: from the CPU count)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"], help="auto: bf16 on CUDA")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (PyTorch 2)")
    ap.add_argument("--lib", help="libipr.so (default: $IPR_LIB or build/libipr.so)")
    ap.add_argument("--density-samples", type=int, default=80000, help="images for the spec 2.3 weight histogram")
    ap.add_argument("--quiet", action="store_true")
    return ap.parse_args(argv)


def resolve(args):
    """The run's config: the preset with the overrides applied."""
    cfg = dict(PRESETS[args.preset])
    if args.hid_dims:
        if len(args.hid_dims) != len(cfg["hid_dims"]) and not args.attention:
            args.attention = [0] * (len(args.hid_dims) - 2) + [1, 1]
        cfg["hid_dims"] = args.hid_dims
    if args.attention:
        cfg["attention"] = args.attention
    if len(cfg["attention"]) != len(cfg["hid_dims"]):
        raise SystemExit("--attention needs one 0/1 per level of --hid-dims")
    for k in ("batch", "lr"):
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)
    cfg["grid"] = (cfg["image"][0] // cfg["patch"], cfg["image"][1] // cfg["patch"])
    cfg["d_out"] = 2 * cfg["d_in"] + 1  # spec 1.2: u, v, log-variance
    for k in ("warmup", "ema", "ema_warmup", "weight_decay", "grad_clip", "dropout", "seed", "data_seed"):
        cfg[k] = getattr(args, k)
    cfg["preset"] = args.preset
    return cfg


def arch_of(cfg):
    return {k: cfg[k] for k in ("hid_dims", "attention", "d_in", "d_out")}


def git_sha():
    """The code's commit: $IPR_GIT_SHA when set (device copies of the tree carry stale or no git metadata, so
    the device scripts' callers pass it), else git rev-parse HEAD."""
    if os.environ.get("IPR_GIT_SHA"):
        return os.environ["IPR_GIT_SHA"]
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def step_seed(seed, rank, step, purpose=0):
    """The global RNG seed of one step of one rank (style habit 10: a function of seed, purpose, step)."""
    return ((((seed * 1000003) ^ (purpose * 7919)) * 1000003 + step) * 1024 + rank) % (2 ** 63 - 1)


class Trainer:
    def __init__(self, cfg, device, rank=0, world=1, precision="fp32", lib=None, density_samples=80000,
                 density=None, compile_model=False):
        self.cfg, self.device, self.rank, self.world = cfg, device, rank, world
        self.amp = precision == "bf16"
        torch.manual_seed(step_seed(cfg["seed"], 0, 0, purpose=1))  # the initial weights: same on every rank
        self.model = srm_unet.from_config(arch_of(cfg), dropout=cfg["dropout"], temb="distinct").to(device)
        self.ema = copy.deepcopy(self.model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.ema_updates = 0
        self.sampler = srm_noise.RegionNoiseSampler(
            "mean_beta", cfg["grid"], cfg["sharpness"], cfg["add_zeros"],
            density_samples=0 if density is not None else density_samples, seed=cfg["seed"])
        if density is not None:
            self.sampler.density = density.float()
        self.sampler.density = self.sampler.density.to(device)
        self.sampler.device = torch.device(device)
        self.net = self.model
        if world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        if compile_model:
            self.net = torch.compile(self.net)
        eps = 1e-7 if self.amp else 1e-8  # spec 6: AdamW eps 1e-7 under bf16
        # fused on CUDA (one kernel for all parameters instead of a foreach chain: AdamW was 10% of a Counting
        # Polygons step's GPU time on an H200, docs/bench/training.md); the arithmetic is AdamW's either way
        fused = {"fused": True} if device.type == "cuda" else {}
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg["lr"], betas=(0.95, 0.999), eps=eps,
                                     weight_decay=cfg["weight_decay"], **fused)
        self.step = 0
        self.samples = 0
        self.rewarm_from, self.rewarm = 0, 0  # after --init: lr ramp over `rewarm` steps from step rewarm_from
        self.train_seconds = 0.0  # wall seconds of the training loops x processes (GPU-seconds on GPUs)

    def lr_at(self, step):
        """spec 6: LinearLR from 2e-4 x lr to lr over `warmup` steps, then constant."""
        w = self.cfg["warmup"]
        f = 1.0 if w <= 0 else 2e-4 + (1.0 - 2e-4) * min(step, w) / w
        if self.rewarm > 0:
            f *= min(1.0, (step - self.rewarm_from + 1) / self.rewarm)
        return self.cfg["lr"] * f

    def levels(self, B, given):
        """Per-pixel (t, w) (B, 1, H, W) of one batch: mean_beta region levels and weights (spec 2.3);
        Sudoku clue cells get t = 0 and w = 0 (mask = 1 - given)."""
        t, w = self.sampler.sample(B)
        if given is not None and given.numel():
            mask = 1.0 - given.to(t.device, torch.float32)
            t, w = t * mask, w * mask
        return srm_noise.to_pixels(t, self.cfg["patch"]), srm_noise.to_pixels(w, self.cfg["patch"])

    def loss(self, net, x, given):
        t, w = self.levels(x.shape[0], given)
        eps = torch.randn_like(x)
        z = srm_losses.noisy(x, t, eps)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            y = net(z, t)
        return srm_losses.srm_losses(y, x, eps, t, w, self.cfg["patch"])

    def train_step(self, x, given):
        torch.manual_seed(step_seed(self.cfg["seed"], self.rank, self.step))
        self.model.train()
        for g in self.opt.param_groups:
            g["lr"] = self.lr_at(self.step)
        total, parts = self.loss(self.net, x, given)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        gn = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg["grad_clip"])
        self.opt.step()
        self.update_ema()
        self.step += 1
        self.samples += x.shape[0] * self.world
        parts = dict(parts, loss=total.detach(), grad_norm=gn.detach())
        return parts

    @torch.no_grad()
    def update_ema(self):
        d = self.cfg["ema"]
        if self.cfg["ema_warmup"]:
            d = min(d, (1.0 + self.ema_updates) / (10.0 + self.ema_updates))
        ema_p = list(self.ema.parameters())
        cur_p = list(self.model.parameters())
        torch._foreach_mul_(ema_p, d)
        torch._foreach_add_(ema_p, cur_p, alpha=1.0 - d)
        self.ema_updates += 1

    @torch.no_grad()
    def eval_loss(self, x, given, seed=12345):
        """The three losses of the EMA weights on a fixed batch with fixed noise (eval mode, no dropout)."""
        state = torch.random.get_rng_state()
        cuda_state = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        torch.manual_seed(seed)
        self.ema.eval()
        total, parts = self.loss(self.ema, x, given)
        torch.random.set_rng_state(state)
        if cuda_state is not None:
            torch.cuda.set_rng_state(cuda_state, self.device)
        return {k: float(v) for k, v in dict(parts, loss=total).items()}

    def state(self):
        return {"model": self.model.state_dict(), "ema": self.ema.state_dict(), "opt": self.opt.state_dict(),
                "step": self.step, "samples": self.samples, "train_seconds": self.train_seconds,
                "ema_updates": self.ema_updates, "rewarm": [self.rewarm_from, self.rewarm], "cfg": self.cfg, "density": self.sampler.density.cpu(),
                "torch": torch.__version__}

    def load_state(self, st):
        if arch_of(st["cfg"]) != arch_of(self.cfg) or st["cfg"]["preset"] != self.cfg["preset"]:
            raise SystemExit(f"checkpoint architecture {arch_of(st['cfg'])} ({st['cfg']['preset']}) differs from "
                             f"this run's {arch_of(self.cfg)} ({self.cfg['preset']})")
        self.model.load_state_dict(st["model"])
        self.ema.load_state_dict(st["ema"])
        self.opt.load_state_dict(st["opt"])
        self.step, self.samples = st["step"], st["samples"]
        self.train_seconds, self.ema_updates = st["train_seconds"], st["ema_updates"]
        self.rewarm_from, self.rewarm = st.get("rewarm", [0, 0])

    def load_weights(self, path, rewarm=200):
        """Model and EMA from an exported checkpoint; the counters continue from its `training` record."""
        m, attrs = srm_checkpoint.load_model(path)
        if arch_of({k: list(attrs[k]) if k in ("hid_dims", "attention") else int(attrs[k])
                    for k in ("hid_dims", "attention", "d_in", "d_out")}) != arch_of(self.cfg):
            raise SystemExit(f"{path}: architecture differs from this run's {arch_of(self.cfg)}")
        self.model.load_state_dict(m.state_dict())
        self.ema.load_state_dict(m.state_dict())
        if "training" in attrs:
            prev = json.loads(attrs["training"])
            self.step, self.samples = int(prev["steps"]), int(prev["samples_seen"])
            self.train_seconds = 60.0 * float(prev["train_minutes_x_devices"])
            self.ema_updates = self.step
        self.rewarm_from, self.rewarm = self.step, int(rewarm)
        return attrs



def export(trainer, path, storage, extra):
    n = sum(p.numel() for p in trainer.ema.parameters())
    if storage == "auto":
        storage = "float32" if n * 4 <= 15.5 * 2 ** 20 else "float16"
    cfg = trainer.cfg
    tmp = f"{path}.tmp{os.getpid()}"
    srm_checkpoint.export_h5(trainer.ema, tmp, cfg["patch"], cfg["image"], storage=storage, extra_attrs=extra)
    os.replace(tmp, path)
    return storage, os.path.getsize(path)


def main(argv=None):
    args = parse_args(argv)
    cfg = resolve(args)
    t_start = time.time()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True  # spec 6: float32_matmul_precision "high"
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    else:
        device = torch.device("cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    precision = args.precision if args.precision != "auto" else ("bf16" if device.type == "cuda" else "fp32")
    if precision == "bf16" and device.type != "cuda":
        raise SystemExit("--precision bf16 needs CUDA (CPU autocast does not cover GroupNorm in PyTorch 1.13)")
    say = (lambda *a: print(*a, flush=True)) if rank == 0 and not args.quiet else (lambda *a: None)

    state = None
    state_path = os.path.join(args.ckpt_dir, "state.pt") if args.ckpt_dir else None
    if state_path and os.path.exists(state_path):
        state = torch.load(state_path, map_location="cpu", weights_only=False)
    tr = Trainer(cfg, device, rank, world, precision, args.lib, args.density_samples,
                 density=state["density"] if state else None, compile_model=args.compile)
    origin = "scratch"
    if state:
        tr.load_state(state)
        origin = f"resumed {state_path} at step {tr.step}"
    elif args.init:
        tr.load_weights(args.init, args.rewarmup)
        origin = f"initialised from {args.init}"
    del state
    n_params = sum(p.numel() for p in tr.model.parameters())
    say(f"train_srm: {cfg['preset']} ({cfg['bench']}) hid_dims {cfg['hid_dims']} attention {cfg['attention']}, "
        f"{n_params / 1e6:.2f} M params, batch {cfg['batch']} x {world}, {precision} on {device}; {origin}")

    if args.workers < 0:
        args.workers = max(1, min(8, (os.cpu_count() or 2) // world - 1)) if device.type == "cuda" else 0
    loader = srm_data.make_loader(cfg["bench"], cfg["data_seed"], cfg["batch"], first_batch=tr.step, rank=rank,
                                  world=world, workers=args.workers, lib=args.lib)
    # held-out batch: the TEST split's first instances (the evaluation uses the same generator)
    ev_gen = srm_data.Generator(cfg["bench"], cfg["data_seed"], srm_data.SPLIT_TEST, lib=args.lib)
    ev_imgs, ev_given, _ = ev_gen.batch(0, args.eval_batch)
    ev_x = srm_data.to_unit(ev_imgs).to(device)
    ev_g = torch.from_numpy(ev_given).to(device) if ev_given is not None else None

    log_path = os.path.join(args.ckpt_dir, "log.csv") if args.ckpt_dir else None
    if rank == 0 and args.ckpt_dir:
        os.makedirs(args.ckpt_dir, exist_ok=True)
        if not os.path.exists(log_path):
            with open(log_path, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(LOG_FIELDS)
                if args.init and args.init_log:
                    with open(args.init_log) as g:
                        for row in csv.DictReader(g):
                            w.writerow([row[k] for k in LOG_FIELDS])
    acc, acc_n = {}, 0
    seconds_before = tr.train_seconds  # device-seconds of earlier runs: wall time of the loop x processes
    t_loop = time.time()
    t_log, samples_log = t_loop, tr.samples
    t_saved = t_loop
    stop_reason = "end of data"

    def save():
        if rank == 0 and state_path:
            save_atomic(tr.state(), state_path)

    for x, given in loader:
        x = x.to(device, non_blocking=True)
        given = given.to(device, non_blocking=True) if given.numel() else None
        parts = tr.train_step(x, given)
        tr.train_seconds = seconds_before + (time.time() - t_loop) * world
        for k, v in parts.items():
            acc[k] = acc.get(k, 0.0) + v
        acc_n += 1
        if tr.step % args.log_every == 0:
            vals = {k: float(v) / acc_n for k, v in acc.items()}
            if world > 1:
                tv = torch.tensor([vals[k] for k in sorted(vals)], device=device)
                dist.all_reduce(tv)
                vals = {k: float(v) / world for k, v in zip(sorted(vals), tv.tolist())}
            now = time.time()
            sps = (tr.samples - samples_log) / max(now - t_log, 1e-9)
            t_log, samples_log = now, tr.samples
            row = {"step": tr.step, "samples": tr.samples, "train_seconds": round(tr.train_seconds, 2),
                   "lr": tr.lr_at(tr.step - 1), "samples_per_s": round(sps, 1), **vals}
            if rank == 0 and log_path:
                with open(log_path, "a", newline="") as f:
                    csv.writer(f).writerow([row[k] if isinstance(row[k], int) else f"{row[k]:.6g}" for k in LOG_FIELDS])
            say(f"step {tr.step} samples {tr.samples} loss {vals['loss']:.4f} (mu {vals['mu']:.4f} vlb "
                f"{vals['vlb']:.4f} sigma {vals['sigma']:.4f}) gnorm {vals['grad_norm']:.3f} {sps:.0f} samples/s")
            acc, acc_n = {}, 0
            if not all(math.isfinite(v) for v in vals.values()):
                stop_reason = "non-finite loss"
                break
        elapsed = time.time() - t_start
        if args.max_steps and tr.step >= args.max_steps:
            stop_reason = f"max steps {args.max_steps}"
            break
        stop = args.minutes and elapsed >= args.minutes * 60
        if world > 1 and tr.step % 10 == 0:  # every rank stops at the same step (checked every 10: a sync)
            flag = torch.tensor([1.0 if stop else 0.0], device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = flag.item() > 0
        elif world > 1:
            stop = False
        if stop:
            stop_reason = f"time limit {args.minutes} min"
            break
        if time.time() - t_saved >= args.save_minutes * 60:
            save()
            t_saved = time.time()
    save()
    ev = tr.eval_loss(ev_x, ev_g)
    say(f"train_srm: stopped ({stop_reason}) at step {tr.step}, {tr.samples} samples, "
        f"{tr.train_seconds / 60:.2f} device-minutes in the training loop; held-out EMA loss {ev}")
    summary = {"preset": cfg["preset"], "benchmark": cfg["bench"], "steps": tr.step, "samples_seen": tr.samples,
               "train_minutes_x_devices": round(tr.train_seconds / 60, 3), "devices": world,
               "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
               "precision": precision, "params": n_params, "heldout_ema_loss": ev, "heldout_batch": args.eval_batch,
               "cfg": cfg,
               "torch": torch.__version__, "git_sha": git_sha(), "stop": stop_reason}
    if rank == 0 and args.ckpt_dir:
        with open(os.path.join(args.ckpt_dir, "summary.json"), "w") as f:
            json.dump(summary, f, indent=1)
    if rank == 0 and args.export:
        storage, size = export(tr, args.export, args.storage, {"training": json.dumps(summary)})
        say(f"train_srm: exported EMA weights to {args.export} ({storage}, {size / 2 ** 20:.2f} MiB)")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return summary


if __name__ == "__main__":
    main()
