/* group_norm.cu: GroupNorm(32) with the optional per-pixel embedding add before it and SiLU after it,
 * fused (spec 1.3: h = SiLU(GN(h + E(t)))). One block per (sample, group): a group is one contiguous
 * slab of cpg channels x HW pixels, walked channel by channel (no index division). Two-pass statistics. */
#include <cuda_bf16.h>

#include "cuda_check.cuh"
#include "ops_cuda.h"

#define GN_THREADS 1024

__device__ static float block_sum(float v, float *shared) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __syncthreads(); /* shared may still be read by the previous call */
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    float t = lane < (int)(blockDim.x >> 5) ? shared[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
    return t; /* every thread holds the block sum */
}

static __global__ void group_norm_kernel(float *out, const float *x, const float *gamma, const float *beta,
                                         const float *emb, const int32_t *idx, int C, int HW, int groups,
                                         float eps, int silu) {
    __shared__ float shared[32];
    const int b = blockIdx.x / groups, g = blockIdx.x % groups;
    const int cpg = C / groups, c0 = g * cpg;
    const size_t base = ((size_t)b * C + c0) * HW;
    const float *xs = x + base;
    const int32_t *ids = emb ? idx + (size_t)b * HW : NULL;
    float s = 0.0f;
    for (int c = 0; c < cpg; ++c) {
        const float *row = xs + (size_t)c * HW;
        for (int p = threadIdx.x; p < HW; p += blockDim.x) {
            float v = row[p];
            if (emb) v += emb[(size_t)ids[p] * C + c0 + c];
            s += v;
        }
    }
    const float n = (float)cpg * (float)HW;
    const float mean = block_sum(s, shared) / n;
    float q = 0.0f;
    for (int c = 0; c < cpg; ++c) {
        const float *row = xs + (size_t)c * HW;
        for (int p = threadIdx.x; p < HW; p += blockDim.x) {
            float v = row[p];
            if (emb) v += emb[(size_t)ids[p] * C + c0 + c];
            v -= mean;
            q += v * v;
        }
    }
    const float rstd = rsqrtf(block_sum(q, shared) / n + eps);
    float *os = out + base;
    for (int c = 0; c < cpg; ++c) {
        const float *row = xs + (size_t)c * HW;
        float *orow = os + (size_t)c * HW;
        const float a = rstd * gamma[c0 + c], sh = beta[c0 + c] - mean * a;
        for (int p = threadIdx.x; p < HW; p += blockDim.x) {
            float v = row[p];
            if (emb) v += emb[(size_t)ids[p] * C + c0 + c];
            v = v * a + sh;
            if (silu) v = v / (1.0f + __expf(-v));
            orow[p] = v;
        }
    }
}

