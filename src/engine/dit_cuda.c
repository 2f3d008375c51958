/* dit_cuda.c: the region-token DiT forward pass on one GPU. It walks the CPU net's plan (dit_internal.h) with a
 * device copy of the weight arena (same offsets), cuBLASLt for every linear layer (bias and GELU in the epilogue),
 * and the kernels of src/engine/cuda/dit_*.cu. The t_emb MLP and every adaLN modulation run once per distinct
 * noise level of the batch (found on the host: a sampler's batch has a few dozen), not per token; the forward
 * from the level upload to the untokenized output is captured once per (batch, level bucket) as a CUDA graph and
 * replayed. */
#include "ipr/dit_cuda.h"

#include <cublasLt.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/ops_cuda.h"
#include "cuda_host.h"
#include "dit_internal.h"
#include "ipr/common.h"

#define LT(expr)                                                                                          \
    do {                                                                                                  \
        cublasStatus_t s_ = (expr);                                                                       \
        if (s_ != CUBLAS_STATUS_SUCCESS) IPR_FAIL("cuBLASLt: %s failed: status %d", #expr, (int)s_);      \
    } while (0)

#define LT_WORKSPACE ((size_t)32 << 20)
#define PLAN_CAP 2048
#define GRAPH_CAP 24

typedef enum { EPI_BIAS = 0, EPI_GELU_BIAS = 1 } epi_t;

/* One cuBLASLt matmul, planned once: its descriptors and the heuristic's algorithm. */
typedef struct {
    const void *w, *bias;
    int rows, in, out;
    epi_t epi;
    cudaDataType_t tin, tout;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
} gemm_plan;

struct ipr_dit_cuda {
    ipr_dit *net;
    int device;
    ipr_precision prec;
    char name[256];
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *ws;
    ipr_cu_dtype adt;       /* activation type of GEMM operands: float32 or bf16 */
    cudaDataType_t cdt;     /* its CUDA type */
    cublasComputeType_t ct;
    /* weights: the host arena's float32 copy (same offsets) and, in BF16 mode, a bf16 mirror */
    float *dw;
    uint16_t *dw16;
    float *pos;             /* (N, d) */
    size_t wbytes, abytes;
    /* activations */
    unsigned char *arena;
    float *x_in, *y_out;    /* (max_batch, C, H, W), (max_batch, 2C + 1, H, W) */
    float *xres, *o, *out;  /* (rows, d), (rows, d), (rows, 2f + 1) */
    void *h, *qkv, *att, *mlp, *tok; /* (rows, d), (rows, 3d), (rows, d), (rows, hid), (rows, f) in adt */
    float *tlev;            /* (cap) levels */
    int *tidx;              /* (max_batch N) level index per token */
    float *sinus, *c1, *sc; /* (cap, 256), (cap, d), (cap, d) = SiLU(t_emb) */
    float *mod[2], *outmod; /* (cap, 6d) ping-pong per block, (cap, 2d) */
    int cap;
    /* host side */
    float *h_tlev;          /* pinned (cap) */
    int *h_tidx;            /* pinned (max_batch N) */
    uint32_t *hkeys;        /* level hash: float bits + 1 (0 = empty) */
    int *hvals;
    int hcap;
    int last_levels;
    /* plans and graphs */
    gemm_plan *plans;
    int n_plans;
    ipr_graph_cache gc; /* keyed by (batch, level bucket) */
    int lt_gelu;            /* GELU in cuBLASLt's epilogue (default) or as a kernel after a bias-only GEMM */
};

/* ---------------- helpers ---------------- */

static const void *dW(const ipr_dit_cuda *g, const float *host) { return g->dw + (host - g->net->wt.arena); }
static const void *dW16(const ipr_dit_cuda *g, const float *host) { return g->dw16 + (host - g->net->wt.arena); }

/* The device copy of a linear layer's weight in the operand type, and its bias in the output type. */
static const void *lin_w(const ipr_dit_cuda *g, const ipr_dit_linear *l, int operand_bf16) {
    return operand_bf16 ? dW16(g, l->w) : dW(g, l->w);
}

static void plan_destroy(gemm_plan *p) {
    if (p->desc) cublasLtMatmulDescDestroy(p->desc);
    if (p->la) cublasLtMatrixLayoutDestroy(p->la);
    if (p->lb) cublasLtMatrixLayoutDestroy(p->lb);
    if (p->lc) cublasLtMatrixLayoutDestroy(p->lc);
    memset(p, 0, sizeof *p);
}

/* D (rows, out) = X (rows, in) W^T + bias [GELU]: column-major, D^T (out x rows) = W (out x in) . X^T, so
 * A = W with op T (stored (in x out), ld in), B = X (in x rows, ld in), D (out x rows, ld out); the bias runs
 * along D's rows = out, broadcast over tokens. */
static int gemm(ipr_dit_cuda *g, void *D, cudaDataType_t tout, const void *X, cudaDataType_t tin, const void *W,
                const void *bias, int rows, int in, int out, epi_t epi, cublasComputeType_t ct) {
    gemm_plan *p = NULL, tmp;
    for (int i = 0; i < g->n_plans; ++i) {
        gemm_plan *q = &g->plans[i];
        if (q->w == W && q->bias == bias && q->rows == rows && q->in == in && q->out == out && q->epi == epi &&
            q->tin == tin && q->tout == tout) {
            p = q;
            break;
        }
    }
    int transient = 0;
    if (!p) {
        if (g->n_plans < PLAN_CAP) {
            p = &g->plans[g->n_plans];
        } else {
            p = &tmp;
            transient = 1;
        }
        memset(p, 0, sizeof *p);
        p->w = W, p->bias = bias, p->rows = rows, p->in = in, p->out = out, p->epi = epi, p->tin = tin, p->tout = tout;
        LT(cublasLtMatmulDescCreate(&p->desc, ct, CUDA_R_32F));
        const cublasOperation_t opT = CUBLAS_OP_T, opN = CUBLAS_OP_N;
        LT(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opT, sizeof opT));
        LT(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opN, sizeof opN));
        const cublasLtEpilogue_t e = epi == EPI_GELU_BIAS ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
        LT(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof e));
        LT(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
        LT(cublasLtMatrixLayoutCreate(&p->la, tin, (uint64_t)in, (uint64_t)out, (int64_t)in));
        LT(cublasLtMatrixLayoutCreate(&p->lb, tin, (uint64_t)in, (uint64_t)rows, (int64_t)in));
        LT(cublasLtMatrixLayoutCreate(&p->lc, tout, (uint64_t)out, (uint64_t)rows, (int64_t)out));
        cublasLtMatmulPreference_t pref = NULL;
        LT(cublasLtMatmulPreferenceCreate(&pref));
        size_t ws = LT_WORKSPACE;
        cublasLtMatmulHeuristicResult_t res;
        int found = 0;
        cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                                                 sizeof ws);
        if (st == CUBLAS_STATUS_SUCCESS)
            st = cublasLtMatmulAlgoGetHeuristic(g->lt, p->desc, p->la, p->lb, p->lc, p->lc, pref, 1, &res, &found);
        cublasLtMatmulPreferenceDestroy(pref);
        LT(st);
        IPR_CHECK(found > 0, "cuBLASLt: no algorithm for a %d x %d x %d GEMM (epilogue %d)", out, rows, in, (int)epi);
        p->algo = res.algo;
        if (!transient) g->n_plans++;
    }
    const float one = 1.0f, zero = 0.0f;
    LT(cublasLtMatmul(g->lt, p->desc, &one, W, p->la, X, p->lb, &zero, D, p->lc, D, p->lc, &p->algo, g->ws,
                      LT_WORKSPACE, g->stream));
    if (transient) plan_destroy(p);
    return IPR_OK;
