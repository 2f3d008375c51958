"""srm_noise.py: the SRM training noise-level samplers of spec 2.3 (`mean_beta`, `independent`, `shared`),
their inverse-density loss weights, `add_zeros`, and Kronecker upsampling of region levels to pixels.

Written from the spec: one level t in [0, 1] per region (gh x gw grid), 0 = clean, 1 = pure noise.
"""
import math

import torch
import torch.nn.functional as F


def beta_concentration(n, sharpness):
    """spec 2.3: the Beta(a, a) that splits a sub-list of n regions: a = (n - 1 - (n mod 2))^1.05 * sharpness."""
    return float(n - 1 - (n % 2)) ** 1.05 * float(sharpness)


def mean_beta_levels(mean, n_regions, sharpness, generator=None):
    """spec 2.3 `mean_beta`: for each image mean m (B,), regions (B, n_regions) in [0, 1] with sum = m * n.

    The total S = m n is split recursively between the two halves of the region list (the first has
    floor(n/2) regions): the first gets lo + (hi - lo) b, b ~ Beta(a_n, a_n), hi = min(S, floor(n/2)),
    lo = max(S - min(S, n - floor(n/2)), 0); down to single regions; then the positions are permuted at
    random. The recursion tree depends only on n, so it runs level by level, vectorised over the batch and
    over the segments of a level (float64, so the mean is exact to rounding). Returns float64 (B, n)."""
    mean = mean.to(torch.float64)
    B = mean.shape[0]
    dev = mean.device
    # segments of the current level, left to right: sizes (python ints) and totals (B, n_seg)
    sizes = [int(n_regions)]
    totals = (mean * n_regions)[:, None]
    while any(s > 1 for s in sizes):
        split = [i for i, s in enumerate(sizes) if s > 1]
        n = torch.tensor([sizes[i] for i in split], dtype=torch.float64, device=dev)
        a = torch.tensor([beta_concentration(sizes[i], sharpness) for i in split], dtype=torch.float64,
                         device=dev)
        b = _beta(a, B, generator, dev)  # (B, n_split)
        S = totals[:, split]
        n1 = torch.floor(n / 2)
        hi = torch.minimum(S, n1)
        lo = torch.clamp(S - torch.minimum(S, n - n1), min=0.0)
        first = lo + (hi - lo) * b
        second = S - first
        new_sizes, cols = [], []
        k = 0
        for i, s in enumerate(sizes):
            if s > 1:
                new_sizes += [s // 2, s - s // 2]
                cols += [first[:, k], second[:, k]]
                k += 1
            else:
                new_sizes.append(1)
                cols.append(totals[:, i])
        sizes = new_sizes
        totals = torch.stack(cols, dim=1)
    t = totals.clamp_(0.0, 1.0)  # rounding can leave -1e-17 or 1 + 1e-16
    perm = torch.argsort(torch.rand(B, n_regions, generator=generator, device=dev), dim=1)
    return torch.gather(t, 1, perm)


def _beta(a, B, generator, dev):
    """B draws of Beta(a_j, a_j) per entry of a (n,), as (B, n): X / (X + Y), X, Y ~ Gamma(a_j).
    Through torch._standard_gamma so that a torch.Generator can drive it (Beta.sample takes none)."""
    if generator is None:
        d = torch.distributions.Beta(a, a)
        return d.sample((B,))
    # seeded path (tests, density estimate): the generator's uniform stream seeds a local fork
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator, device=generator.device).item())
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        return torch.distributions.Beta(a, a).sample((B,))


