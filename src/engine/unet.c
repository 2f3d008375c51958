/* unet.c: the SRM denoiser U-Net on the CPU: the plan (state_dict names, shapes, both arenas) built from
 * the config at load, and the forward pass over it (spec 1.3). Nothing is allocated in the forward. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipr/common.h"
#include "unet_internal.h"

/* ------------------------------------------------------------------------------------------------ */
/* plan: one walk over the architecture registers every tensor in the shared weight table (weights.h, with the
 * address each field receives once the arena exists) and sizes the activation buffers. */

typedef struct {
    ipr_unet *net;
    int failed;         /* a name did not fit or a skip has the wrong size */
    /* activation sizes in floats, for one sample (hbuf and cat are later multiplied by max_batch) */
    size_t tmp, u, col, qkv, scores;
    size_t hbuf, cat;
    int c_max;
} ipr_plan;

#define PLAN_MAX(field, v)                      \
    do {                                        \
        size_t v_ = (size_t)(v);                \
        if (v_ > pl->field) pl->field = v_;     \
    } while (0)

static void plan_tensor(ipr_plan *pl, float **bind, ipr_weights_kind kind, int rank, int64_t d0, int64_t d1,
                        int64_t d2, int64_t d3, const char *fmt, ...) IPR_PRINTF(9, 10);
static void plan_tensor(ipr_plan *pl, float **bind, ipr_weights_kind kind, int rank, int64_t d0, int64_t d1,
                        int64_t d2, int64_t d3, const char *fmt, ...) {
    const int64_t dims[4] = {d0, d1, d2, d3};
    char name[IPR_WEIGHTS_NAME_CAP];
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof name) pl->failed = 1;
    ipr_weights_add(&pl->net->wt, name, rank, dims, kind, bind);
}

/* A second state_dict name for tensor `target` (the shared time MLP, spec 1.4). */
static void plan_alias(ipr_plan *pl, int target, const char *fmt, ...) IPR_PRINTF(3, 4);
static void plan_alias(ipr_plan *pl, int target, const char *fmt, ...) {
    char name[IPR_WEIGHTS_NAME_CAP];
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof name) pl->failed = 1;
    ipr_weights_alias(&pl->net->wt, target, name);
}

static void plan_conv(ipr_plan *pl, ipr_conv_w *cv, int c_out, int c_in, int k, int rank, const char *prefix) {
    cv->c_out = c_out;
    cv->c_in = c_in;
    cv->k = k;
    if (rank == 4)
        plan_tensor(pl, &cv->w, IPR_WEIGHTS_WEIGHT, 4, c_out, c_in, k, k, "%s.weight", prefix);
    else /* Conv1d (attention qkv / proj): (c_out, c_in, 1) */
        plan_tensor(pl, &cv->w, IPR_WEIGHTS_WEIGHT, 3, c_out, c_in, 1, 0, "%s.weight", prefix);
    plan_tensor(pl, &cv->b, IPR_WEIGHTS_BIAS, 1, c_out, 0, 0, 0, "%s.bias", prefix);
}

static void plan_norm(ipr_plan *pl, ipr_norm_w *nw, int c, const char *prefix) {
    nw->c = c;
    plan_tensor(pl, &nw->gamma, IPR_WEIGHTS_GAIN, 1, c, 0, 0, 0, "%s.weight", prefix);
    plan_tensor(pl, &nw->beta, IPR_WEIGHTS_BIAS, 1, c, 0, 0, 0, "%s.bias", prefix);
}

static void plan_col(ipr_plan *pl, int c_in, int k, int ho, int wo) {
    PLAN_MAX(col, ipr_cpu_conv2d_col_floats(c_in, k, ho, wo, IPR_UNET_COL_BUDGET));
}

