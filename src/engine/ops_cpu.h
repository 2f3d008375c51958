/* ops_cpu.h: the CPU ops of the SRM U-Net, one function per op, each on one sample (B = 1) unless its
 * shape comment says otherwise. Plain C + OpenBLAS; the reference every other backend is tested against. */
#ifndef IPR_OPS_CPU_H
#define IPR_OPS_CPU_H

#include <stddef.h>
#include <stdint.h>

/* GroupNorm eps of torch.nn.GroupNorm (spec 1.2: 32 groups everywhere). */
#define IPR_GN_EPS 1e-5f
#define IPR_GN_GROUPS 32

/* Row-major C (M, N) = alpha op(A) op(B) + beta C, as cblas_sgemm, computed so that no value depends on the
 * number of threads: N is cut into fixed blocks of IPR_CPU_GEMM_BLOCK columns, each one single-threaded OpenBLAS
 * call, and the blocks are shared among ipr_cpu_set_threads threads (OpenMP where the build has it). OpenBLAS's own
 * threading is turned off: it splits a product by its thread count and rounds differently with each (measured:
 * 2.4e-6 on the U-Net fixture, 9.5e-6 on a DiT fixture between 1 and 2 threads), which made a run's results depend
 * on the ranks sharing a node. */
#define IPR_CPU_GEMM_BLOCK 256
void ipr_cpu_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc);
/* Threads of ipr_cpu_sgemm (n >= 1; before any call: the online cores). The numbers never depend on it. */
void ipr_cpu_set_threads(int n);
int ipr_cpu_threads(void);
/* A cap on the threads of the ipr_cpu_sgemm calls made from the calling thread alone (n >= 1; 0 lifts it), for a
 * thread that is itself one of several working at once (the sampler's scorers on its host threads): without it each
 * would start a team of ipr_cpu_threads() OpenMP threads. Returns the previous cap. The numbers never depend on it.
 * Concurrent ipr_cpu_sgemm calls from several threads are safe: OpenBLAS runs at one thread (set once, before the
 * first call), so each cblas_sgemm computes on its caller's thread, and its work buffers come from
 * blas_memory_alloc, which takes a lock in the threaded builds (libopenblas0-pthread 0.3.21 here: USE_THREAD=1,
 * openblas_get_parallel() = 1). */
int ipr_cpu_set_local_threads(int n);

/* Floats of im2col scratch a k x k conv of c_in channels to (ho, wo) needs when it is tiled into bands
 * of output rows of at most `budget` floats (at least one output row). */
size_t ipr_cpu_conv2d_col_floats(int c_in, int k, int ho, int wo, size_t budget);

/* y (c_out, ho*wo) = w (c_out, c_in, k, k) * x (c_in, h, w) + b, zero padding `pad`, stride `stride`;
 * accumulate = 1 adds to y instead (y += conv(x) + b). col: scratch of ipr_cpu_conv2d_col_floats(.., budget)
 * floats (unused for 1x1 stride-1 convs). */
void ipr_cpu_conv2d(float *y, const float *x, const float *w, const float *b, int c_in, int h, int wd, int c_out,
                    int k, int stride, int pad, int ho, int wo, float *col, size_t col_budget, int accumulate);

/* y (C, HW) = GroupNorm(x) * gamma + beta over `groups` groups, statistics in double; then SiLU if silu.
 * y may equal x. */
void ipr_cpu_group_norm(float *y, const float *x, const float *gamma, const float *beta, int C, int HW,
                        int groups, float eps, int silu);

/* y = x * sigmoid(x), n elements; y may equal x. */
void ipr_cpu_silu(float *y, const float *x, size_t n);

/* PyTorch interpolate(mode="nearest") of x (C, h, w) to y (C, ho, wo) (float32 source-index arithmetic
 * as ATen's nearest_idx). */
void ipr_cpu_upsample_nearest(float *y, const float *x, int C, int h, int w, int ho, int wo);

/* PyTorch interpolate(mode="bilinear", align_corners=False, antialias=False) of one map x (h, w) to
 * y (ho, wo), computed in double (as the reference's float64 run). */
void ipr_cpu_resize_bilinear(double *y, const float *x, int h, int w, int ho, int wo);

/* Multi-head attention core, legacy layout (spec 1.3): qkv (heads * 3 * ch, T) with head h holding
 * [q_h | k_h | v_h] (ch rows each); out (heads * ch, T). softmax(q^T k * ch^-1/2) row-wise in float with
 * max subtraction. scores: scratch of rows_block * T floats (query rows per block). */
void ipr_cpu_attention(float *out, const float *qkv, int heads, int ch, int T, float *scores, int rows_block);

/* y (n, out) = x (n, in) * w^T + b, w (out, in) row-major as torch.nn.Linear. Row-deterministic: row i
 * of y depends on row i of x alone (bitwise), whatever n is and wherever the row sits. */
void ipr_cpu_linear(float *y, const float *x, const float *w, const float *b, int n, int in, int out);

/* Sinusoidal embedding (spec 1.4) of n levels: out (n, d_emb) = [cos(a f_i), sin(a f_i)] (zero pad if
 * d_emb is odd), a = max(1000 t - 1, 0) in double, freqs (d_emb / 2) the float32 frequencies. */
void ipr_cpu_sinusoid(float *out, const double *t, int n, int d_emb, const float *freqs);
/* f_i = exp(-ln(10000) * i / half) in float32 arithmetic, as the reference builds it. */
void ipr_cpu_sinusoid_freqs(float *freqs, int half);

/* u (C, HW): u[c, p] += table[idx[p] * C + c], the per-pixel embedding gathered from a table of
 * per-level rows (spec 1.3: added before the second GroupNorm). */
void ipr_cpu_add_indexed(float *u, const float *table, const int32_t *idx, int C, int HW);

/* ---- ops of the scorer networks (classifier.c) ---- */

/* y = max(x, 0), n elements; y may equal x. NaN stays NaN, as torch.relu. */
void ipr_cpu_relu(float *y, const float *x, size_t n);

/* y (C, h/2, w/2) = torch.nn.MaxPool2d(2, 2) of x (C, h, w): output size rounded down, a NaN in a
 * window gives NaN (as torch). y must not overlap x. */
void ipr_cpu_maxpool2(float *y, const float *x, int C, int h, int w);

/* y (C) = mean over the HW pixels of x (C, HW) (AdaptiveAvgPool2d(1)), sums in double. */
void ipr_cpu_global_avg_pool(float *y, const float *x, int C, int HW);

#endif
