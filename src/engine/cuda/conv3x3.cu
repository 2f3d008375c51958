/* conv3x3.cu: a 3x3 convolution (padding 1, stride 1 or 2) as an implicit GEMM on BF16 tensor cores: the
 * im2col columns are gathered straight from the float32 NCHW input into shared memory, never to global memory.
 *
 * GEMM view, with the batch folded into the columns: C (Cout, B*Ho*Wo) = A (Cout, K) . X (K, B*Ho*Wo), K = Cin*9,
 * row k = ci*9 + ky*3 + kx (the order of PyTorch's (Cout, Cin, 3, 3) weights), column p = (b, oy, ox),
 * X[k][p] = x[b][ci][oy*s + ky - 1][ox*s + kx - 1] or 0 outside the image. Folding the batch keeps the blocks
 * full at 7x7 (49 columns a sample).
 *
 * Block: 128 threads (4 warps) own a 64 (Cout) x 64 (columns) tile of C; each warp a 32x32 quarter, 2x2 WMMA
 * 16x16x16 bf16 fragments with float32 accumulators. K advances 32 at a time through two shared-memory stages:
 * the next tile's global loads go to registers while the warps multiply the current one, then to the other stage
 * (one __syncthreads per K tile). A is pre-packed (ipr_cu_conv3x3_pack) zero-padded to (64 m, 32 k) multiples,
 * so its tile is two 16-byte loads a thread with no bounds checks; X is gathered one float a (row, column) with the
 * checks (k < K, p < B*Ho*Wo, the image border) and zeros elsewhere, so the padding never reaches the sums.
 * Epilogue: the accumulators go through shared memory (the stages' space) so that a warp writes 32 consecutive
 * pixels of one output channel: out = beta * out + conv + bias[co] + residual. */
#include <cuda_bf16.h>
#include <mma.h>

#include "cuda_check.cuh"
#include "ops_cuda.h"

namespace wmma = nvcuda::wmma;

#define CV_BM 64              /* output channels a block */
#define CV_BN 64              /* output pixels (over the batch) a block */
#define CV_BK 32              /* K a stage */
#define CV_THREADS 128
#define CV_LDA (CV_BK + 8)    /* bf16 row pitch of the A stage: 80 bytes, 16-byte rows, staggered banks */
#define CV_LDB (CV_BN + 8)    /* bf16 row pitch of the X stage */
#define CV_LDC (CV_BN + 4)    /* float row pitch of the epilogue tile */
/* X rows each thread gathers a stage: its column is fixed (threadIdx % 64), its rows step by 2 */
#define CV_BROWS (CV_BK * CV_BN / CV_THREADS)

struct cv_stages {
    __nv_bfloat16 a[2][CV_BM * CV_LDA]; /* (64, 32) of A, row-major */
    __nv_bfloat16 b[2][CV_BK * CV_LDB]; /* (32, 64) of X, row-major */
};
union cv_smem {
    cv_stages st;
    float c[CV_BM * CV_LDC]; /* (64, 64) of C after the K loop */
};

static __host__ __device__ inline int cv_round_up(int v, int m) { return (v + m - 1) / m * m; }

