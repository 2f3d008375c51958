"""srm_losses.py: the rectified-flow forward process (spec 2.1) and the three SRM training losses of spec 2.2
(L_mu, the hybrid L_vlb with the velocity detached, L_sigma), written from the spec.

All per-pixel terms are multiplied by the per-pixel weight w and averaged over every element.
"""
import math

import torch
import torch.nn.functional as F

LOG2 = math.log(2.0)
LOG_VAR_MIN = -30.0  # spec 2.5 note: variances are clamped to >= e^-30
# upper bound of every model log-variance in the losses (ours; the reference only floors at -30): keeps
# exp() finite when an output drifts, so a bad step cannot turn into NaN gradients
LOG_VAR_MAX = 20.0


def noisy(x, t, eps):
    """spec 2.1: z_t = (1 - t) x + t eps (t per pixel, (B, 1, H, W))."""
    return (1.0 - t) * x + t * eps


def split_output(y, d, patch_size):
    """spec 1.6: raw (B, 2d+1, H, W) -> u (B, d, H, W), v = (raw + 1) / 2, and the log-variance of the
    uncertainty head average-pooled over each patch and broadcast back (B, 1, H, W)."""
    u = y[:, :d]
    v = (y[:, d:2 * d] + 1.0) / 2.0
    lv = y[:, 2 * d:2 * d + 1]
    if patch_size:
        p = int(patch_size)
        lv = F.avg_pool2d(lv, p).repeat_interleave(p, dim=2).repeat_interleave(p, dim=3)
    else:
        lv = lv.mean(dim=(2, 3), keepdim=True).expand_as(lv)
    return u, v, lv


# log_ndtr arguments beyond this are clamped (value error < 1e-300 relative; only absurd predictions get there)
ARG_MAX = 1.0e3


def _log_clamped(a):
    return torch.log(torch.clamp(a, min=math.exp(LOG_VAR_MIN)))


def discretized_gaussian_log_likelihood(x, mean, log_scale, half_bin=1.0 / 255.0):
    """log P(x) under N(mean, exp(log_scale)^2) integrated over x's bin [x - 1/255, x + 1/255] of data in
    [-1, 1]; the two extreme bins extend to -inf / +inf (x < -0.999, x > 0.999)."""
    inv = torch.exp(-log_scale)
    upper = inv * (x - mean + half_bin)
    lower = inv * (x - mean - half_bin)
    # each log_ndtr only where its branch is taken, arguments bounded to +-ARG_MAX: log_ndtr's backward
    # returns NaN for arguments near -1e6 (scale e^-15 at t = 0), even in a branch torch.where discards
    lo_edge, hi_edge = x < -0.999, x > 0.999
    log_cdf_upper = torch.special.log_ndtr(torch.where(lo_edge, upper, torch.zeros_like(upper)).clamp(-ARG_MAX, ARG_MAX))
    log_sf_lower = torch.special.log_ndtr(torch.where(hi_edge, -lower, torch.zeros_like(lower)).clamp(-ARG_MAX, ARG_MAX))
    delta = torch.special.ndtr(upper) - torch.special.ndtr(lower)
    mid = torch.log(torch.clamp(delta, min=1e-12))
    return torch.where(lo_edge, log_cdf_upper, torch.where(hi_edge, log_sf_lower, mid))


def _weighted_mean(w, term):
    """mean of w * term where a weight of 0 contributes exactly 0: a pixel the loss ignores (a Sudoku clue,
    an add_zeros region) has outputs nothing trains, and exp(-logvar) there can overflow, so 0 * inf = NaN
    must not reach the mean (seen at step 100 of a Sudoku run on an H100)."""
    return torch.where(w > 0, w * term, torch.zeros_like(term)).mean()


def srm_losses(y, x, eps, t, w, patch_size, delta=1e-3, nll_below=1e-5, sigma_weight=0.01):
    """spec 2.2 losses of one batch.

    y: raw network output (B, 2d+1, H, W); x: clean data in [-1, 1] (B, d, H, W); eps: the noise; t, w: per
    pixel noise level and loss weight (B, 1, H, W). Returns (total, dict of the three unweighted terms).
    Computed in float32 whatever the autocast dtype of y."""
    y = y.float()
    d = x.shape[1]
    u_hat, v, logvar_sigma = split_output(y, d, patch_size)
    return losses_from_parts(u_hat, v, logvar_sigma, x, eps, t, w, delta, nll_below, sigma_weight)


