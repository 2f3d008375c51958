/* classifier.c: the scorer networks (spec 4.1 digit classifier, spec 4.3 polygons classifier) on the CPU ops
 * of the U-Net engine: checkpoints checked both ways at load, one weight arena and one scratch arena per net (a
 * clone shares its original's weights and has a scratch arena of its own). */
#include <hdf5.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipr/bench.h"
#include "ipr/classifier.h"
#include "ipr/common.h"
#include "ipr/h5io.h"
#include "ops_cpu.h"
#include "weights.h"

/* im2col budget per conv (floats, 16 MiB): the default nets' largest conv (conv2 of the polygons net, 288 x
 * 1024) needs 0.3 M floats, so every conv runs as one GEMM */
#define CLS_COL_BUDGET ((size_t)1 << 22)
/* images per pass when ipr_sudoku_score_images is given no digits buffer */
#define CLS_SCORE_GROUP 64

/* ------------------------------------------------------------------------------------------------ */
/* the plan shared by both nets: a table of state_dict tensors with their offsets in one weight arena */

typedef struct {
    ipr_weights wt;    /* the state_dict tensors in one arena (weights.h); a clone's is its original's, not owned */
    int clone;         /* 1: wt belongs to the original net (never freed here) */
    size_t sfloats;    /* scratch arena */
    float *sarena;
    int max_batch;
} cls_base;

typedef struct {
    float *w, *b; /* w (c_out, c_in, k, k), b (c_out) */
    int c_in, c_out, k, stride, pad;
} cls_conv;

typedef struct {
    float *gamma, *beta; /* (c) */
    int c, groups;
} cls_norm;

typedef struct {
    float *w, *b; /* w (out, in), b (out) */
    int in, out;
} cls_linear;

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

static void reg(cls_base *nb, float **bind, ipr_weights_kind kind, int rank, const int64_t *shape, const char *prefix,
                const char *suffix) {
    char name[IPR_WEIGHTS_NAME_CAP + 64]; /* room to pass a too-long name whole: ipr_weights_add refuses it */
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    ipr_weights_add(&nb->wt, name, rank, shape, kind, bind);
}

static void reg_conv(cls_base *nb, cls_conv *cv, const char *name, int c_in, int c_out, int k, int stride, int pad) {
    const int64_t w[4] = {c_out, c_in, k, k}, b[1] = {c_out};
    cv->c_in = c_in;
    cv->c_out = c_out;
    cv->k = k;
    cv->stride = stride;
    cv->pad = pad;
    reg(nb, &cv->w, IPR_WEIGHTS_WEIGHT, 4, w, name, "weight");
    reg(nb, &cv->b, IPR_WEIGHTS_BIAS, 1, b, name, "bias");
}

static void reg_norm(cls_base *nb, cls_norm *nm, const char *name, int c, int groups) {
    const int64_t s[1] = {c};
    nm->c = c;
    nm->groups = groups;
    reg(nb, &nm->gamma, IPR_WEIGHTS_GAIN, 1, s, name, "weight");
    reg(nb, &nm->beta, IPR_WEIGHTS_BIAS, 1, s, name, "bias");
}

static void reg_linear(cls_base *nb, cls_linear *ln, const char *name, int in, int out) {
    const int64_t w[2] = {out, in}, b[1] = {out};
    ln->in = in;
    ln->out = out;
    reg(nb, &ln->w, IPR_WEIGHTS_WEIGHT, 2, w, name, "weight");
    reg(nb, &ln->b, IPR_WEIGHTS_BIAS, 1, b, name, "bias");
}

/* Scratch requests: the pointer to set and its floats; carved from one allocation in order. */
typedef struct {
    float **slot;
    size_t n;
} cls_scratch;

/* Allocate the scratch arena and carve it. */
static int scratch_alloc(cls_base *nb, const cls_scratch *req, int n_req) {
    nb->sfloats = 0;
    for (int i = 0; i < n_req; ++i) nb->sfloats += align16(req[i].n);
    nb->sarena = ipr_calloc(nb->sfloats, sizeof(float), "classifier scratch");
    if (!nb->sarena) return IPR_ERR; /* error recorded by ipr_calloc */
    float *cur = nb->sarena;
    for (int i = 0; i < n_req; ++i) {
        *req[i].slot = cur;
        cur += align16(req[i].n);
    }
    return IPR_OK;
}

