/* cuda_check.cuh: the CUDA checker for .cu files (style habit 4): a failed call or launch records
 * the expression, file and line through ipr_error_set and returns IPR_ERR from the launcher. */
#pragma once
#include <cuda_runtime.h>

#include "ipr/common.h"

#define IPR_CU_CHECK(expr)                                                                          \
    do {                                                                                            \
        cudaError_t e_ = (expr);                                                                    \
        if (e_ != cudaSuccess) {                                                                    \
            ipr_error_set(__FILE__, __LINE__, "CUDA: %s failed: %s", #expr, cudaGetErrorString(e_)); \
            return IPR_ERR;                                                                         \
        }                                                                                           \
    } while (0)

/* after every <<<>>> launch */
#define IPR_CU_LAUNCHED() IPR_CU_CHECK(cudaGetLastError())

static inline unsigned ipr_cu_blocks(size_t n, unsigned threads) {
    size_t b = (n + threads - 1) / threads;
    return (unsigned)(b > 65535u * 32u ? 65535u * 32u : (b ? b : 1));
}
