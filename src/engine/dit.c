/* dit.c: the region-token DiT (../shared/spec/dit.md, train/srm_dit.py) on the CPU: the plan (state_dict tensors in
 * the shared weight table, both arenas sized from the config and max_batch) and the forward pass over it. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dit_internal.h"
#include "ipr/common.h"
#include "ops_cpu.h"

/* ------------------------------------------------------------------------------------------------ */
/* plan */

/* torch.nn.Linear(in, out) named `prefix`: weight (out, in), bias (out), bound to l at allocation */
static void plan_linear(ipr_dit *net, ipr_dit_linear *l, int out, int in, const char *prefix) {
    char name[IPR_WEIGHTS_NAME_CAP + 64]; /* room to pass a too-long name whole: ipr_weights_add refuses it */
    const int64_t ws[2] = {out, in}, bs[1] = {out};
    l->out = out;
    l->in = in;
    snprintf(name, sizeof name, "%s.weight", prefix);
    ipr_weights_add(&net->wt, name, 2, ws, IPR_WEIGHTS_WEIGHT, &l->w);
    snprintf(name, sizeof name, "%s.bias", prefix);
    ipr_weights_add(&net->wt, name, 1, bs, IPR_WEIGHTS_BIAS, &l->b);
}

/* Every tensor in the order of the PyTorch state_dict (module registration order of train/srm_dit.py). */
static void plan_weights(ipr_dit *net) {
    char p[64];
    const int d = net->d;
    plan_linear(net, &net->temb1, d, IPR_DIT_SINUSOID, "t_emb.mlp.0");
    plan_linear(net, &net->temb2, d, d, "t_emb.mlp.2");
    plan_linear(net, &net->patch, d, net->f, "patch_emb.proj");
    for (int i = 0; i < net->cfg.depth; ++i) {
        ipr_dit_block *bk = &net->blocks[i];
        snprintf(p, sizeof p, "blocks.%d.attn.qkv", i);
        plan_linear(net, &bk->qkv, 3 * d, d, p);
        snprintf(p, sizeof p, "blocks.%d.attn.proj", i);
        plan_linear(net, &bk->proj, d, d, p);
        snprintf(p, sizeof p, "blocks.%d.mlp.fc1", i);
        plan_linear(net, &bk->fc1, net->hid, d, p);
        snprintf(p, sizeof p, "blocks.%d.mlp.fc2", i);
        plan_linear(net, &bk->fc2, d, net->hid, p);
        snprintf(p, sizeof p, "blocks.%d.adaLN_modulation.1", i);
        plan_linear(net, &bk->ada, 6 * d, d, p);
    }
    plan_linear(net, &net->out_ada, 2 * d, d, "out_layer.adaLN_modulation.1");
    plan_linear(net, &net->out_lin, net->n_out, d, "out_layer.linear");
    ipr_weights_derived(&net->wt, (size_t)net->N * d, &net->pos);
    ipr_weights_derived(&net->wt, IPR_DIT_SINUSOID / 2, &net->freqs);
}

/* spec dit.md 3 (train/srm_dit.py pos_embed): token (region (ry, rx), sub-token (h, w)) sits at column rx s + w,
 * row ry s + h of the token grid; F = d / 4 frequencies omega_i = 10000^(-i / F); [sin(x omega), cos(x omega),
 * sin(y omega), cos(y omega)], computed in double and rounded once to float (the reference's float32 buffer). */
static void fill_pos(ipr_dit *net) {
    const int F = net->d / 4, s = net->s;
    for (int ry = 0; ry < net->gh; ++ry)
        for (int rx = 0; rx < net->gw; ++rx)
            for (int h = 0; h < s; ++h)
                for (int w = 0; w < s; ++w) {
                    const size_t n = ((size_t)(ry * net->gw + rx) * s + h) * s + w;
                    float *e = net->pos + n * net->d;
                    const double col = (double)(rx * s + w), row = (double)(ry * s + h);
                    for (int i = 0; i < F; ++i) {
                        const double om = pow(10000.0, -(double)i / F);
                        e[i] = (float)sin(col * om);
                        e[F + i] = (float)cos(col * om);
                        e[2 * F + i] = (float)sin(row * om);
                        e[3 * F + i] = (float)cos(row * om);
                    }
                }
}