fail:
    if (transient) plan_destroy(p);
    return IPR_ERR;
}

/* A linear layer on activations: operands in the activation type (weights from the matching arena copy). */
static int linear_act(ipr_dit_cuda *g, void *D, int out_f32, const void *X, const ipr_dit_linear *l, int rows,
                      epi_t epi) {
    const int bf = g->adt == IPR_CU_BF16;
    const int dbf = bf && !out_f32;
    return gemm(g, D, dbf ? CUDA_R_16BF : CUDA_R_32F, X, g->cdt, lin_w(g, l, bf),
                dbf ? dW16(g, l->b) : dW(g, l->b), rows, l->in, l->out, epi, g->ct);
}

/* A linear layer of the per-level path: float32 throughout (a few dozen rows; exact modulation). */
static int linear_f32(ipr_dit_cuda *g, float *D, const float *X, const ipr_dit_linear *l, int rows) {
    return gemm(g, D, CUDA_R_32F, X, CUDA_R_32F, dW(g, l->w), dW(g, l->b), rows, l->in, l->out, EPI_BIAS,
                CUBLAS_COMPUTE_32F);
}

/* ---------------- setup ---------------- */


static size_t layout(ipr_dit_cuda *g, unsigned char *base) {
    const ipr_dit *n = g->net;
    const size_t rows = (size_t)n->max_batch * n->N, es = g->adt == IPR_CU_BF16 ? 2 : 4, f4 = sizeof(float);
    const size_t img = (size_t)n->max_batch * n->H * n->W;
    ipr_bump b = {base, 0};
    g->x_in = ipr_bump_take(&b, img * n->C * f4);
    g->y_out = ipr_bump_take(&b, img * (2 * n->C + 1) * f4);
    g->xres = ipr_bump_take(&b, rows * n->d * f4);
    g->o = ipr_bump_take(&b, rows * n->d * f4);
    g->out = ipr_bump_take(&b, rows * n->n_out * f4);
    g->h = ipr_bump_take(&b, rows * n->d * es);
    g->qkv = ipr_bump_take(&b, rows * 3 * n->d * es);
    g->att = ipr_bump_take(&b, rows * n->d * es);
    g->mlp = ipr_bump_take(&b, rows * n->hid * es);
    g->tok = ipr_bump_take(&b, rows * n->f * es);
    g->tlev = ipr_bump_take(&b, (size_t)g->cap * f4);
    g->tidx = ipr_bump_take(&b, rows * sizeof(int));
    g->sinus = ipr_bump_take(&b, (size_t)g->cap * IPR_DIT_SINUSOID * f4);
    g->c1 = ipr_bump_take(&b, (size_t)g->cap * n->d * f4);
    g->sc = ipr_bump_take(&b, (size_t)g->cap * n->d * f4);
    g->mod[0] = ipr_bump_take(&b, (size_t)g->cap * 6 * n->d * f4);
    g->mod[1] = ipr_bump_take(&b, (size_t)g->cap * 6 * n->d * f4);
    g->outmod = ipr_bump_take(&b, (size_t)g->cap * 2 * n->d * f4);
    g->ws = ipr_bump_take(&b, LT_WORKSPACE);
    return b.off + 256;
}

