"""dit_validate.py: in-training validation of a region-token DiT (train/srm_dit.py): a batched PyTorch sampler on the
GPU (SRM's adaptive base generation and IPR, spec 2.5, 3.1, 3.2) over a fixed VALIDATION set, scored by libipr's
own scorers (ipr_task_score through ctypes: the evaluation's code), so that the logged valid rates predict what
`ipr run` will measure.

The VALIDATION set is drawn from the TRAIN stream at held-out indices (VAL_START + i, never reached by training,
which uses indices below VAL_START) with the evaluation's difficulty; the TEST split is never touched. The block
arithmetic is libipr's (ipr_block_plan_make); region choices, subsets and noise use torch's generator, not the C
sampler's Philox streams, so a chain is not bitwise the C one: the figure is statistical, the same estimate.
"""
import ctypes as C
import math

import numpy as np
import torch

import srm_data
import srm_dit

VAL_START = 1 << 40  # first held-out index of the TRAIN stream (training instances stay below it)
BENCH_CODE = {"sudoku": 0, "even_pixels": 1, "counting_polygons": 2}
DIFFICULTY = {"easy": 0, "medium": 1, "hard": 2, "any": 3}
PROBE_BLANKS = (10, 45)  # Validator.completion: cells blanked in a solved grid (45: near a hard puzzle's first
# commitments, where the probe's per-cell accuracy was still near chance after 38 M samples: models/sudoku_dit.md)
WAIT, CLEAN = 1 << 30, -(1 << 30)  # start-step markers of a region still waiting / kept clean (torch ints)


class TaskConfig(C.Structure):  # include/ipr/sampler.h ipr_task_config, field for field
    _fields_ = [("bench", C.c_int), ("split", C.c_int), ("difficulty", C.c_int), ("data_seed", C.c_uint64),
                ("mnist_dir", C.c_char_p), ("scorer_path", C.c_char_p), ("correction", C.c_int),
                ("correction_swaps", C.c_int), ("instances_file", C.c_char_p), ("instances_format", C.c_int),
                ("instances_start", C.c_uint64), ("instances_count", C.c_uint64), ("instances_sha256", C.c_char_p)]


class BlockPlan(C.Structure):  # src/sampler/sampler_internal.h ipr_block_plan
    _fields_ = [("regions", C.c_int), ("max_steps", C.c_int), ("L_ideal", C.c_float), ("L", C.c_int),
                ("ramp", C.c_int)]


def _lib(path=None):
    lib = srm_data.load_library(path)
    lib.ipr_task_config_init.argtypes = [C.POINTER(TaskConfig)]
    lib.ipr_task_new.argtypes = [C.POINTER(TaskConfig)]
    lib.ipr_task_new.restype = C.c_void_p
    lib.ipr_task_free.argtypes = [C.c_void_p]
    lib.ipr_task_instance.argtypes = [C.c_void_p, C.c_uint64, C.c_uint64, C.POINTER(C.c_float), C.POINTER(C.c_uint8)]
    lib.ipr_task_score.argtypes = [C.c_void_p, C.POINTER(C.c_float), C.c_int, C.POINTER(C.c_uint8),
                                   C.POINTER(C.c_float)]
    lib.ipr_block_plan_make.argtypes = [C.c_int, C.c_int, C.c_double, C.c_int, C.c_int, C.POINTER(BlockPlan),
                                        C.POINTER(C.c_int)]
    return lib


def _f32p(a):
    return a.ctypes.data_as(C.POINTER(C.c_float))


