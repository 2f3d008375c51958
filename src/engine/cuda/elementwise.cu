/* elementwise.cu: the memory-bound U-Net ops: bias (+ residual) epilogue, SiLU, channel concat,
 * nearest upsample and bilinear resize with PyTorch's index arithmetic. */
#include "cuda_check.cuh"
#include "ops_cuda.h"

#define GRID_STRIDE(i, n) \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

static __global__ void bias_residual_kernel(float *y, const float *bias, const float *res, int C, int HW, size_t n) {
    GRID_STRIDE(i, n) {
        int c = (int)((i / HW) % C);
        float v = y[i] + bias[c];
        if (res) v += res[i];
        y[i] = v;
    }
}

extern "C" int ipr_cu_bias_residual(float *y, const float *bias, const float *residual, int B, int C, int HW,
                                    ipr_cuda_stream s) {
    size_t n = (size_t)B * C * HW;
    bias_residual_kernel<<<ipr_cu_blocks(n, 256), 256, 0, (cudaStream_t)s>>>(y, bias, residual, C, HW, n);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

static __global__ void silu_kernel(float *out, const float *x, size_t n) {
    GRID_STRIDE(i, n) {
        float v = x[i];
        out[i] = v / (1.0f + __expf(-v));
    }
}

extern "C" int ipr_cu_silu(float *out, const float *x, size_t n, ipr_cuda_stream s) {
    silu_kernel<<<ipr_cu_blocks(n, 256), 256, 0, (cudaStream_t)s>>>(out, x, n);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

static __global__ void concat_kernel(float *out, const float *a, int Ca, const float *b, int Cb, int HW, size_t n) {
    int C = Ca + Cb;
    GRID_STRIDE(i, n) {
        size_t p = i % HW;
        int c = (int)((i / HW) % C);
        size_t bi = i / ((size_t)HW * C);
        out[i] = c < Ca ? a[(bi * Ca + c) * HW + p] : b[(bi * Cb + (c - Ca)) * HW + p];
    }
}

extern "C" int ipr_cu_concat(float *out, const float *a, int Ca, const float *b, int Cb, int B, int HW,
                             ipr_cuda_stream s) {
    size_t n = (size_t)B * (Ca + Cb) * HW;
    concat_kernel<<<ipr_cu_blocks(n, 256), 256, 0, (cudaStream_t)s>>>(out, a, Ca, b, Cb, HW, n);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

/* PyTorch 'nearest': src = min(floor(dst * (float)in / out), in - 1), the scale in float32 */
static __global__ void upsample_kernel(float *out, const float *x, int H, int W, int Ho, int Wo, float sy, float sx,
                                       size_t n) {
    GRID_STRIDE(i, n) {
        int ox = (int)(i % Wo), oy = (int)((i / Wo) % Ho);
        size_t bc = i / ((size_t)Wo * Ho);
        int iy = min((int)floorf((float)oy * sy), H - 1);
        int ix = min((int)floorf((float)ox * sx), W - 1);
        out[i] = x[(bc * H + iy) * W + ix];
    }
}

extern "C" int ipr_cu_upsample_nearest(float *out, const float *x, int B, int C, int H, int W, int Ho, int Wo,
                                       ipr_cuda_stream s) {
    size_t n = (size_t)B * C * Ho * Wo;
    upsample_kernel<<<ipr_cu_blocks(n, 256), 256, 0, (cudaStream_t)s>>>(out, x, H, W, Ho, Wo, (float)H / (float)Ho,
                                                                       (float)W / (float)Wo, n);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

/* PyTorch bilinear, align_corners=False: src = max((dst + 0.5) * scale - 0.5, 0), scale = in / out */
static __global__ void resize_kernel(float *out, const float *x, int H, int W, int Ho, int Wo, float sy, float sx,
                                     size_t n) {
    GRID_STRIDE(i, n) {
        int ox = (int)(i % Wo), oy = (int)((i / Wo) % Ho);
        size_t b = i / ((size_t)Wo * Ho);
        float fy = fmaxf(((float)oy + 0.5f) * sy - 0.5f, 0.0f);
        float fx = fmaxf(((float)ox + 0.5f) * sx - 0.5f, 0.0f);
        int y0 = (int)fy, x0 = (int)fx;
        int y1 = y0 + (y0 < H - 1), x1 = x0 + (x0 < W - 1);
        float ly = fy - (float)y0, lx = fx - (float)x0;
        const float *p = x + b * (size_t)H * W;
        out[i] = (1.0f - ly) * ((1.0f - lx) * p[y0 * W + x0] + lx * p[y0 * W + x1]) +
                 ly * ((1.0f - lx) * p[y1 * W + x0] + lx * p[y1 * W + x1]);
    }
}

extern "C" int ipr_cu_resize_bilinear(float *out, const float *x, int B, int H, int W, int Ho, int Wo,
                                      ipr_cuda_stream s) {
    size_t n = (size_t)B * Ho * Wo;
    resize_kernel<<<ipr_cu_blocks(n, 256), 256, 0, (cudaStream_t)s>>>(out, x, H, W, Ho, Wo, (float)H / (float)Ho,
                                                                     (float)W / (float)Wo, n);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}
