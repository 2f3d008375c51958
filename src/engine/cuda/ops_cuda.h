/* ops_cuda.h: the CUDA kernels of the SRM U-Net, one op per .cu file, with a C ABI so C11 code calls
 * them directly. Launchers take outputs first and the stream last; every launch is checked. */
#ifndef IPR_OPS_CUDA_H
#define IPR_OPS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct CUstream_st *ipr_cuda_stream;

/* Element types of GEMM operands: float32 or bfloat16 (stored as uint16). */
typedef enum { IPR_CU_F32 = 0, IPR_CU_BF16 = 1 } ipr_cu_dtype;

/* GroupNorm over (B, C, HW) with `groups` groups, eps, affine gamma/beta (C). Optionally adds a
 * per-pixel embedding first, emb[idx[b*HW + p] * C + c] (spec 1.3: embedding added before the second
 * GroupNorm), and optionally applies SiLU after. out may not alias x. */
int ipr_cu_group_norm(float *out, const float *x, const float *gamma, const float *beta, const float *emb,
                      const int32_t *idx, int B, int C, int HW, int groups, float eps, int silu,
                      ipr_cuda_stream s);

/* The same GroupNorm with its statistics split over up to 32 blocks a group (partial sums about a shift, merged in
 * double), then one apply pass: into out (B, C, HW) float32, or, with out NULL, into out_nhwc (B, HW, C) bf16 (a
 * cuDNN convolution's input). scratch: ipr_cu_group_norm_scratch(B, C, groups) floats of device memory. */
size_t ipr_cu_group_norm_scratch(int B, int C, int groups);
int ipr_cu_group_norm_split(float *out, uint16_t *out_nhwc, const float *x, const float *gamma, const float *beta,
                            const float *emb, const int32_t *idx, int B, int C, int HW, int groups, float eps,
                            int silu, float *scratch, size_t scratch_floats, ipr_cuda_stream s);

/* im2col for a 3x3 convolution with padding 1 and stride 1 or 2: col (B, C*9, Ho*Wo) in dtype. */
int ipr_cu_im2col3x3(void *col, ipr_cu_dtype dt, const float *x, int B, int C, int H, int W, int stride, int Ho,
                     int Wo, ipr_cuda_stream s);
/* Convert float32 to bf16 (n elements). */
int ipr_cu_to_bf16(uint16_t *out, const float *x, size_t n, ipr_cuda_stream s);

/* Implicit-GEMM 3x3 convolution, padding 1, stride 1 or 2, on BF16 tensor cores (conv3x3.cu): out (B, Cout, Ho, Wo)
 * = beta * out + conv(x (B, Cin, H, W)) + bias[co] (if not NULL) + residual (B, Cout, Ho, Wo) (if not NULL), x
 * rounded to bf16 as it is read, float32 accumulation. beta 0 never reads out. x may not alias out; residual may.
 * wp: the weights packed by ipr_cu_conv3x3_pack (16-byte aligned). */
int ipr_cu_conv3x3_bf16(float *out, const float *x, const uint16_t *wp, const float *bias, const float *residual,
                        float beta, int B, int Cin, int Cout, int H, int W, int stride, int Ho, int Wo,
                        ipr_cuda_stream s);
/* bf16 elements of a packed (Cout, Cin, 3, 3) weight: zero-padded to the kernel's tile multiples. */
size_t ipr_cu_conv3x3_packed_elems(int Cout, int Cin);
/* Pack float32 weights w (Cout, Cin, 3, 3) (device) into wp (ipr_cu_conv3x3_packed_elems bf16). */
int ipr_cu_conv3x3_pack(uint16_t *wp, const float *w, int Cout, int Cin, ipr_cuda_stream s);

/* Around the cuDNN convolutions (layout.cu): dst (B, HW, C) bf16 = src (B, C, HW) float32; out (B, C, HW) float32 =
 * beta * out + y (B, HW, C) bf16 + bias[c] (if not NULL) + residual (B, C, HW) (if not NULL; it may be out only
 * with beta 0); wk (Cout, 3, 3, Cin) bf16 = w (Cout, Cin, 3, 3) float32 (cuDNN's NHWC filter layout, KRSC). */
int ipr_cu_nchw_to_nhwc_bf16(uint16_t *dst, const float *src, int B, int C, int HW, ipr_cuda_stream s);
int ipr_cu_nhwc_bf16_epilogue(float *out, const uint16_t *y, const float *bias, const float *residual, float beta,
                              int B, int C, int HW, ipr_cuda_stream s);
int ipr_cu_pack_krsc_bf16(uint16_t *wk, const float *w, int Cout, int Cin, ipr_cuda_stream s);

/* y (B, C, HW) += bias[c] (+ residual (B, C, HW) if not NULL). */
int ipr_cu_bias_residual(float *y, const float *bias, const float *residual, int B, int C, int HW,
                         ipr_cuda_stream s);
/* out = SiLU(x), n elements (in place allowed). */
int ipr_cu_silu(float *out, const float *x, size_t n, ipr_cuda_stream s);
/* Channel concat: out (B, Ca+Cb, HW) = [a (B, Ca, HW), b (B, Cb, HW)]. */
int ipr_cu_concat(float *out, const float *a, int Ca, const float *b, int Cb, int B, int HW, ipr_cuda_stream s);
/* Nearest upsample (PyTorch 'nearest'): (B, C, H, W) -> (B, C, Ho, Wo). */
int ipr_cu_upsample_nearest(float *out, const float *x, int B, int C, int H, int W, int Ho, int Wo,
                            ipr_cuda_stream s);