/* level buckets: multiples of 64 up to 1024, then of 4096, never past cap (fewer graph shapes) */
static int bucket(int n, int cap) {
    int b = n <= 1024 ? (n + 63) / 64 * 64 : (n + 4095) / 4096 * 4096;
    if (b < 64) b = 64;
    return b < cap ? b : cap;
}

ipr_dit_cuda *ipr_dit_cuda_new(ipr_dit *net, int device, ipr_precision precision) {
    ipr_dit_cuda *g = ipr_calloc(1, sizeof *g, "CUDA DiT");
    if (!g) return NULL;
    g->net = net;
    g->device = device;
    g->prec = precision;
    int nd = 0;
    IPR_CHECK(ipr_cuda_available(&nd), "no CUDA device is visible");
    IPR_CHECK(device >= 0 && device < nd, "CUDA device %d requested, %d visible", device, nd);
    IPR_CHECK(net->d <= 1024, "CUDA DiT: width %d > 1024 is not supported by the LayerNorm kernel", net->d);
    CU(cudaSetDevice(device));
    struct cudaDeviceProp prop;
    CU(cudaGetDeviceProperties(&prop, device));
    snprintf(g->name, sizeof g->name, "%s", prop.name);
    CU(cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking));
    LT(cublasLtCreate(&g->lt));
    g->adt = precision == IPR_PREC_BF16 ? IPR_CU_BF16 : IPR_CU_F32;
    g->cdt = precision == IPR_PREC_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    g->ct = precision == IPR_PREC_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    const char *ev = getenv("IPR_DIT_GRAPHS");
    g->gc.on = !(ev && strcmp(ev, "0") == 0);
    g->gc.cap = GRAPH_CAP;
    g->gc.key_len = 2;
    /* cuBLASLt's GELU epilogue is the tanh approximation (as PyTorch's _addmm_activation relies on); with
     * $IPR_DIT_LT_GELU=0 the kernel of dit_norm.cu applies it instead, to check that claim on a new library */
    const char *eg = getenv("IPR_DIT_LT_GELU");
    g->lt_gelu = !(eg && strcmp(eg, "0") == 0);

    /* weights: the whole host arena so that offsets carry over; BF16 mode adds a bf16 mirror */
    const size_t wfl = net->wt.floats;
    g->wbytes = wfl * sizeof(float);
    CU(cudaMalloc((void **)&g->dw, g->wbytes));
    CU(cudaMemcpy(g->dw, net->wt.arena, g->wbytes, cudaMemcpyHostToDevice));
    if (precision == IPR_PREC_BF16) {
        CU(cudaMalloc((void **)&g->dw16, wfl * sizeof(uint16_t)));
        IPR_TRY(ipr_cu_to_bf16(g->dw16, g->dw, wfl, g->stream));
        g->wbytes += wfl * sizeof(uint16_t);
    }
    CU(cudaMalloc((void **)&g->pos, (size_t)net->N * net->d * sizeof(float)));
    CU(cudaMemcpy(g->pos, net->pos, (size_t)net->N * net->d * sizeof(float), cudaMemcpyHostToDevice));
    g->wbytes += (size_t)net->N * net->d * sizeof(float);

    /* levels: at most one per region of the batch */
    g->cap = (net->max_batch * net->R + 63) / 64 * 64;
    g->abytes = layout(g, NULL);
    CU(cudaMalloc((void **)&g->arena, g->abytes));
    layout(g, g->arena);
    CU(cudaMallocHost((void **)&g->h_tlev, (size_t)g->cap * sizeof(float)));
    CU(cudaMallocHost((void **)&g->h_tidx, (size_t)net->max_batch * net->N * sizeof(int)));
    g->hcap = 1;
    while (g->hcap < 2 * g->cap) g->hcap <<= 1;
    g->hkeys = ipr_calloc((size_t)g->hcap, sizeof(uint32_t), "level hash");
    g->hvals = ipr_calloc((size_t)g->hcap, sizeof(int), "level hash");
    g->plans = ipr_calloc(PLAN_CAP, sizeof(gemm_plan), "GEMM plans");
    if (!g->hkeys || !g->hvals || !g->plans) goto fail;
    CU(cudaStreamSynchronize(g->stream));
    ipr_log(IPR_LOG_DEBUG, "CUDA DiT on %s: weights %.1f MiB, activations %.1f MiB (max batch %d, %d level rows)",
            g->name, g->wbytes / 1048576.0, g->abytes / 1048576.0, net->max_batch, g->cap);
    return g;