/* bump allocator over the activation arena: 64-byte aligned sections */
typedef struct {
    unsigned char *base;
    size_t off;
} dit_bump;

static void *bump(dit_bump *b, size_t bytes) {
    b->off = (b->off + 63) & ~(size_t)63;
    void *p = b->base ? b->base + b->off : NULL;
    b->off += bytes;
    return p;
}

/* Lay out the activation arena (base NULL: measure only). Returns its size in bytes. */
static size_t layout_activations(ipr_dit *net, unsigned char *base) {
    dit_bump b = {base, 0};
    const size_t M = (size_t)net->max_batch * net->N, N = (size_t)net->N, d = (size_t)net->d;
    const size_t L = (size_t)net->lcap, wide = d > (size_t)net->n_out ? d : (size_t)net->n_out;
    net->x = bump(&b, sizeof(float) * M * d);
    net->tok = bump(&b, sizeof(float) * M * net->f);
    net->tokc = net->cfg.input_scale != IPR_DIT_INPUT_NONE ? bump(&b, sizeof(float) * N * net->f) : NULL;
    net->tmp = bump(&b, sizeof(float) * M * wide);
    net->h = bump(&b, sizeof(float) * N * d);
    net->qkv = bump(&b, sizeof(float) * N * 3 * d);
    net->att = bump(&b, sizeof(float) * N * d);
    net->mlp = bump(&b, sizeof(float) * N * net->hid);
    net->proj = bump(&b, sizeof(float) * N * d);
    net->scores = bump(&b, sizeof(float) * N * N);
    net->rlev = bump(&b, sizeof(float) * L);
    net->ridx = bump(&b, sizeof(int32_t) * L);
    net->lbits = bump(&b, sizeof(uint32_t) * L);
    net->lc = bump(&b, sizeof(float) * L * d);
    net->lsc = bump(&b, sizeof(float) * L * d);
    net->lmod = bump(&b, sizeof(float) * L * 6 * d);
    net->lsin = bump(&b, sizeof(float) * IPR_DIT_LEVEL_CHUNK * IPR_DIT_SINUSOID);
    net->lhid = bump(&b, sizeof(float) * IPR_DIT_LEVEL_CHUNK * d);
    return (b.off + 63) & ~(size_t)63;
}

ipr_dit *ipr_dit_new(const ipr_dit_config *cfg, int max_batch) { return ipr_dit_new_bounded(cfg, max_batch, -1); }

ipr_dit *ipr_dit_new_bounded(const ipr_dit_config *cfg, int max_batch, int64_t file_values) {
    ipr_dit *net = NULL;
    IPR_TRY(ipr_dit_config_validate(cfg));
    int gh = 0, gw = 0, N = 0, f = 0;
    ipr_dit_geometry(cfg, &gh, &gw, &N, &f);
    IPR_CHECK(max_batch >= 1 && (int64_t)max_batch * N <= INT_MAX / 4,
              "dit: max_batch %d outside 1..%d for %d tokens per image", max_batch, INT_MAX / 4 / N, N);
    net = ipr_calloc(1, sizeof *net, "dit");
    if (!net) goto fail; /* error recorded by ipr_calloc */
    net->cfg = *cfg;
    net->max_batch = max_batch;
    net->H = cfg->image_size[0];
    net->W = cfg->image_size[1];
    net->C = cfg->d_in;
    net->p = cfg->patch_size;
    net->s = cfg->tokens_per_side;
    net->gh = gh;
    net->gw = gw;
    net->R = gh * gw;
    net->N = N;
    net->f = f;
    net->d = cfg->d_hid;
    net->heads = cfg->num_heads;
    net->dh = cfg->d_hid / cfg->num_heads;
    net->hid = cfg->mlp_ratio * cfg->d_hid;
    net->n_out = 2 * f + 1;
    net->lcap = max_batch * net->R;

    net->blocks = ipr_calloc((size_t)cfg->depth, sizeof *net->blocks, "dit blocks");
    if (!net->blocks) goto fail; /* error recorded by ipr_calloc */
    ipr_weights_init(&net->wt);
    plan_weights(net);
    IPR_TRY(ipr_weights_fit_file(&net->wt, file_values, "dit"));
    IPR_TRY(ipr_weights_alloc(&net->wt, "dit"));
    ipr_cpu_sinusoid_freqs(net->freqs, IPR_DIT_SINUSOID / 2);
    fill_pos(net);

    net->abytes = layout_activations(net, NULL);
    net->aarena = aligned_alloc(64, net->abytes);
    IPR_CHECK(net->aarena != NULL, "dit: out of memory: activation arena of %zu bytes", net->abytes);
    layout_activations(net, net->aarena);
    ipr_log(IPR_LOG_DEBUG,
            "dit: %d tensors, %lld parameters; weights %.2f MiB, activations %.2f MiB (max batch %d, %d tokens of %d "
            "features, up to %d distinct levels)",
            net->wt.n, (long long)net->wt.params, (double)net->wt.floats * 4.0 / 1048576.0,
            (double)net->abytes / 1048576.0, max_batch, N, f, net->lcap);
    return net;
fail:
    ipr_error_context("planning the DiT");
    ipr_dit_free(net);
    return NULL;
}