extern "C" int ipr_cu_group_norm(float *out, const float *x, const float *gamma, const float *beta,
                                 const float *emb, const int32_t *idx, int B, int C, int HW, int groups,
                                 float eps, int silu, ipr_cuda_stream s) {
    if (groups <= 0 || C % groups != 0) {
        ipr_error_set(__FILE__, __LINE__, "GroupNorm: %d channels are not divisible into %d groups", C, groups);
        return IPR_ERR;
    }
    int threads = HW >= GN_THREADS ? GN_THREADS : ((HW + 31) / 32) * 32;
    if (threads < 64) threads = 64;
    group_norm_kernel<<<(unsigned)(B * groups), (unsigned)threads, 0, (cudaStream_t)s>>>(out, x, gamma, beta, emb,
                                                                                        idx, C, HW, groups, eps, silu);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

/* ---- split statistics (IPR_UNET_GN=split) -------------------------------------------------------------------
 * The kernel above runs B x groups blocks (32 at B = 1, a quarter of an H100) and reads the input three times.
 * Here the statistics are split over up to GN_MAX_CHUNKS blocks a group, each summing its chunk of the group's slab
 * about a shift K (the slab's first value: the sums of v - K stay small where the mean is large against the spread);
 * a one-warp kernel merges a group's chunk sums in double into each channel's scale a and shift sh; the apply pass
 * reads the input once more and writes SiLU(v a + sh) as float32 NCHW, or as bf16 NHWC straight into a cuDNN
 * convolution's input (the layout pass and the float32 copy are gone). */

#define GN_MAX_CHUNKS 32
#define GN_CHUNK_ELEMS 4096 /* a chunk holds at least this many values (fewer chunks for small groups) */
#define GN_STAT_THREADS 256

static __device__ __forceinline__ float gn_value(const float *__restrict__ x, const float *__restrict__ emb,
                                                 const int32_t *__restrict__ idx, size_t i, int b, int c, int p,
                                                 int C, int HW) {
    float v = x[i];
    if (emb) v += emb[(size_t)idx[(size_t)b * HW + p] * C + c];
    return v;
}

static int gn_chunks(int cpg, int HW) {
    const long long n = (long long)cpg * HW;
    long long k = n / GN_CHUNK_ELEMS;
    return k < 1 ? 1 : (k > GN_MAX_CHUNKS ? GN_MAX_CHUNKS : (int)k);
}

/* grid (chunks, B * groups): partial[(bg * chunks + k) * 2 + {0, 1}] = sums of (v - K) and (v - K)^2 over chunk k */
static __global__ void gn_stats_kernel(float *__restrict__ partial, const float *__restrict__ x,
                                       const float *__restrict__ emb, const int32_t *__restrict__ idx, int C, int HW,
                                       int groups) {
    __shared__ float shared[32];
    const int bg = blockIdx.y, b = bg / groups, g = bg % groups, k = blockIdx.x, chunks = gridDim.x;
    const int cpg = C / groups, c0 = g * cpg;
    const long long n = (long long)cpg * HW;
    const long long e0 = n * k / chunks, e1 = n * (k + 1) / chunks;
    const size_t base = ((size_t)b * C + c0) * HW;
    const float K = gn_value(x, emb, idx, base, b, c0, 0, C, HW);
    float s1 = 0.0f, s2 = 0.0f;
    for (long long e = e0 + threadIdx.x; e < e1; e += blockDim.x) {
        const int c = (int)(e / HW), p = (int)(e - (long long)c * HW);
        const float d = gn_value(x, emb, idx, base + (size_t)e, b, c0 + c, p, C, HW) - K;
        s1 += d;
        s2 += d * d;
    }
    s1 = block_sum(s1, shared);
    s2 = block_sum(s2, shared);
    if (threadIdx.x == 0) {
        partial[((size_t)bg * chunks + k) * 2] = s1;
        partial[((size_t)bg * chunks + k) * 2 + 1] = s2;
    }
}

/* grid B * groups, one warp: affine[(b * C + c) * 2 + {0, 1}] = (a, sh) with a = gamma[c] / sqrt(var + eps),
 * sh = beta[c] - mean a, from the chunks' sums merged in double */
static __global__ void gn_finalize_kernel(float *__restrict__ affine, const float *__restrict__ partial,
                                          const float *__restrict__ x, const float *__restrict__ emb,
                                          const int32_t *__restrict__ idx, const float *__restrict__ gamma,
                                          const float *__restrict__ beta, int C, int HW, int groups, int chunks,
                                          float eps) {
    const int bg = blockIdx.x, b = bg / groups, g = bg % groups, lane = threadIdx.x;
    const int cpg = C / groups, c0 = g * cpg;
    double s1 = 0.0, s2 = 0.0;
    for (int k = lane; k < chunks; k += 32) {
        s1 += (double)partial[((size_t)bg * chunks + k) * 2];
        s2 += (double)partial[((size_t)bg * chunks + k) * 2 + 1];
    }
    for (int o = 16; o > 0; o >>= 1) {
        s1 += __shfl_xor_sync(0xffffffffu, s1, o);
        s2 += __shfl_xor_sync(0xffffffffu, s2, o);
    }
    const double n = (double)cpg * (double)HW;
    const size_t base = ((size_t)b * C + c0) * HW;
    const double K = (double)gn_value(x, emb, idx, base, b, c0, 0, C, HW);
    const double dm = s1 / n;
    double var = s2 / n - dm * dm;
    if (var < 0.0) var = 0.0;
    const double mean = K + dm;
    const double rstd = 1.0 / sqrt(var + (double)eps);
    for (int c = lane; c < cpg; c += 32) {
        const double a = rstd * (double)gamma[c0 + c];
        affine[((size_t)b * C + c0 + c) * 2] = (float)a;
        affine[((size_t)b * C + c0 + c) * 2 + 1] = (float)((double)beta[c0 + c] - mean * a);
    }
}

/* grid (B * C, ceil(HW / (256 * 4))): out (B, C, HW) float32 */
static __global__ void gn_apply_nchw_kernel(float *__restrict__ out, const float *__restrict__ x,
                                            const float *__restrict__ emb, const int32_t *__restrict__ idx,
                                            const float *__restrict__ affine, int C, int HW, int silu) {
    const int bc = blockIdx.x, b = bc / C, c = bc % C;
    const float a = affine[(size_t)bc * 2], sh = affine[(size_t)bc * 2 + 1];
    const size_t row = (size_t)bc * HW;
    for (int p = blockIdx.y * blockDim.x + threadIdx.x; p < HW; p += gridDim.y * blockDim.x) {
        float v = gn_value(x, emb, idx, row + p, b, c, p, C, HW) * a + sh;
        if (silu) v = v / (1.0f + __expf(-v));
        out[row + p] = v;
    }
}

#define GN_TILE 32
#define GN_ROWS 8

/* grid (ceil(HW / 32), ceil(C / 32), B): dst (B, HW, C) bf16, through a 32 x 32 tile as layout.cu's transpose */
static __global__ void gn_apply_nhwc_bf16_kernel(__nv_bfloat16 *__restrict__ dst, const float *__restrict__ x,
                                                 const float *__restrict__ emb, const int32_t *__restrict__ idx,
                                                 const float *__restrict__ affine, int C, int HW, int silu) {
    __shared__ float tile[GN_TILE][GN_TILE + 1];
    const int b = blockIdx.z;
    const size_t img = (size_t)b * C * HW;
    const int p0 = blockIdx.x * GN_TILE, c0 = blockIdx.y * GN_TILE;
    for (int j = threadIdx.y; j < GN_TILE; j += GN_ROWS) {
        const int c = c0 + j, p = p0 + threadIdx.x;
        if (c < C && p < HW) {
            const size_t bc = (size_t)b * C + c;
            float v = gn_value(x, emb, idx, img + (size_t)c * HW + p, b, c, p, C, HW) * affine[bc * 2] +
                      affine[bc * 2 + 1];
            if (silu) v = v / (1.0f + __expf(-v));
            tile[j][threadIdx.x] = v;
        }
    }
    __syncthreads();
    for (int j = threadIdx.y; j < GN_TILE; j += GN_ROWS) {
        const int p = p0 + j, c = c0 + threadIdx.x;
        if (c < C && p < HW) dst[img + (size_t)p * C + c] = __float2bfloat16(tile[threadIdx.x][j]);
    }
}

extern "C" size_t ipr_cu_group_norm_scratch(int B, int C, int groups) {
    return (size_t)B * groups * GN_MAX_CHUNKS * 2 + (size_t)B * C * 2;
}

extern "C" int ipr_cu_group_norm_split(float *out, uint16_t *out_nhwc, const float *x, const float *gamma,
                                       const float *beta, const float *emb, const int32_t *idx, int B, int C, int HW,
                                       int groups, float eps, int silu, float *scratch, size_t scratch_floats,
                                       ipr_cuda_stream s) {
    if (groups <= 0 || C % groups != 0) {
        ipr_error_set(__FILE__, __LINE__, "GroupNorm: %d channels are not divisible into %d groups", C, groups);
        return IPR_ERR;
    }
    if ((out == NULL) == (out_nhwc == NULL)) {
        ipr_error_set(__FILE__, __LINE__, "GroupNorm: give exactly one of the float32 and the bf16 NHWC output");
        return IPR_ERR;
    }
    if (scratch_floats < ipr_cu_group_norm_scratch(B, C, groups)) {
        ipr_error_set(__FILE__, __LINE__, "GroupNorm: scratch of %zu floats, %zu needed", scratch_floats,
                      ipr_cu_group_norm_scratch(B, C, groups));
        return IPR_ERR;
    }
    const int chunks = gn_chunks(C / groups, HW);
    float *partial = scratch, *affine = scratch + (size_t)B * groups * GN_MAX_CHUNKS * 2;
    cudaStream_t st = (cudaStream_t)s;
    gn_stats_kernel<<<dim3((unsigned)chunks, (unsigned)(B * groups)), GN_STAT_THREADS, 0, st>>>(partial, x, emb, idx,
                                                                                               C, HW, groups);
    IPR_CU_LAUNCHED();
    gn_finalize_kernel<<<(unsigned)(B * groups), 32, 0, st>>>(affine, partial, x, emb, idx, gamma, beta, C, HW,
                                                              groups, chunks, eps);
    IPR_CU_LAUNCHED();
    if (out) {
        const int per = 256 * 4;
        gn_apply_nchw_kernel<<<dim3((unsigned)(B * C), (unsigned)((HW + per - 1) / per)), 256, 0, st>>>(
            out, x, emb, idx, affine, C, HW, silu);
    } else {
        const dim3 grid((unsigned)((HW + GN_TILE - 1) / GN_TILE), (unsigned)((C + GN_TILE - 1) / GN_TILE),
                        (unsigned)B);
        gn_apply_nhwc_bf16_kernel<<<grid, dim3(GN_TILE, GN_ROWS), 0, st>>>((__nv_bfloat16 *)out_nhwc, x, emb, idx,
                                                                           affine, C, HW, silu);
    }
    IPR_CU_LAUNCHED();
    return IPR_OK;
}