fail:
    ipr_error_context("setting up the CUDA DiT");
    ipr_dit_cuda_free(g);
    return NULL;
}

void ipr_dit_cuda_free(ipr_dit_cuda *g) {
    if (!g) return;
    ipr_graph_cache_clear(&g->gc);
    for (int i = 0; i < g->n_plans; ++i) plan_destroy(&g->plans[i]);
    free(g->plans);
    free(g->hkeys);
    free(g->hvals);
    if (g->h_tlev) cudaFreeHost(g->h_tlev);
    if (g->h_tidx) cudaFreeHost(g->h_tidx);
    if (g->arena) cudaFree(g->arena);
    if (g->pos) cudaFree(g->pos);
    if (g->dw16) cudaFree(g->dw16);
    if (g->dw) cudaFree(g->dw);
    if (g->lt) cublasLtDestroy(g->lt);
    if (g->stream) cudaStreamDestroy(g->stream);
    free(g);
}

void ipr_dit_cuda_arena_bytes(const ipr_dit_cuda *g, size_t *weights, size_t *activations) {
    if (weights) *weights = g->wbytes;
    if (activations) *activations = g->abytes;
}

void ipr_dit_cuda_set_graphs(ipr_dit_cuda *g, int on) { g->gc.on = on != 0; }
int ipr_dit_cuda_last_levels(const ipr_dit_cuda *g) { return g->last_levels; }
int ipr_dit_cuda_graphs(const ipr_dit_cuda *g) { return g->gc.n; }
const char *ipr_dit_cuda_device_name(const ipr_dit_cuda *g) { return g->name; }

