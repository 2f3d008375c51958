/* cuda_host.h: what the host sides of the CUDA engines (unet_cuda.c, dit_cuda.c) share: the CUDA checker for
 * C files (style habit 4: expression, file and line through ipr_error_set, then `goto fail`), the bump
 * allocator that lays out an activation arena (with base NULL it only measures), and two small transfers.
 * Defined in cuda_host.c. Not installed. */
#ifndef IPR_CUDA_HOST_H
#define IPR_CUDA_HOST_H

#include <cuda_runtime.h>
#include <stddef.h>

#include "ipr/common.h"

#define CU(expr)                                                                                          \
    do {                                                                                                  \
        cudaError_t e_ = (expr);                                                                          \
        if (e_ != cudaSuccess) IPR_FAIL("CUDA: %s failed: %s", #expr, cudaGetErrorString(e_));            \
    } while (0)

typedef struct {
    unsigned char *base;
    size_t off;
} ipr_bump;

/* bytes from the arena at base, 256-byte aligned; NULL while measuring (base NULL) */
void *ipr_bump_take(ipr_bump *b, size_t bytes);

/* Copy n floats host -> device on `device` (synchronous), and wait for a stream. IPR_OK or IPR_ERR. */
int ipr_cuda_upload_floats(int device, float *dst, const float *src, size_t n);
int ipr_cuda_stream_sync(cudaStream_t stream);

#endif
