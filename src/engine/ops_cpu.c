/* ops_cpu.c: CPU ops of the SRM U-Net (conv via im2col + sgemm, GroupNorm, SiLU, resizes, attention,
 * linear, sinusoid). Reductions in double; every formula follows the reference PyTorch op it replaces. */
#include "ops_cpu.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

static int g_threads = 0; /* 0: not set yet (the online cores) */
static _Thread_local int g_local_threads = 0; /* this thread's cap; 0: none */
static pthread_once_t g_blas_once = PTHREAD_ONCE_INIT;

static void blas_single(void) { openblas_set_num_threads(1); }

void ipr_cpu_set_threads(int n) {
    pthread_once(&g_blas_once, blas_single);
    g_threads = n >= 1 ? n : 1;
}

int ipr_cpu_threads(void) {
    if (g_threads > 0) return g_threads;
    const long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c >= 1 ? (int)c : 1;
}

int ipr_cpu_set_local_threads(int n) {
    const int prev = g_local_threads;
    g_local_threads = n >= 1 ? n : 0;
    return prev;
}

void ipr_cpu_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc) {
    pthread_once(&g_blas_once, blas_single);
    const int nb = (N + IPR_CPU_GEMM_BLOCK - 1) / IPR_CPU_GEMM_BLOCK;
    const int all = ipr_cpu_threads();
    const int threads = g_local_threads > 0 && g_local_threads < all ? g_local_threads : all;
    (void)threads;
#ifdef IPR_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (nb > 1 && threads > 1)
#endif
    for (int j = 0; j < nb; ++j) {
        const int j0 = j * IPR_CPU_GEMM_BLOCK, n = N - j0 < IPR_CPU_GEMM_BLOCK ? N - j0 : IPR_CPU_GEMM_BLOCK;
        /* columns j0.. of op(B): of B's columns (no transpose) or rows (transposed) */
        const float *Bj = trans_b ? B + (size_t)j0 * ldb : B + j0;
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, n, K,
                    alpha, A, lda, Bj, ldb, beta, C + j0, ldc);
    }
}

size_t ipr_cpu_conv2d_col_floats(int c_in, int k, int ho, int wo, size_t budget) {
    size_t row = (size_t)c_in * k * k * (size_t)wo; /* one output row of columns */
    size_t all = row * (size_t)ho;
    if (all <= budget) return all;
    return row > budget ? row : budget / row * row;
}

/* col (c_in*k*k, rows*wo) for output rows [oy0, oy0 + rows) of a k x k conv */
static void im2col_band(float *col, const float *x, int c_in, int h, int w, int k, int stride, int pad, int oy0,
                        int rows, int wo) {
    const size_t n = (size_t)rows * wo;
    for (int c = 0; c < c_in; ++c) {
        const float *xc = x + (size_t)c * h * w;
        for (int ky = 0; ky < k; ++ky) {
            for (int kx = 0; kx < k; ++kx) {
                float *dst = col + ((size_t)(c * k + ky) * k + kx) * n;
                for (int r = 0; r < rows; ++r) {
                    const int iy = (oy0 + r) * stride - pad + ky;
                    float *d = dst + (size_t)r * wo;
                    if (iy < 0 || iy >= h) {
                        memset(d, 0, sizeof(float) * (size_t)wo);
                        continue;
                    }
                    const float *xr = xc + (size_t)iy * w;
                    if (stride == 1) {
                        /* ix = ox - pad + kx: a shifted copy with zero borders */
                        const int off = kx - pad;
                        int lo = off < 0 ? -off : 0;
                        int hi = w - off < wo ? w - off : wo;
                        if (hi < lo) hi = lo;
                        for (int ox = 0; ox < lo; ++ox) d[ox] = 0.0f;
                        if (hi > lo) memcpy(d + lo, xr + lo + off, sizeof(float) * (size_t)(hi - lo));
                        for (int ox = hi; ox < wo; ++ox) d[ox] = 0.0f;
                    } else {
                        for (int ox = 0; ox < wo; ++ox) {
                            const int ix = ox * stride - pad + kx;
                            d[ox] = (ix >= 0 && ix < w) ? xr[ix] : 0.0f;
                        }
                    }
                }
            }
        }
    }
}