static void plan_resblock(ipr_plan *pl, ipr_resblock_w *rb, const char *p, int c_in, int c_out, int level) {
    ipr_unet *net = pl->net;
    char name[IPR_UNET_NAME_CAP + 48];
    const size_t hw = (size_t)net->lh[level] * net->lw[level];
    rb->c_in = c_in;
    rb->c_out = c_out;
    rb->level = level;
    snprintf(name, sizeof name, "%s.conv_1.0", p);
    plan_norm(pl, &rb->norm1, c_in, name);
    snprintf(name, sizeof name, "%s.conv_1.2", p);
    plan_conv(pl, &rb->conv1, c_out, c_in, 3, 4, name);
    /* the shared MLP under this block's name: hard links to time_embedding.mlp.* (tensors 0..3) */
    plan_alias(pl, 0, "%s.norm_with_embedding.t_emb.mlp.0.weight", p);
    plan_alias(pl, 1, "%s.norm_with_embedding.t_emb.mlp.0.bias", p);
    plan_alias(pl, 2, "%s.norm_with_embedding.t_emb.mlp.2.weight", p);
    plan_alias(pl, 3, "%s.norm_with_embedding.t_emb.mlp.2.bias", p);
    snprintf(name, sizeof name, "%s.norm_with_embedding.norm", p);
    plan_norm(pl, &rb->norm2, c_out, name);
    rb->emb.out = c_out;
    rb->emb.in = net->cfg.t_emb_dim;
    plan_tensor(pl, &rb->emb.w, IPR_WEIGHTS_WEIGHT, 2, c_out, net->cfg.t_emb_dim, 0, 0,
                "%s.norm_with_embedding.embedding_layer.1.weight", p);
    plan_tensor(pl, &rb->emb.b, IPR_WEIGHTS_BIAS, 1, c_out, 0, 0, 0, "%s.norm_with_embedding.embedding_layer.1.bias", p);
    snprintf(name, sizeof name, "%s.conv_2.2", p);
    plan_conv(pl, &rb->conv2, c_out, c_out, 3, 4, name);
    rb->has_shortcut = c_in != c_out;
    if (rb->has_shortcut) {
        snprintf(name, sizeof name, "%s.shortcut", p);
        plan_conv(pl, &rb->shortcut, c_out, c_in, 1, 4, name);
    }
    PLAN_MAX(tmp, (size_t)c_in * hw);
    PLAN_MAX(u, (size_t)c_out * hw);
    plan_col(pl, c_in, 3, net->lh[level], net->lw[level]);
    plan_col(pl, c_out, 3, net->lh[level], net->lw[level]);
    if (c_out > pl->c_max) pl->c_max = c_out;
}

static void plan_attn(ipr_plan *pl, ipr_attn_w *at, const char *p, int c, int level) {
    ipr_unet *net = pl->net;
    char name[IPR_UNET_NAME_CAP + 16];
    const size_t T = (size_t)net->lh[level] * net->lw[level];
    at->c = c;
    at->ch = net->cfg.num_head_channels;
    at->heads = c / at->ch;
    at->level = level;
    snprintf(name, sizeof name, "%s.norm", p);
    plan_norm(pl, &at->norm, c, name);
    snprintf(name, sizeof name, "%s.qkv", p);
    plan_conv(pl, &at->qkv, 3 * c, c, 1, 3, name);
    snprintf(name, sizeof name, "%s.proj", p);
    plan_conv(pl, &at->proj, c, c, 1, 3, name);
    size_t rows = IPR_UNET_SCORE_BUDGET / T;
    if (rows < 1) rows = 1;
    if (rows > T) rows = T;
    at->rows = (int)rows;
    PLAN_MAX(tmp, (size_t)c * T);
    PLAN_MAX(qkv, 3 * (size_t)c * T);
    PLAN_MAX(scores, rows * T);
}

