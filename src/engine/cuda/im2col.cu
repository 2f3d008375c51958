/* im2col.cu: unfold 3x3 windows (padding 1, stride 1 or 2) into columns so that a convolution is one
 * GEMM per sample: y (Cout, Ho*Wo) = W (Cout, C*9) . col (C*9, Ho*Wo). Writes float32 or bf16. */
#include <cuda_bf16.h>

#include "cuda_check.cuh"
#include "ops_cuda.h"

template <typename T> __device__ static inline T cvt(float v);
template <> __device__ inline float cvt<float>(float v) { return v; }
template <> __device__ inline __nv_bfloat16 cvt<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

template <typename T>
static __global__ void im2col_kernel(T *col, const float *x, int C, int H, int W, int stride, int Ho, int Wo,
                                     size_t total) {
    size_t N = (size_t)Ho * Wo;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t pix = i % N;
        size_t row = (i / N) % ((size_t)C * 9); /* c*9 + ky*3 + kx */
        size_t b = i / (N * (size_t)C * 9);
        int c = (int)(row / 9), k = (int)(row % 9);
        int oy = (int)(pix / Wo), ox = (int)(pix % Wo);
        int iy = oy * stride + k / 3 - 1, ix = ox * stride + k % 3 - 1;
        float v = 0.0f;
        if (iy >= 0 && iy < H && ix >= 0 && ix < W) v = x[(((size_t)b * C + c) * H + iy) * W + ix];
        col[i] = cvt<T>(v);
    }
}

extern "C" int ipr_cu_im2col3x3(void *col, ipr_cu_dtype dt, const float *x, int B, int C, int H, int W, int stride,
                                int Ho, int Wo, ipr_cuda_stream s) {
    size_t total = (size_t)B * C * 9 * Ho * Wo;
    unsigned blocks = ipr_cu_blocks(total, 256);
    if (dt == IPR_CU_BF16)
        im2col_kernel<__nv_bfloat16><<<blocks, 256, 0, (cudaStream_t)s>>>((__nv_bfloat16 *)col, x, C, H, W, stride,
                                                                         Ho, Wo, total);
    else
        im2col_kernel<float><<<blocks, 256, 0, (cudaStream_t)s>>>((float *)col, x, C, H, W, stride, Ho, Wo, total);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

static __global__ void to_bf16_kernel(__nv_bfloat16 *out, const float *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = __float2bfloat16_rn(x[i]);
}

extern "C" int ipr_cu_to_bf16(uint16_t *out, const float *x, size_t n, ipr_cuda_stream s) {
    to_bf16_kernel<<<ipr_cu_blocks(n, 256), 256, 0, (cudaStream_t)s>>>((__nv_bfloat16 *)out, x, n);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}