void ipr_cpu_conv2d(float *y, const float *x, const float *w, const float *b, int c_in, int h, int wd, int c_out,
                    int k, int stride, int pad, int ho, int wo, float *col, size_t col_budget, int accumulate) {
    const int K = c_in * k * k;
    const size_t N = (size_t)ho * wo;
    const float beta = accumulate ? 1.0f : 0.0f;
    if (k == 1 && stride == 1 && pad == 0) {
        /* (c_out, c_in) x (c_in, HW): no column matrix needed */
        ipr_cpu_sgemm(0, 0, c_out, (int)N, K, 1.0f, w, K, x, (int)N, beta, y, (int)N);
    } else {
        size_t cap = ipr_cpu_conv2d_col_floats(c_in, k, ho, wo, col_budget);
        int band = (int)(cap / ((size_t)K * wo));
        if (band < 1) band = 1;
        for (int oy0 = 0; oy0 < ho; oy0 += band) {
            const int rows = oy0 + band <= ho ? band : ho - oy0;
            const int n = rows * wo;
            im2col_band(col, x, c_in, h, wd, k, stride, pad, oy0, rows, wo);
            /* y[:, band] (c_out, n) = w (c_out, K) x col (K, n), ldc = full row length */
            ipr_cpu_sgemm(0, 0, c_out, n, K, 1.0f, w, K, col, n, beta, y + (size_t)oy0 * wo, (int)N);
        }
    }
    if (b) {
        for (int o = 0; o < c_out; ++o) {
            float *yo = y + (size_t)o * N;
            const float bo = b[o];
            for (size_t i = 0; i < N; ++i) yo[i] += bo;
        }
    }
}

static inline float silu1(float v) { return v / (1.0f + expf(-v)); }

void ipr_cpu_group_norm(float *y, const float *x, const float *gamma, const float *beta, int C, int HW,
                        int groups, float eps, int silu) {
    const int cg = C / groups;
    const size_t n = (size_t)cg * HW;
    for (int g = 0; g < groups; ++g) {
        const float *xg = x + (size_t)g * n;
        /* two passes in double: mean, then biased variance (torch.nn.GroupNorm) */
        double s = 0.0;
        for (size_t i = 0; i < n; ++i) s += xg[i];
        const double mean = s / (double)n;
        double ss = 0.0;
        for (size_t i = 0; i < n; ++i) {
            const double d = xg[i] - mean;
            ss += d * d;
        }
        const double rstd = 1.0 / sqrt(ss / (double)n + (double)eps);
        for (int c = g * cg; c < (g + 1) * cg; ++c) {
            /* y = (x - mean) * (rstd * gamma) + beta in double, rounded once: a mean far from zero
             * (mean 1000, std 1) would otherwise cost float32 digits in the centring */
            const double sc = rstd * gamma[c], sh = beta[c];
            const float *xc = x + (size_t)c * HW;
            float *yc = y + (size_t)c * HW;
            if (silu)
                for (int i = 0; i < HW; ++i) yc[i] = silu1((float)(((double)xc[i] - mean) * sc + sh));
            else
                for (int i = 0; i < HW; ++i) yc[i] = (float)(((double)xc[i] - mean) * sc + sh);
        }
    }
}

void ipr_cpu_silu(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; ++i) y[i] = silu1(x[i]);
}

/* ATen nearest_idx: identity, exact 2x, else floor(dst * (float)(in / out)) clamped */
static inline int nearest_src(int dst, int in, int out) {
    if (out == in) return dst;
    if (out == 2 * in) return dst >> 1;
    const float scale = (float)in / (float)out;
    int s = (int)floorf((float)dst * scale);
    return s < in - 1 ? s : in - 1;
}

void ipr_cpu_upsample_nearest(float *y, const float *x, int C, int h, int w, int ho, int wo) {
    for (int c = 0; c < C; ++c) {
        const float *xc = x + (size_t)c * h * w;
        float *yc = y + (size_t)c * ho * wo;
        for (int oy = 0; oy < ho; ++oy) {
            const float *xr = xc + (size_t)nearest_src(oy, h, ho) * w;
            float *yr = yc + (size_t)oy * wo;
            for (int ox = 0; ox < wo; ++ox) yr[ox] = xr[nearest_src(ox, w, wo)];
        }
    }
}

/* ATen area_pixel_compute_source_index (align_corners=False) and the (index, lambda) pair of
 * compute_source_index_and_lambda */
static void bilinear_coeff(int dst, int in, int out, int *i0, int *i1, double *l0, double *l1) {
    const double scale = (double)in / (double)out;
    double src = scale * (dst + 0.5) - 0.5;
    if (src < 0.0) src = 0.0;
    int i = (int)src;
    if (i > in - 1) i = in - 1;
    double lam = src - i;
    if (lam < 0.0) lam = 0.0;
    if (lam > 1.0) lam = 1.0;
    *i0 = i;
    *i1 = i < in - 1 ? i + 1 : i;
    *l1 = lam;
    *l0 = 1.0 - lam;
}

