"""srm_dit.py: the region-token DiT backbone for SRM (../shared/spec/dit.md) in PyTorch, written for this project:
the network with spatialreasoners' `state_dict` names, tokenisation of SRM regions, both parameterizations (`u`,
and `x` with t_min), the HDF5 checkpoint of spec dit.md, and the golden fixtures the C engine is tested against.

Interface (spec dit.md): forward(x (B, C, H, W), t (B, 1, H, W)) -> y (B, 2C + 1, H, W) exactly as the U-Net's;
forward_tokens works in token space (what training uses: no image is ever built for s = 1).

  python3 train/srm_dit.py fixtures OUT_DIR [NAME...]  # write the fixture files (float64 reference run)
  python3 train/srm_dit.py check CKPT.h5           # load a checkpoint, print its architecture and parameters
"""
import json
import math
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_util import CheckpointError, check_shapes  # noqa: E402,F401 - CheckpointError is this module's API

FORMAT = "srm-dit-checkpoint"
FORMAT_VERSION = 1
LN_EPS = 1e-6  # spec dit.md: LayerNorms without affine parameters, eps 1e-6
INT_ATTRS = ("d_in", "d_out", "patch_size", "tokens_per_side", "d_hid", "depth", "num_heads", "mlp_ratio")
STORAGE = {"float32": np.float32, "float16": np.float16}




# ---------------------------------------------------------------------------------------------------------------
# tokens (spec dit.md "Tokens")

def geometry(image_size, d_in, patch_size, tokens_per_side):
    """(gh, gw, N, f): region grid, tokens and features per token of an image."""
    H, W = int(image_size[0]), int(image_size[1])
    p, s = int(patch_size), int(tokens_per_side)
    if H % p or W % p:
        raise ValueError(f"image {H}x{W} is not a whole number of {p}x{p} regions")
    P = d_in * p * p
    if P % (s * s):
        raise ValueError(f"a region of {P} values does not split into {s}x{s} tokens")
    gh, gw = H // p, W // p
    return gh, gw, gh * gw * s * s, P // (s * s)


def tokenize(x, patch_size, s):
    """x (B, C, H, W) -> tokens (B, N, f): regions row-major, each region's values in (c, p1, p2) order viewed as
    (f, s, s) with (h, w) innermost, rearranged to s*s tokens of f values (sub-token (h, w) takes every s^2-th
    value: spatialreasoners' image_dit_tokenizer split). Tokens region by region, then (h, w) row-major."""
    B, C, H, W = x.shape
    p = patch_size
    gh, gw = H // p, W // p
    r = x.reshape(B, C, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5).reshape(B, gh * gw, C * p * p)
    f = C * p * p // (s * s)
    return r.reshape(B, gh * gw, f, s * s).transpose(2, 3).reshape(B, gh * gw * s * s, f)


def untokenize(tok, C, H, W, patch_size, s):
    """The inverse of tokenize: tokens (B, N, f) -> (B, C, H, W)."""
    B = tok.shape[0]
    p = patch_size
    gh, gw = H // p, W // p
    f = tok.shape[2]
    r = tok.reshape(B, gh * gw, s * s, f).transpose(2, 3).reshape(B, gh, gw, C, p, p)
    return r.permute(0, 3, 1, 4, 2, 5).reshape(B, C, H, W)


def region_levels(t, patch_size):
    """t (B, 1, H, W), constant on each region -> (B, gh * gw) the region levels (each region's top-left pixel)."""
    p = patch_size
    return t[:, 0, ::p, ::p].reshape(t.shape[0], -1)


def token_levels(t_region, s):
    """(B, R) region levels -> (B, R s^2) token levels (each token has its region's level)."""
    return t_region.repeat_interleave(s * s, dim=1)


