/* dit_attention.cu: the DiT's multi-head self-attention core (spec dit.md 4: softmax(q k^T / sqrt(d/h)) v over all
 * tokens of an image, no mask), qkv (B N, 3d) split as (3, heads, d/h) per token -> out (B N, d) as (heads, d/h).
 * Two kernels, one per operand type, neither materialises N x N scores in global memory:
 *  - float32 (FP32 / TF32 modes): one thread per query row, keys and values staged through shared memory in tiles
 *    of 32, online softmax in float32;
 *  - bfloat16 (BF16 mode): one block per (image, head) with K and V of the whole image in shared memory, each warp
 *    takes 16 query rows: S = Q K^T on the tensor cores (WMMA 16x16x16, float32 accumulation) into shared memory,
 *    the row softmax in float32, P rounded to bf16, O = P V on the tensor cores; the head width is zero-padded to
 *    a multiple of 16. */
#include <cuda_bf16.h>
#include <math.h>
#include <mma.h>

#include "cuda_check.cuh"
#include "ops_cuda.h"

typedef __nv_bfloat16 bf16;

/* ---------------- float32 ---------------- */

#define F32_THREADS 128
#define F32_TILE 32

template <int MAXDH>
static __global__ void attn_f32_kernel(float *out, const float *qkv, int N, int d, int dh, float scale) {
    __shared__ float Ks[F32_TILE][MAXDH];
    __shared__ float Vs[F32_TILE][MAXDH];
    const int h = blockIdx.y, b = blockIdx.z;
    const int n = blockIdx.x * blockDim.x + threadIdx.x;
    const float *base = qkv + (size_t)b * N * 3 * d;
    float q[MAXDH], acc[MAXDH];
#pragma unroll
    for (int c = 0; c < MAXDH; ++c) {
        q[c] = (n < N && c < dh) ? base[(size_t)n * 3 * d + h * dh + c] : 0.0f;
        acc[c] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int j0 = 0; j0 < N; j0 += F32_TILE) {
        const int nk = min(F32_TILE, N - j0);
        for (int i = threadIdx.x; i < F32_TILE * MAXDH; i += blockDim.x) {
            const int r = i / MAXDH, c = i - r * MAXDH;
            const bool ok = r < nk && c < dh;
            const size_t row = (size_t)(j0 + r) * 3 * d;
            Ks[r][c] = ok ? base[row + d + h * dh + c] : 0.0f;
            Vs[r][c] = ok ? base[row + 2 * d + h * dh + c] : 0.0f;
        }
        __syncthreads();
        if (n < N) {
            for (int jj = 0; jj < nk; ++jj) {
                float s = 0.0f;
#pragma unroll
                for (int c = 0; c < MAXDH; ++c) s += q[c] * Ks[jj][c];
                s *= scale;
                if (s > m) {
                    const float corr = expf(m - s); /* m = -inf at the first key: corr = 0 */
                    l *= corr;
#pragma unroll
                    for (int c = 0; c < MAXDH; ++c) acc[c] *= corr;
                    m = s;
                }
                const float p = expf(s - m);
                l += p;
#pragma unroll
                for (int c = 0; c < MAXDH; ++c) acc[c] += p * Vs[jj][c];
            }
        }
        __syncthreads();
    }
    if (n < N) {
        float *o = out + ((size_t)b * N + n) * d + h * dh;
        const float inv = 1.0f / l;
#pragma unroll
        for (int c = 0; c < MAXDH; ++c)
            if (c < dh) o[c] = acc[c] * inv;
    }
}

/* ---------------- bfloat16, tensor cores ---------------- */

using namespace nvcuda;

struct wmma_layout {
    int Npad, LDK, SLD, PLD;
    size_t shared, kv, per_warp;
};

static wmma_layout wmma_plan(int N, int DHP, int warps) {
    wmma_layout w;
    w.Npad = (N + 15) / 16 * 16;
    w.LDK = DHP + 8;                                 /* bf16 row stride of Q, K, V tiles */
    w.SLD = (w.Npad > DHP ? w.Npad : DHP) + 4;       /* float row stride of S (and of the O staging) */
    w.PLD = w.Npad + 8;                              /* bf16 row stride of P */
    w.kv = (size_t)2 * w.Npad * w.LDK * sizeof(bf16);
    w.per_warp = (size_t)16 * w.LDK * sizeof(bf16) + (size_t)16 * w.SLD * sizeof(float) +
                 (size_t)16 * w.PLD * sizeof(bf16) + 16 * sizeof(float) + 32;
    w.per_warp = (w.per_warp + 255) / 256 * 256;     /* every region stays 256-byte aligned (WMMA wants 32) */
    w.shared = w.kv + (size_t)warps * w.per_warp;
    return w;
}