void ipr_dit_cuda_buffers(ipr_dit_cuda *g, float **x, float **y) {
    if (x) *x = g->x_in;
    if (y) *y = g->y_out;
}

int ipr_dit_cuda_upload(ipr_dit_cuda *g, float *dst, const float *src, size_t n) {
    return ipr_cuda_upload_floats(g->device, dst, src, n);
}

int ipr_dit_cuda_synchronize(ipr_dit_cuda *g) { return ipr_cuda_stream_sync(g->stream); }

/* ---------------- levels (host) ---------------- */

/* Every token's level index and the distinct levels of t (B, 1, H, W): a region's level is its top-left pixel;
 * its bottom-right pixel must agree (the CPU engine checks every pixel). Returns the level count or IPR_ERR. */
/* Level v of region r of image b: its index in the distinct-level table (added when new) for each of the region's
 * tokens. */
static void add_level(ipr_dit_cuda *g, int b, int r, float v, int *nl) {
    const ipr_dit *n = g->net;
    const int s2 = n->s * n->s;
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    if (bits == 0x80000000u) bits = 0; /* -0 and +0 are one level */
    const uint32_t key = bits + 1u;
    uint32_t hsh = (key * 2654435761u) & (uint32_t)(g->hcap - 1);
    while (g->hkeys[hsh] && g->hkeys[hsh] != key) hsh = (hsh + 1) & (uint32_t)(g->hcap - 1);
    if (!g->hkeys[hsh]) {
        g->hkeys[hsh] = key;
        g->hvals[hsh] = *nl;
        g->h_tlev[(*nl)++] = v == 0.0f ? 0.0f : v;
    }
    const int li = g->hvals[hsh];
    int *ti = g->h_tidx + ((size_t)b * n->R + r) * s2;
    for (int j = 0; j < s2; ++j) ti[j] = li;
}

/* The distinct levels of a host noise map t (B, 1, H, W), which must be constant on each region. */
static int find_levels(ipr_dit_cuda *g, const float *t, int B) {
    const ipr_dit *n = g->net;
    const int p = n->p;
    memset(g->hkeys, 0, (size_t)g->hcap * sizeof(uint32_t));
    int nl = 0;
    for (int b = 0; b < B; ++b) {
        const float *tb = t + (size_t)b * n->H * n->W;
        for (int r = 0; r < n->R; ++r) {
            const int ry = r / n->gw, rx = r - ry * n->gw;
            const float v = tb[(size_t)ry * p * n->W + (size_t)rx * p];
            const float v2 = tb[(size_t)(ry * p + p - 1) * n->W + (size_t)(rx * p + p - 1)];
            IPR_CHECK(v == v2 && isfinite(v),
                      "DiT forward: the noise map of image %d is not constant on region %d (%g at its top-left "
                      "pixel, %g at its bottom-right)",
                      b, r, (double)v, (double)v2);
            add_level(g, b, r, v, &nl);
        }
    }
    return nl;
fail:
    return IPR_ERR;
}

/* The distinct levels of per-region levels (B, R) on the host. */
static int find_region_levels(ipr_dit_cuda *g, const float *levels, int B) {
    const ipr_dit *n = g->net;
    memset(g->hkeys, 0, (size_t)g->hcap * sizeof(uint32_t));
    int nl = 0;
    for (int b = 0; b < B; ++b)
        for (int r = 0; r < n->R; ++r) {
            const float v = levels[(size_t)b * n->R + r];
            IPR_CHECK(isfinite(v), "DiT forward: level of image %d, region %d is %g", b, r, (double)v);
            add_level(g, b, r, v, &nl);
        }
    return nl;
fail:
    return IPR_ERR;
}

