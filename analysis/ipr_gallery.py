#!/usr/bin/env python3
"""ipr_gallery.py: a picture of what IPR does to a few MNIST Sudoku chains.

usage: ipr_gallery.py --checkpoint CKPT.h5 --scorer models/digit_classifier.h5 --count N --iterations K
                      --output FILE.png [--lib build/libipr.so] [--seed S] [--data-seed D] [--start I]
                      [--difficulty hard] [--show-k 1,5,K] [--ratio 0.25] [--selection uniform]
                      [--set KEY=VALUE]... [--threads T]

Runs N chains of libipr's own sampler (the code `ipr sample` and `ipr run` run, on the CPU, through ctypes) on
the Sudoku instances start.. of the test split, and draws one row per chain:
  base (k = 0)          the base SRM sample
  re-noised, k          for each chosen k: the image that enters IPR iteration k, its re-noised cells (fresh
                        N(0, 1) at t = 1) outlined in orange
  after k               the sample after iteration k, the same cells outlined
Every sample panel carries the scorer's verdict per cell: the digit it reads, small in the cell's top-left
corner, red where that digit repeats in the cell's row, column or 3x3 box (the cells behind the spec 4.1
distance), green where it does not; clue cells carry a blue square in their top-right corner. Panel titles give
the chain's distance and validity at that k.

How the pictures are taken (hooks of src/sampler/sampler_internal.h, observe-only, so the chains are exactly the
ones `ipr sample --seed S` runs): on_generation copies the image that ends each generation (iteration 0 = base);
on_pass at pass 0 of iteration k copies the re-noised image and the per-region levels, whose non-zero entries
are the re-noised regions; on_choice records the regions whose ramps start during iteration k, which must be the
same set (checked). The digits, distance and validity come from the task's scorer (ipr_task_score_decode: the
digit classifier under the reference reading rule), checked against the runner's own per-iteration scores.
Works with any Sudoku checkpoint, U-Net or region-token DiT (ipr_denoiser_open reads either).
"""
import argparse
import ctypes as C
import os
import sys
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import system_python  # noqa: E402  (re-runs this script under /usr/bin/python3 when h5py is missing)

system_python.ensure(("numpy", "matplotlib"))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.patches as mpatches  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_SUDOKU, SPLIT = 0, {"train": 0, "test": 1}
DIFFICULTY = {"easy": 0, "medium": 1, "hard": 2, "any": 3}

RED, GREEN, CLUE, RENOISED, GRID = "#ff2d2d", "#20d050", "#2f7bff", "#ff8c00", "#8a8a8a"


# ================================ libipr through ctypes ================================

class TaskConfig(C.Structure):  # include/ipr/sampler.h ipr_task_config, field for field
    _fields_ = [("bench", C.c_int), ("split", C.c_int), ("difficulty", C.c_int), ("data_seed", C.c_uint64),
                ("mnist_dir", C.c_char_p), ("scorer_path", C.c_char_p), ("correction", C.c_int),
                ("correction_swaps", C.c_int), ("instances_file", C.c_char_p), ("instances_format", C.c_int),
                ("instances_start", C.c_uint64), ("instances_count", C.c_uint64), ("instances_sha256", C.c_char_p)]


class DenoiserConfig(C.Structure):  # ipr_denoiser_config
    _fields_ = [("device", C.c_int), ("gpu", C.c_int), ("precision", C.c_int), ("max_batch", C.c_int),
                ("cpu_threads", C.c_int)]


class ModelInfoHead(C.Structure):  # the leading fields of ipr/model.h ipr_model_info (read only)
    _fields_ = [("backbone", C.c_int), ("format", C.c_char_p), ("d_in", C.c_int), ("d_out", C.c_int),
                ("patch_size", C.c_int), ("image_size", C.c_int * 2), ("arch", C.c_char * 256)]


class ChainResult(C.Structure):  # ipr_chain_result
    _fields_ = [("instance", C.c_uint64), ("iterations", C.c_int), ("iterations_run", C.c_int),
                ("valid", C.POINTER(C.c_uint8)), ("error", C.POINTER(C.c_float)), ("nfe", C.POINTER(C.c_uint32)),
                ("changed", C.POINTER(C.c_uint16)), ("image", C.POINTER(C.c_float)), ("nfe_saved", C.c_uint32),
                ("solution_match", C.c_uint8)]


