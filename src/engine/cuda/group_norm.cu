/* group_norm.cu: GroupNorm(32) with the optional per-pixel embedding add before it and SiLU after it,
 * fused (spec 1.3: h = SiLU(GN(h + E(t)))). One block per (sample, group); two-pass statistics. */
#include "cuda_check.cuh"
#include "ops_cuda.h"

#define GN_THREADS 512

__device__ static float block_sum(float v, float *shared) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __syncthreads(); /* shared may still be read by the previous call */
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    float t = lane < (blockDim.x >> 5) ? shared[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
    return t; /* every thread holds the block sum */
}

/* the element (c, p) of sample b, embedding added */
__device__ static inline float load_elem(const float *x, const float *emb, const int32_t *idx, int b, int c, int p,
                                         int C, int HW) {
    float v = x[((size_t)b * C + c) * HW + p];
    if (emb) v += emb[(size_t)idx[(size_t)b * HW + p] * C + c];
    return v;
}

static __global__ void group_norm_kernel(float *out, const float *x, const float *gamma, const float *beta,
                                         const float *emb, const int32_t *idx, int C, int HW, int groups,
                                         float eps, int silu) {
    __shared__ float shared[32];
    int b = blockIdx.x / groups, g = blockIdx.x % groups;
    int cpg = C / groups;
    size_t n = (size_t)cpg * HW;
    int c0 = g * cpg;
    float s = 0.0f;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x)
        s += load_elem(x, emb, idx, b, c0 + (int)(i / HW), (int)(i % HW), C, HW);
    float mean = block_sum(s, shared) / (float)n;
    float q = 0.0f;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) {
        float d = load_elem(x, emb, idx, b, c0 + (int)(i / HW), (int)(i % HW), C, HW) - mean;
        q += d * d;
    }
    float var = block_sum(q, shared) / (float)n;
    float rstd = rsqrtf(var + eps);
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) {
        int c = c0 + (int)(i / HW), p = (int)(i % HW);
        float v = (load_elem(x, emb, idx, b, c, p, C, HW) - mean) * rstd * gamma[c] + beta[c];
        if (silu) v = v / (1.0f + __expf(-v));
        out[((size_t)b * C + c) * HW + p] = v;
    }
}

extern "C" int ipr_cu_group_norm(float *out, const float *x, const float *gamma, const float *beta,
                                 const float *emb, const int32_t *idx, int B, int C, int HW, int groups,
                                 float eps, int silu, ipr_cuda_stream s) {
    if (groups <= 0 || C % groups != 0) {
        ipr_error_set(__FILE__, __LINE__, "GroupNorm: %d channels are not divisible into %d groups", C, groups);
        return IPR_ERR;
    }
    group_norm_kernel<<<(unsigned)(B * groups), GN_THREADS, 0, (cudaStream_t)s>>>(out, x, gamma, beta, emb, idx, C,
                                                                                 HW, groups, eps, silu);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}
