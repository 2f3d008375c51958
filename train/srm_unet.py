"""srm_unet.py: the SRM denoiser U-Net (spec section 1) in PyTorch, written for this project.

Parameter names equal the reference `state_dict` (fixtures/srm_unet_manifest.json), so checkpoints move
between this module, the reference and the C engine. Two ways to evaluate the noise-level embedding:
`temb="per_pixel"` evaluates the shared MLP at every pixel of every ResBlock as the reference does;
`temb="distinct"` evaluates it once per distinct level and gathers (exact, much cheaper; its backward is a
segmented sum over the pixels sorted by level, see GatherRows).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn


def sinusoid(t, d_emb=256, max_period=10000.0):
    """spec 1.4: [cos(a f), sin(a f)], a = max(1000 t - 1, 0), f_i = exp(-ln(max_period) i / (d/2)).
    The frequencies are float32 even when t is float64, as in the reference."""
    half = d_emb // 2
    f = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    a = torch.clamp(1000.0 * t - 1.0, min=0.0)[..., None] * f.to(t.dtype)
    return torch.cat([torch.cos(a), torch.sin(a)], dim=-1)


class GatherRows(torch.autograd.Function):
    """out (N, C) = p[inv] for many pixels N sharing few rows of p (n, C). The backward sums the output gradient
    per row over the pixels in row order (`perm` sorts inv; `counts` are the segment lengths), in float32 at
    least, as C x n one-dimensional segments: PyTorch reduces 1-D segments with CUB (a thread block per segment),
    but a 2-D input with one thread per (segment, channel) walking the whole segment, and the level-0 segment
    (clues, add_zeros) can hold a third of the batch's pixels. PyTorch's own embedding backward (sort +
    sum_and_scatter) took 44% of an MNIST Sudoku training step's GPU time on an H200 (torch.profiler,
    2026-11-22), index_put with accumulate 92-95% before it. train/bench_gather.py, H200, a Sudoku step's
    full-resolution gather: 7.4 ms here, 15.8 ms PyTorch's embedding backward, 127 ms a 2-D segment_reduce."""

    @staticmethod
    def forward(ctx, p, inv, perm, counts):
        ctx.save_for_backward(perm, counts)
        ctx.p_dtype = p.dtype
        return p.index_select(0, inv)

    @staticmethod
    def backward(ctx, g):
        perm, counts = ctx.saved_tensors
        return segment_sum_rows(g.reshape(-1, g.shape[-1]), perm, counts).to(ctx.p_dtype), None, None, None


def segment_sum_rows(g, perm, counts):
    """(n, C): row i = the sum of g[perm[j]] over the counts[i] j of segment i (segments in order), float32 at
    least. The rows are gathered in sorted order (coalesced), transposed so that each channel's segments are
    contiguous, and reduced as C x n 1-D segments."""
    C = g.shape[-1]
    gs = g.index_select(0, perm)
    if gs.dtype in (torch.float16, torch.bfloat16):
        gs = gs.float()
    flat = gs.t().contiguous().reshape(-1)
    return torch.segment_reduce(flat, "sum", lengths=counts.repeat(C)).view(C, -1).t()


def distinct_levels(ts):
    """(uniq (n,), inv (numel,) row of each value, perm (numel,) sorting inv, counts (n,)) of a noise map: one
    sort, so inv[perm] is ascending and counts[i] values equal uniq[i]."""
    sv, perm = torch.sort(ts.reshape(-1))
    uniq, inv_sorted, counts = torch.unique_consecutive(sv, return_inverse=True, return_counts=True)
    inv = torch.empty_like(inv_sorted)
    inv[perm] = inv_sorted
    return uniq, inv, perm, counts


class TimeEmbedding(nn.Module):
    def __init__(self, d_emb=256, t_emb_dim=512):
        super().__init__()
        self.d_emb = d_emb
        self.mlp = nn.Sequential(nn.Linear(d_emb, t_emb_dim), nn.SiLU(), nn.Linear(t_emb_dim, t_emb_dim))

    def forward(self, t):  # (...) -> (..., t_emb_dim)
        return self.mlp(sinusoid(t, self.d_emb).to(self.mlp[0].weight.dtype))