static void plan_walk(ipr_plan *pl) {
    ipr_unet *net = pl->net;
    const ipr_unet_config *cfg = &net->cfg;
    const int L = net->L;
    const size_t HW = (size_t)net->H * net->W;
    pl->tmp = pl->u = pl->col = pl->qkv = pl->scores = pl->hbuf = pl->cat = 0;
    pl->c_max = 0;

    /* the shared time MLP first: tensors 0..3 are the targets of every alias */
    net->temb1.out = cfg->t_emb_dim;
    net->temb1.in = cfg->d_emb;
    plan_tensor(pl, &net->temb1.w, IPR_WEIGHTS_WEIGHT, 2, cfg->t_emb_dim, cfg->d_emb, 0, 0, "time_embedding.mlp.0.weight");
    plan_tensor(pl, &net->temb1.b, IPR_WEIGHTS_BIAS, 1, cfg->t_emb_dim, 0, 0, 0, "time_embedding.mlp.0.bias");
    net->temb2.out = cfg->t_emb_dim;
    net->temb2.in = cfg->t_emb_dim;
    plan_tensor(pl, &net->temb2.w, IPR_WEIGHTS_WEIGHT, 2, cfg->t_emb_dim, cfg->t_emb_dim, 0, 0,
                "time_embedding.mlp.2.weight");
    plan_tensor(pl, &net->temb2.b, IPR_WEIGHTS_BIAS, 1, cfg->t_emb_dim, 0, 0, 0, "time_embedding.mlp.2.bias");

    /* ---- encoder (spec 1.3): conv_in, per level num_blocks x [ResBlock (+Attn)], Downsample ---- */
    int cur = cfg->hid_dims[0], si = 0;
    ipr_unet_stage *st = &net->enc[0];
    memset(st, 0, sizeof *st);
    st->is_conv_in = 1;
    st->level = 0;
    st->c_out = cur;
    snprintf(st->name_res, sizeof st->name_res, "model.encoder.blocks.0.0");
    plan_conv(pl, &st->resample, cur, cfg->d_in, 3, 4, "model.encoder.blocks.0.0");
    plan_col(pl, cfg->d_in, 3, net->H, net->W);
    net->skip_c[si] = cur;
    net->skip_level[si] = 0;
    ++si;
    for (int l = 0; l < L; ++l) {
        for (int j = 0; j < cfg->num_blocks[l]; ++j) {
            st = &net->enc[si];
            memset(st, 0, sizeof *st);
            st->level = l;
            st->has_res = 1;
            snprintf(st->name_res, sizeof st->name_res, "model.encoder.blocks.%d.0", si);
            plan_resblock(pl, &st->res, st->name_res, cur, cfg->hid_dims[l], l);
            cur = cfg->hid_dims[l];
            if (cfg->attention[l]) {
                st->has_attn = 1;
                snprintf(st->name_attn, sizeof st->name_attn, "model.encoder.blocks.%d.1", si);
                plan_attn(pl, &st->attn, st->name_attn, cur, l);
            }
            st->c_out = cur;
            net->skip_c[si] = cur;
            net->skip_level[si] = l;
            ++si;
        }
        if (l != L - 1) {
            st = &net->enc[si];
            memset(st, 0, sizeof *st);
            st->level = l;
            st->has_down = 1;
            st->c_out = cur;
            snprintf(st->name_resample, sizeof st->name_resample, "model.encoder.blocks.%d.0", si);
            char name[IPR_UNET_NAME_CAP + 16];
            snprintf(name, sizeof name, "model.encoder.blocks.%d.0.downsample", si);
            plan_conv(pl, &st->resample, cur, cur, 3, 4, name);
            plan_col(pl, cur, 3, net->lh[l + 1], net->lw[l + 1]);
            net->skip_c[si] = cur;
            net->skip_level[si] = l + 1;
            ++si;
        }
    }

    /* ---- bottleneck: ResBlock, Attn, ResBlock at the lowest level (always with attention) ---- */
    {
        const int l = L - 1;
        const size_t hw = (size_t)net->lh[l] * net->lw[l];
        plan_resblock(pl, &net->mid0, "model.bottleneck.blocks.0", cur, cur, l);
        plan_attn(pl, &net->mid_attn, "model.bottleneck.blocks.1", cur, l);
        plan_resblock(pl, &net->mid1, "model.bottleneck.blocks.2", cur, cur, l);
        PLAN_MAX(hbuf, (size_t)cur * hw);
    }

    /* ---- decoder: levels reversed, num_blocks + 1 x [cat(h, skip) -> ResBlock (+Attn)], Upsample to the
     * next skip's size after the last block of every level but the top ---- */
    int sp = si, di = 0;
    for (int l = L - 1; l >= 0; --l) {
        const size_t hw = (size_t)net->lh[l] * net->lw[l];
        for (int j = 0; j <= cfg->num_blocks[l]; ++j) {
            st = &net->dec[di];
            memset(st, 0, sizeof *st);
            st->level = l;
            st->has_res = 1;
            const int cs = net->skip_c[--sp];
            if (net->skip_level[sp] != l) pl->failed = 1; /* every skip a level consumes has its size */
            snprintf(st->name_res, sizeof st->name_res, "model.decoder.blocks.%d.0", di);
            plan_resblock(pl, &st->res, st->name_res, cur + cs, cfg->hid_dims[l], l);
            PLAN_MAX(cat, (size_t)(cur + cs) * hw);
            cur = cfg->hid_dims[l];
            PLAN_MAX(hbuf, (size_t)cur * hw);
            int sub = 1;
            if (cfg->attention[l]) {
                st->has_attn = 1;
                snprintf(st->name_attn, sizeof st->name_attn, "model.decoder.blocks.%d.%d", di, sub++);
                plan_attn(pl, &st->attn, st->name_attn, cur, l);
            }
            if (l != 0 && j == cfg->num_blocks[l]) {
                st->has_up = 1;
                snprintf(st->name_resample, sizeof st->name_resample, "model.decoder.blocks.%d.%d", di, sub);
                char name[IPR_UNET_NAME_CAP + 16];
                snprintf(name, sizeof name, "model.decoder.blocks.%d.%d.conv", di, sub);
                plan_conv(pl, &st->resample, cur, cur, 3, 4, name);
                const size_t hw_up = (size_t)net->lh[l - 1] * net->lw[l - 1];
                PLAN_MAX(tmp, (size_t)cur * hw_up);
                PLAN_MAX(hbuf, (size_t)cur * hw_up);
                plan_col(pl, cur, 3, net->lh[l - 1], net->lw[l - 1]);
            }
            st->c_out = cur;
            ++di;
        }
    }

    /* ---- output head: GN, SiLU, conv3x3 to d_out ---- */
    plan_norm(pl, &net->out_norm, cur, "model.decoder.out.0");
    plan_conv(pl, &net->out_conv, cfg->d_out, cur, 3, 4, "model.decoder.out.2");
    PLAN_MAX(tmp, (size_t)cur * HW);
    plan_col(pl, cur, 3, net->H, net->W);
}

