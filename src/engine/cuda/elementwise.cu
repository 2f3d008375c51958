/* elementwise.cu: the memory-bound U-Net ops: bias (+ residual) epilogue, SiLU, channel concat,
 * nearest upsample and bilinear resize with PyTorch's index arithmetic. Grids are x = (sample, channel)
 * plane and y = pixel blocks, so no thread divides a 64-bit index. */
#include "cuda_check.cuh"
#include "ops_cuda.h"

#define PIX_THREADS 256

static dim3 plane_grid(int planes, int pixels) {
    return dim3((unsigned)planes, (unsigned)((pixels + PIX_THREADS - 1) / PIX_THREADS));
}

static __global__ void bias_residual_kernel(float *y, const float *bias, const float *res, int C, int HW) {
    const int p = blockIdx.y * blockDim.x + threadIdx.x;
    if (p >= HW) return;
    const size_t i = (size_t)blockIdx.x * HW + p;
    float v = y[i] + bias[blockIdx.x % C];
    if (res) v += res[i];
    y[i] = v;
}

extern "C" int ipr_cu_bias_residual(float *y, const float *bias, const float *residual, int B, int C, int HW,
                                    ipr_cuda_stream s) {
    bias_residual_kernel<<<plane_grid(B * C, HW), PIX_THREADS, 0, (cudaStream_t)s>>>(y, bias, residual, C, HW);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

static __global__ void silu_kernel(float *out, const float *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float v = x[i];
        out[i] = v / (1.0f + __expf(-v));
    }
}

extern "C" int ipr_cu_silu(float *out, const float *x, size_t n, ipr_cuda_stream s) {
    silu_kernel<<<ipr_cu_blocks(n, 256), 256, 0, (cudaStream_t)s>>>(out, x, n);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

/* out plane (b, c) = a plane (b, c) for c < Ca, else b plane (b, c - Ca) */
static __global__ void concat_kernel(float *out, const float *a, int Ca, const float *b, int Cb, int HW) {
    const int p = blockIdx.y * blockDim.x + threadIdx.x;
    if (p >= HW) return;
    const int C = Ca + Cb, bi = blockIdx.x / C, c = blockIdx.x % C;
    const float *src = c < Ca ? a + ((size_t)bi * Ca + c) * HW : b + ((size_t)bi * Cb + (c - Ca)) * HW;
    out[(size_t)blockIdx.x * HW + p] = src[p];
}

extern "C" int ipr_cu_concat(float *out, const float *a, int Ca, const float *b, int Cb, int B, int HW,
                             ipr_cuda_stream s) {
    concat_kernel<<<plane_grid(B * (Ca + Cb), HW), PIX_THREADS, 0, (cudaStream_t)s>>>(out, a, Ca, b, Cb, HW);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

/* PyTorch 'nearest': src = min(floor(dst * (float)in / out), in - 1), the scale in float32 */
static __global__ void upsample_kernel(float *out, const float *x, int H, int W, int Ho, int Wo, float sy, float sx) {
    const int p = blockIdx.y * blockDim.x + threadIdx.x;
    if (p >= Ho * Wo) return;
    const int oy = p / Wo, ox = p - oy * Wo;
    const int iy = min((int)floorf((float)oy * sy), H - 1);
    const int ix = min((int)floorf((float)ox * sx), W - 1);
    out[(size_t)blockIdx.x * Ho * Wo + p] = x[(size_t)blockIdx.x * H * W + iy * W + ix];
}

extern "C" int ipr_cu_upsample_nearest(float *out, const float *x, int B, int C, int H, int W, int Ho, int Wo,
                                       ipr_cuda_stream s) {
    upsample_kernel<<<plane_grid(B * C, Ho * Wo), PIX_THREADS, 0, (cudaStream_t)s>>>(
        out, x, H, W, Ho, Wo, (float)H / (float)Ho, (float)W / (float)Wo);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

/* PyTorch bilinear, align_corners=False: src = max((dst + 0.5) * scale - 0.5, 0), scale = in / out */
static __global__ void resize_kernel(float *out, const float *x, int H, int W, int Ho, int Wo, float sy, float sx) {
    const int p = blockIdx.y * blockDim.x + threadIdx.x;
    if (p >= Ho * Wo) return;
    const int oy = p / Wo, ox = p - oy * Wo;
    const float fy = fmaxf(((float)oy + 0.5f) * sy - 0.5f, 0.0f);
    const float fx = fmaxf(((float)ox + 0.5f) * sx - 0.5f, 0.0f);
    const int y0 = (int)fy, x0 = (int)fx;
    const int y1 = y0 + (y0 < H - 1), x1 = x0 + (x0 < W - 1);
    const float ly = fy - (float)y0, lx = fx - (float)x0;
    const float *q = x + (size_t)blockIdx.x * H * W;
    out[(size_t)blockIdx.x * Ho * Wo + p] = (1.0f - ly) * ((1.0f - lx) * q[y0 * W + x0] + lx * q[y0 * W + x1]) +
                                            ly * ((1.0f - lx) * q[y1 * W + x0] + lx * q[y1 * W + x1]);
}

extern "C" int ipr_cu_resize_bilinear(float *out, const float *x, int B, int H, int W, int Ho, int Wo,
                                      ipr_cuda_stream s) {
    resize_kernel<<<plane_grid(B, Ho * Wo), PIX_THREADS, 0, (cudaStream_t)s>>>(out, x, H, W, Ho, Wo,
                                                                             (float)H / (float)Ho,
                                                                             (float)W / (float)Wo);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}