class NormWithEmbedding(nn.Module):
    """GN(h + Linear(SiLU(E(t)))): the embedding is added before the norm (spec 1.3)."""

    def __init__(self, channels, t_emb, t_emb_dim=512):
        super().__init__()
        self.norm = nn.GroupNorm(32, channels)
        self.embedding_layer = nn.Sequential(nn.SiLU(), nn.Linear(t_emb_dim, channels))
        self.t_emb = t_emb  # shared module: its parameters appear under this name too

    def forward(self, h, temb):
        return self.norm(h + temb(self, h.shape[-2:]))


class ResBlock(nn.Module):
    def __init__(self, c_in, c_out, t_emb, t_emb_dim=512, dropout=0.1):
        super().__init__()
        self.conv_1 = nn.Sequential(nn.GroupNorm(32, c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1))
        self.norm_with_embedding = NormWithEmbedding(c_out, t_emb, t_emb_dim)
        self.conv_2 = nn.Sequential(nn.SiLU(), nn.Dropout(dropout), nn.Conv2d(c_out, c_out, 3, padding=1))
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x, temb):
        h = self.conv_1(x)
        h = self.norm_with_embedding(h, temb)
        h = self.conv_2(h)
        return h + (self.shortcut(x) if self.shortcut is not None else x)


class Attention(nn.Module):
    """x + proj(MHA(qkv(GN(x)))), legacy per-head [q|k|v] layout, q and k scaled by ch^-1/4."""

    def __init__(self, channels, head_channels=64):
        super().__init__()
        self.heads = channels // head_channels
        self.norm = nn.GroupNorm(32, channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj = nn.Conv1d(channels, channels, 1)

    def forward(self, x, temb=None):
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x).reshape(b, c, h * w))
        ch = c // self.heads
        q, k, v = qkv.reshape(b * self.heads, 3 * ch, h * w).split(ch, dim=1)
        scale = 1.0 / math.sqrt(math.sqrt(ch))
        weight = torch.einsum("bct,bcs->bts", q * scale, k * scale)
        weight = torch.softmax(weight.float(), dim=-1).type(weight.dtype)
        a = torch.einsum("bts,bcs->bct", weight, v).reshape(b, c, h * w)
        return x + self.proj(a).reshape(b, c, h, w)


class Downsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.downsample = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x, temb=None):
        return self.downsample(x)


class Upsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x, size):
        return self.conv(F.interpolate(x, size=size, mode="nearest"))


class Stage(nn.Sequential):
    """One entry of encoder.blocks / decoder.blocks (an embed-sequential in the reference)."""

    def forward(self, x, temb, up_size=None):
        for m in self:
            if isinstance(m, Upsample):
                x = m(x, up_size)
            elif isinstance(m, nn.Conv2d):
                x = m(x)
            else:
                x = m(x, temb)
        return x


class Blocks(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)


class Decoder(Blocks):
    def __init__(self, blocks, out):
        super().__init__(blocks)
        self.out = out


class Net(nn.Module):
    def __init__(self, encoder, bottleneck, decoder):
        super().__init__()
        self.encoder, self.bottleneck, self.decoder = encoder, bottleneck, decoder