NOISE_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_uint32, C.c_uint64, C.c_uint32, C.POINTER(C.c_float), C.c_size_t)
SUBSET_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_uint64, C.c_int, C.POINTER(C.c_uint16), C.c_int, C.c_int,
                        C.POINTER(C.c_uint16))
INSTANCE_FN = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_uint64, C.POINTER(C.c_float), C.POINTER(C.c_uint8))
PASS_FN = C.CFUNCTYPE(None, C.c_void_p, C.c_uint64, C.c_int, C.c_int, C.POINTER(C.c_float), C.POINTER(C.c_float),
                      C.c_int)
CHOICE_FN = C.CFUNCTYPE(None, C.c_void_p, C.c_uint64, C.c_int, C.c_int, C.c_int, C.POINTER(C.c_float), C.c_int)
GEN_FN = C.CFUNCTYPE(None, C.c_void_p, C.c_uint64, C.c_int, C.c_int, C.POINTER(C.c_float))


class Hooks(C.Structure):  # ipr_sampler_hooks (src/sampler/sampler_internal.h); NULL members are not called
    _fields_ = [("ctx", C.c_void_p), ("noise", NOISE_FN), ("subset", SUBSET_FN), ("instance", INSTANCE_FN),
                ("on_pass", PASS_FN), ("on_choice", CHOICE_FN), ("on_generation", GEN_FN)]


def load_lib(path):
    lib = C.CDLL(path)
    lib.ipr_error_message.restype = C.c_char_p
    lib.ipr_denoiser_config_init.argtypes = [C.POINTER(DenoiserConfig)]
    lib.ipr_denoiser_open.argtypes = [C.c_char_p, C.POINTER(DenoiserConfig)]
    lib.ipr_denoiser_open.restype = C.c_void_p
    lib.ipr_denoiser_free.argtypes = [C.c_void_p]
    lib.ipr_denoiser_model_info.argtypes = [C.c_void_p]
    lib.ipr_denoiser_model_info.restype = C.POINTER(ModelInfoHead)
    lib.ipr_task_config_init.argtypes = [C.POINTER(TaskConfig)]
    lib.ipr_task_new.argtypes = [C.POINTER(TaskConfig)]
    lib.ipr_task_new.restype = C.c_void_p
    lib.ipr_task_free.argtypes = [C.c_void_p]
    lib.ipr_task_shape.argtypes = [C.c_void_p] + [C.POINTER(C.c_int)] * 5
    lib.ipr_task_check_model.argtypes = [C.c_void_p, C.c_void_p]
    lib.ipr_task_has_scorer.argtypes = [C.c_void_p]
    lib.ipr_task_instance.argtypes = [C.c_void_p, C.c_uint64, C.c_uint64, C.POINTER(C.c_float), C.POINTER(C.c_uint8)]
    lib.ipr_task_decoded_bytes.argtypes = [C.c_void_p]
    lib.ipr_task_decoded_bytes.restype = C.c_size_t
    lib.ipr_task_score_decode.argtypes = [C.c_void_p, C.POINTER(C.c_float), C.POINTER(C.c_uint8),
                                          C.POINTER(C.c_float), C.POINTER(C.c_uint8)]
    lib.ipr_task_reads_digits.argtypes = [C.c_void_p]
    lib.ipr_sampler_config_size.restype = C.c_size_t
    lib.ipr_sampler_config_init.argtypes = [C.c_void_p]
    lib.ipr_sampler_config_set.argtypes = [C.c_void_p, C.c_char_p, C.c_char_p]
    lib.ipr_sampler_config_validate.argtypes = [C.c_void_p]
    lib.ipr_runner_new.argtypes = [C.c_void_p, C.c_void_p, C.c_void_p]
    lib.ipr_runner_new.restype = C.c_void_p
    lib.ipr_runner_free.argtypes = [C.c_void_p]
    lib.ipr_runner_set_hooks.argtypes = [C.c_void_p, C.POINTER(Hooks)]
    lib.ipr_runner_run.argtypes = [C.c_void_p, C.c_uint64, C.POINTER(C.c_uint64), C.c_int, C.POINTER(ChainResult),
                                   C.c_void_p, C.c_void_p]
    lib.ipr_chain_result_alloc.argtypes = [C.POINTER(ChainResult), C.c_int, C.c_size_t]
    lib.ipr_chain_result_free.argtypes = [C.POINTER(ChainResult)]
    return lib


def fptr(a):
    return a.ctypes.data_as(C.POINTER(C.c_float))


def u8ptr(a):
    return a.ctypes.data_as(C.POINTER(C.c_uint8))