/* ------------------------------------------------------------------------------------------------ */

/* bump allocator over the activation arena: 64-byte aligned sections */
typedef struct {
    unsigned char *base;
    size_t off;
} ipr_bump;

static void *bump(ipr_bump *b, size_t bytes) {
    b->off = (b->off + 63) & ~(size_t)63;
    void *p = b->base ? b->base + b->off : NULL;
    b->off += bytes;
    return p;
}

/* Lay out the activation arena (base NULL: measure only). Returns its size in bytes. */
static size_t layout_activations(ipr_unet *net, const ipr_plan *pl, unsigned char *base) {
    ipr_bump b = {base, 0};
    const size_t B = (size_t)net->max_batch;
    /* skips: one (B, C, h, w) slot per encoder output */
    for (int i = 0; i < net->n_skips; ++i) {
        const int l = net->skip_level[i];
        net->skips[i] = bump(&b, sizeof(float) * B * net->skip_c[i] * net->lh[l] * net->lw[l]);
    }
    net->hA = bump(&b, sizeof(float) * B * pl->hbuf);
    net->hB = bump(&b, sizeof(float) * B * pl->hbuf);
    net->cat = bump(&b, sizeof(float) * B * pl->cat);
    net->tmp = bump(&b, sizeof(float) * pl->tmp);
    net->u = bump(&b, sizeof(float) * pl->u);
    net->col = bump(&b, sizeof(float) * pl->col);
    net->qkv = bump(&b, sizeof(float) * pl->qkv);
    net->scores = bump(&b, sizeof(float) * pl->scores);

    /* time embedding (spec 1.4, reference-throughput.md): per-level maps, the distinct-level table */
    ipr_unet_temb *te = &net->temb;
    const size_t npix = B * net->lsum;
    const int T = net->cfg.t_emb_dim;
    te->tmap = bump(&b, sizeof(double) * npix);
    te->idx = bump(&b, sizeof(int32_t) * npix);
    te->hkeys = bump(&b, sizeof(uint64_t) * (size_t)te->hcap);
    te->hvals = bump(&b, sizeof(int32_t) * (size_t)te->hcap);
    te->gval = bump(&b, sizeof(double) * (size_t)te->cap);
    /* E also serves as one chunk of scratch in the per-pixel fallback */
    te->E = bump(&b, sizeof(float) * (size_t)(te->cap > te->chunk ? te->cap : te->chunk) * T);
    te->loc = bump(&b, sizeof(int32_t) * (size_t)te->cap);
    for (int l = 0; l < net->L; ++l) {
        size_t n = B * net->lh[l] * net->lw[l];
        if (n > (size_t)te->cap) n = (size_t)te->cap;
        te->list[l] = bump(&b, sizeof(int32_t) * n);
    }
    te->sin = bump(&b, sizeof(float) * (size_t)te->chunk * net->cfg.d_emb);
    te->hid = bump(&b, sizeof(float) * (size_t)te->chunk * T);
    te->out = bump(&b, sizeof(float) * (size_t)te->chunk * T);
    te->G = bump(&b, sizeof(float) * (size_t)te->chunk * T);
    te->P = bump(&b, sizeof(float) * (size_t)te->pcap * pl->c_max);
    te->tv = bump(&b, sizeof(double) * (size_t)te->chunk);
    return (b.off + 63) & ~(size_t)63;
}

static ipr_unet *unet_new_bounded(const ipr_unet_config *cfg, int max_batch, int height, int width, int temb_capacity,
                                  int64_t file_values);

ipr_unet *ipr_unet_new(const ipr_unet_config *cfg, int max_batch, int height, int width, int temb_capacity) {
    return unet_new_bounded(cfg, max_batch, height, width, temb_capacity, -1);
}

/* ipr_unet_new, refusing (before any allocation) an architecture with more parameters than file_values, the values
 * a checkpoint's /weights holds (ipr_weights_h5_values); file_values < 0: no bound */