void ipr_dit_free(ipr_dit *net) {
    if (!net) return;
    free(net->blocks);
    ipr_weights_free(&net->wt);
    free(net->aarena);
    free(net);
}

const ipr_dit_config *ipr_dit_get_config(const ipr_dit *net) { return &net->cfg; }

void ipr_dit_arena_bytes(const ipr_dit *net, size_t *weights, size_t *activations) {
    if (weights) *weights = sizeof(float) * net->wt.floats;
    if (activations) *activations = net->abytes;
}

int64_t ipr_dit_param_count(const ipr_dit *net) { return net->wt.params; }

void ipr_dit_set_stage_hook(ipr_dit *net, ipr_dit_stage_fn fn, void *ctx) {
    net->hook = fn;
    net->hook_ctx = ctx;
}

/* ------------------------------------------------------------------------------------------------ */
/* cost model: multiply-adds counted twice, per sample */

void ipr_dit_flops(const ipr_dit_config *cfg, int levels, double *per_token, double *distinct) {
    int gh = 0, gw = 0, Ni = 0, fi = 0;
    ipr_dit_geometry(cfg, &gh, &gw, &Ni, &fi);
    const double N = Ni, f = fi, d = cfg->d_hid, hid = (double)cfg->mlp_ratio * cfg->d_hid;
    const double L = cfg->depth, R = (double)gh * gw;
    /* the network proper: patch embedding, per block qkv, scores, weighted sum, proj, fc1, fc2; output linear */
    const double block = 2.0 * N * d * 3 * d + 2.0 * 2 * N * N * d + 2.0 * N * d * d + 2.0 * 2 * N * d * hid;
    const double net = 2.0 * N * f * d + L * block + 2.0 * N * d * (2 * f + 1);
    /* modulation of one noise level: the t_emb MLP, every block's adaLN_modulation, the output layer's */
    const double mod = 2.0 * (IPR_DIT_SINUSOID * d + d * d) + L * 2.0 * d * 6 * d + 2.0 * d * 2 * d;
    double lv = levels < 1 ? 1 : levels;
    if (lv > R) lv = R; /* a level is a region's: at most R distinct */
    if (per_token) *per_token = net + N * mod;
    if (distinct) *distinct = net + lv * mod;
}

/* ------------------------------------------------------------------------------------------------ */
/* forward */

static void stage(const ipr_dit *net, const char *name, const float *data, int B, int D) {
    if (net->hook) net->hook(name, data, B, net->N, D, net->hook_ctx);
}

/* In-place heapsort: glibc's qsort may malloc a merge buffer, and nothing is allocated in a forward pass. */
static void sift_down(uint32_t *v, size_t root, size_t n) {
    for (;;) {
        size_t c = 2 * root + 1;
        if (c >= n) return;
        if (c + 1 < n && v[c + 1] > v[c]) ++c;
        if (v[root] >= v[c]) return;
        const uint32_t tmp = v[root];
        v[root] = v[c];
        v[c] = tmp;
        root = c;
    }
}