static __device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

static __device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

template <int DHP>
static __global__ void attn_wmma_kernel(bf16 *out, const bf16 *qkv, int N, int d, int dh, float scale_log2e,
                                        wmma_layout L) {
    extern __shared__ __align__(256) unsigned char smem[];
    const int h = blockIdx.x, b = blockIdx.y;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
    const int Npad = L.Npad, LDK = L.LDK, SLD = L.SLD, PLD = L.PLD;
    bf16 *Ks = (bf16 *)smem;
    bf16 *Vs = Ks + (size_t)Npad * LDK;
    unsigned char *wb = smem + L.kv + (size_t)warp * L.per_warp;
    bf16 *Qs = (bf16 *)wb;
    float *S = (float *)(wb + (size_t)16 * LDK * sizeof(bf16));
    bf16 *P = (bf16 *)((unsigned char *)S + (size_t)16 * SLD * sizeof(float));
    float *rowsum = (float *)((unsigned char *)P + (size_t)16 * PLD * sizeof(bf16));

    const bf16 *base = qkv + (size_t)b * N * 3 * d;
    const bf16 zero = __float2bfloat16(0.0f);
    for (int i = threadIdx.x; i < Npad * DHP; i += blockDim.x) {
        const int r = i / DHP, c = i - r * DHP;
        bf16 kv = zero, vv = zero;
        if (r < N && c < dh) {
            kv = base[(size_t)r * 3 * d + d + h * dh + c];
            vv = base[(size_t)r * 3 * d + 2 * d + h * dh + c];
        }
        Ks[r * LDK + c] = kv;
        Vs[r * LDK + c] = vv;
    }
    __syncthreads();

    const int tiles = Npad / 16;
    for (int qt = warp; qt < tiles; qt += nwarps) {
        for (int i = lane; i < 16 * DHP; i += 32) {
            const int r = i / DHP, c = i - r * DHP, n = qt * 16 + r;
            Qs[r * LDK + c] = (n < N && c < dh) ? base[(size_t)n * 3 * d + h * dh + c] : zero;
        }
        __syncwarp();
        /* S (16, Npad) = Q K^T */
        for (int kt = 0; kt < tiles; ++kt) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
            wmma::fill_fragment(acc, 0.0f);
#pragma unroll
            for (int kk = 0; kk < DHP / 16; ++kk) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fa;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> fb;
                wmma::load_matrix_sync(fa, Qs + kk * 16, LDK);
                wmma::load_matrix_sync(fb, Ks + (size_t)kt * 16 * LDK + kk * 16, LDK);
                wmma::mma_sync(acc, fa, fb, acc);
            }
            wmma::store_matrix_sync(S + kt * 16, acc, SLD, wmma::mem_row_major);
        }
        __syncwarp();
        /* row softmax in float32; P = bf16(exp(scale (s - max))), zero past N */
        for (int r = 0; r < 16; ++r) {
            const float *sr = S + (size_t)r * SLD;
            float mx = -INFINITY;
            for (int j = lane; j < N; j += 32) mx = fmaxf(mx, sr[j]);
            mx = warp_max(mx);
            float sum = 0.0f;
            for (int j = lane; j < Npad; j += 32) {
                const float pj = j < N ? exp2f((sr[j] - mx) * scale_log2e) : 0.0f;
                sum += pj;
                P[(size_t)r * PLD + j] = __float2bfloat16(pj);
            }
            sum = warp_sum(sum);
            if (lane == 0) rowsum[r] = sum;
        }
        __syncwarp();
        /* O (16, DHP) = P V */
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> oacc[DHP / 16];
#pragma unroll
        for (int c = 0; c < DHP / 16; ++c) wmma::fill_fragment(oacc[c], 0.0f);
        for (int kt = 0; kt < tiles; ++kt) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> fp;
            wmma::load_matrix_sync(fp, P + kt * 16, PLD);