class SRMUNet(nn.Module):
    """forward(x (B, d_in, H, W), t (B, 1, H, W)) -> raw output (B, d_out, H, W)."""

    def __init__(self, hid_dims, attention, d_in, d_out, num_blocks=2, num_head_channels=64, t_emb_dim=512,
                 d_emb=256, dropout=0.1, temb="distinct"):
        super().__init__()
        self.temb_mode = temb
        # the checkpoint's root attributes (fixtures/README.md), for export
        self.config = {"hid_dims": [int(c) for c in hid_dims], "attention": [int(bool(a)) for a in attention],
                       "d_in": int(d_in), "d_out": int(d_out), "num_blocks": int(num_blocks),
                       "num_head_channels": int(num_head_channels), "t_emb_dim": int(t_emb_dim), "d_emb": int(d_emb)}
        self.time_embedding = TimeEmbedding(d_emb, t_emb_dim)
        te = self.time_embedding
        L = len(hid_dims)
        enc = [Stage(nn.Conv2d(d_in, hid_dims[0], 3, padding=1))]
        skips = [hid_dims[0]]
        c = hid_dims[0]
        for lvl in range(L):
            for _ in range(num_blocks):
                mods = [ResBlock(c, hid_dims[lvl], te, t_emb_dim, dropout)]
                c = hid_dims[lvl]
                if attention[lvl]:
                    mods.append(Attention(c, num_head_channels))
                enc.append(Stage(*mods))
                skips.append(c)
            if lvl < L - 1:
                enc.append(Stage(Downsample(c)))
                skips.append(c)
        mid = [ResBlock(c, c, te, t_emb_dim, dropout), Attention(c, num_head_channels),
               ResBlock(c, c, te, t_emb_dim, dropout)]
        dec = []
        for lvl in reversed(range(L)):
            for i in range(num_blocks + 1):
                mods = [ResBlock(c + skips.pop(), hid_dims[lvl], te, t_emb_dim, dropout)]
                c = hid_dims[lvl]
                if attention[lvl]:
                    mods.append(Attention(c, num_head_channels))
                if lvl > 0 and i == num_blocks:
                    mods.append(Upsample(c))
                dec.append(Stage(*mods))
        out = nn.Sequential(nn.GroupNorm(32, c), nn.SiLU(), nn.Conv2d(c, d_out, 3, padding=1))
        self.model = Net(Blocks(enc), Blocks(mid), Decoder(dec, out))
        # spec 1.2: zero init of every ResBlock's last conv, attention proj and the output conv
        for m in self.modules():
            if isinstance(m, ResBlock):
                nn.init.zeros_(m.conv_2[2].weight), nn.init.zeros_(m.conv_2[2].bias)
            if isinstance(m, Attention):
                nn.init.zeros_(m.proj.weight), nn.init.zeros_(m.proj.bias)
        nn.init.zeros_(out[2].weight), nn.init.zeros_(out[2].bias)

    def _temb_fn(self, t, sizes=()):
        """Returns temb(norm_module, (h, w)) -> (B, C, h, w): the block's projection of the embedding of
        the noise map resized (bilinear, align_corners=False) to (h, w); cached per resolution. `sizes` are
        computed at once: the distinct-level sort must wait for the GPU (its output size), and waiting before the
        first convolution is queued keeps the rest of the step free of such stalls."""
        cache = {}

        def levels(size):
            if size not in cache:
                ts = t if tuple(t.shape[-2:]) == tuple(size) else F.interpolate(t, size=size, mode="bilinear",
                                                                                  align_corners=False)
                if self.temb_mode == "distinct":
                    uniq, inv, perm, counts = distinct_levels(ts[:, 0])
                    cache[size] = (F.silu(self.time_embedding(uniq)), (inv, perm, counts, ts.shape))
                else:
                    cache[size] = (F.silu(self.time_embedding(ts[:, 0])), None)
            return cache[size]

        def temb(norm, size):
            size = tuple(size)
            e, inv = levels(size)
            lin = norm.embedding_layer[1]
            if inv is None:  # per pixel: (B, h, w, 512) -> (B, C, h, w)
                return lin(e).permute(0, 3, 1, 2)
            p = lin(e)  # (n_distinct, C)
            idx, perm, counts, shape = inv
            B, _, h, w = shape
            return GatherRows.apply(p, idx, perm, counts).view(B, h, w, -1).permute(0, 3, 1, 2)

        for size in sizes:
            levels(tuple(size))
        return temb

    def forward(self, x, t):
        sizes = [tuple(x.shape[-2:])]
        for _ in range(len(self.config["hid_dims"]) - 1):  # Downsample: conv 3x3, stride 2, padding 1
            sizes.append(tuple((n - 1) // 2 + 1 for n in sizes[-1]))
        temb = self._temb_fn(t, sizes)
        h = x
        skips = []
        for st in self.model.encoder.blocks:
            h = st(h, temb)
            skips.append(h)
        for m in self.model.bottleneck.blocks:
            h = m(h, temb)
        for st in self.model.decoder.blocks:
            h = torch.cat([h, skips.pop()], dim=1)
            up = skips[-1].shape[-2:] if skips else None
            h = st(h, temb, up)
        return self.model.decoder.out(h)


def from_config(cfg, **kw):
    """cfg: a dict with hid_dims, attention, d_in, d_out (+ optional num_blocks, num_head_channels,
    t_emb_dim, d_emb), as in a checkpoint's root attributes or the manifest."""
    return SRMUNet([int(c) for c in cfg["hid_dims"]], [bool(a) for a in cfg["attention"]], int(cfg["d_in"]),
                   int(cfg["d_out"]), int(cfg.get("num_blocks", 2)), int(cfg.get("num_head_channels", 64)),
                   int(cfg.get("t_emb_dim", 512)), int(cfg.get("d_emb", 256)), **kw)
