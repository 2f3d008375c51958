/* unet_device.c: the parts of ipr/unet_cuda.h every build has: precision names, and in a build without
 * the CUDA backend, entry points that say so (a clear error, never a silent CPU substitute). */
#include <string.h>

#include "ipr/common.h"
#include "ipr/unet_cuda.h"

const char *ipr_precision_name(ipr_precision p) {
    return p == IPR_PREC_TF32 ? "tf32" : p == IPR_PREC_BF16 ? "bf16" : "fp32";
}

int ipr_precision_from_name(const char *name, ipr_precision *out) {
    if (name && strcmp(name, "fp32") == 0) *out = IPR_PREC_FP32;
    else if (name && strcmp(name, "tf32") == 0) *out = IPR_PREC_TF32;
    else if (name && strcmp(name, "bf16") == 0) *out = IPR_PREC_BF16;
    else {
        ipr_error_set(__FILE__, __LINE__, "unknown precision '%s' (expected fp32, tf32 or bf16)", name ? name : "");
        return IPR_ERR;
    }
    return IPR_OK;
}

const char *ipr_unet_conv_name(ipr_unet_conv c) {
    return c == IPR_UNET_CONV_IMPLICIT ? "implicit" : c == IPR_UNET_CONV_CUDNN ? "cudnn" : "im2col";
}

int ipr_unet_conv_have_cudnn(void) {
#ifdef IPR_HAVE_CUDNN
    return 1;
#else
    return 0;
#endif
}

const char *ipr_unet_prof_stage_name(ipr_unet_prof_stage s) {
    static const char *const names[IPR_UNET_PROF_NSTAGES] = {"embed", "norm", "layout", "conv3x3", "epilogue",
                                                         "conv1x1", "attention", "resize"};
    return (int)s >= 0 && s < IPR_UNET_PROF_NSTAGES ? names[s] : "?";
}

int ipr_unet_conv_from_name(const char *name, ipr_unet_conv *out) {
    if (name && strcmp(name, "im2col") == 0) *out = IPR_UNET_CONV_IM2COL;
    else if (name && strcmp(name, "implicit") == 0) *out = IPR_UNET_CONV_IMPLICIT;
    else if (name && strcmp(name, "cudnn") == 0) *out = IPR_UNET_CONV_CUDNN;
    else {
        ipr_error_set(__FILE__, __LINE__, "unknown convolution path '%s' (expected im2col, implicit or cudnn)",
                      name ? name : "");
        return IPR_ERR;
    }
    return IPR_OK;
}

#ifndef IPR_HAVE_CUDA
int ipr_cuda_available(int *count) {
    if (count) *count = 0;
    return 0;
}

ipr_unet_cuda *ipr_unet_cuda_new(ipr_unet *net, int device, ipr_precision precision) {
    (void)net, (void)device, (void)precision;
    ipr_error_set(__FILE__, __LINE__, "this ipr was built without the CUDA backend (rebuild with -DIPR_CUDA=ON)");
    return NULL;
}

void ipr_unet_cuda_free(ipr_unet_cuda *g) { (void)g; }

void ipr_unet_cuda_arena_bytes(const ipr_unet_cuda *g, size_t *weights, size_t *activations) {
    (void)g;
    if (weights) *weights = 0;
    if (activations) *activations = 0;
}

static int no_cuda(void);

int ipr_unet_cuda_set_conv(ipr_unet_cuda *g, ipr_unet_conv conv) {
    (void)g, (void)conv;
    return no_cuda();
}

ipr_unet_conv ipr_unet_cuda_conv(const ipr_unet_cuda *g) {
    (void)g;
    return IPR_UNET_CONV_IM2COL;
}

int ipr_unet_cuda_forward(ipr_unet_cuda *g, const float *x, const float *t, int B, float *y) {
    (void)g, (void)x, (void)t, (void)B, (void)y;
    return no_cuda();
}

int ipr_unet_cuda_forward_device(ipr_unet_cuda *g, const float *x, const float *t, int B, float *y) {
    return ipr_unet_cuda_forward(g, x, t, B, y);
}

int ipr_unet_cuda_last_distinct(const ipr_unet_cuda *g) {
    (void)g;
    return 0;
}

void ipr_unet_cuda_set_graphs(ipr_unet_cuda *g, int on) { (void)g, (void)on; }

int ipr_unet_cuda_set_profile(ipr_unet_cuda *g, int on) {
    (void)g, (void)on;
    return no_cuda();
}

void ipr_unet_cuda_profile(const ipr_unet_cuda *g, ipr_unet_profile *out) {
    (void)g;
    memset(out, 0, sizeof *out);
}

int ipr_unet_cuda_graphs(const ipr_unet_cuda *g) {
    (void)g;
    return 0;
}

long ipr_unet_cuda_graph_captures(const ipr_unet_cuda *g) {
    (void)g;
    return 0;
}

const char *ipr_unet_cuda_device_name(const ipr_unet_cuda *g) {
    (void)g;
    return "none";
}

void ipr_unet_cuda_buffers(ipr_unet_cuda *g, float **x, float **t, float **y) {
    (void)g;
    if (x) *x = NULL;
    if (t) *t = NULL;
    if (y) *y = NULL;
}

static int no_cuda(void) {
    ipr_error_set(__FILE__, __LINE__, "this ipr was built without the CUDA backend");
    return IPR_ERR;
}

int ipr_unet_cuda_upload(ipr_unet_cuda *g, float *dst, const float *src, size_t n) {
    (void)g, (void)dst, (void)src, (void)n;
    return no_cuda();
}

int ipr_unet_cuda_download(ipr_unet_cuda *g, float *dst, const float *src, size_t n) {
    (void)g, (void)dst, (void)src, (void)n;
    return no_cuda();
}

int ipr_unet_cuda_synchronize(ipr_unet_cuda *g) {
    (void)g;
    return no_cuda();
}

int ipr_cuda_gemm_peak_tflops(int device, int n, double *tflops) {
    (void)device, (void)n;
    *tflops = 0.0;
    return no_cuda();
}
#endif