def pos_embed(d, gh, gw, s, dtype=torch.float64):
    """spec dit.md 3: fixed 2-D sin-cos embedding of every token's (x, y) on the token grid (x = column, y = row;
    a region's sub-token (h, w) sits at (col s + w, row s + h)), F = d / 4 frequencies omega_i = 10000^(-i / F),
    [sin(x w), cos(x w), sin(y w), cos(y w)]; computed in float64. Returns (N, d) in token order."""
    if d % 4:
        raise ValueError(f"d_hid {d} is not a multiple of 4 (the 2-D sin-cos position embedding)")
    F_ = d // 4
    om = 10000.0 ** (-torch.arange(F_, dtype=torch.float64) / F_)
    rows, cols = [], []
    for ry in range(gh):
        for rx in range(gw):
            for h in range(s):
                for w in range(s):
                    rows.append(ry * s + h)
                    cols.append(rx * s + w)
    y = torch.tensor(rows, dtype=torch.float64)[:, None] * om
    x = torch.tensor(cols, dtype=torch.float64)[:, None] * om
    return torch.cat([torch.sin(x), torch.cos(x), torch.sin(y), torch.cos(y)], dim=1).to(dtype)


def sinusoid(t, d_emb=256, max_period=10000.0):
    """spec 1.4 (the U-Net's): [cos(a f), sin(a f)], a = max(1000 t - 1, 0), f_i = exp(-ln(10000) i / 128), the
    frequencies in float32 as the reference builds them."""
    half = d_emb // 2
    f = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    a = torch.clamp(1000.0 * t - 1.0, min=0.0)[..., None] * f.to(t.dtype)
    return torch.cat([torch.cos(a), torch.sin(a)], dim=-1)


# ---------------------------------------------------------------------------------------------------------------
# the network (spec dit.md "The network"); module names are the state_dict names

class TimeEmbedding(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(256, d), nn.SiLU(), nn.Linear(d, d))

    def forward(self, t):  # (...) -> (..., d)
        return self.mlp(sinusoid(t).to(self.mlp[0].weight.dtype))


class PatchEmbed(nn.Module):
    def __init__(self, f, d):
        super().__init__()
        self.proj = nn.Linear(f, d)

    def forward(self, tok):
        return self.proj(tok)


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x):  # (B, N, d)
        B, N, d = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if hasattr(F, "scaled_dot_product_attention") and q.dtype != torch.float64:
            o = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(d/h)) v, no mask
        else:  # PyTorch 1.13 (Debian) and the float64 fixtures: the same formula written out
            o = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1) @ v
        return self.proj(o.transpose(1, 2).reshape(B, N, d))


class Mlp(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.fc1 = nn.Linear(d, hidden)
        self.fc2 = nn.Linear(hidden, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


def modulate(x, shift, scale):
    return x * (1.0 + scale) + shift


def layer_norm(x):
    return F.layer_norm(x, (x.shape[-1],), eps=LN_EPS)


class Block(nn.Module):
    def __init__(self, d, heads, mlp_ratio):
        super().__init__()
        self.attn = Attention(d, heads)
        self.mlp = Mlp(d, mlp_ratio * d)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))

    def forward(self, x, c):
        return self.forward_sc(x, F.silu(c))

    def forward_sc(self, x, sc):
        """The block with SiLU(c) given (the model applies it once for every adaLN_modulation)."""
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation[1](sc).chunk(6, dim=-1)
        x = x + gate1 * self.attn(modulate(layer_norm(x), shift1, scale1))
        return x + gate2 * self.mlp(modulate(layer_norm(x), shift2, scale2))


class OutLayer(nn.Module):
    def __init__(self, d, out):
        super().__init__()
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.linear = nn.Linear(d, out)

    def forward(self, x, c):
        return self.forward_sc(x, F.silu(c))

    def forward_sc(self, x, sc):
        shift, scale = self.adaLN_modulation[1](sc).chunk(2, dim=-1)
        return self.linear(modulate(layer_norm(x), shift, scale))


INPUT_SCALES = ("none", "wiener")


def input_factor(t, mode):
    """c(t) by which a token enters the patch embedding (root attribute input_scale, ours; absent = none, spec
    dit.md's network). wiener: (1 - t) / ((1 - t)^2 + t^2), the least-squares linear estimate of a unit-variance x
    from z = (1 - t) x + t eps: 1 at t = 0 (clean tokens unchanged), 0 at t = 1 (a pure-noise token enters as the
    patch bias plus its position, like a masked-diffusion model's mask token). Computed in t's dtype (the C engines
    take it in double and round it to float: within 1 ulp)."""
    if mode == "none":
        return torch.ones_like(t)
    a = 1.0 - t
    return a / (a * a + t * t)


