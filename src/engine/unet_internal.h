/* unet_internal.h: the planned SRM U-Net shared by unet.c (plan + forward), unet_temb.c (time embedding
 * per distinct level) and unet_io.c (checkpoints). Not installed; the public API is ipr/unet.h. */
#ifndef IPR_UNET_INTERNAL_H
#define IPR_UNET_INTERNAL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "ipr/unet.h"
#include "ops_cpu.h"
#include "weights.h"

#define IPR_UNET_NAME_CAP 112
/* im2col scratch is tiled into bands of output rows of at most this many floats (16 MiB) */
#define IPR_UNET_COL_BUDGET ((size_t)1 << 22)
/* attention score rows are processed in blocks of at most this many floats (4 MiB) */
#define IPR_UNET_SCORE_BUDGET ((size_t)1 << 20)
/* default distinct noise levels per forward; see ipr_unet_new */
#define IPR_UNET_TEMB_DEFAULT_CAP 8192
/* rows per MLP / projection GEMM in the time embedding */
#define IPR_UNET_TEMB_CHUNK 64

typedef struct { float *w, *b; int c_out, c_in, k; } ipr_conv_w;       /* w (c_out, c_in, k, k) */
typedef struct { float *gamma, *beta; int c; } ipr_norm_w;             /* GroupNorm(32, c) */
typedef struct { float *w, *b; int out, in; } ipr_linear_w;            /* w (out, in) */

/* spec 1.3 ResBlock: conv_1 = GN, SiLU, conv3x3; norm_with_embedding = GN(h + Linear(SiLU(emb)));
 * conv_2 = SiLU, Dropout, conv3x3; 1x1 shortcut when channels change. */
typedef struct {
    int c_in, c_out, level;
    ipr_norm_w norm1;
    ipr_conv_w conv1;
    ipr_norm_w norm2;
    ipr_linear_w emb;
    ipr_conv_w conv2;
    int has_shortcut;
    ipr_conv_w shortcut;
} ipr_resblock_w;

/* spec 1.3 attention: x + proj(MHA(qkv(GN(x)))), qkv/proj are Conv1d(k=1) */
typedef struct {
    int c, heads, ch, level;
    int rows;                /* query rows per score block: rows * T <= IPR_UNET_SCORE_BUDGET (or T) */
    ipr_norm_w norm;
    ipr_conv_w qkv, proj;
} ipr_attn_w;

/* One entry of encoder.blocks / decoder.blocks (an EmbedSequential in the reference). */
typedef struct {
    int level;               /* resolution level of its input */
    int c_out;               /* channels of its output */
    int is_conv_in, has_res, has_attn, has_down, has_up;
    ipr_resblock_w res;
    ipr_attn_w attn;
    ipr_conv_w resample;     /* downsample (stride 2) or upsample conv */
    char name_res[IPR_UNET_NAME_CAP], name_attn[IPR_UNET_NAME_CAP], name_resample[IPR_UNET_NAME_CAP];
} ipr_unet_stage;

/* The time-embedding table of one forward pass (spec 1.4 evaluated once per distinct level). */
typedef struct {
    int cap;                 /* distinct levels it holds */
    int chunk;               /* rows of every time-embedding GEMM (fixed: see unet_temb.c) */
    int hcap;                /* hash slots, a power of two >= 2 cap */
    int pcap;                /* rows of P, a multiple of chunk */
    double *tmap;            /* per level l at max_batch * off[l]: (B, h_l, w_l) resized noise map */
    int32_t *idx;            /* same layout: per pixel its row in the level's table */
    uint64_t *hkeys;         /* (hcap) bits of the level */
    int32_t *hvals;          /* (hcap) global id, -1 empty */
    double *gval;            /* (cap) the distinct levels */
    float *E;                /* (cap, t_emb_dim) shared MLP output per distinct level */
    int32_t *loc;            /* (cap) global id -> level-local row, -1 between uses */
    int32_t *list[IPR_UNET_MAX_LEVELS]; /* (min(cap, B h_l w_l)) level-local row -> global id */
    int n_level[IPR_UNET_MAX_LEVELS];
    float *sin;              /* (chunk, d_emb) */
    float *hid;              /* (chunk, t_emb_dim) */
    float *out;              /* (chunk, t_emb_dim) */
    float *G;                /* (chunk, t_emb_dim) SiLU(E) rows of one chunk */
    float *P;                /* (pcap, c_max) one block's projection per level-local row */
    double *tv;              /* (chunk) scratch levels */
    int B;                   /* batch of the last prepare */
    int n_distinct, fallback;
} ipr_unet_temb;

struct ipr_unet {
    ipr_unet_config cfg;
    int max_batch, H, W;
    int L;
    int lh[IPR_UNET_MAX_LEVELS], lw[IPR_UNET_MAX_LEVELS]; /* spatial size per level: ceil halving */
    size_t loff[IPR_UNET_MAX_LEVELS];                     /* sum of h_k w_k for k < l */
    size_t lsum;                                          /* sum of h_l w_l over all levels */

    /* weights: every tensor in the shared table's one arena (weights.h); the shared MLP's other names are
     * aliases of tensors 0..3 */
    ipr_weights wt;
    float *warena;               /* = wt.arena, (wbytes) bytes: what unet_cuda.c uploads */
    size_t wbytes;
    ipr_linear_w temb1, temb2;   /* time_embedding.mlp.0 / .2 */
    float *freqs;                /* (d_emb / 2) sinusoid frequencies (derived, in the weight arena) */
    int n_enc, n_dec, n_skips;
    ipr_unet_stage *enc;         /* enc[0] is conv_in */
    ipr_unet_stage *dec;
    ipr_resblock_w mid0, mid1;   /* bottleneck.blocks.0 / .2 */
    ipr_attn_w mid_attn;         /* bottleneck.blocks.1 */
    ipr_norm_w out_norm;         /* decoder.out.0 */
    ipr_conv_w out_conv;         /* decoder.out.2 */
    int *skip_c, *skip_level;    /* (n_skips) */
    int c_max;                   /* widest ResBlock output */

    /* activations */
    unsigned char *aarena;
    size_t abytes;
    float **skips;               /* (n_skips) each (max_batch, C, h, w) */
    float *hA, *hB;              /* (max_batch, C, h, w) decoder ping-pong */
    float *cat;                  /* (max_batch, C_h + C_skip, h, w) */
    float *tmp, *u, *col, *qkv, *scores; /* one sample's scratch */
    ipr_unet_temb temb;

    ipr_unet_stage_fn hook;
    void *hook_ctx;
};

/* unet_temb.c */
void ipr_unet_temb_mlp(ipr_unet *net, const double *t, int n, float *out);
void ipr_unet_temb_prepare(ipr_unet *net, const float *t, int B);
void ipr_unet_temb_project(ipr_unet *net, const ipr_linear_w *emb, int level);
void ipr_unet_temb_add(ipr_unet *net, const ipr_linear_w *emb, int level, int b, float *u);

/* unet_io.c */
int ipr_unet_config_read_h5(hid_t file, const char *path, ipr_unet_config *cfg);
int ipr_unet_config_same_arch(const ipr_unet_config *a, const ipr_unet_config *b);

#endif
