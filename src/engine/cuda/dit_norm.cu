/* dit_norm.cu: the DiT's LayerNorm + adaLN modulation (spec dit.md 4: LN(x) (1 + scale) + shift, LN without affine
 * parameters, eps 1e-6) and its gated residual (x += gate * o) fused with the next LayerNorm + modulation. The
 * modulation rows are per noise level: table[idx[row]]. One warp per token row, the row in registers, statistics
 * in float32 (two passes over the registers). */
#include <cuda_bf16.h>

#include "cuda_check.cuh"
#include "ops_cuda.h"

#define ROWS_PER_BLOCK 8

template <typename T> static __device__ __forceinline__ void store(T *p, float v);
template <> __device__ __forceinline__ void store<float>(float *p, float v) { *p = v; }
template <> __device__ __forceinline__ void store<__nv_bfloat16>(__nv_bfloat16 *p, float v) { *p = __float2bfloat16(v); }

static __device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* h = LN(v) (1 + scale) + shift for the VPL values per lane of one row (lane-strided columns c = lane + 32 j) */
template <int VPL, typename T>
static __device__ __forceinline__ void ln_modulate_row(T *h, const float (&v)[VPL], int d, const float *shift,
                                                       const float *scale, float eps) {
    const int lane = threadIdx.x & 31;
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < VPL; ++j) {
        const int c = lane + 32 * j;
        if (c < d) s += v[j];
    }
    const float mean = warp_sum(s) / (float)d;
    float q = 0.0f;
#pragma unroll
    for (int j = 0; j < VPL; ++j) {
        const int c = lane + 32 * j;
        if (c < d) q += (v[j] - mean) * (v[j] - mean);
    }
    const float rstd = rsqrtf(warp_sum(q) / (float)d + eps);
#pragma unroll
    for (int j = 0; j < VPL; ++j) {
        const int c = lane + 32 * j;
        if (c < d) store<T>(h + c, (v[j] - mean) * rstd * (1.0f + scale[c]) + shift[c]);
    }
}

/* x (rows, d) [+= pos[row mod N] when pos, written back]; h = LN(x) (1 + scale) + shift */
template <int VPL, typename T>
static __global__ void ln_mod_kernel(T *h, float *x, const float *pos, int N, const float *mod, int ld, int so,
                                     int sc, const int *idx, int rows, int d, float eps) {
    const int row = blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= rows) return;
    const int lane = threadIdx.x & 31;
    float *xr = x + (size_t)row * d;
    const float *pr = pos ? pos + (size_t)(row % N) * d : nullptr;
    float v[VPL];
#pragma unroll
    for (int j = 0; j < VPL; ++j) {
        const int c = lane + 32 * j;
        v[j] = 0.0f;
        if (c < d) {
            v[j] = xr[c];
            if (pr) {
                v[j] += pr[c];
                xr[c] = v[j];
            }
        }
    }
    const float *m = mod + (size_t)idx[row] * ld;
    ln_modulate_row<VPL, T>(h + (size_t)row * d, v, d, m + so, m + sc, eps);
}

/* x += gate * o; then, when h, h = LN(x) (1 + scale) + shift with the (possibly other) table hmod */
template <int VPL, typename T>
static __global__ void gate_res_kernel(float *x, const float *o, const float *gmod, int gld, int go, T *h,
                                       const float *hmod, int hld, int so, int sc, const int *idx, int rows, int d,
                                       float eps) {
    const int row = blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5);
    if (row >= rows) return;
    const int lane = threadIdx.x & 31;
    float *xr = x + (size_t)row * d;
    const float *orow = o + (size_t)row * d;
    const int l = idx[row];
    const float *gate = gmod + (size_t)l * gld + go;
    float v[VPL];
#pragma unroll
    for (int j = 0; j < VPL; ++j) {
        const int c = lane + 32 * j;
        v[j] = 0.0f;
        if (c < d) {
            v[j] = xr[c] + gate[c] * orow[c];
            xr[c] = v[j];
        }
    }
    if (h) {
        const float *m = hmod + (size_t)l * hld;
        ln_modulate_row<VPL, T>(h + (size_t)row * d, v, d, m + so, m + sc, eps);
    }
}