void ipr_cpu_resize_bilinear(double *y, const float *x, int h, int w, int ho, int wo) {
    for (int oy = 0; oy < ho; ++oy) {
        int y0, y1;
        double hy0, hy1;
        bilinear_coeff(oy, h, ho, &y0, &y1, &hy0, &hy1);
        const float *r0 = x + (size_t)y0 * w, *r1 = x + (size_t)y1 * w;
        for (int ox = 0; ox < wo; ++ox) {
            int x0, x1;
            double wx0, wx1;
            bilinear_coeff(ox, w, wo, &x0, &x1, &wx0, &wx1);
            /* ATen's order: rows first interpolated along w, then blended along h */
            const double top = (double)r0[x0] * wx0 + (double)r0[x1] * wx1;
            const double bot = (double)r1[x0] * wx0 + (double)r1[x1] * wx1;
            y[(size_t)oy * wo + ox] = top * hy0 + bot * hy1;
        }
    }
}

void ipr_cpu_attention(float *out, const float *qkv, int heads, int ch, int T, float *scores, int rows_block) {
    /* (q * ch^-1/4) . (k * ch^-1/4) = q . k / sqrt(ch): one scale in the GEMM */
    const float alpha = (float)(1.0 / sqrt((double)ch));
    if (rows_block < 1) rows_block = 1;
    for (int hd = 0; hd < heads; ++hd) {
        const float *q = qkv + (size_t)hd * 3 * ch * T;
        const float *k = q + (size_t)ch * T;
        const float *v = k + (size_t)ch * T;
        float *o = out + (size_t)hd * ch * T;
        for (int r0 = 0; r0 < T; r0 += rows_block) {
            const int nr = r0 + rows_block <= T ? rows_block : T - r0;
            /* S (nr, T) = q[:, r0:r0+nr]^T k */
            ipr_cpu_sgemm(1, 0, nr, T, ch, alpha, q + r0, T, k, T, 0.0f, scores, T);
            for (int r = 0; r < nr; ++r) {
                float *s = scores + (size_t)r * T;
                float mx = -INFINITY;
                for (int j = 0; j < T; ++j) mx = s[j] > mx ? s[j] : mx;
                double sum = 0.0;
                for (int j = 0; j < T; ++j) {
                    s[j] = expf(s[j] - mx);
                    sum += s[j];
                }
                const float inv = (float)(1.0 / sum);
                for (int j = 0; j < T; ++j) s[j] *= inv;
            }
            /* o[:, r0:r0+nr] (ch, nr) = v (ch, T) S^T */
            ipr_cpu_sgemm(0, 1, ch, nr, T, 1.0f, v, T, scores, T, 0.0f, o + r0, T);
        }
    }
}

/* Linear layers: each output is a dot product in 16 float lanes (lane j sums the k = j mod 16 terms in
 * ascending k), the lanes added in a fixed tree, then the tail. The result depends on x's row and w's row
 * alone: BLAS kernels round a row differently by its position in the call (seen with OpenBLAS 0.3.21's
 * Haswell sgemm), which would make an instance's numbers depend on what shares its batch. The kernels below
 * compute 4 outputs at once (x loaded once for 4 weight rows) or 1, in that same order, so every output has
 * the same bits whichever kernel, thread or instruction set (an AVX2 clone, no FMA) computes it. */
#define LIN_LANES 16

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define LIN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define LIN_CLONES
#endif

static inline float lanes_sum(float *acc) {
    for (int s = LIN_LANES / 2; s > 0; s /= 2)
        for (int j = 0; j < s; ++j) acc[j] += acc[j + s];
    return acc[0];
}

static inline float dot_lanes(const float *x, const float *w, int in) {
    float acc[LIN_LANES] = {0};
    int k = 0;
    for (; k + LIN_LANES <= in; k += LIN_LANES)
        for (int j = 0; j < LIN_LANES; ++j) acc[j] += x[k + j] * w[k + j];
    float r = lanes_sum(acc);
    for (; k < in; ++k) r += x[k] * w[k];
    return r;
}

/* y[0..4) = x . w[0..4) (rows of w `in` apart), each in dot_lanes' order */
static inline void dot_lanes4(const float *x, const float *w, int in, float *y) {
    float a0[LIN_LANES] = {0}, a1[LIN_LANES] = {0}, a2[LIN_LANES] = {0}, a3[LIN_LANES] = {0};
    const float *w0 = w, *w1 = w + in, *w2 = w + 2 * (size_t)in, *w3 = w + 3 * (size_t)in;
    int k = 0;
    for (; k + LIN_LANES <= in; k += LIN_LANES)
        for (int j = 0; j < LIN_LANES; ++j) {
            const float xv = x[k + j];
            a0[j] += xv * w0[k + j];
            a1[j] += xv * w1[k + j];
            a2[j] += xv * w2[k + j];
            a3[j] += xv * w3[k + j];
        }
    float r0 = lanes_sum(a0), r1 = lanes_sum(a1), r2 = lanes_sum(a2), r3 = lanes_sum(a3);
    for (; k < in; ++k) {
        r0 += x[k] * w0[k];
        r1 += x[k] * w1[k];
        r2 += x[k] * w2[k];
        r3 += x[k] * w3[k];
    }
    y[0] = r0;
    y[1] = r1;
    y[2] = r2;
    y[3] = r3;
}

