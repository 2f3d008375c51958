/* dit_device.c: in a build without the CUDA backend, the entry points of ipr/dit_cuda.h say so (a clear error,
 * never a silent CPU substitute). Empty in a CUDA build (dit_cuda.c defines them). */
#include "ipr/common.h"
#include "ipr/dit_cuda.h"

#ifndef IPR_HAVE_CUDA
static int no_cuda(void) {
    ipr_error_set(__FILE__, __LINE__, "this ipr was built without the CUDA backend (rebuild with -DIPR_CUDA=ON)");
    return IPR_ERR;
}

ipr_dit_cuda *ipr_dit_cuda_new(ipr_dit *net, int device, ipr_precision precision) {
    (void)net, (void)device, (void)precision;
    no_cuda();
    return NULL;
}

void ipr_dit_cuda_free(ipr_dit_cuda *g) { (void)g; }

void ipr_dit_cuda_arena_bytes(const ipr_dit_cuda *g, size_t *weights, size_t *activations) {
    (void)g;
    if (weights) *weights = 0;
    if (activations) *activations = 0;
}

void ipr_dit_cuda_set_graphs(ipr_dit_cuda *g, int on) { (void)g, (void)on; }

int ipr_dit_cuda_forward(ipr_dit_cuda *g, const float *x, const float *t, int B, float *y) {
    (void)g, (void)x, (void)t, (void)B, (void)y;
    return no_cuda();
}

int ipr_dit_cuda_forward_device(ipr_dit_cuda *g, const float *x, const float *t, int B, float *y) {
    (void)g, (void)x, (void)t, (void)B, (void)y;
    return no_cuda();
}

int ipr_dit_cuda_forward_levels(ipr_dit_cuda *g, const float *x, const float *levels, int B, float *y) {
    (void)g, (void)x, (void)levels, (void)B, (void)y;
    return no_cuda();
}

void ipr_dit_cuda_buffers(ipr_dit_cuda *g, float **x, float **y) {
    (void)g;
    if (x) *x = NULL;
    if (y) *y = NULL;
}

int ipr_dit_cuda_upload(ipr_dit_cuda *g, float *dst, const float *src, size_t n) {
    (void)g, (void)dst, (void)src, (void)n;
    return no_cuda();
}

int ipr_dit_cuda_synchronize(ipr_dit_cuda *g) {
    (void)g;
    return no_cuda();
}

int ipr_dit_cuda_last_levels(const ipr_dit_cuda *g) {
    (void)g;
    return 0;
}

int ipr_dit_cuda_graphs(const ipr_dit_cuda *g) {
    (void)g;
    return 0;
}

const char *ipr_dit_cuda_device_name(const ipr_dit_cuda *g) {
    (void)g;
    return "none";
}
#else
typedef int ipr_dit_device_unused; /* ISO C forbids an empty translation unit */
#endif