/* GELU, tanh approximation (spec dit.md: mlp.fc1 then GELU(approximate="tanh")), in place */
template <typename T> static __device__ __forceinline__ float load_f(const T *p);
template <> __device__ __forceinline__ float load_f<float>(const float *p) { return *p; }
template <> __device__ __forceinline__ float load_f<__nv_bfloat16>(const __nv_bfloat16 *p) { return __bfloat162float(*p); }

template <typename T>
static __global__ void gelu_kernel(T *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const float v = load_f<T>(x + i);
        store<T>(x + i, 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v))));
    }
}

extern "C" int ipr_cu_dit_gelu(void *x, ipr_cu_dtype dt, size_t n, ipr_cuda_stream s) {
    if (dt == IPR_CU_BF16)
        gelu_kernel<__nv_bfloat16><<<ipr_cu_blocks(n, 256), 256, 0, (cudaStream_t)s>>>((__nv_bfloat16 *)x, n);
    else
        gelu_kernel<float><<<ipr_cu_blocks(n, 256), 256, 0, (cudaStream_t)s>>>((float *)x, n);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

#define DISPATCH_VPL(d, CALL)                                                                       \
    do {                                                                                            \
        if ((d) <= 128) { CALL(4); }                                                                \
        else if ((d) <= 256) { CALL(8); }                                                           \
        else if ((d) <= 512) { CALL(16); }                                                          \
        else if ((d) <= 1024) { CALL(32); }                                                         \
        else { ipr_error_set(__FILE__, __LINE__, "DiT LayerNorm: width %d > 1024", (d)); return IPR_ERR; } \
    } while (0)

extern "C" int ipr_cu_dit_ln_mod(void *h, ipr_cu_dtype dt, float *x, const float *pos, int N, const float *mod,
                                 int ld, int shift_off, int scale_off, const int *idx, int rows, int d, float eps,
                                 ipr_cuda_stream s) {
    const unsigned blocks = (unsigned)((rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
    cudaStream_t st = (cudaStream_t)s;
#define LN_CALL(V)                                                                                              \
    if (dt == IPR_CU_BF16)                                                                                      \
        ln_mod_kernel<V, __nv_bfloat16><<<blocks, 32 * ROWS_PER_BLOCK, 0, st>>>(                                \
            (__nv_bfloat16 *)h, x, pos, N, mod, ld, shift_off, scale_off, idx, rows, d, eps);                  \
    else                                                                                                        \
        ln_mod_kernel<V, float><<<blocks, 32 * ROWS_PER_BLOCK, 0, st>>>((float *)h, x, pos, N, mod, ld,         \
                                                                        shift_off, scale_off, idx, rows, d, eps)
    DISPATCH_VPL(d, LN_CALL);
#undef LN_CALL
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

extern "C" int ipr_cu_dit_gate_residual(float *x, const float *o, const float *gmod, int gld, int gate_off, void *h,
                                        ipr_cu_dtype dt, const float *hmod, int hld, int shift_off, int scale_off,
                                        const int *idx, int rows, int d, float eps, ipr_cuda_stream s) {
    const unsigned blocks = (unsigned)((rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
    cudaStream_t st = (cudaStream_t)s;
#define GR_CALL(V)                                                                                              \
    if (dt == IPR_CU_BF16)                                                                                      \
        gate_res_kernel<V, __nv_bfloat16><<<blocks, 32 * ROWS_PER_BLOCK, 0, st>>>(                              \
            x, o, gmod, gld, gate_off, (__nv_bfloat16 *)h, hmod, hld, shift_off, scale_off, idx, rows, d, eps); \
    else                                                                                                        \
        gate_res_kernel<V, float><<<blocks, 32 * ROWS_PER_BLOCK, 0, st>>>(                                      \
            x, o, gmod, gld, gate_off, (float *)h, hmod, hld, shift_off, scale_off, idx, rows, d, eps)
    DISPATCH_VPL(d, GR_CALL);
#undef GR_CALL
    IPR_CU_LAUNCHED();
    return IPR_OK;
}
