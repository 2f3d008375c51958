/* dit_tokens.cu: the region-token DiT's image <-> token maps (spec dit.md "Tokens", train/srm_dit.py tokenize /
 * untokenize), the per-level sinusoid, and the gather of per-level rows. One thread per output element; the index
 * arithmetic is the inverse of the reference's reshape/transpose chain. */
#include <cuda_bf16.h>

#include "cuda_check.cuh"
#include "ops_cuda.h"

/* Geometry of one image as the kernels need it. */
struct dit_geom {
    int C, H, W, p, s, gw, R, N, f;
};

static dit_geom geom(int C, int H, int W, int p, int s) {
    dit_geom g;
    g.C = C, g.H = H, g.W = W, g.p = p, g.s = s;
    g.gw = W / p;
    g.R = (H / p) * g.gw;
    g.N = g.R * s * s;
    g.f = C * p * p / (s * s);
    return g;
}

/* The pixel offset (c, y, x) within an image of feature k of token n. A region's vector is (c, p1, p2)-ordered;
 * viewed as (f, s, s) with (h, w) innermost, sub-token (h, w) = n mod s^2 takes element k s^2 + h s + w. */
static __device__ __forceinline__ size_t token_pixel(const dit_geom &g, int n, int k) {
    const int s2 = g.s * g.s;
    const int r = n / s2, sub = n - r * s2;
    const int q = k * s2 + sub;
    const int pp = g.p * g.p;
    const int c = q / pp, rem = q - c * pp, p1 = rem / g.p, p2 = rem - p1 * g.p;
    const int ry = r / g.gw, rx = r - ry * g.gw;
    return ((size_t)c * g.H + (size_t)(ry * g.p + p1)) * g.W + (size_t)(rx * g.p + p2);
}

template <typename T> static __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16(v); }

/* tok = the image's tokens; with wiener (ours, ipr_dit_input_scale) each token times c(t) = (1 - t) / ((1 - t)^2 +
 * t^2) of its level t = tlev[tidx[token]], taken in double and rounded to float as the CPU engine does */
template <typename T>
static __global__ void tokenize_kernel(T *tok, const float *x, const float *tlev, const int *tidx, int wiener,
                                       dit_geom g, size_t total) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const size_t per = (size_t)g.N * g.f;
        const size_t b = i / per;
        const size_t rem = i - b * per;
        const int n = (int)(rem / g.f), k = (int)(rem - (size_t)n * g.f);
        float v = x[b * (size_t)g.C * g.H * g.W + token_pixel(g, n, k)];
        if (wiener) {
            const double t = tlev[tidx[b * (size_t)g.N + n]], a = 1.0 - t;
            v *= (float)(a / (a * a + t * t));
        }
        tok[i] = from_float<T>(v);
    }
}

extern "C" int ipr_cu_dit_tokenize(void *tok, ipr_cu_dtype dt, const float *x, const float *tlev, const int *tidx,
                                   int wiener, int B, int C, int H, int W, int p, int s, ipr_cuda_stream st) {
    const dit_geom g = geom(C, H, W, p, s);
    const size_t total = (size_t)B * g.N * g.f;
    if (dt == IPR_CU_BF16)
        tokenize_kernel<__nv_bfloat16><<<ipr_cu_blocks(total, 256), 256, 0, (cudaStream_t)st>>>(
            (__nv_bfloat16 *)tok, x, tlev, tidx, wiener, g, total);
    else
        tokenize_kernel<float><<<ipr_cu_blocks(total, 256), 256, 0, (cudaStream_t)st>>>((float *)tok, x, tlev, tidx,
                                                                                       wiener, g, total);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

/* y (B, 2C + 1, H, W) from the raw token outputs out (B, N, 2f + 1): channels [0, C) the first block (u, or with
 * x_param the velocity (z - x_hat) / max(t, t_min) with z the input image and t the token's level), [C, 2C) the
 * raw variance interpolation, 2C the mean of the region's s^2 token log-variances. */
static __global__ void untokenize_kernel(float *y, const float *out, const float *x, const float *tlev,
                                         const int *tidx, dit_geom g, int x_param, float t_min, size_t total) {
    const int nout = 2 * g.f + 1;
    const size_t HW = (size_t)g.H * g.W;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const size_t per = (size_t)(2 * g.C + 1) * HW;
        const size_t b = i / per;
        const size_t rem = i - b * per;
        const int ch = (int)(rem / HW);
        const size_t pix = rem - (size_t)ch * HW;
        const int yy = (int)(pix / g.W), xx = (int)(pix - (size_t)yy * g.W);
        const int ry = yy / g.p, rx = xx / g.p, p1 = yy - ry * g.p, p2 = xx - rx * g.p;
        const int r = ry * g.gw + rx;
        const int s2 = g.s * g.s;
        const float *ob = out + b * (size_t)g.N * nout;
        float v;
        if (ch == 2 * g.C) {
            double acc = 0.0;
            for (int j = 0; j < s2; ++j) acc += ob[(size_t)(r * s2 + j) * nout + 2 * g.f];
            v = (float)(acc / s2);
        } else {
            const int c = ch < g.C ? ch : ch - g.C;
            const int q = (c * g.p + p1) * g.p + p2; /* position in the region vector */
            const int k = q / s2, sub = q - k * s2;
            const int n = r * s2 + sub;
            if (ch < g.C) {
                const float first = ob[(size_t)n * nout + k];
                if (x_param) {
                    const float z = x[b * (size_t)g.C * HW + (size_t)c * HW + pix];
                    const float t = tlev[tidx[b * (size_t)g.N + n]];
                    v = (z - first) / fmaxf(t, t_min);
                } else {
                    v = first;
                }
            } else {
                v = ob[(size_t)n * nout + g.f + k];
            }
        }
        y[i] = v;
    }
}

extern "C" int ipr_cu_dit_untokenize(float *y, const float *out, const float *x, const float *tlev, const int *tidx,
                                     int B, int C, int H, int W, int p, int s, int x_param, float t_min,
                                     ipr_cuda_stream st) {
    const dit_geom g = geom(C, H, W, p, s);
    const size_t total = (size_t)B * (2 * C + 1) * H * W;
    untokenize_kernel<<<ipr_cu_blocks(total, 256), 256, 0, (cudaStream_t)st>>>(y, out, x, tlev, tidx, g, x_param,
                                                                                t_min, total);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

/* spec 1.4 sinusoid of n levels, out (n, 256) = [cos(a f_j), sin(a f_j)], a = max(1000 t - 1, 0) in double and
 * f_j = exp(-ln(10000) j / 128) in float32 (as the reference and the CPU engine). */
static __global__ void dit_sinusoid_kernel(float *out, const float *t, int n) {
    const size_t total = (size_t)n * 128;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const int j = (int)(i % 128);
        const size_t r = i / 128;
        const float f = expf(-9.210340371976184f * (float)j / 128.0f);
        const double a = fmax(1000.0 * (double)t[r] - 1.0, 0.0) * (double)f;
        out[r * 256 + j] = (float)cos(a);
        out[r * 256 + 128 + j] = (float)sin(a);
    }
}

extern "C" int ipr_cu_dit_sinusoid(float *out, const float *t, int n, ipr_cuda_stream st) {
    dit_sinusoid_kernel<<<ipr_cu_blocks((size_t)n * 128, 256), 256, 0, (cudaStream_t)st>>>(out, t, n);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}