class RegionNoiseSampler:
    """Per-region noise levels and loss weights for one benchmark (spec 2.3, 2.4).

    kind: "mean_beta" (all SRM paper models), "independent" (t ~ U(0, 1) i.i.d.) or "shared" (one t per image).
    grid: (gh, gw) regions. sharpness: beta_sharpness. add_zeros: per image r ~ U(0, 1), about floor(r N)
    random regions are forced to t = 0 with weight 0 (EP and CP). The inverse-density weights of mean_beta
    come from `density_samples` images drawn once (spec 2.3: 80,000)."""

    def __init__(self, kind, grid, sharpness=1.0, add_zeros=False, density_samples=80000, num_bins=1000,
                 blur_size=5, blur_sigma=0.2, eps=1e-6, device="cpu", seed=0):
        self.kind = kind
        self.grid = (int(grid[0]), int(grid[1]))
        self.n = self.grid[0] * self.grid[1]
        self.sharpness = float(sharpness)
        self.add_zeros = bool(add_zeros)
        self.num_bins = int(num_bins)
        self.eps = float(eps)
        self.device = torch.device(device)
        self.density = None
        if kind == "mean_beta":
            self.density = self._estimate_density(density_samples, blur_size, blur_sigma, seed)
        elif kind not in ("independent", "shared"):
            raise ValueError(f"unknown noise sampler {kind!r}")

    def _levels(self, B, generator=None):
        dev = self.device
        if self.kind == "mean_beta":
            m = torch.rand(B, generator=generator, device=dev, dtype=torch.float64)
            return mean_beta_levels(m, self.n, self.sharpness, generator).float()
        if self.kind == "independent":
            return torch.rand(B, self.n, generator=generator, device=dev)
        return torch.rand(B, 1, generator=generator, device=dev).expand(B, self.n).contiguous()

    def _estimate_density(self, count, blur_size, blur_sigma, seed):
        """spec 2.3: histogram (num_bins on [0, 1]) of the levels of `count` images, blurred with a normalised
        Gaussian kernel (blur_size taps, sigma in bins, reflect padding), divided by its mean (so mean 1)."""
        g = torch.Generator(device=self.device)
        g.manual_seed(int(seed) + 0x5EED)
        hist = torch.zeros(self.num_bins, dtype=torch.float64, device=self.device)
        chunk = max(1, 2 ** 20 // self.n)
        done = 0
        while done < count:
            b = min(chunk, count - done)
            t = self._levels(b, g).double().flatten()
            idx = torch.clamp((t * self.num_bins).long(), 0, self.num_bins - 1)
            hist += torch.bincount(idx, minlength=self.num_bins).double()
            done += b
        c = blur_size // 2
        x = torch.arange(-c, c + 1, dtype=torch.float64, device=self.device)
        kernel = torch.exp(-0.5 * (x / blur_sigma) ** 2)
        kernel /= kernel.sum()
        padded = F.pad(hist[None, None], (c, c), mode="reflect")
        smooth = F.conv1d(padded, kernel[None, None])[0, 0]
        return (smooth / smooth.mean()).float()

    def weights_of(self, t):
        """spec 2.3: w = (1 + eps) / (p(t) + eps), p the blurred histogram density (mean_beta only)."""
        if self.density is None:
            return torch.ones_like(t)
        idx = torch.clamp((t * self.num_bins).long(), 0, self.num_bins - 1)
        return (1.0 + self.eps) / (self.density.to(t.device)[idx] + self.eps)

    def sample(self, B, generator=None):
        """(t, w): float32 (B, gh, gw) region levels and loss weights."""
        t = self._levels(B, generator)
        w = self.weights_of(t)
        if self.add_zeros:
            # spec 2.3 add_zeros: the regions k = 1..N with k / N < r are zeroed, then positions permuted
            r = torch.rand(B, 1, generator=generator, device=t.device)
            k = torch.arange(1, self.n + 1, device=t.device, dtype=torch.float32)[None] / self.n
            zero = k < r
            t = torch.where(zero, torch.zeros_like(t), t)
            w = torch.where(zero, torch.zeros_like(w), w)
            perm = torch.argsort(torch.rand(B, self.n, generator=generator, device=t.device), dim=1)
            t, w = torch.gather(t, 1, perm), torch.gather(w, 1, perm)
        return t.reshape(B, *self.grid), w.reshape(B, *self.grid)


def to_pixels(region_map, patch_size):
    """(B, gh, gw) -> (B, 1, gh p, gw p): every region's value on its p x p square (Kronecker upsampling)."""
    p = int(patch_size)
    return region_map[:, None].repeat_interleave(p, dim=2).repeat_interleave(p, dim=3)


def top_level_concentration(n_regions, sharpness):
    """a of the first split (spec 2.3 lists EP 58.13, CP 168.20, MS 98.29)."""
    return beta_concentration(n_regions, sharpness)


if __name__ == "__main__":  # quick look: python3 train/srm_noise.py
    for name, n, s in (("EP", 64, 0.75), ("CP", 256, 0.5), ("MS", 81, 1.0)):
        print(f"{name}: a = {top_level_concentration(n, s):.2f}")
    smp = RegionNoiseSampler("mean_beta", (8, 8), 0.75, add_zeros=True, density_samples=8000)
    t, w = smp.sample(4)
    print(t.shape, float(t.min()), float(t.max()), float(w.mean()), math.isfinite(float(w.sum())))