/* Allocate both arenas, bind every tensor and carve the scratch. */
static int base_alloc(cls_base *nb, const cls_scratch *req, int n_req) {
    IPR_TRY(ipr_weights_alloc(&nb->wt, "classifier"));
    IPR_TRY(scratch_alloc(nb, req, n_req));
    ipr_log(IPR_LOG_DEBUG, "classifier: %d tensors, weights %.2f MiB, scratch %.2f MiB (max batch %d)",
            nb->wt.n, (double)nb->wt.floats * 4.0 / 1048576.0, (double)nb->sfloats * 4.0 / 1048576.0,
            nb->max_batch);
    return IPR_OK;
fail:
    return IPR_ERR;
}

static void base_free(cls_base *nb) {
    if (!nb->clone) ipr_weights_free(&nb->wt);
    free(nb->sarena);
}

/* ------------------------------------------------------------------------------------------------ */
/* checkpoint: root attributes */

static int read_header(hid_t f, const char *kind, int64_t *version) {
    char s[128];
    int64_t v = 0;
    IPR_TRY(ipr_h5_read_attr_str(f, "format", s, sizeof s));
    IPR_CHECK(strcmp(s, IPR_CLASSIFIER_FORMAT) == 0, "attribute 'format' is \"%s\", expected \"%s\"", s,
              IPR_CLASSIFIER_FORMAT);
    IPR_TRY(ipr_h5_read_attr_i64(f, "format_version", &v));
    IPR_CHECK(v >= 1 && v <= IPR_CLASSIFIER_FORMAT_VERSION,
              "attribute 'format_version' is %lld, this build reads versions 1..%d", (long long)v,
              IPR_CLASSIFIER_FORMAT_VERSION);
    IPR_TRY(ipr_h5_read_attr_str(f, "kind", s, sizeof s));
    IPR_CHECK(strcmp(s, kind) == 0, "wrong kind: attribute 'kind' is \"%s\", expected \"%s\"", s, kind);
    if (version) *version = v;
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* An integer attribute that must hold exactly `want` (n values): a fixed part of the architecture. */
static int attr_expect(hid_t f, const char *name, const int64_t *want, int n) {
    int64_t v[8];
    int got = 0;
    char a[96], b[96];
    IPR_TRY(ipr_h5_read_attr_i64_array(f, name, v, 8, &got));
    int same = got == n;
    for (int i = 0; same && i < n; ++i) same = v[i] == want[i];
    if (!same) {
        ipr_dims_str(a, sizeof a, v, got);
        ipr_dims_str(b, sizeof b, want, n);
        IPR_FAIL("attribute '%s' is %s, this network has %s", name, a, b);
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* ------------------------------------------------------------------------------------------------ */
/* shared forward pieces */

static int conv_out(int n, const cls_conv *cv) { return (n + 2 * cv->pad - cv->k) / cv->stride + 1; }

/* y (c_out, ho, wo) = conv(x (c_in, h, w)) for one sample */
static void conv_fwd(float *y, const float *x, const cls_conv *cv, int h, int w, float *col) {
    ipr_cpu_conv2d(y, x, cv->w, cv->b, cv->c_in, h, w, cv->c_out, cv->k, cv->stride, cv->pad, conv_out(h, cv),
                   conv_out(w, cv), col, CLS_COL_BUDGET, 0);
}

static size_t conv_col(const cls_conv *cv, int h, int w) {
    return ipr_cpu_conv2d_col_floats(cv->c_in, cv->k, conv_out(h, cv), conv_out(w, cv), CLS_COL_BUDGET);
}

/* First index of the largest value; a NaN counts as larger than any number (torch.argmax / topk). */
static int argmax_range(const float *v, int lo, int hi) {
    int best = lo;
    for (int i = lo + 1; i < hi; ++i) {
        const int v_nan = v[i] != v[i], b_nan = v[best] != v[best];
        if ((v[i] > v[best]) || (v_nan && !b_nan)) best = i;
    }
    return best;
}

/* ------------------------------------------------------------------------------------------------ */
/* MNIST Sudoku digit classifier (spec 4.1) */

enum { DIGIT_C1 = 32, DIGIT_C2 = 64, DIGIT_HIDDEN = 128 };
#define DIGIT_FEAT (DIGIT_C2 * 7 * 7) /* 3136 */
#define CELL_FLOATS (IPR_DIGIT_SIDE * IPR_DIGIT_SIDE)

struct ipr_digit_classifier {
    cls_base base;
    cls_conv conv1, conv2;
    cls_linear fc1, fc2;
    /* scratch */
    float *act;    /* (32, 28, 28) or (64, 14, 14): a conv output of one cell */
    float *pool1;  /* (32, 14, 14) */
    float *feat;   /* (max_batch, 3136) flattened (64, 7, 7) */
    float *hid;    /* (max_batch, 128) */
    float *col;    /* im2col of one conv */
    float *cells;  /* (max_batch, 1, 28, 28): cells gathered from Sudoku images */
    float *logits; /* (max_batch, 10) */
};

/* The scratch of one net (its layers and max_batch set): req (DIGIT_SCRATCH); returns the count. */
#define DIGIT_SCRATCH 7
static int digit_scratch(ipr_digit_classifier *net, cls_scratch *req) {
    size_t col = conv_col(&net->conv1, 28, 28), col2 = conv_col(&net->conv2, 14, 14);
    if (col2 > col) col = col2;
    const size_t mb = (size_t)net->base.max_batch;
    const size_t act = (size_t)DIGIT_C1 * 28 * 28 > (size_t)DIGIT_C2 * 14 * 14 ? (size_t)DIGIT_C1 * 28 * 28
                                                                                : (size_t)DIGIT_C2 * 14 * 14;
    const cls_scratch all[DIGIT_SCRATCH] = {
        {&net->act, act},
        {&net->pool1, (size_t)DIGIT_C1 * 14 * 14},
        {&net->feat, mb * DIGIT_FEAT},
        {&net->hid, mb * DIGIT_HIDDEN},
        {&net->col, col},
        {&net->cells, mb * CELL_FLOATS},
        {&net->logits, mb * IPR_DIGIT_CLASSES},
    };
    memcpy(req, all, sizeof all);
    return DIGIT_SCRATCH;
}

ipr_digit_classifier *ipr_digit_classifier_load(const char *path, int max_batch) {
    ipr_digit_classifier *net = NULL;
    hid_t f = H5I_INVALID_HID;
    IPR_CHECK(max_batch >= 1, "digit classifier: max_batch %d (>= 1 needed)", max_batch);
    net = ipr_calloc(1, sizeof *net, "digit classifier");
    if (!net) goto fail; /* error recorded by ipr_calloc */
    f = ipr_h5_open_read(path);
    if (f < 0) goto fail;
    IPR_TRY(read_header(f, IPR_CLASSIFIER_KIND_DIGIT, NULL));
    {
        /* the reference architecture, stated by the file and checked */
        const int64_t ch[2] = {DIGIT_C1, DIGIT_C2}, hid[1] = {DIGIT_HIDDEN}, side[1] = {IPR_DIGIT_SIDE},
                      ncls[1] = {IPR_DIGIT_CLASSES};
        IPR_TRY(attr_expect(f, "channels", ch, 2));
        IPR_TRY(attr_expect(f, "hidden", hid, 1));
        IPR_TRY(attr_expect(f, "image_size", side, 1));
        IPR_TRY(attr_expect(f, "num_classes", ncls, 1));
    }
    cls_base *nb = &net->base;
    nb->max_batch = max_batch;
    reg_conv(nb, &net->conv1, "conv1", 1, DIGIT_C1, 3, 1, 1);
    reg_conv(nb, &net->conv2, "conv2", DIGIT_C1, DIGIT_C2, 3, 1, 1);
    reg_linear(nb, &net->fc1, "fc1", DIGIT_FEAT, DIGIT_HIDDEN);
    reg_linear(nb, &net->fc2, "fc2", DIGIT_HIDDEN, IPR_DIGIT_CLASSES);
    {
        cls_scratch req[DIGIT_SCRATCH];
        IPR_TRY(base_alloc(nb, req, digit_scratch(net, req)));
    }
    IPR_TRY(ipr_weights_load_h5(&nb->wt, f, "/weights"));
    H5Fclose(f);
    return net;
fail:
    ipr_error_context("digit classifier checkpoint %s", path);
    if (f >= 0) H5Fclose(f);
    ipr_digit_classifier_free(net);
    return NULL;
}

ipr_digit_classifier *ipr_digit_classifier_clone(const ipr_digit_classifier *net) {
    ipr_digit_classifier *c = NULL;
    IPR_CHECK(net != NULL, "digit classifier clone: NULL net");
    c = ipr_malloc(sizeof *c, "digit classifier clone");
    if (!c) goto fail;
    *c = *net; /* the layers' tensor pointers: into the original's weight arena, only ever read */
    c->base.clone = 1;
    c->base.sarena = NULL;
    {
        cls_scratch req[DIGIT_SCRATCH];
        IPR_TRY(scratch_alloc(&c->base, req, digit_scratch(c, req)));
    }
    return c;
fail:
    ipr_digit_classifier_free(c);
    return NULL;
}

void ipr_digit_classifier_free(ipr_digit_classifier *net) {
    if (!net) return;
    base_free(&net->base);
    free(net);
}

int ipr_digit_classifier_max_batch(const ipr_digit_classifier *net) { return net->base.max_batch; }

void ipr_digit_classifier_arena_bytes(const ipr_digit_classifier *net, size_t *weights, size_t *scratch) {
    if (weights) *weights = net->base.clone ? 0 : net->base.wt.floats * sizeof(float);
    if (scratch) *scratch = net->base.sfloats * sizeof(float);
}

/* logits (n, 10) of cells x (n, 1, 28, 28), n <= max_batch */
static void digit_forward(ipr_digit_classifier *net, const float *x, int n, float *logits) {
    for (int i = 0; i < n; ++i) {
        /* conv1 + ReLU + pool: (1, 28, 28) -> (32, 28, 28) -> (32, 14, 14) */
        conv_fwd(net->act, x + (size_t)i * CELL_FLOATS, &net->conv1, 28, 28, net->col);
        ipr_cpu_relu(net->act, net->act, (size_t)DIGIT_C1 * 28 * 28);
        ipr_cpu_maxpool2(net->pool1, net->act, DIGIT_C1, 28, 28);
        /* conv2 + ReLU + pool: -> (64, 14, 14) -> (64, 7, 7), stored flattened as x.view(-1, 3136) */
        conv_fwd(net->act, net->pool1, &net->conv2, 14, 14, net->col);
        ipr_cpu_relu(net->act, net->act, (size_t)DIGIT_C2 * 14 * 14);
        ipr_cpu_maxpool2(net->feat + (size_t)i * DIGIT_FEAT, net->act, DIGIT_C2, 14, 14);
    }
    /* fc1 + ReLU, fc2 over the whole chunk: (n, 3136) -> (n, 128) -> (n, 10) */
    ipr_cpu_linear(net->hid, net->feat, net->fc1.w, net->fc1.b, n, DIGIT_FEAT, DIGIT_HIDDEN);
    ipr_cpu_relu(net->hid, net->hid, (size_t)n * DIGIT_HIDDEN);
    ipr_cpu_linear(logits, net->hid, net->fc2.w, net->fc2.b, n, DIGIT_HIDDEN, IPR_DIGIT_CLASSES);
}

int ipr_digit_classifier_logits(ipr_digit_classifier *net, const float *cells, int N, float *logits) {
    IPR_CHECK(net != NULL && N >= 0 && (N == 0 || (cells != NULL && logits != NULL)),
              "digit classifier: bad arguments (N = %d)", N);
    for (int c0 = 0; c0 < N; c0 += net->base.max_batch) {
        const int n = N - c0 < net->base.max_batch ? N - c0 : net->base.max_batch;
        digit_forward(net, cells + (size_t)c0 * CELL_FLOATS, n, logits + (size_t)c0 * IPR_DIGIT_CLASSES);
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_sudoku_digit_from_logits(const float *logits) {
    /* srmbench _discretize: idx = topk(logits, 2); pred = idx[0], or idx[1] where idx[0] == 0. The top-2 of
     * the ten is the best of the nine others, so with top-1 = 0 it is the best of classes 1..9. */
    const int top1 = argmax_range(logits, 0, IPR_DIGIT_CLASSES);
    return top1 != 0 ? top1 : argmax_range(logits, 1, IPR_DIGIT_CLASSES);
}

int ipr_sudoku_read_digits(ipr_digit_classifier *net, const float *images, int B, uint8_t *digits) {
    IPR_CHECK(net != NULL && B >= 0 && B <= INT_MAX / 81 && (B == 0 || (images != NULL && digits != NULL)),
              "sudoku digits: bad arguments (B = %d)", B);
    const int64_t total = (int64_t)B * 81;
    const int mb = net->base.max_batch;
    for (int64_t c0 = 0; c0 < total; c0 += mb) {
        const int n = total - c0 < mb ? (int)(total - c0) : mb;
        /* gather: cell k of image b is rows 28 (k / 9).., columns 28 (k % 9).. (the reference's unfold order) */
        for (int j = 0; j < n; ++j) {
            const int64_t g = c0 + j;
            const int64_t b = g / 81;
            const int k = (int)(g % 81), r = k / 9, c = k % 9;
            const float *src = images + (size_t)b * IPR_SUDOKU_SIDE * IPR_SUDOKU_SIDE +
                               (size_t)(r * IPR_SUDOKU_CELL) * IPR_SUDOKU_SIDE + (size_t)c * IPR_SUDOKU_CELL;
            float *dst = net->cells + (size_t)j * CELL_FLOATS;
            for (int y = 0; y < IPR_SUDOKU_CELL; ++y)
                memcpy(dst + y * IPR_SUDOKU_CELL, src + (size_t)y * IPR_SUDOKU_SIDE, sizeof(float) * IPR_SUDOKU_CELL);
        }
        digit_forward(net, net->cells, n, net->logits);
        for (int j = 0; j < n; ++j)
            digits[c0 + j] = (uint8_t)ipr_sudoku_digit_from_logits(net->logits + (size_t)j * IPR_DIGIT_CLASSES);
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_sudoku_score_images(ipr_digit_classifier *net, const float *images, int B, uint8_t *digits, int *distance,
                            uint8_t *valid) {
    uint8_t local[CLS_SCORE_GROUP * 81];
    IPR_CHECK(net != NULL && B >= 0 && (B == 0 || images != NULL), "sudoku score: bad arguments (B = %d)", B);
    const size_t img = (size_t)IPR_SUDOKU_SIDE * IPR_SUDOKU_SIDE;
    /* with a caller buffer all images go at once; without, groups of CLS_SCORE_GROUP into `local` */
    const int group = digits ? (B > 0 ? B : 1) : CLS_SCORE_GROUP;
    for (int b0 = 0; b0 < B; b0 += group) {
        const int n = B - b0 < group ? B - b0 : group;
        uint8_t *d = digits ? digits + (size_t)b0 * 81 : local;
        IPR_TRY(ipr_sudoku_read_digits(net, images + (size_t)b0 * img, n, d));
        for (int i = 0; i < n; ++i) {
            /* spec 4.1: distance over rows, columns and boxes; valid = distance 0 */
            const int dist = ipr_sudoku_distance(d + (size_t)i * 81);
            if (distance) distance[b0 + i] = dist;
            if (valid) valid[b0 + i] = dist == 0;
        }
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* ------------------------------------------------------------------------------------------------ */
/* Counting Polygons classifier (spec 4.3, this project's small network) */

static const char *const k_head_names[4] = {"num_polygons", "num_vertices", "is_uniform", "numbers_label"};
static const int k_head_classes[4] = {IPR_POLYCLS_NP, IPR_POLYCLS_NV, IPR_POLYCLS_NU, IPR_POLYCLS_NL};
#define POLY_HEAD_TOTAL (IPR_POLYCLS_NP + IPR_POLYCLS_NV + IPR_POLYCLS_NU + IPR_POLYCLS_NL) /* 51 */
#define POLY_IN_CHANNELS 3

struct ipr_polygons_classifier {
    cls_base base;
    ipr_polygons_classifier_config cfg;
    cls_conv conv[IPR_POLYCLS_MAX_LAYERS];
    cls_norm norm[IPR_POLYCLS_MAX_LAYERS];
    cls_linear fc1, head[4];
    int side[IPR_POLYCLS_MAX_LAYERS + 1]; /* spatial side before conv l (side[0] = image_size) and after the last */
    /* scratch */
    float *act[2]; /* ping-pong conv outputs of one image, each the largest (C, side, side) */
    float *col;    /* im2col of one conv */
    float *feat;   /* (max_batch, C_L) pooled features */
    float *hid;    /* (max_batch, hidden) */
    float *heads;  /* (max_batch, 51): the four heads' logits, head-major blocks of (max_batch, classes) */
};

void ipr_polygons_classifier_config_init(ipr_polygons_classifier_config *cfg) {
    static const int widths[4] = {32, 64, 128, 128};
    memset(cfg, 0, sizeof *cfg);
    cfg->image_size = IPR_POLY_SIDE;
    cfg->layers = 4;
    for (int l = 0; l < 4; ++l) {
        cfg->channels[l] = widths[l];
        cfg->strides[l] = 2;
    }
    cfg->hidden = 128;
    cfg->norm_groups = 8;
}

static int poly_read_config(hid_t f, int64_t version, ipr_polygons_classifier_config *cfg) {
    const int64_t in_ch[1] = {POLY_IN_CHANNELS};
    const int64_t ncls[4] = {IPR_POLYCLS_NP, IPR_POLYCLS_NV, IPR_POLYCLS_NU, IPR_POLYCLS_NL};
    int64_t v[IPR_POLYCLS_MAX_LAYERS];
    int n = 0;
    ipr_polygons_classifier_config_init(cfg);
    IPR_TRY(attr_expect(f, "in_channels", in_ch, 1));
    IPR_TRY(attr_expect(f, "num_classes", ncls, 4));
    IPR_TRY(ipr_attr_ints(f, "image_size", 1, 0, 1, 4096, &cfg->image_size));
    /* the layer count is the length of `channels`: 4 in version 1, 1..IPR_POLYCLS_MAX_LAYERS from version 2 */
    IPR_TRY(ipr_h5_read_attr_i64_array(f, "channels", v, IPR_POLYCLS_MAX_LAYERS, &n));
    IPR_CHECK(n >= 1, "attribute 'channels' is empty");
    IPR_CHECK(version >= 2 || n == 4, "attribute 'channels' has %d values; a version-1 checkpoint has 4", n);
    cfg->layers = n;
    IPR_TRY(ipr_attr_ints(f, "channels", n, 0, 1, 4096, cfg->channels));
    if (version >= 2) {
        IPR_TRY(ipr_attr_ints(f, "strides", n, 0, 1, 2, cfg->strides));
    } else {
        IPR_CHECK(H5Aexists(f, "strides") <= 0, "attribute 'strides' in a version-1 checkpoint");
        for (int l = 0; l < n; ++l) cfg->strides[l] = 2;
    }
    for (int l = n; l < IPR_POLYCLS_MAX_LAYERS; ++l) cfg->channels[l] = cfg->strides[l] = 0;
    IPR_TRY(ipr_attr_ints(f, "hidden", 1, 0, 1, 65536, &cfg->hidden));
    IPR_TRY(ipr_attr_ints(f, "norm_groups", 1, 0, 0, 4096, &cfg->norm_groups));
    for (int l = 0; l < n && cfg->norm_groups > 0; ++l)
        IPR_CHECK(cfg->channels[l] % cfg->norm_groups == 0,
                  "attribute 'norm_groups' = %d does not divide channels[%d] = %d (GroupNorm needs it)",
                  cfg->norm_groups, l, cfg->channels[l]);
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* The scratch of one net (its layers, sides and max_batch set): req (POLY_SCRATCH); returns the count. */
#define POLY_SCRATCH 6
static int poly_scratch(ipr_polygons_classifier *net, cls_scratch *req) {
    const ipr_polygons_classifier_config *cfg = &net->cfg;
    size_t col = 0, act = 0;
    for (int l = 0; l < cfg->layers; ++l) {
        const int s = net->side[l];
        const size_t c = conv_col(&net->conv[l], s, s);
        const size_t a = (size_t)cfg->channels[l] * net->side[l + 1] * net->side[l + 1];
        if (c > col) col = c;
        if (a > act) act = a;
    }
    const int c_last = cfg->channels[cfg->layers - 1];
    const size_t mb = (size_t)net->base.max_batch;
    const cls_scratch all[POLY_SCRATCH] = {
        {&net->act[0], act},
        {&net->act[1], act},
        {&net->col, col},
        {&net->feat, mb * (size_t)c_last},
        {&net->hid, mb * (size_t)cfg->hidden},
        {&net->heads, mb * POLY_HEAD_TOTAL},
    };
    memcpy(req, all, sizeof all);
    return POLY_SCRATCH;
}

ipr_polygons_classifier *ipr_polygons_classifier_load(const char *path, int max_batch) {
    ipr_polygons_classifier *net = NULL;
    hid_t f = H5I_INVALID_HID;
    IPR_CHECK(max_batch >= 1, "polygons classifier: max_batch %d (>= 1 needed)", max_batch);
    net = ipr_calloc(1, sizeof *net, "polygons classifier");
    if (!net) goto fail; /* error recorded by ipr_calloc */
    f = ipr_h5_open_read(path);
    if (f < 0) goto fail;
    int64_t version = 0;
    IPR_TRY(read_header(f, IPR_CLASSIFIER_KIND_POLYGONS, &version));
    IPR_TRY(poly_read_config(f, version, &net->cfg));
    cls_base *nb = &net->base;
    const ipr_polygons_classifier_config *cfg = &net->cfg;
    nb->max_batch = max_batch;
    net->side[0] = cfg->image_size;
    for (int l = 0; l < cfg->layers; ++l) {
        char name[16];
        const int c_in = l ? cfg->channels[l - 1] : POLY_IN_CHANNELS;
        snprintf(name, sizeof name, "conv%d", l + 1);
        reg_conv(nb, &net->conv[l], name, c_in, cfg->channels[l], 3, cfg->strides[l], 1);
        if (cfg->norm_groups > 0) {
            snprintf(name, sizeof name, "norm%d", l + 1);
            reg_norm(nb, &net->norm[l], name, cfg->channels[l], cfg->norm_groups);
        }
        net->side[l + 1] = conv_out(net->side[l], &net->conv[l]);
    }
    const int c_last = cfg->channels[cfg->layers - 1];
    reg_linear(nb, &net->fc1, "fc1", c_last, cfg->hidden);
    for (int h = 0; h < 4; ++h) {
        char name[32];
        snprintf(name, sizeof name, "heads.%s", k_head_names[h]);
        reg_linear(nb, &net->head[h], name, cfg->hidden, k_head_classes[h]);
    }
    {
        cls_scratch req[POLY_SCRATCH];
        IPR_TRY(base_alloc(nb, req, poly_scratch(net, req)));
    }
    IPR_TRY(ipr_weights_load_h5(&nb->wt, f, "/weights"));
    H5Fclose(f);
    return net;
fail:
    ipr_error_context("polygons classifier checkpoint %s", path);
    if (f >= 0) H5Fclose(f);
    ipr_polygons_classifier_free(net);
    return NULL;
}

ipr_polygons_classifier *ipr_polygons_classifier_clone(const ipr_polygons_classifier *net) {
    ipr_polygons_classifier *c = NULL;
    IPR_CHECK(net != NULL, "polygons classifier clone: NULL net");
    c = ipr_malloc(sizeof *c, "polygons classifier clone");
    if (!c) goto fail;
    *c = *net; /* the layers' tensor pointers: into the original's weight arena, only ever read */
    c->base.clone = 1;
    c->base.sarena = NULL;
    {
        cls_scratch req[POLY_SCRATCH];
        IPR_TRY(scratch_alloc(&c->base, req, poly_scratch(c, req)));
    }
    return c;
fail:
    ipr_polygons_classifier_free(c);
    return NULL;
}

void ipr_polygons_classifier_free(ipr_polygons_classifier *net) {
    if (!net) return;
    base_free(&net->base);
    free(net);
}

const ipr_polygons_classifier_config *ipr_polygons_classifier_get_config(const ipr_polygons_classifier *net) {
    return &net->cfg;
}

/* out[h] (n, classes_h) = head h of images x (n, 3, S, S), n <= max_batch; a NULL out[h] is skipped */
static void poly_forward(ipr_polygons_classifier *net, const float *x, int n, float *const out[4]) {
    const ipr_polygons_classifier_config *cfg = &net->cfg;
    const int c_last = cfg->channels[cfg->layers - 1];
    const size_t img = (size_t)POLY_IN_CHANNELS * cfg->image_size * cfg->image_size;
    for (int i = 0; i < n; ++i) {
        const float *in = x + (size_t)i * img;
        float *y = NULL;
        for (int l = 0; l < cfg->layers; ++l) {
            /* conv3x3 stride 1 or 2 -> [GroupNorm] -> ReLU: (C_l-1, s, s) -> (C_l, s', s') */
            y = net->act[l & 1];
            const int s = net->side[l], so = net->side[l + 1];
            const size_t hw = (size_t)so * so;
            conv_fwd(y, in, &net->conv[l], s, s, net->col);
            if (cfg->norm_groups > 0)
                ipr_cpu_group_norm(y, y, net->norm[l].gamma, net->norm[l].beta, cfg->channels[l], (int)hw,
                                   cfg->norm_groups, IPR_GN_EPS, 0);
            ipr_cpu_relu(y, y, (size_t)cfg->channels[l] * hw);
            in = y;
        }
        /* global average pool: (C_L, s_L, s_L) -> (C_L) */
        const int sl = net->side[cfg->layers];
        ipr_cpu_global_avg_pool(net->feat + (size_t)i * c_last, y, c_last, sl * sl);
    }
    /* fc1 + ReLU, then the four heads over the chunk */
    ipr_cpu_linear(net->hid, net->feat, net->fc1.w, net->fc1.b, n, c_last, cfg->hidden);
    ipr_cpu_relu(net->hid, net->hid, (size_t)n * cfg->hidden);
    for (int h = 0; h < 4; ++h)
        if (out[h]) ipr_cpu_linear(out[h], net->hid, net->head[h].w, net->head[h].b, n, cfg->hidden, k_head_classes[h]);
}

int ipr_polygons_classifier_logits(ipr_polygons_classifier *net, const float *images, int N, float *num_polygons,
                                   float *num_vertices, float *is_uniform, float *numbers_label) {
    IPR_CHECK(net != NULL && N >= 0 && (N == 0 || images != NULL), "polygons classifier: bad arguments (N = %d)", N);
    float *const dst[4] = {num_polygons, num_vertices, is_uniform, numbers_label};
    const size_t img = (size_t)POLY_IN_CHANNELS * net->cfg.image_size * net->cfg.image_size;
    for (int c0 = 0; c0 < N; c0 += net->base.max_batch) {
        const int n = N - c0 < net->base.max_batch ? N - c0 : net->base.max_batch;
        float *out[4];
        for (int h = 0; h < 4; ++h) out[h] = dst[h] ? dst[h] + (size_t)c0 * k_head_classes[h] : NULL;
        poly_forward(net, images + (size_t)c0 * img, n, out);
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

void ipr_polygons_prediction_make(int num_polygons, int num_vertices, int is_uniform, int numbers_label,
                                  ipr_polygons_prediction *out) {
    memset(out, 0, sizeof *out);
    out->num_polygons = num_polygons;
    out->num_vertices = num_vertices;
    out->is_uniform = is_uniform;
    out->numbers_label = numbers_label;
    ipr_polygons_pair_values(numbers_label, &out->numbers[0], &out->numbers[1]);
    const int a = out->numbers[0], b = out->numbers[1];
    /* srmbench _are_ambiguous_numbers_consistent: the pair equals (count, vertices) in either order. A label
     * outside 0..34 gives the pair (0, 0), which matches no count. */
    out->numbers_consistent =
        a != 0 && ((a == num_polygons && b == num_vertices) || (a == num_vertices && b == num_polygons));
    /* IPR's checker: a sample is valid only if both metrics hold (spec 4.3) */
    out->valid = is_uniform == 1 && out->numbers_consistent;
}

void ipr_polygons_prediction_from_logits(const float *num_polygons, const float *num_vertices,
                                         const float *is_uniform, const float *numbers_label,
                                         ipr_polygons_prediction *out) {
    /* srmbench predict: softmax then argmax (softmax is monotone: argmax of the logits), classes offset by the
     * smallest count (1) and vertex count (3) */
    ipr_polygons_prediction_make(argmax_range(num_polygons, 0, IPR_POLYCLS_NP) + 1,
                                 argmax_range(num_vertices, 0, IPR_POLYCLS_NV) + 3,
                                 argmax_range(is_uniform, 0, IPR_POLYCLS_NU),
                                 argmax_range(numbers_label, 0, IPR_POLYCLS_NL), out);
}

int ipr_polygons_score_images(ipr_polygons_classifier *net, const float *images, int N, ipr_polygons_prediction *out) {
    IPR_CHECK(net != NULL && N >= 0 && (N == 0 || (images != NULL && out != NULL)),
              "polygons score: bad arguments (N = %d)", N);
    const int mb = net->base.max_batch;
    const size_t img = (size_t)POLY_IN_CHANNELS * net->cfg.image_size * net->cfg.image_size;
    float *blk[4];
    size_t at = 0;
    for (int h = 0; h < 4; ++h) {
        blk[h] = net->heads + at;
        at += (size_t)mb * k_head_classes[h];
    }
    for (int c0 = 0; c0 < N; c0 += mb) {
        const int n = N - c0 < mb ? N - c0 : mb;
        poly_forward(net, images + (size_t)c0 * img, n, blk);
        for (int i = 0; i < n; ++i) {
            const size_t r = (size_t)i;
            ipr_polygons_prediction_from_logits(blk[0] + r * IPR_POLYCLS_NP, blk[1] + r * IPR_POLYCLS_NV,
                                                blk[2] + r * IPR_POLYCLS_NU, blk[3] + r * IPR_POLYCLS_NL, &out[c0 + i]);
        }
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}