/* ---------------- the forward (capturable) ---------------- */

static int forward_core(ipr_dit_cuda *g, int B, int nb) {
    const ipr_dit *n = g->net;
    const int rows = B * n->N, d = n->d, L = n->cfg.depth;
    const float eps = (float)IPR_DIT_LN_EPS;
    cudaStream_t st = g->stream;
    CU(cudaMemcpyAsync(g->tlev, g->h_tlev, (size_t)nb * sizeof(float), cudaMemcpyHostToDevice, st));
    CU(cudaMemcpyAsync(g->tidx, g->h_tidx, (size_t)rows * sizeof(int), cudaMemcpyHostToDevice, st));
    /* per level: c = t_emb(t) (spec dit.md 1), sc = SiLU(c) shared by every adaLN_modulation */
    IPR_TRY(ipr_cu_dit_sinusoid(g->sinus, g->tlev, nb, st));
    IPR_TRY(linear_f32(g, g->c1, g->sinus, &n->temb1, nb));
    IPR_TRY(ipr_cu_silu(g->c1, g->c1, (size_t)nb * d, st));
    IPR_TRY(linear_f32(g, g->sc, g->c1, &n->temb2, nb));
    IPR_TRY(ipr_cu_silu(g->sc, g->sc, (size_t)nb * d, st));
    IPR_TRY(linear_f32(g, g->outmod, g->sc, &n->out_ada, nb));
    IPR_TRY(linear_f32(g, g->mod[0], g->sc, &n->blocks[0].ada, nb));
    /* tokens -> x = patch_emb(tokens) + pos; h = modulated LN of block 0 */
    IPR_TRY(ipr_cu_dit_tokenize(g->tok, g->adt, g->x_in, g->tlev, g->tidx, n->cfg.input_scale == IPR_DIT_INPUT_WIENER, B,
                                n->C, n->H, n->W, n->p, n->s, st));
    IPR_TRY(linear_act(g, g->xres, 1, g->tok, &n->patch, rows, EPI_BIAS));
    IPR_TRY(ipr_cu_dit_ln_mod(g->h, g->adt, g->xres, g->pos, n->N, g->mod[0], 6 * d, 0, d, g->tidx, rows, d, eps, st));
    for (int l = 0; l < L; ++l) {
        const ipr_dit_block *bk = &n->blocks[l];
        float *M = g->mod[l & 1];
        IPR_TRY(linear_act(g, g->qkv, 0, g->h, &bk->qkv, rows, EPI_BIAS));
        IPR_TRY(ipr_cu_dit_attention(g->att, g->qkv, g->adt, B, n->N, d, n->heads, st));
        IPR_TRY(linear_act(g, g->o, 1, g->att, &bk->proj, rows, EPI_BIAS));
        /* x += gate1 attn; h = LN(x) (1 + scale2) + shift2 */
        IPR_TRY(ipr_cu_dit_gate_residual(g->xres, g->o, M, 6 * d, 2 * d, g->h, g->adt, M, 6 * d, 3 * d, 4 * d, g->tidx,
                                         rows, d, eps, st));
        if (g->lt_gelu) {
            IPR_TRY(linear_act(g, g->mlp, 0, g->h, &bk->fc1, rows, EPI_GELU_BIAS));
        } else {
            IPR_TRY(linear_act(g, g->mlp, 0, g->h, &bk->fc1, rows, EPI_BIAS));
            IPR_TRY(ipr_cu_dit_gelu(g->mlp, g->adt, (size_t)rows * n->hid, st));
        }
        IPR_TRY(linear_act(g, g->o, 1, g->mlp, &bk->fc2, rows, EPI_BIAS));
        /* x += gate2 mlp; h = the next block's (or the output layer's) modulated LN */
        const float *next = g->outmod;
        int nld = 2 * d;
        if (l + 1 < L) {
            IPR_TRY(linear_f32(g, g->mod[(l + 1) & 1], g->sc, &n->blocks[l + 1].ada, nb));
            next = g->mod[(l + 1) & 1];
            nld = 6 * d;
        }
        IPR_TRY(ipr_cu_dit_gate_residual(g->xres, g->o, M, 6 * d, 5 * d, g->h, g->adt, next, nld, 0, d, g->tidx, rows,
                                         d, eps, st));
    }
    IPR_TRY(linear_act(g, g->out, 1, g->h, &n->out_lin, rows, EPI_BIAS));
    IPR_TRY(ipr_cu_dit_untokenize(g->y_out, g->out, g->x_in, g->tlev, g->tidx, B, n->C, n->H, n->W, n->p, n->s,
                                  n->cfg.parameterization == IPR_DIT_PARAM_X, (float)n->cfg.t_min, st));
    return IPR_OK;
fail:
    return IPR_ERR;
}