/* rows [i0, i1) of y: blocks of 64 outputs keep their weight rows in cache while the rows pass */
LIN_CLONES static void linear_rows(float *y, const float *x, const float *w, const float *b, int i0, int i1, int in,
                                   int out) {
    for (int o0 = 0; o0 < out; o0 += 64) {
        const int o1 = o0 + 64 < out ? o0 + 64 : out;
        for (int i = i0; i < i1; ++i) {
            const float *xi = x + (size_t)i * in;
            float *yi = y + (size_t)i * out;
            int o = o0;
            for (; o + 4 <= o1; o += 4) dot_lanes4(xi, w + (size_t)o * in, in, yi + o);
            for (; o < o1; ++o) yi[o] = dot_lanes(xi, w + (size_t)o * in, in);
            if (b)
                for (int q = o0; q < o1; ++q) yi[q] += b[q];
        }
    }
}

void ipr_cpu_linear(float *y, const float *x, const float *w, const float *b, int n, int in, int out) {
    if (n <= 0) return;
    /* single-threaded on purpose: OpenBLAS's spinning threads own the cores between GEMMs, and a second
     * pool (OpenMP) made a CPU sampling run 17% slower on 2 cores instead of faster */
    linear_rows(y, x, w, b, 0, n, in, out);
}

void ipr_cpu_sinusoid_freqs(float *freqs, int half) {
    /* torch: exp(-log(max_period) * arange(half, dtype=float32) / half): the product and the quotient
     * are float32; exp is taken in double and rounded once (the correctly rounded float32 exp). */
    const float neg_log = (float)-log(10000.0);
    for (int i = 0; i < half; ++i) {
        const float arg = (neg_log * (float)i) / (float)half;
        freqs[i] = (float)exp((double)arg);
    }
}

void ipr_cpu_sinusoid(float *out, const double *t, int n, int d_emb, const float *freqs) {
    const int half = d_emb / 2;
    for (int j = 0; j < n; ++j) {
        /* spec 1.4: scale 1000, shift -1, clamp_min 0 (NaN stays NaN, as torch.clamp_min) */
        double a = 1000.0 * t[j] - 1.0;
        if (a < 0.0) a = 0.0;
        float *o = out + (size_t)j * d_emb;
        for (int i = 0; i < half; ++i) {
            const double arg = a * (double)freqs[i];
            o[i] = (float)cos(arg);
            o[half + i] = (float)sin(arg);
        }
        if (d_emb % 2) o[d_emb - 1] = 0.0f;
    }
}

void ipr_cpu_add_indexed(float *u, const float *table, const int32_t *idx, int C, int HW) {
    for (int p = 0; p < HW; ++p) {
        const float *row = table + (size_t)idx[p] * C;
        for (int c = 0; c < C; ++c) u[(size_t)c * HW + p] += row[c];
    }
}

void ipr_cpu_relu(float *y, const float *x, size_t n) {
    /* `v < 0` is false for NaN, so NaN passes through as in torch.relu */
    for (size_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

void ipr_cpu_maxpool2(float *y, const float *x, int C, int h, int w) {
    const int ho = h / 2, wo = w / 2;
    for (int c = 0; c < C; ++c) {
        const float *xc = x + (size_t)c * h * w;
        float *yc = y + (size_t)c * ho * wo;
        for (int oy = 0; oy < ho; ++oy) {
            const float *r0 = xc + (size_t)(2 * oy) * w, *r1 = r0 + w;
            for (int ox = 0; ox < wo; ++ox) {
                const float v[4] = {r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]};
                float m = v[0];
                /* ATen's max_pool2d: take the value if it is larger or NaN, so NaN propagates */
                for (int k = 1; k < 4; ++k)
                    if (v[k] > m || v[k] != v[k]) m = v[k];
                yc[(size_t)oy * wo + ox] = m;
            }
        }
    }
}

void ipr_cpu_global_avg_pool(float *y, const float *x, int C, int HW) {
    for (int c = 0; c < C; ++c) {
        const float *xc = x + (size_t)c * HW;
        double s = 0.0;
        for (int i = 0; i < HW; ++i) s += xc[i];
        y[c] = (float)(s / (double)HW);
    }
}