class Task:
    """A libipr task (instances + scorer) of one benchmark."""

    def __init__(self, bench, data_seed, split, difficulty, scorer, lib=None):
        self.lib = _lib(lib)
        # the scorer's CPU GEMMs share out over as many threads as torch uses here (libipr's default is every core:
        # several training jobs validating at once on one machine then oversubscribe it many times over)
        self.lib.ipr_cpu_set_threads(C.c_int(torch.get_num_threads()))
        cfg = TaskConfig()
        self.lib.ipr_task_config_init(C.byref(cfg))
        cfg.bench, cfg.split, cfg.difficulty = BENCH_CODE[bench], split, DIFFICULTY[difficulty]
        cfg.data_seed = int(data_seed)
        self._scorer = scorer.encode() if scorer else None
        cfg.scorer_path = self._scorer
        self.ptr = self.lib.ipr_task_new(C.byref(cfg))
        if not self.ptr:
            raise RuntimeError(f"ipr_task_new: {self.lib.ipr_error_message().decode()}")

    def __del__(self):
        if getattr(self, "ptr", None):
            self.lib.ipr_task_free(self.ptr)

    def instances(self, seed, indices, shape, regions):
        """clean (n, C, H, W) float32 and given (n, R) uint8 of the instances."""
        n = len(indices)
        clean = np.empty((n,) + tuple(shape), dtype=np.float32)
        given = np.empty((n, regions), dtype=np.uint8)
        for i, idx in enumerate(indices):
            rc = self.lib.ipr_task_instance(self.ptr, seed, int(idx), _f32p(clean[i]),
                                            given[i].ctypes.data_as(C.POINTER(C.c_uint8)))
            if rc != 0:
                raise RuntimeError(f"ipr_task_instance: {self.lib.ipr_error_message().decode()}")
        return clean, given

    def score(self, images):
        """valid (n,) uint8, error (n,) float32 of images (n, C, H, W) in [-1, 1]."""
        images = np.ascontiguousarray(images, dtype=np.float32)
        n = images.shape[0]
        valid = np.empty(n, dtype=np.uint8)
        err = np.empty(n, dtype=np.float32)
        rc = self.lib.ipr_task_score(self.ptr, _f32p(images), n, valid.ctypes.data_as(C.POINTER(C.c_uint8)),
                                     _f32p(err))
        if rc != 0:
            raise RuntimeError(f"ipr_task_score: {self.lib.ipr_error_message().decode()}")
        return valid, err

    def plan(self, n_regions, p, o):
        """(max_steps, L, starts) of libipr's block arithmetic (spec 3.1, 9a) for n_regions regions."""
        bp = BlockPlan()
        starts = (C.c_int * max(1, n_regions))()
        if self.lib.ipr_block_plan_make(int(n_regions), int(p), float(o), 0, 0, C.byref(bp), starts) != 0:
            raise RuntimeError(f"ipr_block_plan_make: {self.lib.ipr_error_message().decode()}")
        return bp.max_steps, bp.L, list(starts)[:n_regions]


