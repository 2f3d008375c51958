/* embedding.cu: the noise-level embedding of spec 1.4, computed once per distinct level: sorted unique
 * levels and per-pixel indices (CUB), the sinusoid, and the bias/SiLU epilogue of its Linear layers. */
#include <cub/cub.cuh>

#include "cuda_check.cuh"
#include "ops_cuda.h"

static __global__ void sinusoid_kernel(float *out, const float *t, int n) {
    size_t total = (size_t)n * 128;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        int j = (int)(i % 128);
        size_t r = i / 128;
        /* f_j = exp(-ln(10000) * j / 128) in float32, as the reference computes it even in float64 */
        float f = expf(-9.210340371976184f * (float)j / 128.0f);
        float a = fmaxf(1000.0f * t[r] - 1.0f, 0.0f) * f;
        out[r * 256 + j] = cosf(a);
        out[r * 256 + 128 + j] = sinf(a);
    }
}

extern "C" int ipr_cu_sinusoid(float *out, const float *t, int n, ipr_cuda_stream s) {
    sinusoid_kernel<<<ipr_cu_blocks((size_t)n * 128, 256), 256, 0, (cudaStream_t)s>>>(out, t, n);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

static __global__ void bias_act_kernel(float *y, const float *bias, int C, int silu, size_t total) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        float v = y[i] + bias[i % C];
        if (silu) v = v / (1.0f + __expf(-v));
        y[i] = v;
    }
}

extern "C" int ipr_cu_bias_act(float *y, const float *bias, int n, int C, int silu, ipr_cuda_stream s) {
    size_t total = (size_t)n * C;
    bias_act_kernel<<<ipr_cu_blocks(total, 256), 256, 0, (cudaStream_t)s>>>(y, bias, C, silu, total);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

/* scratch layout: [sorted n floats][cub temp] */
static size_t cub_bytes(int n) {
    size_t a = 0, b = 0;
    cub::DeviceRadixSort::SortKeys(nullptr, a, (const float *)nullptr, (float *)nullptr, n);
    cub::DeviceSelect::Unique(nullptr, b, (const float *)nullptr, (float *)nullptr, (int *)nullptr, n);
    return a > b ? a : b;
}

static size_t sorted_bytes(int n) { return ((size_t)n * sizeof(float) + 255) & ~(size_t)255; }

extern "C" size_t ipr_cu_unique_scratch(int n) { return sorted_bytes(n) + cub_bytes(n) + 256; }

static __global__ void lower_bound_kernel(int32_t *index, const float *values, const float *uniq, const int *count,
                                          int n) {
    int m = *count;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)n; i += (size_t)gridDim.x * blockDim.x) {
        float v = values[i];
        int lo = 0, hi = m - 1;
        while (lo < hi) { /* first unique >= v; v is present, so it is == v */
            int mid = (lo + hi) >> 1;
            if (uniq[mid] < v) lo = mid + 1;
            else hi = mid;
        }
        index[i] = lo;
    }
}

extern "C" int ipr_cu_unique_index(float *uniq, int *count, int32_t *index, const float *values, int n, void *tmp,
                                   ipr_cuda_stream s) {
    cudaStream_t st = (cudaStream_t)s;
    float *sorted = (float *)tmp;
    void *cub_tmp = (char *)tmp + sorted_bytes(n);
    size_t cub_sz = cub_bytes(n);
    IPR_CU_CHECK(cub::DeviceRadixSort::SortKeys(cub_tmp, cub_sz, values, sorted, n, 0, 32, st));
    IPR_CU_CHECK(cub::DeviceSelect::Unique(cub_tmp, cub_sz, sorted, uniq, count, n, st));
    lower_bound_kernel<<<ipr_cu_blocks((size_t)n, 256), 256, 0, st>>>(index, values, uniq, count, n);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

static __global__ void pad_levels_kernel(float *uniq, const int *count, int n) {
    const int m = *count;
    for (int i = m + (int)(blockIdx.x * blockDim.x + threadIdx.x); i < n; i += (int)(gridDim.x * blockDim.x))
        uniq[i] = 0.0f;
}

extern "C" int ipr_cu_pad_levels(float *uniq, const int *count, int n, ipr_cuda_stream s) {
    pad_levels_kernel<<<ipr_cu_blocks((size_t)n, 256), 256, 0, (cudaStream_t)s>>>(uniq, count, n);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}