static ipr_unet *unet_new_bounded(const ipr_unet_config *cfg, int max_batch, int height, int width, int temb_capacity,
                                  int64_t file_values) {
    ipr_unet *net = NULL;
    IPR_TRY(ipr_unet_config_validate(cfg));
    IPR_CHECK(max_batch >= 1 && height >= 1 && width >= 1, "unet: bad plan size: max_batch %d, %d x %d", max_batch,
              height, width);
    IPR_CHECK(temb_capacity >= 0, "unet: negative time-embedding capacity %d", temb_capacity);
    net = ipr_calloc(1, sizeof *net, "unet");
    IPR_CHECK(net != NULL, "%s", ipr_error_message());
    net->cfg = *cfg;
    net->max_batch = max_batch;
    net->H = height;
    net->W = width;
    net->L = cfg->n_levels;
    size_t off = 0;
    for (int l = 0; l < net->L; ++l) {
        /* Downsample = conv3x3 stride 2 pad 1: n -> ceil(n / 2) */
        net->lh[l] = l == 0 ? height : (net->lh[l - 1] + 1) / 2;
        net->lw[l] = l == 0 ? width : (net->lw[l - 1] + 1) / 2;
        net->loff[l] = off;
        off += (size_t)net->lh[l] * net->lw[l];
    }
    net->lsum = off;
    int nb_sum = 0;
    for (int l = 0; l < net->L; ++l) nb_sum += cfg->num_blocks[l];
    net->n_enc = 1 + nb_sum + (net->L - 1);
    net->n_skips = net->n_enc;
    net->n_dec = nb_sum + net->L;
    net->enc = ipr_calloc((size_t)net->n_enc, sizeof *net->enc, "unet encoder plan");
    net->dec = ipr_calloc((size_t)net->n_dec, sizeof *net->dec, "unet decoder plan");
    net->skip_c = ipr_calloc((size_t)net->n_skips, sizeof *net->skip_c, "unet skips");
    net->skip_level = ipr_calloc((size_t)net->n_skips, sizeof *net->skip_level, "unet skips");
    net->skips = ipr_calloc((size_t)net->n_skips, sizeof *net->skips, "unet skips");
    IPR_CHECK(net->enc && net->dec && net->skip_c && net->skip_level && net->skips, "%s", ipr_error_message());

    /* the plan: tensors (bound to their fields at allocation) and activation sizes */
    ipr_plan pl = {0};
    pl.net = net;
    ipr_weights_init(&net->wt);
    net->wt.alias_what = "the shared time-embedding MLP";
    plan_walk(&pl);
    IPR_CHECK(!pl.failed, "unet: internal plan error (a state_dict name does not fit, or a skip has the wrong size)");
    const int half = cfg->d_emb / 2;
    ipr_weights_derived(&net->wt, (size_t)half, &net->freqs);
    IPR_TRY(ipr_weights_fit_file(&net->wt, file_values, "unet"));
    IPR_TRY(ipr_weights_alloc(&net->wt, "unet"));
    net->warena = net->wt.arena;
    net->wbytes = sizeof(float) * net->wt.floats;
    ipr_cpu_sinusoid_freqs(net->freqs, half);
    net->c_max = pl.c_max;

    /* time-embedding table: default min(every pixel of every level, IPR_UNET_TEMB_DEFAULT_CAP) */
    ipr_unet_temb *te = &net->temb;
    const size_t npix = (size_t)max_batch * net->lsum;
    size_t cap = temb_capacity > 0 ? (size_t)temb_capacity : IPR_UNET_TEMB_DEFAULT_CAP;
    if (cap > npix) cap = npix;
    te->cap = (int)cap;
    te->chunk = IPR_UNET_TEMB_CHUNK; /* fixed, whatever the capacity: same GEMM shapes, same numbers */
    te->hcap = 16;
    while ((size_t)te->hcap < 2 * cap) te->hcap *= 2;
    size_t pcap = (size_t)te->chunk;
    for (int l = 0; l < net->L; ++l) {
        size_t n = (size_t)max_batch * net->lh[l] * net->lw[l];
        if (n > cap) n = cap;
        if (n > pcap) pcap = n;
    }
    te->pcap = (int)((pcap + (size_t)te->chunk - 1) / (size_t)te->chunk * (size_t)te->chunk);

    net->abytes = layout_activations(net, &pl, NULL);
    net->aarena = aligned_alloc(64, net->abytes);
    IPR_CHECK(net->aarena != NULL, "out of memory: activation arena of %zu bytes", net->abytes);
    layout_activations(net, &pl, net->aarena);
    for (int i = 0; i < te->cap; ++i) te->loc[i] = -1;
    return net;
fail:
    ipr_error_context("planning the U-Net");
    ipr_unet_free(net);
    return NULL;
}