class Sampler:
    """Batched SRM sampling and IPR with a DiT, in region space (B, R, P), P = C p^2 values per region."""

    def __init__(self, model, task, device, amp=True):
        self.m, self.task, self.dev, self.amp = model, task, device, amp
        self.R, self.P, self.s = model.gh * model.gw, model.C * model.p * model.p, model.s
        self._plans = {}

    def plan(self, n, p, o):
        key = (n, p, o)
        if key not in self._plans:
            self._plans[key] = self.task.plan(n, p, o)
        return self._plans[key]

    @torch.no_grad()
    def net(self, zr, t_reg):
        """zr (B, R, P), t_reg (B, R) -> u (B, R, P), v (B, R, P), log-variance (B, R)."""
        m, s, f = self.m, self.s, self.m.f
        B = zr.shape[0]
        tok = zr.reshape(B, self.R, f, s * s).transpose(2, 3).reshape(B, self.R * s * s, f)
        t_tok = srm_dit.token_levels(t_reg, s)
        with torch.autocast(device_type=self.dev.type, dtype=torch.bfloat16, enabled=self.amp):
            out = m.forward_tokens(tok, t_tok)
        out = out.float()
        u = m.velocity_tokens(out, tok, t_tok)
        v = (out[..., f:2 * f] + 1.0) / 2.0
        back = lambda a: a.reshape(B, self.R, s * s, f).transpose(2, 3).reshape(B, self.R, self.P)  # noqa: E731
        lv = out[..., 2 * f].reshape(B, self.R, s * s).mean(dim=2)
        return back(u), back(v), lv

    @staticmethod
    def transition(z, u, v, t, tn, alpha, temperature, noise):
        """spec 2.5 per region level t -> tn (B, R, 1 broadcast over the region's values), float32."""
        x_hat = z - t * u
        e_hat = z + (1 - t) * u
        safe_t = torch.where(t > 0, t, torch.ones_like(t))
        safe_1mtn = torch.where(tn < 1, 1 - tn, torch.ones_like(tn))
        r = ((1 - t) * tn) / (safe_1mtn * safe_t)
        one_r2 = torch.clamp(1 - r * r, min=0.0)
        gamma = tn * torch.sqrt(torch.clamp(1 - alpha * alpha * one_r2, min=0.0))
        gamma = torch.where(t == 0, torch.zeros_like(gamma), gamma)
        gamma = torch.where(tn == 1, tn, gamma)
        off = (t == 0) | (tn == 1)
        s_lo = torch.where(off, torch.zeros_like(t), alpha * tn * torch.sqrt(one_r2))
        s_hi = torch.where(off, torch.zeros_like(t), alpha * t * torch.sqrt(one_r2))
        learned = (s_lo > 0) & (s_hi > 0)
        lo = torch.log(torch.where(learned, s_lo, torch.ones_like(s_lo)))
        hi = torch.log(torch.where(learned, s_hi, torch.ones_like(s_hi)))
        sigma = torch.where(learned, torch.exp(v * hi + (1 - v) * lo), torch.zeros_like(v))
        std = torch.clamp(sigma, min=math.exp(-15.0))
        mean = (1 - tn) * x_hat + gamma * e_hat
        out = torch.where(tn > 0, mean + temperature * std * noise, mean)
        return torch.where((t == 0) & (tn == 0), z, out)

    @torch.no_grad()
    def generate(self, z, gen, clean, given, p, o, alpha, temperature, g):
        """Regenerate the regions gen (B, R) bool of z (B, R, P) in SRM's adaptive order (lowest pooled sigma
        first, spec 2.6/3.1); every other region stays at t = 0; clues pasted back after each pass. Returns
        (z, passes per chain)."""
        B, R = gen.shape
        nb = gen.sum(dim=1).tolist()
        plans = [self.plan(n, p, o) if n > 0 else (0, 1, []) for n in nb]
        ms_h = np.array([pl[0] for pl in plans], dtype=np.int64)
        ms = torch.from_numpy(ms_h).to(self.dev)
        L = torch.tensor([pl[1] for pl in plans], device=self.dev, dtype=torch.float32)
        steps = int(ms_h.max()) if B else 0
        # blocks starting at each pass, per chain, known on the host from the plans: no device sync per pass
        starting = np.zeros((max(steps, 1), B), dtype=np.int64)
        for b, pl in enumerate(plans):
            for st in pl[2]:
                starting[st, b] += 1
        start = torch.where(gen, torch.full_like(gen, WAIT, dtype=torch.long), torch.full_like(gen, CLEAN,
                                                                                                dtype=torch.long))
        rows = torch.arange(B, device=self.dev)

        def levels(s):
            j = (s - start).float()
            ramp = torch.where(j < 0, torch.ones_like(j),
                               torch.where(j >= L[:, None], torch.zeros_like(j), (L[:, None] - j) / L[:, None]))
            lev = torch.where(start == CLEAN, torch.zeros_like(ramp), torch.where(start == WAIT,
                                                                                  torch.ones_like(ramp), ramp))
            return torch.where((s >= ms)[:, None], torch.zeros_like(lev), lev)

        for s in range(steps):
            t_cur = levels(s)
            u, v, lv = self.net(z, t_cur)
            cnt = starting[s]
            for j in range(int(cnt.max())):  # blocks starting at this pass (more than one when starts repeat)
                need = torch.from_numpy(cnt > j).to(self.dev, non_blocking=True)
                sig = torch.where(start == WAIT, lv, torch.full_like(lv, float("inf")))
                reg = torch.argmin(sig, dim=1)
                cur = start[rows, reg]
                start[rows, reg] = torch.where(need, torch.full_like(cur, s), cur)
            t_next = levels(s + 1)
            noise = torch.randn(z.shape, generator=g, device=self.dev)
            zn = self.transition(z, u, v, t_cur[..., None], t_next[..., None], alpha, temperature, noise)
            active = (s < ms)[:, None, None]
            z = torch.where(active, zn, z)
            z = torch.where(given[..., None], clean, z)
        return z, ms

    @torch.no_grad()
    def run(self, clean, given, cfg, seed, score_at):
        """Base generation + K IPR iterations of every chain; returns {k: (valid (n,), error (n,))} for k in
        score_at, and the mean passes per chain."""
        g = torch.Generator(device=self.dev)
        g.manual_seed(int(seed))
        cr = self.to_regions(torch.from_numpy(clean).to(self.dev))
        giv = torch.from_numpy(given).to(self.dev).bool()
        z = torch.randn(cr.shape, generator=g, device=self.dev)
        z = torch.where(giv[..., None], cr, z)
        z, ms = self.generate(z, ~giv, cr, giv, cfg["p"], cfg["o"], cfg["alpha"], cfg["temperature"], g)
        passes = ms.float()
        res = {}
        if 0 in score_at:
            res[0] = self.task.score(self.to_images(z).cpu().numpy())
        ref = ~giv
        nref = ref.sum(dim=1)
        m = torch.clamp((nref.float() * cfg["ratio"]).floor().long(), min=1)
        for it in range(1, max(score_at) + 1):
            key = torch.rand(ref.shape, generator=g, device=self.dev)
            key = torch.where(ref, key, torch.full_like(key, 2.0))
            rank = torch.argsort(torch.argsort(key, dim=1), dim=1)
            sub = (rank < m[:, None]) & ref
            z = torch.where(sub[..., None], torch.randn(z.shape, generator=g, device=self.dev), z)
            z, ms = self.generate(z, sub, cr, giv, cfg["ipr_p"], cfg["ipr_o"], cfg["alpha"], cfg["temperature"], g)
            passes = passes + ms.float()
            if it in score_at:
                res[it] = self.task.score(self.to_images(z).cpu().numpy())
        return res, float(passes.mean())

    def to_regions(self, img):
        m = self.m
        B = img.shape[0]
        return img.reshape(B, m.C, m.gh, m.p, m.gw, m.p).permute(0, 2, 4, 1, 3, 5).reshape(B, self.R, self.P)

    def to_images(self, zr):
        m = self.m
        B = zr.shape[0]
        return zr.reshape(B, m.gh, m.gw, m.C, m.p, m.p).permute(0, 3, 1, 4, 2, 5).reshape(B, m.C, m.H, m.W)