static void sort_u32(uint32_t *v, size_t n) {
    for (size_t i = n / 2; i-- > 0;) sift_down(v, i, n);
    for (size_t end = n; end > 1; --end) {
        const uint32_t tmp = v[0];
        v[0] = v[end - 1];
        v[end - 1] = tmp;
        sift_down(v, 0, end - 1);
    }
}

/* index of key in the sorted, distinct v (n entries); the key is present */
static int32_t find_u32(const uint32_t *v, int n, uint32_t key) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        const int mid = lo + (hi - lo) / 2;
        if (v[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static uint32_t float_bits(float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

/* Region levels of t (B, 1, H, W) (train/srm_dit.py region_levels: each region's top-left pixel), after checking
 * that t is constant on every region; then the distinct levels of the batch (sorted bit patterns: a level's rows
 * depend on its value alone, so any grouping is exact) and every region's row among them. */
static int region_levels(ipr_dit *net, const float *t, int B) {
    const int H = net->H, W = net->W, p = net->p, R = net->R;
    for (int b = 0; b < B; ++b) {
        const float *tb = t + (size_t)b * H * W;
        for (int r = 0; r < R; ++r) {
            const int ry = r / net->gw, rx = r % net->gw;
            const float v = tb[(size_t)ry * p * W + (size_t)rx * p];
            for (int yy = 0; yy < p; ++yy) {
                const float *row = tb + (size_t)(ry * p + yy) * W + (size_t)rx * p;
                for (int xx = 0; xx < p; ++xx) {
                    const float u = row[xx];
                    if (!(u == v || (u != u && v != v)))
                        IPR_FAIL("dit forward: the noise map t of image %d is not constant on region %d (row %d, column "
                                 "%d of the %dx%d grid of %dx%d regions): %.9g at its top-left pixel, %.9g at pixel "
                                 "(y %d, x %d)",
                                 b, r, ry, rx, net->gh, net->gw, p, p, (double)v, (double)u, ry * p + yy, rx * p + xx);
                }
            }
            net->rlev[(size_t)b * R + r] = v;
        }
    }
    const int nr = B * R;
    if (net->per_region) {
        for (int i = 0; i < nr; ++i) {
            net->lbits[i] = float_bits(net->rlev[i]);
            net->ridx[i] = i;
        }
        net->n_levels = nr;
        return IPR_OK;
    }
    for (int i = 0; i < nr; ++i) net->lbits[i] = float_bits(net->rlev[i]);
    sort_u32(net->lbits, (size_t)nr);
    int nl = 0;
    for (int i = 0; i < nr; ++i)
        if (nl == 0 || net->lbits[i] != net->lbits[nl - 1]) net->lbits[nl++] = net->lbits[i];
    for (int i = 0; i < nr; ++i) net->ridx[i] = find_u32(net->lbits, nl, float_bits(net->rlev[i]));
    net->n_levels = nl;
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* spec dit.md 1: c = mlp.2(SiLU(mlp.0(sinusoid(t)))) per distinct level, and SiLU(c) once for every
 * adaLN_modulation. ipr_cpu_linear is row-deterministic: a level's row is bitwise the same in any chunk. */
static void embed_levels(ipr_dit *net) {
    const int d = net->d, nl = net->n_levels;
    double tv[IPR_DIT_LEVEL_CHUNK];
    for (int j0 = 0; j0 < nl; j0 += IPR_DIT_LEVEL_CHUNK) {
        const int m = nl - j0 < IPR_DIT_LEVEL_CHUNK ? nl - j0 : IPR_DIT_LEVEL_CHUNK;
        for (int j = 0; j < m; ++j) {
            float v;
            memcpy(&v, &net->lbits[j0 + j], sizeof v);
            tv[j] = v;
        }
        ipr_cpu_sinusoid(net->lsin, tv, m, IPR_DIT_SINUSOID, net->freqs);
        ipr_cpu_linear(net->lhid, net->lsin, net->temb1.w, net->temb1.b, m, IPR_DIT_SINUSOID, d);
        ipr_cpu_silu(net->lhid, net->lhid, (size_t)m * d);
        ipr_cpu_linear(net->lc + (size_t)j0 * d, net->lhid, net->temb2.w, net->temb2.b, m, d, d);
    }
    ipr_cpu_silu(net->lsc, net->lc, (size_t)nl * d);
}

/* Token n of image b, feature j <-> pixel (c, y, x) (spec dit.md "Tokens"): region r = n / s^2, sub-token
 * q = n % s^2; the region's value v = j s^2 + q in (c, p1, p2) order. Returns the pixel's offset in one
 * channel-major image (c H W + y W + x). */
static size_t token_pixel(const ipr_dit *net, int r, int q, int j) {
    const int p = net->p, s2 = net->s * net->s;
    const int v = j * s2 + q, c = v / (p * p), rem = v % (p * p);
    const int y = (r / net->gw) * p + rem / p, x = (r % net->gw) * p + rem % p;
    return ((size_t)c * net->H + (size_t)y) * net->W + (size_t)x;
}

/* tok (B, N, f) = tokenize(x (B, C, H, W)) */
static void tokenize(ipr_dit *net, const float *x, int B) {
    const int s2 = net->s * net->s, f = net->f;
    const size_t img = (size_t)net->C * net->H * net->W;
    for (int b = 0; b < B; ++b)
        for (int n = 0; n < net->N; ++n) {
            float *o = net->tok + ((size_t)b * net->N + n) * f;
            for (int j = 0; j < f; ++j) o[j] = x[(size_t)b * img + token_pixel(net, n / s2, n % s2, j)];
        }
}

/* y (n, out) = x (n, in) w^T + b through sgemm. Called per image with n = N rows, so every call of a layer has
 * the same shape whatever the batch (OpenBLAS rounds a row differently by its position in a taller GEMM). */
static void gemm_linear(float *y, const float *x, const ipr_dit_linear *l, int n) {
    for (int i = 0; i < n; ++i) memcpy(y + (size_t)i * l->out, l->b, sizeof(float) * (size_t)l->out);
    ipr_cpu_sgemm(0, 1, n, l->out, l->in, 1.0f, x, l->in, l->w, l->in, 1.0f, y, l->out);
}

/* out (N, d) = LN(xb) * (1 + scale) + shift (spec dit.md 4, 5): LayerNorm without affine parameters, statistics
 * in double; shift and scale from the row of the token's level in `table` (stride floats per row). */
static void modulated_norm(const ipr_dit *net, float *out, const float *xb, const int32_t *ridx, const float *table,
                           int stride, int shift_off, int scale_off) {
    const int d = net->d, s2 = net->s * net->s;
    for (int n = 0; n < net->N; ++n) {
        const float *xr = xb + (size_t)n * d;
        const float *row = table + (size_t)ridx[n / s2] * stride;
        const float *sh = row + shift_off, *sc = row + scale_off;
        double mean = 0.0, var = 0.0;
        for (int j = 0; j < d; ++j) mean += xr[j];
        mean /= d;
        for (int j = 0; j < d; ++j) {
            const double c = xr[j] - mean;
            var += c * c;
        }
        var /= d; /* biased, as torch.nn.functional.layer_norm */
        const double rstd = 1.0 / sqrt(var + IPR_DIT_LN_EPS);
        float *o = out + (size_t)n * d;
        for (int j = 0; j < d; ++j) {
            const float nv = (float)((xr[j] - mean) * rstd);
            o[j] = nv * (1.0f + sc[j]) + sh[j];
        }
    }
}

/* xb (N, d) += gate * v, gate from the row of the token's level */
static void gated_add(const ipr_dit *net, float *xb, const float *v, const int32_t *ridx, const float *table, int stride,
                      int gate_off) {
    const int d = net->d, s2 = net->s * net->s;
    for (int n = 0; n < net->N; ++n) {
        const float *g = table + (size_t)ridx[n / s2] * stride + gate_off;
        float *xr = xb + (size_t)n * d;
        const float *vr = v + (size_t)n * d;
        for (int j = 0; j < d; ++j) xr[j] += g[j] * vr[j];
    }
}

/* att (N, d) = softmax(q k^T / sqrt(d / h)) v per head, qkv (N, 3d) split (3, heads, d / heads); softmax sums in
 * double with max subtraction. All tokens of the image attend to each other (no mask). */
static void attention(ipr_dit *net) {
    const int N = net->N, d = net->d, dh = net->dh, ld = 3 * d;
    const float scale = (float)(1.0 / sqrt((double)dh));
    float *S = net->scores;
    for (int h = 0; h < net->heads; ++h) {
        const float *q = net->qkv + (size_t)h * dh, *k = q + d, *v = q + 2 * d;
        ipr_cpu_sgemm(0, 1, N, N, dh, scale, q, ld, k, ld, 0.0f, S, N);
        for (int i = 0; i < N; ++i) {
            float *row = S + (size_t)i * N;
            float mx = row[0];
            for (int j = 1; j < N; ++j)
                if (row[j] > mx) mx = row[j];
            double sum = 0.0;
            for (int j = 0; j < N; ++j) {
                const double e = exp((double)row[j] - (double)mx);
                sum += e;
                row[j] = (float)e;
            }
            const double inv = 1.0 / sum;
            for (int j = 0; j < N; ++j) row[j] = (float)(row[j] * inv);
        }
        ipr_cpu_sgemm(0, 0, N, dh, N, 1.0f, S, N, v, ld, 0.0f, net->att + h * dh, d);
    }
}

/* GELU, tanh approximation (torch approximate="tanh"), in double per element */
static void gelu_tanh(float *v, size_t n) {
    const double k = 0.79788456080286535588; /* sqrt(2 / pi) */
    for (size_t i = 0; i < n; ++i) {
        const double x = v[i];
        v[i] = (float)(0.5 * x * (1.0 + tanh(k * (x + 0.044715 * x * x * x))));
    }
}

/* blocks.{i} on image b (spec dit.md 4); the block's modulation rows are in lmod (6d per level) */
static void run_block(ipr_dit *net, const ipr_dit_block *bk, int b) {
    const int N = net->N, d = net->d, st = 6 * d;
    float *xb = net->x + (size_t)b * N * d;
    const int32_t *ridx = net->ridx + (size_t)b * net->R;
    /* x += gate1 * attn(LN(x) (1 + scale1) + shift1); chunks shift1, scale1, gate1, shift2, scale2, gate2 */
    modulated_norm(net, net->h, xb, ridx, net->lmod, st, 0, d);
    gemm_linear(net->qkv, net->h, &bk->qkv, N);
    attention(net);
    gemm_linear(net->proj, net->att, &bk->proj, N);
    gated_add(net, xb, net->proj, ridx, net->lmod, st, 2 * d);
    /* x += gate2 * mlp(LN(x) (1 + scale2) + shift2) */
    modulated_norm(net, net->h, xb, ridx, net->lmod, st, 3 * d, 4 * d);
    gemm_linear(net->mlp, net->h, &bk->fc1, N);
    gelu_tanh(net->mlp, (size_t)N * net->hid);
    gemm_linear(net->proj, net->mlp, &bk->fc2, N);
    gated_add(net, xb, net->proj, ridx, net->lmod, st, 5 * d);
}

/* y (B, 2C + 1, H, W) from the output-layer rows in tmp (B, N, 2f + 1) (spec dit.md 6, "Parameterization"):
 * velocity (the first block, or (z - x_hat) / max(t, t_min) with z the input token), raw variance interpolation,
 * and the region's mean log-variance over its s^2 tokens (in double) broadcast to its pixels. */
static void scatter_output(ipr_dit *net, int B, float *y) {
    const int s2 = net->s * net->s, f = net->f, p = net->p, C = net->C, no = net->n_out;
    const size_t HW = (size_t)net->H * net->W, img = (size_t)(2 * C + 1) * HW;
    const int param_x = net->cfg.parameterization == IPR_DIT_PARAM_X;
    for (int b = 0; b < B; ++b) {
        float *yb = y + (size_t)b * img;
        for (int r = 0; r < net->R; ++r) {
            const double tl = net->rlev[(size_t)b * net->R + r];
            const double denom = tl < net->cfg.t_min ? net->cfg.t_min : tl; /* torch.clamp: NaN stays NaN */
            double lv = 0.0;
            for (int q = 0; q < s2; ++q) {
                const size_t n = (size_t)b * net->N + (size_t)r * s2 + q;
                const float *o = net->tmp + n * no, *tk = net->tok + n * f;
                for (int j = 0; j < f; ++j) {
                    const size_t px = token_pixel(net, r, q, j);
                    yb[px] = param_x ? (float)(((double)tk[j] - (double)o[j]) / denom) : o[j];
                    yb[(size_t)C * HW + px] = o[f + j];
                }
                lv += o[2 * f];
            }
            const float lvf = (float)(lv / s2);
            const int y0 = (r / net->gw) * p, x0 = (r % net->gw) * p;
            for (int yy = 0; yy < p; ++yy) {
                float *row = yb + (size_t)2 * C * HW + (size_t)(y0 + yy) * net->W + x0;
                for (int xx = 0; xx < p; ++xx) row[xx] = lvf;
            }
        }
    }
}

int ipr_dit_forward(ipr_dit *net, const float *x, const float *t, int B, float *y) {
    IPR_CHECK(net != NULL && x != NULL && t != NULL && y != NULL, "dit forward: NULL argument");
    IPR_CHECK(B >= 1 && B <= net->max_batch, "dit forward: batch %d outside 1..%d (max_batch planned at load)", B,
              net->max_batch);
    const int N = net->N, d = net->d;
    const size_t Nd = (size_t)N * d;

    /* levels: checked constant per region, then embedded once per distinct level (spec dit.md 1) */
    IPR_TRY(region_levels(net, t, B));
    tokenize(net, x, B);
    stage(net, "tokens", net->tok, B, net->f);
    embed_levels(net);
    if (net->hook) {
        const int s2 = net->s * net->s;
        for (int b = 0; b < B; ++b)
            for (int n = 0; n < N; ++n)
                memcpy(net->tmp + ((size_t)b * N + n) * d,
                       net->lc + (size_t)net->ridx[(size_t)b * net->R + n / s2] * d, sizeof(float) * (size_t)d);
        stage(net, "t_emb", net->tmp, B, d);
    }

    /* spec dit.md 2, 3: patch embedding + position; with an input scale (ours) of the tokens times c(t), the
     * factor taken in double and rounded to float, the product in float (train/srm_dit.py forward_tokens) */
    for (int b = 0; b < B; ++b) {
        float *xb = net->x + (size_t)b * Nd;
        const float *tb = net->tok + (size_t)b * N * net->f;
        if (net->tokc) {
            const int s2 = net->s * net->s, f = net->f;
            for (int n = 0; n < N; ++n) {
                const float c = (float)ipr_dit_input_factor(net->cfg.input_scale, net->rlev[(size_t)b * net->R + n / s2]);
                for (int j = 0; j < f; ++j) net->tokc[(size_t)n * f + j] = tb[(size_t)n * f + j] * c;
            }
            tb = net->tokc;
        }
        gemm_linear(xb, tb, &net->patch, N);
        for (size_t i = 0; i < Nd; ++i) xb[i] += net->pos[i];
    }
    stage(net, "embed", net->x, B, d);

    /* spec dit.md 4: the blocks, each modulation computed once per distinct level */
    for (int i = 0; i < net->cfg.depth; ++i) {
        const ipr_dit_block *bk = &net->blocks[i];
        ipr_cpu_linear(net->lmod, net->lsc, bk->ada.w, bk->ada.b, net->n_levels, d, 6 * d);
        for (int b = 0; b < B; ++b) run_block(net, bk, b);
        if (net->hook) {
            char name[32];
            snprintf(name, sizeof name, "blocks.%d", i);
            stage(net, name, net->x, B, d);
        }
    }

    /* spec dit.md 5: the output layer */
    ipr_cpu_linear(net->lmod, net->lsc, net->out_ada.w, net->out_ada.b, net->n_levels, d, 2 * d);
    for (int b = 0; b < B; ++b) {
        modulated_norm(net, net->h, net->x + (size_t)b * Nd, net->ridx + (size_t)b * net->R, net->lmod, 2 * d, 0, d);
        gemm_linear(net->tmp + (size_t)b * N * net->n_out, net->h, &net->out_lin, N);
    }
    stage(net, "out_layer", net->tmp, B, net->n_out);

    /* spec dit.md 6 */
    scatter_output(net, B, y);
    return IPR_OK;
fail:
    return IPR_ERR;
}