#pragma unroll
            for (int c = 0; c < DHP / 16; ++c) {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> fv;
                wmma::load_matrix_sync(fv, Vs + (size_t)kt * 16 * LDK + c * 16, LDK);
                wmma::mma_sync(oacc[c], fp, fv, oacc[c]);
            }
        }
        __syncwarp();
#pragma unroll
        for (int c = 0; c < DHP / 16; ++c) wmma::store_matrix_sync(S + c * 16, oacc[c], SLD, wmma::mem_row_major);
        __syncwarp();
        for (int i = lane; i < 16 * dh; i += 32) {
            const int r = i / dh, c = i - r * dh, n = qt * 16 + r;
            if (n < N) out[((size_t)b * N + n) * d + h * dh + c] = __float2bfloat16(S[(size_t)r * SLD + c] / rowsum[r]);
        }
        __syncwarp();
    }
}

template <int DHP>
static int launch_wmma(bf16 *out, const bf16 *qkv, int B, int N, int d, int heads, int dh, cudaStream_t st) {
    static const size_t limit = 227 * 1024; /* Hopper's opt-in shared memory per block */
    int warps = 4;
    wmma_layout L = wmma_plan(N, DHP, warps);
    while (L.shared > limit && warps > 1) L = wmma_plan(N, DHP, --warps);
    if (L.shared > limit) {
        ipr_error_set(__FILE__, __LINE__, "DiT attention: %d tokens of head width %d need %zu bytes of shared memory "
                      "(limit %zu)", N, dh, L.shared, limit);
        return IPR_ERR;
    }
    IPR_CU_CHECK(cudaFuncSetAttribute(attn_wmma_kernel<DHP>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      (int)L.shared));
    const float scale_log2e = 1.4426950408889634f / sqrtf((float)dh);
    attn_wmma_kernel<DHP><<<dim3((unsigned)heads, (unsigned)B), 32 * warps, L.shared, st>>>(out, qkv, N, d, dh,
                                                                                          scale_log2e, L);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}

extern "C" int ipr_cu_dit_attention(void *out, const void *qkv, ipr_cu_dtype dt, int B, int N, int d, int heads,
                                    ipr_cuda_stream s) {
    cudaStream_t st = (cudaStream_t)s;
    const int dh = d / heads;
    if (dh > 128 || dh * heads != d) {
        ipr_error_set(__FILE__, __LINE__, "DiT attention: head width %d (d %d, %d heads) unsupported (<= 128)", dh, d,
                      heads);
        return IPR_ERR;
    }
    if (dt == IPR_CU_BF16) {
        bf16 *o = (bf16 *)out;
        const bf16 *q = (const bf16 *)qkv;
        switch ((dh + 15) / 16) {
        case 1: return launch_wmma<16>(o, q, B, N, d, heads, dh, st);
        case 2: return launch_wmma<32>(o, q, B, N, d, heads, dh, st);
        case 3: return launch_wmma<48>(o, q, B, N, d, heads, dh, st);
        case 4: return launch_wmma<64>(o, q, B, N, d, heads, dh, st);
        case 5: return launch_wmma<80>(o, q, B, N, d, heads, dh, st);
        case 6: return launch_wmma<96>(o, q, B, N, d, heads, dh, st);
        case 7: return launch_wmma<112>(o, q, B, N, d, heads, dh, st);
        default: return launch_wmma<128>(o, q, B, N, d, heads, dh, st);
        }
    }
    const dim3 grid((unsigned)((N + F32_THREADS - 1) / F32_THREADS), (unsigned)heads, (unsigned)B);
    const float scale = 1.0f / sqrtf((float)dh);
    if (dh <= 32)
        attn_f32_kernel<32><<<grid, F32_THREADS, 0, st>>>((float *)out, (const float *)qkv, N, d, dh, scale);
    else if (dh <= 64)
        attn_f32_kernel<64><<<grid, F32_THREADS, 0, st>>>((float *)out, (const float *)qkv, N, d, dh, scale);
    else
        attn_f32_kernel<128><<<grid, F32_THREADS, 0, st>>>((float *)out, (const float *)qkv, N, d, dh, scale);
    IPR_CU_LAUNCHED();
    return IPR_OK;
}