def losses_from_parts(u_hat, v, logvar_sigma, x, eps, t, w, delta=1e-3, nll_below=1e-5, sigma_weight=0.01,
                      mu_factor=None):
    """The spec 2.2 losses from the split outputs: velocity u_hat, v = (raw + 1) / 2, the region log-variance
    logvar_sigma, each broadcastable against x; t, w the per-element level and weight. Any layout works (image
    (B, C, H, W) with (B, 1, H, W) maps, or tokens (B, N, f) with (B, N, 1)): every term is elementwise and the
    means run over x's elements, so both layouts give the same numbers. mu_factor: an extra elementwise weight on
    the L_mu term only (None: spec 2.2 unchanged; train_dit.py --mu-tau)."""
    u_hat, v, logvar_sigma = u_hat.float(), v.float(), logvar_sigma.float()
    # ignored pixels (w = 0) get harmless values before any exp: torch.where alone would still send
    # 0 * inf = NaN back through the unselected branch's gradient
    keep = w > 0
    v = torch.where(keep, v, torch.full_like(v, 0.5))
    logvar_sigma = torch.where(keep, logvar_sigma, torch.zeros_like(logvar_sigma)).clamp(LOG_VAR_MIN, LOG_VAR_MAX)
    target = eps - x  # spec 2.1: velocity u_t = eps - x
    z = noisy(x, t, eps)

    # 1. L_mu = w (u_hat - (eps - x))^2
    l_mu = _weighted_mean(w, (u_hat - target) ** 2 if mu_factor is None else mu_factor * (u_hat - target) ** 2)

    # 2. L_vlb: the transition t -> s = t - delta (spec 2.5 with alpha = 1) against the true posterior
    # q(z_s | x, z_t) = N((1-s) x + s r eps, s^2 (1 - r^2)), r = (1-t) s / ((1-s) t); the model's mean uses
    # x_hat, eps_hat of the detached u_hat, its variance interpolates log s^2(1-r^2) .. log t^2(1-r^2) by v.
    ud = u_hat.detach()
    x_hat = z - t * ud
    eps_hat = z + (1.0 - t) * ud
    use_nll = (t - delta) < nll_below
    tk = torch.where(use_nll, torch.full_like(t, 0.5), t)  # placeholders keep the unused branch finite
    sk = torch.where(use_nll, torch.full_like(t, 0.25), t - delta)
    r = (1.0 - tk) * sk / ((1.0 - sk) * tk)
    one_m_r2 = torch.clamp(1.0 - r * r, min=0.0)
    lv_lo = _log_clamped(sk * sk * one_m_r2)
    lv_hi = _log_clamped(tk * tk * one_m_r2)
    lv_p = (v * lv_hi + (1.0 - v) * lv_lo).clamp(LOG_VAR_MIN, LOG_VAR_MAX)
    mu_q = (1.0 - sk) * x + sk * r * eps
    mu_p = (1.0 - sk) * x_hat + sk * r * eps_hat
    kl = 0.5 * (-1.0 + lv_p - lv_lo + torch.exp(lv_lo - lv_p) + (mu_q - mu_p) ** 2 * torch.exp(-lv_p))
    # near t = 0 the step lands on s = 0: the decoder NLL of x under N(x_hat, exp(v log t^2 + (1-v) (-30)))
    lv_0 = (v * _log_clamped(t * t) + (1.0 - v) * LOG_VAR_MIN).clamp(LOG_VAR_MIN, LOG_VAR_MAX)
    nll = -discretized_gaussian_log_likelihood(x, x_hat, 0.5 * lv_0)
    l_vlb = _weighted_mean(w, torch.where(use_nll, nll, kl) / LOG2)

    # 3. L_sigma: Gaussian NLL of the target under N(u_hat.detach(), sigma_theta^2), sigma pooled per region
    l_sigma = _weighted_mean(w, 0.5 * (logvar_sigma + (target - ud) ** 2 * torch.exp(-logvar_sigma)
                                       + math.log(2 * math.pi)))

    total = l_mu + l_vlb + sigma_weight * l_sigma
    return total, {"mu": l_mu.detach(), "vlb": l_vlb.detach(), "sigma": l_sigma.detach()}