void ipr_unet_free(ipr_unet *net) {
    if (!net) return;
    free(net->enc);
    free(net->dec);
    free(net->skip_c);
    free(net->skip_level);
    free(net->skips);
    ipr_weights_free(&net->wt);
    free(net->aarena);
    free(net);
}

ipr_unet *ipr_unet_load(const char *ckpt_path, int max_batch, int height, int width) {
    ipr_unet_config cfg;
    ipr_unet *net = NULL;
    IPR_TRY(ipr_unet_config_read(ckpt_path, &cfg));
    if (height <= 0) height = cfg.image_size[0];
    if (width <= 0) width = cfg.image_size[1];
    int64_t held = 0;
    IPR_TRY(ipr_weights_h5_values(ckpt_path, "/weights", &held)); /* see ipr_dit_load */
    net = unet_new_bounded(&cfg, max_batch, height, width, 0, held);
    if (!net) {
        ipr_error_context("checkpoint %s", ckpt_path);
        goto fail;
    }
    IPR_TRY(ipr_unet_load_weights(net, ckpt_path));
    return net;
fail:
    ipr_unet_free(net);
    return NULL;
}

const ipr_unet_config *ipr_unet_get_config(const ipr_unet *net) { return &net->cfg; }
void ipr_unet_arena_bytes(const ipr_unet *net, size_t *weights, size_t *activations) {
    if (weights) *weights = net->wbytes;
    if (activations) *activations = net->abytes;
}
int64_t ipr_unet_param_count(const ipr_unet *net) { return net->wt.params; }
int ipr_unet_tensor_count(const ipr_unet *net) { return net->wt.n; }
void ipr_unet_set_stage_hook(ipr_unet *net, ipr_unet_stage_fn fn, void *ctx) {
    net->hook = fn;
    net->hook_ctx = ctx;
}
void ipr_unet_temb_stats_get(const ipr_unet *net, ipr_unet_temb_stats *stats) {
    stats->n_distinct = net->temb.n_distinct;
    stats->fallback = net->temb.fallback;
    stats->capacity = net->temb.cap;
}

/* ------------------------------------------------------------------------------------------------ */
/* forward */

static void stage_hook(const ipr_unet *net, const char *name, const float *data, int B, int C, int level) {
    if (net->hook) net->hook(name, data, B, C, net->lh[level], net->lw[level], net->hook_ctx);
}

/* out (B, c_out, h, w) = ResBlock(in (B, c_in, h, w)) (spec 1.3) */
static void run_resblock(ipr_unet *net, const ipr_resblock_w *rb, const float *in, float *out, int B) {
    const int h = net->lh[rb->level], w = net->lw[rb->level];
    const size_t hw = (size_t)h * w;
    ipr_unet_temb_project(net, &rb->emb, rb->level);
    for (int b = 0; b < B; ++b) {
        const float *x = in + (size_t)b * rb->c_in * hw;
        float *o = out + (size_t)b * rb->c_out * hw;
        /* conv_1: GN, SiLU, conv3x3 */
        ipr_cpu_group_norm(net->tmp, x, rb->norm1.gamma, rb->norm1.beta, rb->c_in, (int)hw, IPR_GN_GROUPS, IPR_GN_EPS, 1);
        ipr_cpu_conv2d(net->u, net->tmp, rb->conv1.w, rb->conv1.b, rb->c_in, h, w, rb->c_out, 3, 1, 1, h, w, net->col,
                       IPR_UNET_COL_BUDGET, 0);
        /* norm_with_embedding: GN(h + emb) (additive, no scale/shift); conv_2 starts with SiLU */
        ipr_unet_temb_add(net, &rb->emb, rb->level, b, net->u);
        ipr_cpu_group_norm(net->u, net->u, rb->norm2.gamma, rb->norm2.beta, rb->c_out, (int)hw, IPR_GN_GROUPS,
                           IPR_GN_EPS, 1);
        /* conv_2: (SiLU above), Dropout (eval: identity), conv3x3 */
        ipr_cpu_conv2d(o, net->u, rb->conv2.w, rb->conv2.b, rb->c_out, h, w, rb->c_out, 3, 1, 1, h, w, net->col,
                       IPR_UNET_COL_BUDGET, 0);
        /* + shortcut */
        if (rb->has_shortcut) {
            ipr_cpu_conv2d(o, x, rb->shortcut.w, rb->shortcut.b, rb->c_in, h, w, rb->c_out, 1, 1, 0, h, w, NULL, 0, 1);
        } else {
            const size_t n = (size_t)rb->c_out * hw;
            for (size_t i = 0; i < n; ++i) o[i] += x[i];
        }
    }
}

