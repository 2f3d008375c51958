/* layout.cu: the NCHW float32 <-> NHWC bf16 maps around the U-Net's cuDNN convolutions (unet_cuda.c, cudnn_conv.c),
 * and the KRSC bf16 copy of its 3x3 weights. Each image is a (C, HW) matrix in NCHW and its transpose (HW, C) in
 * NHWC: a block moves a 32 x 32 tile through shared memory (one padding column against bank conflicts) so that both
 * the reads and the writes are coalesced. */
#include <cuda_bf16.h>

#include "cuda_check.cuh"
#include "ops_cuda.h"

#define LT_TILE 32
#define LT_ROWS 8 /* threads per tile column: each thread moves LT_TILE / LT_ROWS elements */

/* dst (B, HW, C) bf16 = src (B, C, HW) float32; grid (ceil(HW/32), ceil(C/32), B) */
static __global__ void nchw_to_nhwc_kernel(__nv_bfloat16 *__restrict__ dst, const float *__restrict__ src, int C,
                                           int HW) {
    __shared__ float tile[LT_TILE][LT_TILE + 1];
    const size_t img = (size_t)blockIdx.z * C * HW;
    const int p0 = blockIdx.x * LT_TILE, c0 = blockIdx.y * LT_TILE;
    for (int j = threadIdx.y; j < LT_TILE; j += LT_ROWS) {
        const int c = c0 + j, p = p0 + threadIdx.x;
        if (c < C && p < HW) tile[j][threadIdx.x] = src[img + (size_t)c * HW + p];
    }
    __syncthreads();
    for (int j = threadIdx.y; j < LT_TILE; j += LT_ROWS) {
        const int p = p0 + j, c = c0 + threadIdx.x;
        if (c < C && p < HW) dst[img + (size_t)p * C + c] = __float2bfloat16(tile[threadIdx.x][j]);
    }
}

extern "C" int ipr_cu_nchw_to_nhwc_bf16(uint16_t *dst, const float *src, int B, int C, int HW, ipr_cuda_stream st) {
    const dim3 grid((unsigned)((HW + LT_TILE - 1) / LT_TILE), (unsigned)((C + LT_TILE - 1) / LT_TILE), (unsigned)B);
    nchw_to_nhwc_kernel<<<grid, dim3(LT_TILE, LT_ROWS), 0, (cudaStream_t)st>>>((__nv_bfloat16 *)dst, src, C, HW);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

/* out (B, C, HW) float32 = beta * out + y (B, HW, C) bf16 + bias[c] (+ residual (B, C, HW)); residual may be out
 * itself only with beta 0 (then it is read before the write, element by element) */
static __global__ void nhwc_epilogue_kernel(float *out, const __nv_bfloat16 *__restrict__ y, const float *bias,
                                            const float *residual, float beta, int C, int HW) {
    __shared__ float tile[LT_TILE][LT_TILE + 1];
    const size_t img = (size_t)blockIdx.z * C * HW;
    const int p0 = blockIdx.x * LT_TILE, c0 = blockIdx.y * LT_TILE;
    for (int j = threadIdx.y; j < LT_TILE; j += LT_ROWS) {
        const int p = p0 + j, c = c0 + threadIdx.x;
        if (c < C && p < HW) tile[j][threadIdx.x] = __bfloat162float(y[img + (size_t)p * C + c]);
    }
    __syncthreads();
    for (int j = threadIdx.y; j < LT_TILE; j += LT_ROWS) {
        const int c = c0 + j, p = p0 + threadIdx.x;
        if (c < C && p < HW) {
            const size_t i = img + (size_t)c * HW + p;
            float v = tile[threadIdx.x][j];
            if (bias) v += bias[c];
            if (residual) v += residual[i];
            if (beta != 0.0f) v += beta * out[i];
            out[i] = v;
        }
    }
}

extern "C" int ipr_cu_nhwc_bf16_epilogue(float *out, const uint16_t *y, const float *bias, const float *residual,
                                         float beta, int B, int C, int HW, ipr_cuda_stream st) {
    const dim3 grid((unsigned)((HW + LT_TILE - 1) / LT_TILE), (unsigned)((C + LT_TILE - 1) / LT_TILE), (unsigned)B);
    nhwc_epilogue_kernel<<<grid, dim3(LT_TILE, LT_ROWS), 0, (cudaStream_t)st>>>(
        out, (const __nv_bfloat16 *)y, bias, residual, beta, C, HW);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

/* wk (Cout, 3, 3, Cin) bf16 = w (Cout, Cin, 3, 3) float32 */
static __global__ void pack_krsc_kernel(__nv_bfloat16 *wk, const float *w, int Cin, size_t total) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        const size_t co = i / ((size_t)9 * Cin);
        const int rem = (int)(i - co * 9 * Cin), rs = rem / Cin, ci = rem - rs * Cin;
        wk[i] = __float2bfloat16(w[(co * Cin + ci) * 9 + rs]);
    }
}

extern "C" int ipr_cu_pack_krsc_bf16(uint16_t *wk, const float *w, int Cout, int Cin, ipr_cuda_stream st) {
    const size_t total = (size_t)Cout * Cin * 9;
    pack_krsc_kernel<<<ipr_cu_blocks(total, 256), 256, 0, (cudaStream_t)st>>>((__nv_bfloat16 *)wk, w, Cin, total);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}
