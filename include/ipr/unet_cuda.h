/* unet_cuda.h: the SRM U-Net on one CUDA GPU: cuBLAS GEMMs for every convolution and linear layer (or, in BF16, an
 * implicit-GEMM kernel for the 3x3 ones), the ops of src/engine/cuda for the rest, and the forward after the
 * level-finding replayed as a CUDA graph per (batch, level buckets). Built from a loaded CPU net (same plan, same
 * weights). */
#ifndef IPR_UNET_CUDA_H
#define IPR_UNET_CUDA_H

#include <stddef.h>

#include "ipr/unet.h"

#ifdef __cplusplus
extern "C" {
#endif

/* GEMM precision of convolutions: float32, TF32 tensor cores (float32 storage), or BF16 operands with
 * float32 accumulation. Norms, softmax, the time embedding and all storage stay float32. */
typedef enum { IPR_PREC_FP32 = 0, IPR_PREC_TF32 = 1, IPR_PREC_BF16 = 2 } ipr_precision;

const char *ipr_precision_name(ipr_precision p);
int ipr_precision_from_name(const char *name, ipr_precision *out);

typedef struct ipr_unet_cuda ipr_unet_cuda;

/* How BF16 runs its 3x3 convolutions: im2col (columns in global memory, then cuBLAS), an implicit GEMM that
 * gathers the columns into shared memory (src/engine/cuda/conv3x3.cu), or cuDNN on NHWC bf16 copies of the
 * activations (src/engine/cudnn_conv.c; builds with cuDNN only; its outputs are rounded to bf16 before the bias and
 * residual, as PyTorch's BF16 convolutions are). FP32 and TF32 always use im2col; 1x1 convolutions always use
 * cuBLAS. */
typedef enum { IPR_UNET_CONV_IM2COL = 0, IPR_UNET_CONV_IMPLICIT = 1, IPR_UNET_CONV_CUDNN = 2 } ipr_unet_conv;

const char *ipr_unet_conv_name(ipr_unet_conv c);
int ipr_unet_conv_from_name(const char *name, ipr_unet_conv *out);
/* 1 if this build has the cuDNN path (CMake found cuDNN). */
int ipr_unet_conv_have_cudnn(void);

/* 1 if this build has the CUDA backend and a device is visible; *count gets the device count. */
int ipr_cuda_available(int *count);

/* Upload `net`'s weights to `device` and plan activations for net's max_batch and image size. The CPU
 * net must outlive the CUDA one (its plan is shared). NULL on error (no CUDA, out of memory, ...). */
ipr_unet_cuda *ipr_unet_cuda_new(ipr_unet *net, int device, ipr_precision precision);
void ipr_unet_cuda_free(ipr_unet_cuda *g);
/* Select the 3x3 convolution path (the default at creation: $IPR_UNET_CONV if set, im2col, implicit or cudnn; else
 * cudnn for BF16 in a build with cuDNN, falling back to im2col with a warning if cuDNN cannot start; else im2col). Implicit and cudnn need BF16 (an error otherwise), cudnn a build with cuDNN; their weight
 * copies are made on first selection, not per pass. */
int ipr_unet_cuda_set_conv(ipr_unet_cuda *g, ipr_unet_conv conv);
ipr_unet_conv ipr_unet_cuda_conv(const ipr_unet_cuda *g);
/* Device bytes of weights (both copies in BF16 mode, plus the packed 3x3 ones once implicit is used) and of
 * activations + workspaces. */
void ipr_unet_cuda_arena_bytes(const ipr_unet_cuda *g, size_t *weights, size_t *activations);
/* CUDA graphs on (default; $IPR_UNET_GRAPHS=0 turns them off at creation) or off: bitwise the same numbers either
 * way. A forward finds each resolution's distinct noise levels (one readback of their counts), rounds each count
 * up to a bucket (powers of two from 64 to 4096, then multiples of 4096, at most the level table), and replays
 * the graph of (B, buckets), capturing it on first use; at most IPR_UNET_CUDA_GRAPH_CAP graphs are kept, the
 * least recently used dropped. A failed capture warns and turns graphs off. */
#define IPR_UNET_CUDA_GRAPH_CAP 24
void ipr_unet_cuda_set_graphs(ipr_unet_cuda *g, int on);
/* Graphs held now (at most IPR_UNET_CUDA_GRAPH_CAP), and captured since creation (evicted ones included). */
int ipr_unet_cuda_graphs(const ipr_unet_cuda *g);
long ipr_unet_cuda_graph_captures(const ipr_unet_cuda *g);
/* Same contract as ipr_unet_forward, host buffers. */
int ipr_unet_cuda_forward(ipr_unet_cuda *g, const float *x, const float *t, int B, float *y);
/* Same, with device buffers x (B, d_in, H, W), t (B, 1, H, W), y (B, d_out, H, W); x and y other than the net's
 * own buffers (ipr_unet_cuda_buffers) are copied in and out on the net's stream. Asynchronous after the
 * level-finding (ipr_unet_cuda_synchronize). */
int ipr_unet_cuda_forward_device(ipr_unet_cuda *g, const float *x, const float *t, int B, float *y);
/* The net's own device input/output buffers (sized for max_batch), for callers that keep data resident. */
void ipr_unet_cuda_buffers(ipr_unet_cuda *g, float **x, float **t, float **y);
/* Copy host data into / out of device memory (synchronous). */
int ipr_unet_cuda_upload(ipr_unet_cuda *g, float *dst, const float *src, size_t n);
int ipr_unet_cuda_download(ipr_unet_cuda *g, float *dst, const float *src, size_t n);
/* Wait for the net's stream. */
int ipr_unet_cuda_synchronize(ipr_unet_cuda *g);
/* Measured dense BF16 GEMM rate of a device (TFLOP/s): an n x n x n cuBLAS product, median of reps. */
int ipr_cuda_gemm_peak_tflops(int device, int n, double *tflops);

/* Where a forward's time goes, by stage: with profiling on, each forward runs without graphs and records a CUDA
 * event after every stage's launches; the time between consecutive events is charged to the stage that ended
 * (after the forward, one stream synchronization). For finding bottlenecks (`ipr bench --profile`), not for
 * timing: the events and the lost graph replay cost a little. The numbers are the same bitwise. */
typedef enum {
    IPR_UNET_PROF_EMBED = 0, /* the level embeddings: sinusoid, the time MLP, each ResBlock's emb projection */
    IPR_UNET_PROF_NORM,      /* GroupNorm (+ embedding add + SiLU) */
    IPR_UNET_PROF_LAYOUT,    /* float32 NCHW -> bf16 NHWC copies in front of cuDNN */
    IPR_UNET_PROF_CONV3,     /* 3x3 convolutions: cuDNN, implicit GEMM, or im2col + cuBLAS */
    IPR_UNET_PROF_EPILOGUE,  /* bias, residual, bf16 NHWC -> float32 NCHW (cuDNN), skip copies */
    IPR_UNET_PROF_CONV1,     /* 1x1 convolutions (shortcuts, attention qkv and proj): cuBLAS */
    IPR_UNET_PROF_ATTN,      /* attention scores, softmax, weighted sum */
    IPR_UNET_PROF_RESIZE,    /* skip concatenation, nearest upsampling */
    IPR_UNET_PROF_NSTAGES
} ipr_unet_prof_stage;
const char *ipr_unet_prof_stage_name(ipr_unet_prof_stage s);
typedef struct {
    double ms[IPR_UNET_PROF_NSTAGES]; /* summed over the profiled forwards */
    long forwards, images;       /* forwards profiled and the images they held */
} ipr_unet_profile;
/* Profiling on (clears the totals) or off. */
int ipr_unet_cuda_set_profile(ipr_unet_cuda *g, int on);
void ipr_unet_cuda_profile(const ipr_unet_cuda *g, ipr_unet_profile *out);

/* Distinct noise levels embedded by the last forward (summed over resolutions). */
int ipr_unet_cuda_last_distinct(const ipr_unet_cuda *g);
/* Name of the GPU in use. */
const char *ipr_unet_cuda_device_name(const ipr_unet_cuda *g);

#ifdef __cplusplus
}
#endif
#endif