# the reference settings of spec 3.3 (configs/reference/*.yaml), per benchmark
REFERENCE = {
    "sudoku": dict(p=3, o=0.0, ipr_p=10, ipr_o=0.8, alpha=0.5, temperature=1.0, ratio=0.25, difficulty="hard"),
    "even_pixels": dict(p=30, o=0.9, ipr_p=30, ipr_o=0.9, alpha=0.5, temperature=1.0, ratio=0.25, difficulty="any"),
    "counting_polygons": dict(p=10, o=0.9, ipr_p=10, ipr_o=0.9, alpha=0.5, temperature=1.0, ratio=0.25,
                              difficulty="any"),
}


class Validator:
    """A fixed validation set of `count` instances and the reference settings; __call__(model) -> summary dict."""

    def __init__(self, bench, data_seed, count, scorer, device, score_at=(0, 5, 10), lib=None, seed=777):
        self.cfg = dict(REFERENCE[bench])
        self.bench, self.count, self.seed = bench, int(count), int(seed)
        self.score_at = sorted(set(score_at))
        self.task = Task(bench, data_seed, srm_data.SPLIT_TRAIN, self.cfg["difficulty"], scorer, lib)
        self.device = device
        self.data = None
        self.data_seed = data_seed

    def __call__(self, model):
        if self.data is None:
            shape = (model.C, model.H, model.W)
            self.data = self.task.instances(self.data_seed, [VAL_START + i for i in range(self.count)], shape,
                                            model.gh * model.gw)
        was = model.training
        model.eval()
        res, passes = Sampler(model, self.task, self.device, amp=self.device.type == "cuda").run(
            self.data[0], self.data[1], self.cfg, self.seed, self.score_at)
        model.train(was)
        out = {"val_n": self.count, "val_passes": round(passes, 1)}
        for k in self.score_at:
            valid, err = res[k]
            out[f"valid_k{k}"] = float(valid.mean())
            out[f"error_k{k}"] = float(np.nanmean(err)) if np.isfinite(err).any() else float("nan")
        if self.bench == "sudoku":
            model.eval()
            for blanks in PROBE_BLANKS:
                out.update(self.completion(model, blanks))
            model.train(was)
        return out

    @torch.no_grad()
    def completion(self, model, blanks=PROBE_BLANKS[0]):
        """Sudoku: the reasoning alone, without the sampler. Each validation grid's full solution image, with
        `blanks` random cells at t = 1 (fresh noise) and every other cell clean at t = 0; one forward; the blank
        cells replaced by x_hat; the grid scored. probe_valid: the fraction of grids whose every blank reads as a
        digit that completes a valid grid (a forced choice: 71 of 81 cells known); probe_error: the mean rule
        distance. A leading indicator: it moves while the hard-puzzle valid rate is still 0."""
        clean = self.data[0]
        sm = Sampler(model, self.task, self.device, amp=self.device.type == "cuda")
        g = torch.Generator(device=self.device)
        g.manual_seed(self.seed + 1)
        cr = sm.to_regions(torch.from_numpy(clean).to(self.device))
        B, R = cr.shape[0], cr.shape[1]
        key = torch.rand((B, R), generator=g, device=self.device)
        blank = torch.argsort(torch.argsort(key, dim=1), dim=1) < blanks
        t = blank.float()
        z = torch.where(blank[..., None], torch.randn(cr.shape, generator=g, device=self.device), cr)
        u, _, _ = sm.net(z, t)
        x_hat = torch.clamp(z - t[..., None] * u, -1.0, 1.0)
        filled = torch.where(blank[..., None], x_hat, cr)
        valid, err = self.task.score(sm.to_images(filled).cpu().numpy())
        return {f"probe{blanks}_valid": float(valid.mean()), f"probe{blanks}_error": float(np.nanmean(err))}
