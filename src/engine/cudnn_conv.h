/* cudnn_conv.h: 3x3 convolutions (padding 1, stride 1 or 2) on BF16 NHWC tensors through cuDNN's
 * cudnnConvolutionForward, for the CUDA U-Net's IPR_UNET_CONV=cudnn path (unet_cuda.c). Built only with cuDNN
 * (CMake IPR_CUDNN, macro IPR_HAVE_CUDNN). One context per CUDA U-Net: the handle on the net's stream, a workspace
 * allocated once (so that nothing is allocated while a CUDA graph is being captured), and the descriptors and
 * algorithm of every shape met, chosen by cuDNN's heuristics (cudnnGetConvolutionForwardAlgorithm_v7: no timing
 * runs, which a capture could not hold). */
#ifndef IPR_CUDNN_CONV_H
#define IPR_CUDNN_CONV_H

#include <stddef.h>
#include <stdint.h>

typedef struct ipr_cudnn_conv ipr_cudnn_conv;

/* A context on stream (a cudaStream_t) with a workspace of ws_bytes. NULL on error (the message says why: no
 * cuDNN library at run time, a version mismatch, out of memory). */
ipr_cudnn_conv *ipr_cudnn_conv_new(void *stream, size_t ws_bytes);
void ipr_cudnn_conv_free(ipr_cudnn_conv *c);

/* y (B, Ho, Wo, Cout) bf16 = conv3x3(x (B, H, W, Cin) bf16, w (Cout, 3, 3, Cin) bf16), padding 1, float32
 * accumulation; y is rounded to bf16 (cuDNN's BF16 configuration has bf16 outputs). */
int ipr_cudnn_conv3x3(ipr_cudnn_conv *c, uint16_t *y, const uint16_t *x, const uint16_t *w, int B, int Cin, int Cout,
                      int H, int W, int stride, int Ho, int Wo);

/* "cuDNN 9.19.0" of the library loaded at run time, or of the headers with no context yet. */
const char *ipr_cudnn_version(void);

#endif