class IprError(RuntimeError):
    pass


def ok(lib, rc, what):
    """rc: a libipr status (0 = IPR_OK) or None for a NULL pointer; anything else raises with libipr's message."""
    if rc is None or rc != 0:
        msg = lib.ipr_error_message()
        raise IprError(f"{what}: {msg.decode() if msg else 'failed'}")
    return rc


# ================================ running the chains ================================

class Recorder:
    """The hooks: keep the images of the generations and iterations to draw, and the re-noised regions."""

    def __init__(self, chw, R, keep):
        self.chw, self.R, self.keep = chw, R, set(keep)
        self.images = {}     # (instance, k) -> image after generation k (C*H*W)
        self.renoised = {}   # (instance, k) -> image entering iteration k (C*H*W)
        self.levels = {}     # (instance, k) -> region levels at pass 0 of iteration k (R)
        self.choices = {}    # (instance, k) -> regions whose ramps started in iteration k
        self.passes = {}     # (instance, k) -> passes of generation k
        self.hooks = Hooks()
        # keep the callback objects alive as long as the runner can call them
        self._cb = (PASS_FN(self.on_pass), CHOICE_FN(self.on_choice), GEN_FN(self.on_generation))
        self.hooks.on_pass, self.hooks.on_choice, self.hooks.on_generation = self._cb

    def on_pass(self, ctx, instance, iteration, pss, z, t, R):
        if iteration > 0 and pss == 0 and iteration in self.keep:
            self.renoised[(instance, iteration)] = np.ctypeslib.as_array(z, shape=(self.chw,)).copy()
            self.levels[(instance, iteration)] = np.ctypeslib.as_array(t, shape=(R,)).copy()

    def on_choice(self, ctx, instance, iteration, pss, region, sigma, R):
        self.choices.setdefault((instance, iteration), set()).add(int(region))

    def on_generation(self, ctx, instance, iteration, passes, z):
        self.passes[(instance, iteration)] = int(passes)
        if iteration in self.keep:
            self.images[(instance, iteration)] = np.ctypeslib.as_array(z, shape=(self.chw,)).copy()


