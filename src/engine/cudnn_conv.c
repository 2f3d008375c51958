/* cudnn_conv.c: the cuDNN convolutions of cudnn_conv.h. Descriptors are made once per shape (batch, channels, size,
 * stride) and kept; the algorithm is the first of cuDNN's heuristic list that runs in the workspace, with tensor-core
 * math allowed. */
#include "cudnn_conv.h"

#include <cudnn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_host.h"
#include "ipr/common.h"

#define DNN(expr)                                                                                         \
    do {                                                                                                  \
        cudnnStatus_t s_ = (expr);                                                                        \
        if (s_ != CUDNN_STATUS_SUCCESS) IPR_FAIL("cuDNN: %s failed: %s", #expr, cudnnGetErrorString(s_)); \
    } while (0)

/* shapes a U-Net meets: a few dozen 3x3 convolutions times the batch sizes a run uses (the batch is chunked by the
 * caller, so each batch size brings at most two) */
#define DNN_SHAPES 512

typedef struct {
    int B, Cin, Cout, H, W, stride;
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgo_t algo;
} dnn_shape;

struct ipr_cudnn_conv {
    cudnnHandle_t h;
    void *ws;
    size_t ws_bytes;
    dnn_shape shapes[DNN_SHAPES];
    int n_shapes;
};

const char *ipr_cudnn_version(void) {
    static char buf[48];
    const size_t v = cudnnGetVersion(); /* major * 10000 + minor * 100 + patch since cuDNN 9 */
    if (v >= 90000)
        snprintf(buf, sizeof buf, "cuDNN %zu.%zu.%zu", v / 10000, v / 100 % 100, v % 100);
    else
        snprintf(buf, sizeof buf, "cuDNN %zu.%zu.%zu", v / 1000, v / 100 % 10, v % 100);
    return buf;
}

ipr_cudnn_conv *ipr_cudnn_conv_new(void *stream, size_t ws_bytes) {
    ipr_cudnn_conv *c = ipr_calloc(1, sizeof *c, "cuDNN context");
    if (!c) return NULL;
    /* the headers the engine was built with and the library found at run time must agree on the major version */
    const size_t v = cudnnGetVersion();
    const size_t major = v >= 90000 ? v / 10000 : v / 1000;
    IPR_CHECK(major == CUDNN_MAJOR, "cuDNN: built with version %d headers, %s loaded at run time", CUDNN_MAJOR,
              ipr_cudnn_version());
    DNN(cudnnCreate(&c->h));
    DNN(cudnnSetStream(c->h, (cudaStream_t)stream));
    if (ws_bytes) CU(cudaMalloc(&c->ws, ws_bytes));
    c->ws_bytes = ws_bytes;
    return c;
fail:
    ipr_error_context("setting up cuDNN");
    ipr_cudnn_conv_free(c);
    return NULL;
}

static void destroy_shape(dnn_shape *s) {
    if (s->x) cudnnDestroyTensorDescriptor(s->x);
    if (s->y) cudnnDestroyTensorDescriptor(s->y);
    if (s->w) cudnnDestroyFilterDescriptor(s->w);
    if (s->conv) cudnnDestroyConvolutionDescriptor(s->conv);
    memset(s, 0, sizeof *s);
}

void ipr_cudnn_conv_free(ipr_cudnn_conv *c) {
    if (!c) return;
    for (int i = 0; i < c->n_shapes; ++i) destroy_shape(&c->shapes[i]);
    if (c->ws) cudaFree(c->ws);
    if (c->h) cudnnDestroy(c->h);
    free(c);
}

/* the shape's descriptors and algorithm, made on first use */
static dnn_shape *shape_of(ipr_cudnn_conv *c, int B, int Cin, int Cout, int H, int W, int stride, int Ho, int Wo) {
    dnn_shape *s = NULL;
    for (int i = 0; i < c->n_shapes; ++i) {
        s = &c->shapes[i];
        if (s->B == B && s->Cin == Cin && s->Cout == Cout && s->H == H && s->W == W && s->stride == stride) return s;
    }
    s = NULL;
    IPR_CHECK(c->n_shapes < DNN_SHAPES, "cuDNN: more than %d convolution shapes", DNN_SHAPES);
    s = &c->shapes[c->n_shapes];
    memset(s, 0, sizeof *s);
    s->B = B, s->Cin = Cin, s->Cout = Cout, s->H = H, s->W = W, s->stride = stride;
    DNN(cudnnCreateTensorDescriptor(&s->x));
    DNN(cudnnCreateTensorDescriptor(&s->y));
    DNN(cudnnCreateFilterDescriptor(&s->w));
    DNN(cudnnCreateConvolutionDescriptor(&s->conv));
    DNN(cudnnSetTensor4dDescriptor(s->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_BFLOAT16, B, Cin, H, W));
    DNN(cudnnSetFilter4dDescriptor(s->w, CUDNN_DATA_BFLOAT16, CUDNN_TENSOR_NHWC, Cout, Cin, 3, 3));
    DNN(cudnnSetConvolution2dDescriptor(s->conv, 1, 1, stride, stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                        CUDNN_DATA_FLOAT));
    DNN(cudnnSetConvolutionMathType(s->conv, CUDNN_TENSOR_OP_MATH));
    int n = 0, c_, h_, w_;
    DNN(cudnnGetConvolution2dForwardOutputDim(s->conv, s->x, s->w, &n, &c_, &h_, &w_));
    IPR_CHECK(n == B && c_ == Cout && h_ == Ho && w_ == Wo,
              "cuDNN: a %dx%d stride-%d convolution gives %dx%d, the net expects %dx%d", H, W, stride, h_, w_, Ho, Wo);
    DNN(cudnnSetTensor4dDescriptor(s->y, CUDNN_TENSOR_NHWC, CUDNN_DATA_BFLOAT16, B, Cout, Ho, Wo));
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int got = 0;
    DNN(cudnnGetConvolutionForwardAlgorithm_v7(c->h, s->x, s->w, s->conv, s->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got,
                                               perf));
    int pick = -1;
    for (int i = 0; i < got && pick < 0; ++i) {
        size_t need = 0;
        if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
        if (cudnnGetConvolutionForwardWorkspaceSize(c->h, s->x, s->w, s->conv, s->y, perf[i].algo, &need) !=
            CUDNN_STATUS_SUCCESS)
            continue;
        if (need <= c->ws_bytes) pick = i;
    }
    IPR_CHECK(pick >= 0, "cuDNN: no forward algorithm for B %d, %d -> %d channels, %dx%d, stride %d fits a %zu-byte "
              "workspace (%d candidates)", B, Cin, Cout, H, W, stride, c->ws_bytes, got);
    s->algo = perf[pick].algo;
    c->n_shapes++;
    return s;
fail:
    if (s) destroy_shape(s);
    return NULL;
}

int ipr_cudnn_conv3x3(ipr_cudnn_conv *c, uint16_t *y, const uint16_t *x, const uint16_t *w, int B, int Cin, int Cout,
                      int H, int W, int stride, int Ho, int Wo) {
    const float one = 1.0f, zero = 0.0f;
    dnn_shape *s = shape_of(c, B, Cin, Cout, H, W, stride, Ho, Wo);
    if (!s) return IPR_ERR;
    DNN(cudnnConvolutionForward(c->h, &one, s->x, x, s->w, w, s->conv, s->algo, c->ws, c->ws_bytes, &zero, s->y, y));
    return IPR_OK;
fail:
    return IPR_ERR;
}