/* x (B, C, h, w) += proj(MHA(qkv(GN(x)))) in place (spec 1.3) */
static void run_attention(ipr_unet *net, const ipr_attn_w *at, float *xio, int B) {
    const int T = net->lh[at->level] * net->lw[at->level];
    const int C = at->c;
    for (int b = 0; b < B; ++b) {
        float *x = xio + (size_t)b * C * T;
        ipr_cpu_group_norm(net->tmp, x, at->norm.gamma, at->norm.beta, C, T, IPR_GN_GROUPS, IPR_GN_EPS, 0);
        ipr_cpu_conv2d(net->qkv, net->tmp, at->qkv.w, at->qkv.b, C, 1, T, 3 * C, 1, 1, 0, 1, T, NULL, 0, 0);
        ipr_cpu_attention(net->tmp, net->qkv, at->heads, at->ch, T, net->scores, at->rows);
        ipr_cpu_conv2d(x, net->tmp, at->proj.w, at->proj.b, C, 1, T, C, 1, 1, 0, 1, T, NULL, 0, 1);
    }
}

int ipr_unet_forward(ipr_unet *net, const float *x, const float *t, int B, float *y) {
    IPR_CHECK(net != NULL && x != NULL && t != NULL && y != NULL, "unet forward: NULL argument");
    IPR_CHECK(B >= 1 && B <= net->max_batch, "unet forward: batch %d outside 1..%d (max_batch planned at load)", B,
              net->max_batch);
    const ipr_unet_config *cfg = &net->cfg;
    const int H = net->H, W = net->W;
    const size_t HW = (size_t)H * W;

    /* spec 1.4: resize t to every level, embed each distinct level once */
    ipr_unet_temb_prepare(net, t, B);

    /* encoder: every output is a skip */
    ipr_unet_stage *st = &net->enc[0];
    float *cur = net->skips[0];
    for (int b = 0; b < B; ++b)
        ipr_cpu_conv2d(cur + (size_t)b * st->c_out * HW, x + (size_t)b * cfg->d_in * HW, st->resample.w, st->resample.b,
                       cfg->d_in, H, W, st->c_out, 3, 1, 1, H, W, net->col, IPR_UNET_COL_BUDGET, 0);
    stage_hook(net, st->name_res, cur, B, st->c_out, 0);
    int c = st->c_out, level = 0;
    for (int i = 1; i < net->n_enc; ++i) {
        st = &net->enc[i];
        float *out = net->skips[i];
        if (st->has_res) {
            run_resblock(net, &st->res, cur, out, B);
            stage_hook(net, st->name_res, out, B, st->c_out, level);
            if (st->has_attn) {
                run_attention(net, &st->attn, out, B);
                stage_hook(net, st->name_attn, out, B, st->c_out, level);
            }
        } else { /* Downsample: conv3x3 stride 2 pad 1 */
            const int h = net->lh[level], w = net->lw[level], ho = net->lh[level + 1], wo = net->lw[level + 1];
            for (int b = 0; b < B; ++b)
                ipr_cpu_conv2d(out + (size_t)b * c * ho * wo, cur + (size_t)b * c * h * w, st->resample.w,
                               st->resample.b, c, h, w, c, 3, 2, 1, ho, wo, net->col, IPR_UNET_COL_BUDGET, 0);
            ++level;
            stage_hook(net, st->name_resample, out, B, c, level);
        }
        c = st->c_out;
        cur = out;
    }

    /* bottleneck */
    run_resblock(net, &net->mid0, cur, net->hA, B);
    stage_hook(net, "model.bottleneck.blocks.0", net->hA, B, c, level);
    run_attention(net, &net->mid_attn, net->hA, B);
    stage_hook(net, "model.bottleneck.blocks.1", net->hA, B, c, level);
    run_resblock(net, &net->mid1, net->hA, net->hB, B);
    stage_hook(net, "model.bottleneck.blocks.2", net->hB, B, c, level);
    cur = net->hB;

    /* decoder: ResBlocks write hA, Upsamples hB */
    int sp = net->n_skips;
    for (int i = 0; i < net->n_dec; ++i) {
        st = &net->dec[i];
        const int h = net->lh[level], w = net->lw[level];
        const size_t hw = (size_t)h * w;
        const int cs = net->skip_c[--sp];
        const float *skip = net->skips[sp];
        /* torch.cat((h, skip), dim=1) */
        for (int b = 0; b < B; ++b) {
            float *dst = net->cat + (size_t)b * (c + cs) * hw;
            memcpy(dst, cur + (size_t)b * c * hw, sizeof(float) * c * hw);
            memcpy(dst + (size_t)c * hw, skip + (size_t)b * cs * hw, sizeof(float) * cs * hw);
        }
        run_resblock(net, &st->res, net->cat, net->hA, B);
        c = st->c_out;
        stage_hook(net, st->name_res, net->hA, B, c, level);
        cur = net->hA;
        if (st->has_attn) {
            run_attention(net, &st->attn, net->hA, B);
            stage_hook(net, st->name_attn, net->hA, B, c, level);
        }
        if (st->has_up) {
            /* nearest to the exact size of the next skip (odd sizes: 4 -> 7), then conv3x3 */
            const int ho = net->lh[level - 1], wo = net->lw[level - 1];
            for (int b = 0; b < B; ++b) {
                ipr_cpu_upsample_nearest(net->tmp, net->hA + (size_t)b * c * hw, c, h, w, ho, wo);
                ipr_cpu_conv2d(net->hB + (size_t)b * c * ho * wo, net->tmp, st->resample.w, st->resample.b, c, ho, wo,
                               c, 3, 1, 1, ho, wo, net->col, IPR_UNET_COL_BUDGET, 0);
            }
            --level;
            stage_hook(net, st->name_resample, net->hB, B, c, level);
            cur = net->hB;
        }
    }

    /* output head: GN, SiLU, conv3x3 */
    for (int b = 0; b < B; ++b) {
        ipr_cpu_group_norm(net->tmp, cur + (size_t)b * c * HW, net->out_norm.gamma, net->out_norm.beta, c, (int)HW,
                           IPR_GN_GROUPS, IPR_GN_EPS, 1);
        ipr_cpu_conv2d(y + (size_t)b * cfg->d_out * HW, net->tmp, net->out_conv.w, net->out_conv.b, c, H, W, cfg->d_out,
                       3, 1, 1, H, W, net->col, IPR_UNET_COL_BUDGET, 0);
    }
    stage_hook(net, "model.decoder.out", y, B, cfg->d_out, 0);
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* ------------------------------------------------------------------------------------------------ */
/* cost model (for benchmarks): multiply-adds counted twice, per sample */

static double conv_flops(const ipr_conv_w *cv, int ho, int wo) {
    return 2.0 * cv->c_out * cv->c_in * cv->k * cv->k * (double)ho * wo;
}

static void resblock_flops(const ipr_unet *net, const ipr_resblock_w *rb, double *f, double *emb) {
    const int h = net->lh[rb->level], w = net->lw[rb->level];
    *f += conv_flops(&rb->conv1, h, w) + conv_flops(&rb->conv2, h, w);
    if (rb->has_shortcut) *f += conv_flops(&rb->shortcut, h, w);
    /* the reference evaluates sinusoid -> MLP -> projection at every pixel of every ResBlock */
    const ipr_unet_config *cfg = &net->cfg;
    *emb += 2.0 * (double)h * w *
            ((double)cfg->d_emb * cfg->t_emb_dim + (double)cfg->t_emb_dim * cfg->t_emb_dim +
             (double)cfg->t_emb_dim * rb->c_out);
}

static void attn_flops(const ipr_unet *net, const ipr_attn_w *at, double *f) {
    const double T = (double)net->lh[at->level] * net->lw[at->level];
    *f += 2.0 * 3 * at->c * at->c * T + 2.0 * at->c * at->c * T; /* qkv, proj */
    *f += 2.0 * 2 * at->heads * T * T * at->ch;                /* scores, weighted sum */
}

void ipr_unet_flops(const ipr_unet *net, double *network, double *reference_embedding) {
    double f = 0.0, emb = 0.0;
    f += conv_flops(&net->enc[0].resample, net->H, net->W);
    for (int i = 1; i < net->n_enc; ++i) {
        const ipr_unet_stage *st = &net->enc[i];
        if (st->has_res) resblock_flops(net, &st->res, &f, &emb);
        if (st->has_attn) attn_flops(net, &st->attn, &f);
        if (st->has_down) f += conv_flops(&st->resample, net->lh[st->level + 1], net->lw[st->level + 1]);
    }
    resblock_flops(net, &net->mid0, &f, &emb);
    attn_flops(net, &net->mid_attn, &f);
    resblock_flops(net, &net->mid1, &f, &emb);
    for (int i = 0; i < net->n_dec; ++i) {
        const ipr_unet_stage *st = &net->dec[i];
        resblock_flops(net, &st->res, &f, &emb);
        if (st->has_attn) attn_flops(net, &st->attn, &f);
        if (st->has_up) f += conv_flops(&st->resample, net->lh[st->level - 1], net->lw[st->level - 1]);
    }
    f += conv_flops(&net->out_conv, net->H, net->W);
    if (network) *network = f;
    if (reference_embedding) *reference_embedding = emb;
}
