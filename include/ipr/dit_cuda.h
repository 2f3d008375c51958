/* dit_cuda.h: the region-token DiT on one CUDA GPU: cuBLASLt GEMMs with bias / GELU epilogues (FP32, TF32 or BF16
 * operands, float32 accumulation), the kernels of src/engine/cuda/dit_*.cu for the rest, the adaLN modulation
 * computed once per distinct noise level, and the whole forward replayed as a CUDA graph per batch shape. Built
 * from a loaded CPU net (same plan, same weights). */
#ifndef IPR_DIT_CUDA_H
#define IPR_DIT_CUDA_H

#include <stddef.h>

#include "ipr/dit.h"
#include "ipr/unet_cuda.h" /* ipr_precision, ipr_cuda_available */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ipr_dit_cuda ipr_dit_cuda;

/* Upload net's weights to `device` and plan activations for net's max_batch. The CPU net must outlive the CUDA one.
 * NULL on error (no CUDA, out of memory, unsupported geometry). */
ipr_dit_cuda *ipr_dit_cuda_new(ipr_dit *net, int device, ipr_precision precision);
void ipr_dit_cuda_free(ipr_dit_cuda *g);
/* Device bytes of weights (with the BF16 mirror in BF16 mode) and of activations + workspaces. */
void ipr_dit_cuda_arena_bytes(const ipr_dit_cuda *g, size_t *weights, size_t *activations);
/* CUDA graphs on (default; $IPR_DIT_GRAPHS=0 turns them off at creation) or off: the same numbers either way. */
void ipr_dit_cuda_set_graphs(ipr_dit_cuda *g, int on);
/* Same contract as ipr_dit_forward, host buffers. */
int ipr_dit_cuda_forward(ipr_dit_cuda *g, const float *x, const float *t, int B, float *y);
/* x (B, C, H, W) and y (B, 2C + 1, H, W) in device memory, t (B, 1, H, W) on the host (its distinct levels are
 * found there). */
int ipr_dit_cuda_forward_device(ipr_dit_cuda *g, const float *x, const float *t, int B, float *y);
/* Same, with the noise levels given per region, levels (B, R) on the host (R = the net's regions): what a sampler
 * that keeps its images on the GPU passes. Asynchronous on the net's stream (ipr_dit_cuda_synchronize). */
int ipr_dit_cuda_forward_levels(ipr_dit_cuda *g, const float *x, const float *levels, int B, float *y);
/* The net's own device input / output buffers (max_batch images), for callers that keep data resident, and a
 * synchronous host -> device copy into them. */
void ipr_dit_cuda_buffers(ipr_dit_cuda *g, float **x, float **y);
int ipr_dit_cuda_upload(ipr_dit_cuda *g, float *dst, const float *src, size_t n);
/* Wait for the net's stream. */
int ipr_dit_cuda_synchronize(ipr_dit_cuda *g);
/* Distinct noise levels of the last forward, and the graphs captured so far. */
int ipr_dit_cuda_last_levels(const ipr_dit_cuda *g);
int ipr_dit_cuda_graphs(const ipr_dit_cuda *g);
const char *ipr_dit_cuda_device_name(const ipr_dit_cuda *g);

#ifdef __cplusplus
}
#endif
#endif
