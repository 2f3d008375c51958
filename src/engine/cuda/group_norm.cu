/* group_norm.cu: GroupNorm(32) with the optional per-pixel embedding add before it and SiLU after it,
 * fused (spec 1.3: h = SiLU(GN(h + E(t)))). One block per (sample, group): a group is one contiguous
 * slab of cpg channels x HW pixels, walked channel by channel (no index division). Two-pass statistics. */
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
