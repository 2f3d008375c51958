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

/* A cache of CUDA graphs of one forward, keyed by a few ints (the batch and the level buckets), at most `cap` held,
 * the least recently used dropped. Plain data: zero it, set cap (<= IPR_GRAPH_CACHE_MAX), key_len
 * (<= IPR_GRAPH_KEY_MAX) and on. */
#define IPR_GRAPH_CACHE_MAX 64
#define IPR_GRAPH_KEY_MAX 16
typedef struct {
    int key[IPR_GRAPH_KEY_MAX];
    cudaGraphExec_t exec;
    unsigned long long used;
} ipr_graph_entry;
typedef struct {
    ipr_graph_entry e[IPR_GRAPH_CACHE_MAX];
    int cap, key_len, n;
    long captures;
    unsigned long long tick;
    int on; /* graphs used; turned off for good when a capture fails */
} ipr_graph_cache;

/* Run body(ctx), which enqueues a forward on stream: with graphs on, replay key's graph, capturing it first; with
 * them off, or when a capture fails (graphs then stay off; a warning names `what` and why), run it directly. The
 * kernels are the same either way, so are the numbers. */
int ipr_graph_cache_run(ipr_graph_cache *c, cudaStream_t stream, const int *key, int (*body)(void *ctx), void *ctx,
                        const char *what);
/* Destroy every held graph (the cache stays usable). */
void ipr_graph_cache_clear(ipr_graph_cache *c);

/* Copy n floats host -> device on `device` (synchronous), and wait for a stream. IPR_OK or IPR_ERR. */
int ipr_cuda_upload_floats(int device, float *dst, const float *src, size_t n);
int ipr_cuda_stream_sync(cudaStream_t stream);

#endif
