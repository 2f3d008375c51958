/* dit_internal.h: the planned region-token DiT shared by dit.c (plan + CPU forward), dit_io.c (checkpoints) and
 * dit_cuda.c (the GPU forward walks the same plan with device copies of the weight arena). Not installed; the
 * public API is ipr/dit.h. */
#ifndef IPR_DIT_INTERNAL_H
#define IPR_DIT_INTERNAL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "ipr/dit.h"
#include "weights.h"

/* rows of the t_emb MLP per call while the distinct levels are embedded (any value gives the same numbers:
 * ipr_cpu_linear is row-deterministic) */
#define IPR_DIT_LEVEL_CHUNK 64

/* torch.nn.Linear: y (n, out) = x (n, in) w^T + b, w (out, in) row-major */
typedef struct {
    float *w, *b;
    int out, in;
} ipr_dit_linear;

/* blocks.{i} (spec dit.md 4) */
typedef struct {
    ipr_dit_linear ada;  /* adaLN_modulation.1: (6d, d), chunks shift1, scale1, gate1, shift2, scale2, gate2 */
    ipr_dit_linear qkv;  /* attn.qkv: (3d, d), split (3, heads, d / heads) */
    ipr_dit_linear proj; /* attn.proj: (d, d) */
    ipr_dit_linear fc1;  /* mlp.fc1: (mlp_ratio d, d) */
    ipr_dit_linear fc2;  /* mlp.fc2: (d, mlp_ratio d) */
} ipr_dit_block;

struct ipr_dit {
    ipr_dit_config cfg;
    int max_batch;
    int H, W, C, p, s;     /* image, channels, region side, tokens per region side */
    int gh, gw, R;         /* region grid, regions */
    int N, f;              /* tokens per image, features per token */
    int d, heads, dh, hid; /* width, heads, head width, MLP hidden width */
    int n_out;             /* 2 f + 1 outputs per token */

    /* weights: every tensor lives in the table's one arena (shared loader, weights.h) */
    ipr_weights wt;
    ipr_dit_linear temb1, temb2; /* t_emb.mlp.0 (d, 256), t_emb.mlp.2 (d, d) */
    ipr_dit_linear patch;        /* patch_emb.proj (d, f) */
    ipr_dit_block *blocks;       /* (depth) */
    ipr_dit_linear out_ada;      /* out_layer.adaLN_modulation.1 (2d, d): shift, scale */
    ipr_dit_linear out_lin;      /* out_layer.linear (2f + 1, d) */
    /* derived constants, not tensors: in the same arena after every tensor (so one upload of wt.arena, wt.floats
     * floats, carries them), never loaded or saved */
    float *pos;                  /* (N, d) fixed 2-D sin-cos position embedding, token order */
    float *freqs;                /* (128) sinusoid frequencies in float32 (spec 1.4) */

    /* activations (CPU forward; dit.c lays them out in one arena). M = max_batch N token rows; a forward holds
     * at most lcap = max_batch R distinct noise levels. Only x, tok and tmp hold the whole batch: a block runs
     * image by image through the one-image buffers. */
    unsigned char *aarena;
    size_t abytes;
    int lcap;          /* max_batch R */
    float *x;          /* (M, d) residual stream */
    float *tok;        /* (M, f) tokens */
    float *tokc;       /* (N, f) one image's tokens times c(t) (input_scale wiener only; else NULL) */
    float *tmp;        /* (M, max(d, 2f + 1)) output-layer rows; the t_emb stage gathered for the hook */
    float *h;          /* (N, d) one image's normalised + modulated input of attention / MLP */
    float *qkv;        /* (N, 3d) */
    float *att;        /* (N, d) attention output before proj */
    float *mlp;        /* (N, hid) */
    float *proj;       /* (N, d) attn.proj / mlp.fc2 output before its gate */
    float *scores;     /* (N, N) one head's attention probabilities */
    float *rlev;       /* (max_batch R) region levels */
    int32_t *ridx;     /* (max_batch R) row of each region's level in the level tables */
    uint32_t *lbits;   /* (lcap) sorted distinct level bit patterns */
    float *lc;         /* (lcap, d) t_emb output c per distinct level */
    float *lsc;        /* (lcap, d) SiLU(c) */
    float *lmod;       /* (lcap, 6d) one block's (or the output layer's) adaLN_modulation rows per level */
    float *lsin;       /* (IPR_DIT_LEVEL_CHUNK, 256) sinusoids of a chunk of levels */
    float *lhid;       /* (IPR_DIT_LEVEL_CHUNK, d) */
    int n_levels;      /* distinct levels of the last forward */
    int per_region;    /* tests: one level row per region instead of per distinct level (must be bitwise equal) */

    ipr_dit_stage_fn hook;
    void *hook_ctx;
};

/* dit_io.c */
int ipr_dit_config_read_h5(hid_t file, const char *path, ipr_dit_config *cfg);
int ipr_dit_config_same_arch(const ipr_dit_config *a, const ipr_dit_config *b);

/* ipr_dit_new, refusing (before any allocation) an architecture with more parameters than file_values, the
 * values a checkpoint's /weights holds (ipr_weights_h5_values); file_values < 0: no bound. */
ipr_dit *ipr_dit_new_bounded(const ipr_dit_config *cfg, int max_batch, int64_t file_values);

#endif
