/* im2col.cu: unfold 3x3 windows (padding 1, stride 1 or 2) into columns so that a convolution is one
 * GEMM per sample: y (Cout, Ho*Wo) = W (Cout, C*9) . col (C*9, Ho*Wo). Writes float32 or bf16.
 * Grid: x = (sample, channel) plane, y = blocks of output pixels; each thread writes its pixel's 9 rows
 * (coalesced across the warp), reading the 3x3 neighbourhood once. */
#include <cuda_bf16.h>

#include "cuda_check.cuh"
#include "ops_cuda.h"

template <typename T> __device__ static inline T cvt(float v);
template <> __device__ inline float cvt<float>(float v) { return v; }
template <> __device__ inline __nv_bfloat16 cvt<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

template <typename T>
static __global__ void im2col_kernel(T *col, const float *x, int H, int W, int stride, int Ho, int Wo) {
    const int plane = blockIdx.x; /* b * C + c */
    const int N = Ho * Wo;
    const int pix = blockIdx.y * blockDim.x + threadIdx.x;
    if (pix >= N) return;
    const int oy = pix / Wo, ox = pix - oy * Wo;
    const float *src = x + (size_t)plane * H * W;
    T *dst = col + (size_t)plane * 9 * N + pix; /* rows c*9 + k of sample b: plane * 9 = (b*C + c) * 9 */
#pragma unroll
    for (int ky = 0; ky < 3; ++ky) {
        const int iy = oy * stride + ky - 1;
#pragma unroll
        for (int kx = 0; kx < 3; ++kx) {
            const int ix = ox * stride + kx - 1;
            float v = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? __ldg(src + iy * W + ix) : 0.0f;
            dst[(size_t)(ky * 3 + kx) * N] = cvt<T>(v);
        }
    }
}

extern "C" int ipr_cu_im2col3x3(void *col, ipr_cu_dtype dt, const float *x, int B, int C, int H, int W, int stride,
                                int Ho, int Wo, ipr_cuda_stream s) {
    const int N = Ho * Wo;
    dim3 grid((unsigned)(B * C), (unsigned)((N + 255) / 256));
    if (dt == IPR_CU_BF16)
        im2col_kernel<__nv_bfloat16><<<grid, 256, 0, (cudaStream_t)s>>>((__nv_bfloat16 *)col, x, H, W, stride, Ho, Wo);
    else
        im2col_kernel<float><<<grid, 256, 0, (cudaStream_t)s>>>((float *)col, x, H, W, stride, Ho, Wo);
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