/* Bilinear resize of a (B, 1, H, W) map, align_corners=False, no antialias (PyTorch semantics). */
int ipr_cu_resize_bilinear(float *out, const float *x, int B, int H, int W, int Ho, int Wo, ipr_cuda_stream s);

/* Row softmax in place: rows of length n, each scaled by `scale` first. */
int ipr_cu_softmax_rows(float *x, int rows, int n, float scale, ipr_cuda_stream s);

/* Sinusoidal embedding (spec 1.4) of n levels: out (n, 256) = [cos(a f_i), sin(a f_i)],
 * a = max(1000 t - 1, 0), f_i = exp(-ln(10000) i / 128) in float32. */
int ipr_cu_sinusoid(float *out, const float *t, int n, ipr_cuda_stream s);
/* Linear epilogue: y (n, C) += bias[c], optional SiLU. */
int ipr_cu_bias_act(float *y, const float *bias, int n, int C, int silu, ipr_cuda_stream s);

/* Distinct levels of a float map (n values): sorted unique values, their count to the DEVICE int *count (the
 * caller reads it back, one copy for several maps), and per value its index among them. tmp is scratch of
 * ipr_cu_unique_scratch(n) bytes. Asynchronous. */
size_t ipr_cu_unique_scratch(int n);
int ipr_cu_unique_index(float *uniq, int *count, int32_t *index, const float *values, int n, void *tmp,
                        ipr_cuda_stream s);
/* uniq[i] = 0 for *count <= i < n (count on the device): the rows of a level table past its distinct levels,
 * which a fixed-shape (graph-captured) embedding computes but never reads, hold a finite level. */
int ipr_cu_pad_levels(float *uniq, const int *count, int n, ipr_cuda_stream s);


/* ---- the region-token DiT (dit_tokens.cu, dit_norm.cu, dit_attention.cu; spec dit.md) ---- */

/* tok (B N, f) in dtype = the tokens of x (B, C, H, W): regions row-major, each region's (c, p1, p2) vector
 * split into s^2 sub-tokens of f = C p^2 / s^2 values (sub-token (h, w) takes every s^2-th value). wiener: each
 * token times c(t) of its level tlev[tidx[token]] (ipr_dit_input_factor); tlev, tidx unread otherwise. */
int ipr_cu_dit_tokenize(void *tok, ipr_cu_dtype dt, const float *x, const float *tlev, const int *tidx, int wiener,
                        int B, int C, int H, int W, int p, int s, ipr_cuda_stream st);
/* y (B, 2C + 1, H, W) from out (B N, 2f + 1): u (or, with x_param, (x - x_hat) / max(t, t_min), t =
 * tlev[tidx[token]]), raw v, and the mean log-variance of each region's tokens broadcast to its pixels. */
int ipr_cu_dit_untokenize(float *y, const float *out, const float *x, const float *tlev, const int *tidx, int B,
                          int C, int H, int W, int p, int s, int x_param, float t_min, ipr_cuda_stream st);
/* out (n, 256) = spec 1.4 sinusoid of n levels, the argument in double (as the CPU engine). */
int ipr_cu_dit_sinusoid(float *out, const float *t, int n, ipr_cuda_stream st);
/* h (rows, d) in dtype = LN(x) (1 + scale) + shift, LN without affine parameters, (shift, scale) = columns
 * [shift_off, +d) and [scale_off, +d) of row idx[row] of mod (ld floats a row). With pos (N, d), x += pos[row mod
 * N] first (written back). */
int ipr_cu_dit_ln_mod(void *h, ipr_cu_dtype dt, float *x, const float *pos, int N, const float *mod, int ld,
                      int shift_off, int scale_off, const int *idx, int rows, int d, float eps, ipr_cuda_stream s);
/* x (rows, d) += gate o, gate = gmod[idx[row]] from column gate_off; then, when h is not NULL, h = LN(x) (1 +
 * scale) + shift with the rows of hmod (the next sublayer's modulation). */
int ipr_cu_dit_gate_residual(float *x, const float *o, const float *gmod, int gld, int gate_off, void *h,
                             ipr_cu_dtype dt, const float *hmod, int hld, int shift_off, int scale_off,
                             const int *idx, int rows, int d, float eps, ipr_cuda_stream s);
/* x = GELU(x) (tanh approximation), n elements in dtype, in place. */
int ipr_cu_dit_gelu(void *x, ipr_cu_dtype dt, size_t n, ipr_cuda_stream s);
/* out (B N, d) = per image and head softmax(q k^T / sqrt(d / heads)) v of qkv (B N, 3d), (3, heads, d / heads)
 * per token; float32 or bf16 (tensor cores) by dt; head width <= 128. */
int ipr_cu_dit_attention(void *out, const void *qkv, ipr_cu_dtype dt, int B, int N, int d, int heads,
                         ipr_cuda_stream s);

#ifdef __cplusplus
}
#endif
#endif