static __global__ void __launch_bounds__(CV_THREADS)
    conv3x3_kernel(float *__restrict__ out, const float *__restrict__ x, const __nv_bfloat16 *__restrict__ wp,
                   const float *__restrict__ bias, const float *residual, float beta, int Cin, int Cout, int H, int W,
                   int stride, int Ho, int Wo, int ncols) {
    __shared__ __align__(128) cv_smem sm;
    const int tid = threadIdx.x, warp = tid >> 5;
    const int wm = warp >> 1, wn = warp & 1; /* the warp's 32x32 quarter */
    const int m0 = blockIdx.y * CV_BM, n0 = blockIdx.x * CV_BN;
    const int K = Cin * 9, Kp = cv_round_up(K, CV_BK), nk = Kp / CV_BK;
    const int N = Ho * Wo;

    /* this thread's X column: one output pixel, fixed for the whole K loop */
    const int bcol = tid & (CV_BN - 1), brow0 = tid / CV_BN;
    const int p = n0 + bcol;
    const int pvalid = p < ncols;
    int iy0 = 0, ix0 = 0;
    const float *xs = x;
    if (pvalid) {
        const int b = p / N, r = p - b * N, oy = r / Wo, ox = r - oy * Wo;
        iy0 = oy * stride - 1;
        ix0 = ox * stride - 1;
        xs = x + (size_t)b * Cin * H * W;
    }
    /* this thread's A chunks: 8 bf16 (16 bytes) each, rows tid / 4 and tid / 4 + 32 */
    const int arow = tid >> 2, acol = (tid & 3) * 8;
    const __nv_bfloat16 *wa = wp + (size_t)(m0 + arow) * Kp + acol;
    const size_t a_half = (size_t)32 * Kp; /* the second chunk, 32 rows down */

    uint4 ra[2];
    float rb[CV_BROWS];
    auto load = [&](int kt) {
        ra[0] = *reinterpret_cast<const uint4 *>(wa + (size_t)kt * CV_BK);
        ra[1] = *reinterpret_cast<const uint4 *>(wa + a_half + (size_t)kt * CV_BK);
#pragma unroll
        for (int i = 0; i < CV_BROWS; ++i) {
            const int k = kt * CV_BK + brow0 + 2 * i;
            float v = 0.0f;
            if (pvalid && k < K) {
                const int ci = k / 9, r9 = k - ci * 9, ky = r9 / 3, kx = r9 - ky * 3;
                const int iy = iy0 + ky, ix = ix0 + kx;
                if (iy >= 0 && iy < H && ix >= 0 && ix < W) v = __ldg(xs + ((size_t)ci * H + iy) * W + ix);
            }
            rb[i] = v;
        }
    };
    auto store = [&](int s) {
        *reinterpret_cast<uint4 *>(&sm.st.a[s][arow * CV_LDA + acol]) = ra[0];
        *reinterpret_cast<uint4 *>(&sm.st.a[s][(arow + 32) * CV_LDA + acol]) = ra[1];
#pragma unroll
        for (int i = 0; i < CV_BROWS; ++i) sm.st.b[s][(brow0 + 2 * i) * CV_LDB + bcol] = __float2bfloat16_rn(rb[i]);
    };

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

    load(0);
    store(0);
    __syncthreads();
    for (int kt = 0; kt < nk; ++kt) {
        const int s = kt & 1;
        if (kt + 1 < nk) load(kt + 1); /* in flight while this stage is multiplied */
#pragma unroll
        for (int kk = 0; kk < CV_BK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb[2];
#pragma unroll
            for (int i = 0; i < 2; ++i)
                wmma::load_matrix_sync(fa[i], &sm.st.a[s][(wm * 32 + i * 16) * CV_LDA + kk], CV_LDA);
#pragma unroll
            for (int j = 0; j < 2; ++j)
                wmma::load_matrix_sync(fb[j], &sm.st.b[s][kk * CV_LDB + wn * 32 + j * 16], CV_LDB);
#pragma unroll
            for (int i = 0; i < 2; ++i)
#pragma unroll
                for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
        /* the other stage was last read in iteration kt - 1, which the previous barrier closed */
        if (kt + 1 < nk) store(s ^ 1);
        __syncthreads();
    }

    /* epilogue: the stages are dead (barrier above), their space holds C */
#pragma unroll
    for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j)
            wmma::store_matrix_sync(&sm.c[(wm * 32 + i * 16) * CV_LDC + wn * 32 + j * 16], acc[i][j], CV_LDC,
                                    wmma::mem_row_major);
    __syncthreads();
    if (!pvalid) return;
    const int b = p / N, r = p - b * N;
#pragma unroll 4
    for (int m = brow0; m < CV_BM; m += CV_THREADS / CV_BN) {
        const int co = m0 + m;
        if (co >= Cout) break;
        const size_t o = ((size_t)b * Cout + co) * N + r; /* (B, Cout, Ho, Wo) */
        float v = sm.c[m * CV_LDC + bcol];
        if (bias) v += __ldg(bias + co);
        if (residual) v += residual[o];
        if (beta != 0.0f) v += beta * out[o]; /* beta 0 never reads out: it may hold anything */
        out[o] = v;
    }
}

static __global__ void conv3x3_pack_kernel(__nv_bfloat16 *wp, const float *w, int Cout, int K, int Mp, int Kp) {
    const size_t n = (size_t)Mp * Kp;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const int m = (int)(i / Kp), k = (int)(i - (size_t)m * Kp);
        wp[i] = __float2bfloat16_rn(m < Cout && k < K ? w[(size_t)m * K + k] : 0.0f);
    }
}

extern "C" size_t ipr_cu_conv3x3_packed_elems(int Cout, int Cin) {
    return (size_t)cv_round_up(Cout, CV_BM) * cv_round_up(Cin * 9, CV_BK);
}

extern "C" int ipr_cu_conv3x3_pack(uint16_t *wp, const float *w, int Cout, int Cin, ipr_cuda_stream s) {
    const int K = Cin * 9, Mp = cv_round_up(Cout, CV_BM), Kp = cv_round_up(K, CV_BK);
    conv3x3_pack_kernel<<<ipr_cu_blocks((size_t)Mp * Kp, 256), 256, 0, (cudaStream_t)s>>>((__nv_bfloat16 *)wp, w,
                                                                                           Cout, K, Mp, Kp);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

extern "C" int ipr_cu_conv3x3_bf16(float *out, const float *x, const uint16_t *wp, const float *bias,
                                   const float *residual, float beta, int B, int Cin, int Cout, int H, int W,
                                   int stride, int Ho, int Wo, ipr_cuda_stream s) {
    const long long ncols = (long long)B * Ho * Wo;
    if (ncols > 0x7fffffffLL - CV_BN) {
        ipr_error_set(__FILE__, __LINE__, "conv3x3: %lld output pixels exceed the kernel's int indexing", ncols);
        return IPR_ERR;
    }
    if ((uintptr_t)wp % 16 != 0) {
        ipr_error_set(__FILE__, __LINE__, "conv3x3: packed weights not 16-byte aligned");
        return IPR_ERR;
    }
    dim3 grid((unsigned)((ncols + CV_BN - 1) / CV_BN), (unsigned)((Cout + CV_BM - 1) / CV_BM));
    conv3x3_kernel<<<grid, CV_THREADS, 0, (cudaStream_t)s>>>(out, x, (const __nv_bfloat16 *)wp, bias, residual, beta,
                                                             Cin, Cout, H, W, stride, Ho, Wo, (int)ncols);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}