def run_chains(a, show):
    lib = load_lib(a.lib)
    dc = DenoiserConfig()
    lib.ipr_denoiser_config_init(C.byref(dc))
    dc.max_batch = max(1, min(a.count, a.batch))
    dc.cpu_threads = a.threads
    den = lib.ipr_denoiser_open(a.checkpoint.encode(), C.byref(dc))
    if not den:
        ok(lib, None, f"ipr_denoiser_open({a.checkpoint})")
    info = lib.ipr_denoiser_model_info(den).contents
    arch = info.arch.decode(errors="replace")
    tc = TaskConfig()
    lib.ipr_task_config_init(C.byref(tc))
    tc.bench, tc.split, tc.difficulty = BENCH_SUDOKU, SPLIT[a.split], DIFFICULTY[a.difficulty]
    tc.data_seed = a.data_seed if a.data_seed is not None else a.seed
    scorer = a.scorer.encode()
    tc.scorer_path = scorer
    mnist = a.mnist_dir.encode() if a.mnist_dir else None
    tc.mnist_dir = mnist
    task = lib.ipr_task_new(C.byref(tc))
    if not task:
        ok(lib, None, "ipr_task_new (Sudoku task with the scorer)")
    try:
        ok(lib, lib.ipr_task_check_model(task, C.cast(C.pointer(info), C.c_void_p)),
           f"{a.checkpoint} is not a MNIST Sudoku model")
        if not lib.ipr_task_has_scorer(task) or not lib.ipr_task_reads_digits(task):
            raise IprError(f"{a.scorer}: the task cannot read digits with it")
        dims = [C.c_int() for _ in range(5)]
        lib.ipr_task_shape(task, *[C.byref(d) for d in dims])
        Cc, H, W, patch, R = (d.value for d in dims)
        chw = Cc * H * W

        cfg = C.create_string_buffer(lib.ipr_sampler_config_size())
        lib.ipr_sampler_config_init(cfg)
        settings = [("ipr_iterations", str(a.iterations)), ("ipr_ratio", repr(a.ratio)), ("selection", a.selection),
                    ("host_threads", "1")]  # one host thread: the hooks then run on this thread (results do not
        #                                     depend on it)
        for kv in a.set:
            if "=" not in kv:
                raise IprError(f"--set {kv}: expected KEY=VALUE (a field of ipr_sampler_config)")
            settings.append(tuple(kv.split("=", 1)))
        for k, v in settings:
            ok(lib, lib.ipr_sampler_config_set(cfg, k.encode(), v.encode()), f"sampler setting {k} = {v}")
        ok(lib, lib.ipr_sampler_config_validate(cfg), "sampler settings")
        run = lib.ipr_runner_new(den, task, cfg)
        if not run:
            ok(lib, None, "ipr_runner_new")
        rec = Recorder(chw, R, set(show) | {0})
        lib.ipr_runner_set_hooks(run, C.byref(rec.hooks))
        K = a.iterations
        results = (ChainResult * a.count)()
        for i in range(a.count):
            ok(lib, lib.ipr_chain_result_alloc(C.byref(results[i]), K, 0), "ipr_chain_result_alloc")
        instances = (C.c_uint64 * a.count)(*[a.start + i for i in range(a.count)])
        t0 = time.time()
        try:
            ok(lib, lib.ipr_runner_run(run, a.seed, instances, a.count, results, None, None), "ipr_runner_run")
            wall = time.time() - t0
            chains = []
            for i in range(a.count):
                inst = a.start + i
                res = results[i]
                clean = np.empty(chw, dtype=np.float32)
                given = np.empty(R, dtype=np.uint8)
                ok(lib, lib.ipr_task_instance(task, a.seed, inst, fptr(clean), u8ptr(given)), "ipr_task_instance")
                ch = {"instance": inst, "given": given.astype(bool), "K": K,
                      "valid_all": [int(res.valid[k]) for k in range(K + 1)],
                      "error_all": [float(res.error[k]) for k in range(K + 1)],
                      "changed_all": [int(res.changed[k]) for k in range(K + 1)],
                      "nfe_all": [int(res.nfe[k]) for k in range(K + 1)], "panels": {}}
                for k in sorted(set(show) | {0}):
                    img = rec.images[(inst, k)]
                    digits = np.empty(int(lib.ipr_task_decoded_bytes(task)), dtype=np.uint8)
                    v, e = C.c_uint8(), C.c_float()
                    ok(lib, lib.ipr_task_score_decode(task, fptr(img), C.byref(v), C.byref(e), u8ptr(digits)),
                       "ipr_task_score_decode")
                    # the scorer's reading here must be the runner's own score of that iteration
                    if v.value != ch["valid_all"][k] or float(e.value) != ch["error_all"][k]:
                        raise IprError(f"instance {inst}, k = {k}: decoded valid {v.value} / distance {e.value}, "
                                       f"the runner scored {ch['valid_all'][k]} / {ch['error_all'][k]}")
                    panel = {"image": img.reshape(Cc, H, W), "digits": digits[:81].reshape(9, 9),
                             "valid": int(v.value), "distance": float(e.value), "passes": rec.passes[(inst, k)]}
                    if k > 0:
                        lv = rec.levels[(inst, k)]
                        renoised = lv > 0
                        chosen = rec.choices.get((inst, k), set())
                        if set(np.flatnonzero(renoised).tolist()) != chosen:
                            raise IprError(f"instance {inst}, iteration {k}: the regions at t > 0 on the first "
                                           f"pass differ from the regions the sampler regenerated")
                        if (renoised & ch["given"]).any():
                            raise IprError(f"instance {inst}, iteration {k}: a clue cell was re-noised")
                        panel["renoised_mask"] = renoised.reshape(H // patch, W // patch)
                        panel["renoised_image"] = rec.renoised[(inst, k)].reshape(Cc, H, W)
                    ch["panels"][k] = panel
                chains.append(ch)
        finally:
            for i in range(a.count):
                lib.ipr_chain_result_free(C.byref(results[i]))
            lib.ipr_runner_free(run)
        meta = {"arch": arch, "patch": patch, "H": H, "W": W, "wall_s": wall}
        return chains, meta
    finally:
        lib.ipr_task_free(task)
        lib.ipr_denoiser_free(den)


# ================================ drawing ================================

def conflicts(d):
    """(9, 9) bool: the cell's digit repeats in its row, column or 3x3 box (the cells behind a distance > 0)."""
    bad = np.zeros((9, 9), dtype=bool)
    for r in range(9):
        for c in range(9):
            v = d[r, c]
            row = (d[r, :] == v).sum() > 1
            col = (d[:, c] == v).sum() > 1
            br, bc = 3 * (r // 3), 3 * (c // 3)
            box = (d[br:br + 3, bc:bc + 3] == v).sum() > 1
            bad[r, c] = row or col or box
    return bad


def draw_grid(ax, img, cell, given, renoised=None, digits=None):
    H, W = img.shape[-2:]
    ax.imshow(img[0] if img.shape[0] == 1 else np.transpose((img + 1) / 2, (1, 2, 0)).clip(0, 1),
              cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
    for i in range(1, 9):
        lw = 1.4 if i % 3 == 0 else 0.4
        ax.axhline(i * cell - 0.5, color=GRID, lw=lw)
        ax.axvline(i * cell - 0.5, color=GRID, lw=lw)
    q = cell * 0.22
    for r in range(9):
        for c in range(9):
            x0, y0 = c * cell - 0.5, r * cell - 0.5
            if given[r, c]:
                ax.add_patch(mpatches.Rectangle((x0 + cell - q - 1.5, y0 + 1.5), q, q, color=CLUE, lw=0))
            if renoised is not None and renoised[r, c]:
                ax.add_patch(mpatches.Rectangle((x0 + 1.2, y0 + 1.2), cell - 2.4, cell - 2.4, fill=False,
                                                ec=RENOISED, lw=1.8))
    if digits is not None:
        bad = conflicts(digits)
        for r in range(9):
            for c in range(9):
                ax.text(c * cell + 1.5, r * cell + 1.0, str(int(digits[r, c])), color=RED if bad[r, c] else GREEN,
                        fontsize=6.5, fontweight="bold", ha="left", va="top",
                        bbox=dict(boxstyle="square,pad=0.08", fc="black", ec="none", alpha=0.75))
    ax.set_xlim(-0.5, W - 0.5)
    ax.set_ylim(H - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])


def verdict(p):
    return f"distance {p['distance']:g}, " + ("VALID" if p["valid"] else "not valid")


def draw(chains, meta, a, show, out):
    cols = 1 + 2 * len(show)
    rows = len(chains)
    legend_cols = 4 if cols >= 5 else 2
    height = 3.05 * rows + 1.0 + (0.25 if legend_cols == 2 else 0.0)
    # constrained layout keeps each row's three-line titles clear of the row above and of the suptitle; a thin
    # last grid row holds the legend
    fig = plt.figure(figsize=(2.55 * cols, height), constrained_layout=True)
    gs = fig.add_gridspec(rows + 1, cols, height_ratios=[1.0] * rows + [0.07 * 4 / legend_cols])
    axes = [[fig.add_subplot(gs[i, j]) for j in range(cols)] for i in range(rows)]
    legend_ax = fig.add_subplot(gs[rows, :])
    legend_ax.axis("off")
    cell = meta["H"] // 9
    for i, ch in enumerate(chains):
        g = ch["given"].reshape(9, 9)
        p0 = ch["panels"][0]
        ax = axes[i][0]
        draw_grid(ax, p0["image"], cell, g, digits=p0["digits"])
        ax.set_title(f"instance {ch['instance']} ({int(g.sum())} clues)\nbase sample, k = 0\n{verdict(p0)}",
                     fontsize=8)
        for j, k in enumerate(show):
            p = ch["panels"][k]
            m = int(p["renoised_mask"].sum())
            ax = axes[i][1 + 2 * j]
            draw_grid(ax, p["renoised_image"], cell, g, renoised=p["renoised_mask"])
            ax.set_title(f"iteration {k}: {m} cells re-noised\n(fresh noise at t = 1, rest clean)\n"
                         f"regenerated in {p['passes']} passes", fontsize=8)
            ax = axes[i][2 + 2 * j]
            draw_grid(ax, p["image"], cell, g, renoised=p["renoised_mask"], digits=p["digits"])
            ax.set_title(f"after k = {k}\n{verdict(p)}\n"
                         f"{ch['changed_all'][k]} cells read differently than at k = {k - 1}", fontsize=8)
        # the whole chain's distances, for context, on the row's first panel
        traj = " ".join(f"{e:g}" for e in ch["error_all"])
        axes[i][0].set_xlabel(f"distance k = 0..{ch['K']}: {traj}" if len(traj) < 60 else
                              f"distance k=0: {ch['error_all'][0]:g}, min {min(ch['error_all']):g}, "
                              f"k={ch['K']}: {ch['error_all'][-1]:g}", fontsize=7)
    handles = [mpatches.Patch(color=GREEN, label="digit the scorer reads; fits its row, column and box"),
               mpatches.Patch(color=RED, label="digit repeats in its row, column or box"),
               mpatches.Patch(color=CLUE, label="clue cell (kept clean)"),
               mpatches.Patch(fill=False, ec=RENOISED, lw=1.8, label="re-noised at that iteration")]
    legend_ax.legend(handles=handles, loc="center", ncol=legend_cols, fontsize=8, frameon=False)
    K = a.iterations
    title = (f"IPR on {a.difficulty} MNIST Sudoku ({a.split} split, "
             f"{f'instance {a.start}' if a.count == 1 else f'instances {a.start}..{a.start + a.count - 1}'}): "
             f"{os.path.basename(a.checkpoint)} ({meta['arch']}), seed {a.seed}, K = {K}, fraction {a.ratio:g}, "
             f"{a.selection} selection; digits read by {os.path.basename(a.scorer)}; libipr's CPU sampler")
    lines = textwrap.wrap(title, max(60, int(2.55 * cols * 14)))
    fig.suptitle("\n".join(lines), fontsize=9.5)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def parse_show(text, K):
    ks = []
    for tok in text.split(","):
        tok = tok.strip()
        if not tok:
            continue
        k = K if tok.upper() == "K" else int(tok)
        if 1 <= k <= K and k not in ks:
            ks.append(k)
    return sorted(ks)


def default_lib():
    return os.environ.get("IPR_LIB") or os.path.join(REPO, "build", "libipr.so")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--checkpoint", required=True, help="SRM checkpoint of MNIST Sudoku (U-Net or DiT)")
    ap.add_argument("--scorer", required=True, help="digit classifier (models/digit_classifier.h5)")
    ap.add_argument("--count", type=int, required=True, help="chains (rows)")
    ap.add_argument("--iterations", type=int, required=True, help="K, IPR iterations per chain")
    ap.add_argument("--output", required=True, help="PNG to write")
    ap.add_argument("--lib", default=default_lib(), help="libipr.so (default $IPR_LIB or build/libipr.so)")
    ap.add_argument("--seed", type=int, default=0, help="sampling seed (as `ipr sample --seed`)")
    ap.add_argument("--data-seed", type=int, help="instance generator seed (default: the seed, as `ipr sample`)")
    ap.add_argument("--start", type=int, default=0, help="first instance index")
    ap.add_argument("--difficulty", choices=sorted(DIFFICULTY), default="hard")
    ap.add_argument("--split", choices=sorted(SPLIT), default="test")
    ap.add_argument("--mnist-dir", help="MNIST IDX files (default: the shipped datasets/mnist)")
    ap.add_argument("--show-k", default="1,5,K", help="iterations to draw, comma-separated; K = the last "
                                                      "(default 1,5,K; those above K are dropped)")
    ap.add_argument("--ratio", type=float, default=0.25, help="resampling fraction (default 0.25)")
    ap.add_argument("--selection", default="uniform", choices=["uniform", "uncertainty", "mix"])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="any other ipr_sampler_config field (e.g. steps_per_region=3, ipr_overlap=0.8)")
    ap.add_argument("--batch", type=int, default=16, help="chains per forward pass (default min(count, 16))")
    ap.add_argument("--threads", type=int, default=0, help="BLAS threads (0: leave as is)")
    a = ap.parse_args(argv)
    if a.count < 1 or a.count > 64:
        ap.error("--count must be in 1..64 (one row per chain)")
    if a.iterations < 1:
        ap.error("--iterations must be >= 1 (the gallery shows IPR iterations)")
    if not os.path.exists(a.lib):
        ap.error(f"{a.lib}: no libipr.so (build it, or pass --lib / set IPR_LIB)")
    for p in (a.checkpoint, a.scorer):
        if not os.path.exists(p):
            ap.error(f"{p}: no such file")
    show = parse_show(a.show_k, a.iterations)
    if not show:
        ap.error(f"--show-k {a.show_k}: no iteration in 1..{a.iterations}")
    try:
        chains, meta = run_chains(a, show)
    except IprError as e:
        print(f"ipr_gallery: {e}", file=sys.stderr)
        return 1
    if os.path.dirname(a.output):
        os.makedirs(os.path.dirname(a.output), exist_ok=True)
    draw(chains, meta, a, show, a.output)
    for ch in chains:
        print(f"instance {ch['instance']}: distance " + " ".join(f"{e:g}" for e in ch["error_all"]) +
              f"; valid at K: {ch['valid_all'][-1]}")
    print(f"ipr_gallery: {a.output} ({len(chains)} chains, k = 0, {', '.join(map(str, show))}; "
          f"sampling {meta['wall_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
