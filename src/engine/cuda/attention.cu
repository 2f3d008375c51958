/* attention.cu: the softmax of the legacy QKV attention (spec 1.3), in float32, one warp per row.
 * The two batched GEMMs around it run through cuBLAS in the U-Net driver. */
#include <math.h>

#include "cuda_check.cuh"
#include "ops_cuda.h"

static __global__ void softmax_rows_kernel(float *x, int rows, int n, float scale) {
    int warp = (int)((blockIdx.x * (size_t)blockDim.x + threadIdx.x) >> 5);
    int lane = threadIdx.x & 31;
    if (warp >= rows) return;
    float *r = x + (size_t)warp * n;
    float m = -INFINITY;
    for (int i = lane; i < n; i += 32) m = fmaxf(m, r[i] * scale);
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    float s = 0.0f;
    for (int i = lane; i < n; i += 32) {
        float e = expf(r[i] * scale - m);
        r[i] = e;
        s += e;
    }
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    float inv = 1.0f / s;
    for (int i = lane; i < n; i += 32) r[i] *= inv;
}

extern "C" int ipr_cu_softmax_rows(float *x, int rows, int n, float scale, ipr_cuda_stream s) {
    size_t threads = (size_t)rows * 32;
    softmax_rows_kernel<<<(unsigned)((threads + 255) / 256), 256, 0, (cudaStream_t)s>>>(x, rows, n, scale);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}