typedef struct {
    ipr_dit_cuda *g;
    int B, nb;
} core_args;

static int core_body(void *ctx) {
    const core_args *a = ctx;
    return forward_core(a->g, a->B, a->nb);
}

/* Run forward_core for (B, nb) through the graph cache (cuda_host.h): replay its graph, capturing it first; without
 * graphs (or if a capture fails) run it directly. */
static int run_core(ipr_dit_cuda *g, int B, int nb) {
    const int key[2] = {B, nb};
    core_args a = {g, B, nb};
    return ipr_graph_cache_run(&g->gc, g->stream, key, core_body, &a, "CUDA DiT");
}

static int prepare(ipr_dit_cuda *g, const float *t, const float *levels, int B) {
    IPR_CHECK(B >= 1 && B <= g->net->max_batch, "CUDA DiT forward: batch %d outside 1..%d", B, g->net->max_batch);
    CU(cudaSetDevice(g->device));
    /* the pinned level buffers are read by the previous forward's copies: wait for it */
    CU(cudaStreamSynchronize(g->stream));
    const int nl = levels ? find_region_levels(g, levels, B) : find_levels(g, t, B);
    if (nl < 0) goto fail;
    g->last_levels = nl;
    const int nb = bucket(nl, g->cap);
    for (int i = nl; i < nb; ++i) g->h_tlev[i] = 0.0f;
    return nb;
fail:
    return IPR_ERR;
}

/* One forward with x copied in and y copied out by `kind` (device-to-device copies skipped when the caller passes
 * the net's own buffers); a host destination is waited for. */
static int forward_copy(ipr_dit_cuda *g, const float *x, const float *t, const float *levels, int B, float *y,
                        enum cudaMemcpyKind in, enum cudaMemcpyKind out) {
    const ipr_dit *n = g->net;
    const size_t img = (size_t)B * n->H * n->W;
    const int nb = prepare(g, t, levels, B);
    if (nb < 0) goto fail;
    if (x != g->x_in) CU(cudaMemcpyAsync(g->x_in, x, img * n->C * sizeof(float), in, g->stream));
    IPR_TRY(run_core(g, B, nb));
    if (y != g->y_out) CU(cudaMemcpyAsync(y, g->y_out, img * (2 * n->C + 1) * sizeof(float), out, g->stream));
    if (out == cudaMemcpyDeviceToHost) CU(cudaStreamSynchronize(g->stream));
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_dit_cuda_forward_device(ipr_dit_cuda *g, const float *x, const float *t, int B, float *y) {
    return forward_copy(g, x, t, NULL, B, y, cudaMemcpyDeviceToDevice, cudaMemcpyDeviceToDevice);
}

int ipr_dit_cuda_forward_levels(ipr_dit_cuda *g, const float *x, const float *levels, int B, float *y) {
    return forward_copy(g, x, NULL, levels, B, y, cudaMemcpyDeviceToDevice, cudaMemcpyDeviceToDevice);
}

int ipr_dit_cuda_forward(ipr_dit_cuda *g, const float *x, const float *t, int B, float *y) {
    return forward_copy(g, x, t, NULL, B, y, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost);
}