class SRMDiT(nn.Module):
    """The region-token DiT. config keys: d_in, image_size [H, W], patch_size, tokens_per_side, d_hid, depth,
    num_heads, mlp_ratio, parameterization ("u" | "x"), t_min, input_scale ("none" | "wiener", ours: input_factor)."""

    def __init__(self, d_in, image_size, patch_size, d_hid, depth, num_heads, tokens_per_side=1, mlp_ratio=4,
                 parameterization="x", t_min=0.05, input_scale="none"):
        super().__init__()
        if parameterization not in ("u", "x"):
            raise ValueError(f"parameterization {parameterization!r} (u or x)")
        if input_scale not in INPUT_SCALES:
            raise ValueError(f"input_scale {input_scale!r} ({' or '.join(INPUT_SCALES)})")
        if d_hid % num_heads:
            raise ValueError(f"d_hid {d_hid} is not a multiple of num_heads {num_heads}")
        self.config = dict(d_in=int(d_in), d_out=2 * int(d_in) + 1, image_size=[int(v) for v in image_size],
                           patch_size=int(patch_size), tokens_per_side=int(tokens_per_side), d_hid=int(d_hid),
                           depth=int(depth), num_heads=int(num_heads), mlp_ratio=int(mlp_ratio),
                           parameterization=parameterization, t_min=float(t_min), input_scale=input_scale)
        self.C, self.p, self.s = int(d_in), int(patch_size), int(tokens_per_side)
        self.H, self.W = self.config["image_size"]
        self.gh, self.gw, self.N, self.f = geometry(image_size, d_in, patch_size, tokens_per_side)
        self.param = parameterization
        self.t_min = float(t_min)
        self.input_scale = input_scale
        self.t_emb = TimeEmbedding(d_hid)
        self.patch_emb = PatchEmbed(self.f, d_hid)
        self.register_buffer("pos", pos_embed(d_hid, self.gh, self.gw, self.s).float(), persistent=False)
        self.blocks = nn.ModuleList([Block(d_hid, num_heads, mlp_ratio) for _ in range(depth)])
        self.out_layer = OutLayer(d_hid, 2 * self.f + 1)

    def init_weights(self):
        """spec dit.md: Xavier-uniform linears with zero biases; N(0, 0.02) for the t_emb MLP; zeros for every
        adaLN_modulation.1 and for out_layer.linear. Draws from torch's global generator (seed it first)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        for lin in (self.t_emb.mlp[0], self.t_emb.mlp[2]):
            nn.init.normal_(lin.weight, std=0.02)
        for b in self.blocks:
            nn.init.zeros_(b.adaLN_modulation[1].weight)
            nn.init.zeros_(b.adaLN_modulation[1].bias)
        for lin in (self.out_layer.adaLN_modulation[1], self.out_layer.linear):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
        return self

    def forward_tokens(self, tok, t_tok, stages=None, hidden=False):
        """tok (B, N, f) noisy tokens, t_tok (B, N) levels -> raw output (B, N, 2f + 1): [first block | raw v |
        log-variance] per token, the first block being u or x_hat by the parameterization. stages: a dict that
        receives the intermediates (the fixtures). hidden: also return the last block's tokens (B, N, d), for a
        training-only auxiliary head (train_dit.py --aux-digit)."""
        c = self.t_emb(t_tok)
        tok_in = tok if self.input_scale == "none" else tok * input_factor(t_tok, self.input_scale)[..., None]
        x = self.patch_emb(tok_in) + self.pos.to(tok.dtype)
        if stages is not None:
            stages["tokens"], stages["t_emb"], stages["embed"] = tok, c, x
        c = F.silu(c)  # every adaLN_modulation starts with SiLU: applied once here, as the C engine does
        for i, b in enumerate(self.blocks):
            x = b.forward_sc(x, c)
            if stages is not None:
                stages[f"blocks.{i}"] = x
        out = self.out_layer.forward_sc(x, c)
        if stages is not None:
            stages["out_layer"] = out
        return (out, x) if hidden else out

    def velocity_tokens(self, out, tok, t_tok):
        """The velocity u (B, N, f) of a raw token output: the first block itself (u), or (z - x_hat) / max(t,
        t_min) (spec dit.md "Parameterization")."""
        first = out[..., :self.f]
        if self.param == "u":
            return first
        return (tok - first) / torch.clamp(t_tok, min=self.t_min)[..., None]

    def forward(self, x, t, stages=None):
        """x (B, C, H, W), t (B, 1, H, W) constant on each region -> y (B, 2C + 1, H, W): velocity, raw variance
        interpolation, log-variance (the region's mean over its s^2 tokens, broadcast to its pixels)."""
        B = x.shape[0]
        s, f = self.s, self.f
        tok = tokenize(x, self.p, s)
        t_tok = token_levels(region_levels(t, self.p), s).to(x.dtype)
        out = self.forward_tokens(tok, t_tok, stages)
        u = self.velocity_tokens(out, tok, t_tok)
        y_u = untokenize(u, self.C, self.H, self.W, self.p, s)
        y_v = untokenize(out[..., f:2 * f].contiguous(), self.C, self.H, self.W, self.p, s)
        lv = out[..., 2 * f].reshape(B, self.gh * self.gw, s * s).mean(dim=2).reshape(B, 1, self.gh, self.gw)
        y_lv = lv.repeat_interleave(self.p, dim=2).repeat_interleave(self.p, dim=3)
        return torch.cat([y_u, y_v, y_lv], dim=1)


def from_config(cfg):
    return SRMDiT(cfg["d_in"], cfg["image_size"], cfg["patch_size"], cfg["d_hid"], cfg["depth"], cfg["num_heads"],
                  cfg.get("tokens_per_side", 1), cfg.get("mlp_ratio", 4), cfg.get("parameterization", "x"),
                  cfg.get("t_min", 0.05), cfg.get("input_scale", "none"))


def param_count(cfg):
    return sum(p.numel() for p in from_config(cfg).parameters())


# ---------------------------------------------------------------------------------------------------------------
# checkpoints (spec dit.md "Checkpoint")

def check_state_dict(state, cfg):
    """Raise CheckpointError listing every missing, unexpected and mis-shaped tensor (both ways, like the C loader)."""
    check_shapes(state, {k: tuple(v.shape) for k, v in from_config(cfg).state_dict().items()})


def save_h5(state, cfg, path, storage="float32", extra_attrs=None):
    """Write state (name -> tensor) as a DiT checkpoint of architecture cfg (root attributes of spec dit.md)."""
    check_state_dict(state, cfg)
    dtype = STORAGE[storage]
    with h5py.File(path, "w", libver=("earliest", "v108")) as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = np.int64(FORMAT_VERSION)
        for k in INT_ATTRS:
            f.attrs[k] = np.int64(cfg[k])
        f.attrs["image_size"] = np.asarray(cfg["image_size"], dtype=np.int64)
        f.attrs["parameterization"] = cfg["parameterization"]
        if cfg["parameterization"] == "x":
            f.attrs["t_min"] = np.float64(cfg["t_min"])
        if cfg.get("input_scale", "none") != "none":
            f.attrs["input_scale"] = cfg["input_scale"]
        f.attrs["weight_storage"] = storage
        for k, v in (extra_attrs or {}).items():
            if isinstance(v, str):
                v = str(v)  # a str subclass (torch.__version__) would become a numpy unicode array
            elif not isinstance(v, (int, float, np.ndarray)):
                v = json.dumps(v)
            f.attrs[k] = v
        g = f.create_group("weights")
        for name, t in state.items():
            g.create_dataset(name, data=t.detach().to("cpu", torch.float32).numpy().astype(dtype), track_times=False)


def export_h5(model, path, storage="float32", extra_attrs=None):
    """Write a model's weights (pass the EMA copy) atomically (PATH.tmp.PID, then rename)."""
    tmp = f"{path}.tmp.{os.getpid()}"
    save_h5(model.state_dict(), model.config, tmp, storage, extra_attrs)
    os.replace(tmp, path)


def read_config(f):
    fmt = f.attrs.get("format")
    fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
    if fmt != FORMAT:
        raise CheckpointError(f"attribute 'format' is {fmt!r}, expected {FORMAT!r}")
    if int(f.attrs.get("format_version", -1)) != FORMAT_VERSION:
        raise CheckpointError(f"format_version {f.attrs.get('format_version')} is not {FORMAT_VERSION}")
    cfg = {k: int(f.attrs[k]) for k in INT_ATTRS}
    cfg["image_size"] = [int(v) for v in f.attrs["image_size"]]
    p = f.attrs["parameterization"]
    cfg["parameterization"] = p.decode() if isinstance(p, bytes) else str(p)
    cfg["t_min"] = float(f.attrs["t_min"]) if "t_min" in f.attrs else 0.05
    sc = f.attrs.get("input_scale", "none")
    cfg["input_scale"] = sc.decode() if isinstance(sc, bytes) else str(sc)
    if cfg["input_scale"] not in INPUT_SCALES:
        raise CheckpointError(f"attribute 'input_scale' is {cfg['input_scale']!r}, expected one of {INPUT_SCALES}")
    if cfg["d_out"] != 2 * cfg["d_in"] + 1:
        raise CheckpointError(f"d_out {cfg['d_out']} is not 2 d_in + 1")
    return cfg


def load_model(path, dtype=torch.float32):
    """(model in eval mode, root attributes) of a checkpoint file; names and shapes checked both ways."""
    with h5py.File(path, "r") as f:
        cfg = read_config(f)
        state = {n: torch.from_numpy(f["weights"][n][()].astype(np.float32)) for n in f["weights"]}
        attrs = {k: f.attrs[k] for k in f.attrs}
    check_state_dict(state, cfg)
    model = from_config(cfg)
    model.load_state_dict(state, strict=True)
    return model.to(dtype).eval(), attrs


# ---------------------------------------------------------------------------------------------------------------
# golden fixtures for the C engine (tests/fixtures/dit_*.h5)

# name: (config, batch, seed). Small widths; every benchmark's token shape with s = 1, s = 2 on Sudoku, both
# parameterizations, odd depth and head counts, the wiener input scale (ours). The seeds are fixed per name: adding
# a fixture leaves the others' bytes alone.
FIXTURES = {
    "dit_sudoku_s1_x": (dict(d_in=1, image_size=[252, 252], patch_size=28, tokens_per_side=1, d_hid=32, depth=2,
                             num_heads=2, mlp_ratio=4, parameterization="x", t_min=0.05), 1, 1003),
    "dit_sudoku_s2_u": (dict(d_in=1, image_size=[252, 252], patch_size=28, tokens_per_side=2, d_hid=32, depth=1,
                             num_heads=2, mlp_ratio=4, parameterization="u", t_min=0.05), 1, 1004),
    "dit_even_pixels_s1_x": (dict(d_in=3, image_size=[32, 32], patch_size=4, tokens_per_side=1, d_hid=40, depth=3,
                                  num_heads=5, mlp_ratio=4, parameterization="x", t_min=0.1), 3, 1000),
    "dit_polygons_s1_u": (dict(d_in=3, image_size=[128, 128], patch_size=8, tokens_per_side=1, d_hid=48, depth=2,
                               num_heads=4, mlp_ratio=2, parameterization="u", t_min=0.05), 1, 1002),
    "dit_even_pixels_s2_x": (dict(d_in=3, image_size=[32, 32], patch_size=4, tokens_per_side=2, d_hid=24, depth=1,
                                  num_heads=1, mlp_ratio=4, parameterization="x", t_min=0.05), 2, 1001),
    "dit_even_pixels_s1_x_wiener": (dict(d_in=3, image_size=[32, 32], patch_size=4, tokens_per_side=1, d_hid=40,
                                         depth=2, num_heads=5, mlp_ratio=4, parameterization="x", t_min=0.05,
                                         input_scale="wiener"), 3, 1005),
}


def fixture_inputs(cfg, B, gen):
    """Noisy images and region-constant level maps: per image a mix of clean (0), pure noise (1), the tiny levels
    around the sinusoid's kink (0.0005, 0.001), and levels drawn uniformly; x in [-1, 1] at clean regions,
    N(0, 1)-like noise elsewhere, quantised to 1/256 so the file compresses."""
    C = cfg["d_in"]
    H, W = cfg["image_size"]
    p = cfg["patch_size"]
    gh, gw = H // p, W // p
    special = torch.tensor([0.0, 1.0, 0.0005, 0.001, 0.03, 0.999], dtype=torch.float64)
    tr = torch.rand(B, gh * gw, generator=gen, dtype=torch.float64)
    pick = torch.randint(0, 3, (B, gh * gw), generator=gen)
    spec_idx = torch.randint(0, len(special), (B, gh * gw), generator=gen)
    tr = torch.where(pick == 0, special[spec_idx], tr).float().double()  # float32 values, as the sampler's maps
    t = tr.reshape(B, 1, gh, gw).repeat_interleave(p, dim=2).repeat_interleave(p, dim=3)
    clean = torch.rand(B, C, H, W, generator=gen, dtype=torch.float64) * 2 - 1
    noise = torch.randn(B, C, H, W, generator=gen, dtype=torch.float64)
    x = (1 - t) * clean + t * noise
    x = torch.round(x * 256) / 256
    return x, t


def write_fixture(path, cfg, B, seed):
    gen = torch.Generator().manual_seed(seed)
    model = from_config(cfg).double().eval()
    # random weights of a trained-looking scale (the zero inits would make most of the network vanish)
    with torch.no_grad():
        for name, prm in model.named_parameters():
            fan_in = prm.shape[1] if prm.dim() == 2 else 1
            a = 1.0 / math.sqrt(fan_in) if prm.dim() == 2 else 0.1
            prm.copy_((torch.rand(prm.shape, generator=gen, dtype=torch.float64) * 2 - 1) * a)
        # float16 values (stored as float16: the loader's conversion path is tested too), run in float64
        for prm in model.parameters():
            prm.copy_(prm.half().double())
    x, t = fixture_inputs(cfg, B, gen)
    stages = {}
    with torch.no_grad():
        y = model(x, t, stages)
    tmp = f"{path}.tmp.{os.getpid()}"
    save_h5(model.state_dict(), model.config, tmp, "float16",
            {"producer": "train/srm_dit.py fixtures", "seed": int(seed), "torch": torch.__version__,
             "note": "float64 reference run of random float16-valued weights; /stages in token space (B, N, .)"})
    with h5py.File(tmp, "a") as f:
        z = {"compression": "gzip", "compression_opts": 6, "shuffle": True}
        f.create_dataset("input/x", data=x.float().numpy(), track_times=False, **z)
        f.create_dataset("input/t", data=t.float().numpy(), track_times=False, **z)
        # float32 copies of the float64 run (rounding 6e-8 relative, far under the 1e-5 tolerance); the token and
        # output-layer stages only where small (they repeat /input/x and /output/y in token order)
        f.create_dataset("output/y", data=y.float().numpy(), track_times=False, **z)
        for k, v in stages.items():
            if k in ("tokens", "out_layer") and v.numel() > 65536:
                continue
            f.create_dataset(f"stages/{k}", data=v.float().numpy(), track_times=False, **z)
    os.replace(tmp, path)
    return y


def main(argv):
    if len(argv) >= 2 and argv[0] == "fixtures":
        out = argv[1]
        names = argv[2:] or sorted(FIXTURES)
        unknown = [n for n in names if n not in FIXTURES]
        if unknown:
            print(f"srm_dit: no fixture {', '.join(unknown)} (known: {', '.join(sorted(FIXTURES))})", file=sys.stderr)
            return 2
        os.makedirs(out, exist_ok=True)
        for name in names:
            cfg, B, seed = FIXTURES[name]
            path = os.path.join(out, f"{name}.h5")
            write_fixture(path, cfg, B, seed)
            print(f"{path}: {param_count(cfg)} params, B {B}, {os.path.getsize(path) / 1024:.0f} KiB")
        return 0
    if len(argv) == 2 and argv[0] == "check":
        model, attrs = load_model(argv[1])
        print(json.dumps(model.config), sum(p.numel() for p in model.parameters()), "params")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
