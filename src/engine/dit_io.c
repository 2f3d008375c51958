/* dit_io.c: DiT configs and checkpoints (spec dit.md "Checkpoint", train/srm_dit.py save_h5 / read_config): root
 * attributes -> ipr_dit_config with every value checked, /weights through the shared loader, atomic saving, test
 * weights. */
#include <stdio.h>
#include <string.h>

#include "dit_internal.h"
#include "ipr/common.h"
#include "ipr/h5io.h"

/* Philox purpose of test weights; outside the ipr_rng_purpose values, which are for results (the U-Net's is
 * 0x7E57). */
#define IPR_DIT_RNG_TEST_WEIGHTS 0x7E58u
/* largest image side, width, depth, ... a config may state (keeps every size product far from overflow) */
#define DIT_DIM_MAX (1 << 16)
/* Most tokens an image may have: the forward keeps the N x N attention scores of one image (256 MiB at 8,192);
 * the benchmarks' models have 81 (Sudoku) to 256 (Counting Polygons). */
#define DIT_TOKENS_MAX 8192

#ifndef IPR_VERSION
#define IPR_VERSION "unknown"
#endif
#ifndef IPR_GIT_SHA
#define IPR_GIT_SHA "unknown"
#endif

void ipr_dit_config_init(ipr_dit_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->tokens_per_side = 1;
    cfg->mlp_ratio = 4;
    cfg->parameterization = IPR_DIT_PARAM_X;
    cfg->t_min = IPR_DIT_T_MIN_DEFAULT;
    cfg->input_scale = IPR_DIT_INPUT_NONE;
}

const char *ipr_dit_input_scale_name(ipr_dit_input_scale m) {
    switch (m) {
    case IPR_DIT_INPUT_NONE: return "none";
    case IPR_DIT_INPUT_WIENER: return "wiener";
    }
    return "?";
}

double ipr_dit_input_factor(ipr_dit_input_scale m, double t) {
    if (m != IPR_DIT_INPUT_WIENER) return 1.0;
    const double a = 1.0 - t;
    return a / (a * a + t * t);
}

const char *ipr_dit_param_name(ipr_dit_param p) {
    switch (p) {
    case IPR_DIT_PARAM_U: return "u";
    case IPR_DIT_PARAM_X: return "x";
    }
    return "?";
}

void ipr_dit_geometry(const ipr_dit_config *cfg, int *gh, int *gw, int *tokens, int *features) {
    const int p = cfg->patch_size > 0 ? cfg->patch_size : 1, s = cfg->tokens_per_side > 0 ? cfg->tokens_per_side : 1;
    const int h = cfg->image_size[0] / p, w = cfg->image_size[1] / p;
    if (gh) *gh = h;
    if (gw) *gw = w;
    if (tokens) *tokens = h * w * s * s;
    if (features) *features = cfg->d_in * p * p / (s * s);
}

int ipr_dit_config_validate(const ipr_dit_config *cfg) {
    IPR_CHECK(cfg->d_in >= 1 && cfg->d_in <= DIT_DIM_MAX, "dit config: d_in %d outside 1..%d", cfg->d_in, DIT_DIM_MAX);
    IPR_CHECK(cfg->d_out == 2 * cfg->d_in + 1, "dit config: d_out %d is not 2 d_in + 1 = %d", cfg->d_out,
              2 * cfg->d_in + 1);
    const int H = cfg->image_size[0], W = cfg->image_size[1], p = cfg->patch_size, s = cfg->tokens_per_side;
    IPR_CHECK(H >= 1 && W >= 1 && H <= DIT_DIM_MAX && W <= DIT_DIM_MAX, "dit config: image_size %d x %d", H, W);
    IPR_CHECK(p >= 1 && p <= DIT_DIM_MAX, "dit config: patch_size %d", p);
    IPR_CHECK(H % p == 0 && W % p == 0, "dit config: image %dx%d is not a whole number of %dx%d regions", H, W, p, p);
    IPR_CHECK(s >= 1 && s <= p, "dit config: tokens_per_side %d outside 1..patch_size %d", s, p);
    const int64_t P = (int64_t)cfg->d_in * p * p;
    IPR_CHECK(P % ((int64_t)s * s) == 0, "dit config: a region of %lld values does not split into %dx%d tokens",
              (long long)P, s, s);
    IPR_CHECK(P <= DIT_DIM_MAX * 16, "dit config: %lld values per region: too large (at most %d)", (long long)P,
              DIT_DIM_MAX * 16);
    IPR_CHECK((int64_t)(H / p) * (W / p) * s * s <= DIT_TOKENS_MAX,
              "dit config: %lld tokens per image, more than this engine's %d (its attention keeps N x N scores)",
              (long long)(H / p) * (W / p) * s * s, DIT_TOKENS_MAX);
    IPR_CHECK(cfg->d_hid >= 1 && cfg->d_hid <= DIT_DIM_MAX, "dit config: d_hid %d", cfg->d_hid);
    IPR_CHECK(cfg->num_heads >= 1 && cfg->d_hid % cfg->num_heads == 0,
              "dit config: d_hid %d is not a multiple of num_heads %d", cfg->d_hid, cfg->num_heads);
    IPR_CHECK(cfg->d_hid % 4 == 0, "dit config: d_hid %d is not a multiple of 4 (the 2-D sin-cos position embedding)",
              cfg->d_hid);
    IPR_CHECK(cfg->depth >= 1 && cfg->depth <= 1024, "dit config: depth %d outside 1..1024", cfg->depth);
    IPR_CHECK(cfg->mlp_ratio >= 1 && cfg->mlp_ratio <= 64, "dit config: mlp_ratio %d outside 1..64", cfg->mlp_ratio);
    IPR_CHECK(cfg->parameterization == IPR_DIT_PARAM_U || cfg->parameterization == IPR_DIT_PARAM_X,
              "dit config: parameterization %d (u or x)", (int)cfg->parameterization);
    IPR_CHECK(cfg->t_min > 0.0 && cfg->t_min <= 1.0, "dit config: t_min %g outside (0, 1]", cfg->t_min);
    IPR_CHECK(cfg->input_scale == IPR_DIT_INPUT_NONE || cfg->input_scale == IPR_DIT_INPUT_WIENER,
              "dit config: input_scale %d (none or wiener)", (int)cfg->input_scale);
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_dit_config_read_h5(hid_t f, const char *path, ipr_dit_config *cfg) {
    char s[128];
    int version = 0;
    int64_t v[8];
    int n = 0;
    ipr_dit_config_init(cfg);
    IPR_TRY(ipr_h5_read_attr_str(f, "format", s, sizeof s));
    if (strcmp(s, "srm-unet-checkpoint") == 0)
        IPR_FAIL("attribute 'format' is \"%s\", expected \"%s\" (a U-Net checkpoint: the U-Net engine reads it)", s,
                 IPR_DIT_FORMAT);
    IPR_CHECK(strcmp(s, IPR_DIT_FORMAT) == 0, "attribute 'format' is \"%s\", expected \"%s\"", s, IPR_DIT_FORMAT);
    IPR_TRY(ipr_attr_int(f, "format_version", 0, 1 << 30, &version));
    IPR_CHECK(version == IPR_DIT_FORMAT_VERSION, "attribute 'format_version' is %d, this build reads version %d",
              version, IPR_DIT_FORMAT_VERSION);
    IPR_TRY(ipr_attr_int(f, "d_in", 1, DIT_DIM_MAX, &cfg->d_in));
    IPR_TRY(ipr_attr_int(f, "d_out", 1, 2 * DIT_DIM_MAX + 1, &cfg->d_out));
    IPR_CHECK(cfg->d_out == 2 * cfg->d_in + 1, "attribute 'd_out' = %d is not 2 d_in + 1 = %d (d_in %d)", cfg->d_out,
              2 * cfg->d_in + 1, cfg->d_in);
    IPR_TRY(ipr_attr_int(f, "patch_size", 1, DIT_DIM_MAX, &cfg->patch_size));
    IPR_TRY(ipr_attr_int(f, "tokens_per_side", 1, DIT_DIM_MAX, &cfg->tokens_per_side));
    IPR_TRY(ipr_attr_int(f, "d_hid", 1, DIT_DIM_MAX, &cfg->d_hid));
    IPR_TRY(ipr_attr_int(f, "depth", 1, 1024, &cfg->depth));
    IPR_TRY(ipr_attr_int(f, "num_heads", 1, DIT_DIM_MAX, &cfg->num_heads));
    IPR_TRY(ipr_attr_int(f, "mlp_ratio", 1, 64, &cfg->mlp_ratio));
    IPR_TRY(ipr_h5_read_attr_i64_array(f, "image_size", v, 8, &n));
    IPR_CHECK(n == 2 && v[0] >= 1 && v[1] >= 1 && v[0] <= DIT_DIM_MAX && v[1] <= DIT_DIM_MAX,
              "attribute 'image_size' should be [H, W] with entries in 1..%d", DIT_DIM_MAX);
    cfg->image_size[0] = (int)v[0];
    cfg->image_size[1] = (int)v[1];
    IPR_TRY(ipr_h5_read_attr_str(f, "parameterization", s, sizeof s));
    if (strcmp(s, "u") == 0)
        cfg->parameterization = IPR_DIT_PARAM_U;
    else if (strcmp(s, "x") == 0)
        cfg->parameterization = IPR_DIT_PARAM_X;
    else
        IPR_FAIL("attribute 'parameterization' is \"%s\", expected \"u\" or \"x\"", s);
    /* spec dit.md: t_min is written with "x" only; absent, it is 0.05 (train/srm_dit.py read_config) */
    const htri_t has_tmin = H5Aexists(f, "t_min");
    IPR_H5(has_tmin);
    if (has_tmin > 0) {
        IPR_TRY(ipr_attr_f64(f, "t_min", &cfg->t_min));
        IPR_CHECK(cfg->t_min > 0.0 && cfg->t_min <= 1.0, "attribute 't_min' = %g outside (0, 1]", cfg->t_min);
    }
    /* ours, not spec dit.md's: absent means none (every checkpoint of the spec's network) */
    const htri_t has_scale = H5Aexists(f, "input_scale");
    IPR_H5(has_scale);
    if (has_scale > 0) {
        IPR_TRY(ipr_h5_read_attr_str(f, "input_scale", s, sizeof s));
        if (strcmp(s, "none") == 0)
            cfg->input_scale = IPR_DIT_INPUT_NONE;
        else if (strcmp(s, "wiener") == 0)
            cfg->input_scale = IPR_DIT_INPUT_WIENER;
        else
            IPR_FAIL("attribute 'input_scale' is \"%s\", expected \"none\" or \"wiener\"", s);
    }
    IPR_TRY(ipr_dit_config_validate(cfg));
    return IPR_OK;
fail:
    ipr_error_context("checkpoint %s", path);
    return IPR_ERR;
}

int ipr_dit_config_read(const char *ckpt_path, ipr_dit_config *cfg) {
    hid_t f = ipr_h5_open_read(ckpt_path);
    if (f < 0) return IPR_ERR;
    const int rc = ipr_dit_config_read_h5(f, ckpt_path, cfg);
    H5Fclose(f);
    return rc;
}

/* 1 if a and b describe the same network (every field: shapes, positions and the output map depend on them;
 * t_min only with the x parameterization, the only one that reads it) */
int ipr_dit_config_same_arch(const ipr_dit_config *a, const ipr_dit_config *b) {
    return a->d_in == b->d_in && a->d_out == b->d_out && a->image_size[0] == b->image_size[0] &&
           a->image_size[1] == b->image_size[1] && a->patch_size == b->patch_size &&
           a->tokens_per_side == b->tokens_per_side && a->d_hid == b->d_hid && a->depth == b->depth &&
           a->num_heads == b->num_heads && a->mlp_ratio == b->mlp_ratio &&
           a->parameterization == b->parameterization && a->input_scale == b->input_scale &&
           (a->parameterization != IPR_DIT_PARAM_X || a->t_min == b->t_min);
}

/* "d_hid 32 in the file, 48 planned" for the first field that differs */
static void describe_difference(const ipr_dit_config *f, const ipr_dit_config *p, char *out, size_t cap) {
    const struct {
        const char *name;
        int a, b;
    } ints[] = {
        {"d_in", f->d_in, p->d_in},
        {"image_size[0]", f->image_size[0], p->image_size[0]},
        {"image_size[1]", f->image_size[1], p->image_size[1]},
        {"patch_size", f->patch_size, p->patch_size},
        {"tokens_per_side", f->tokens_per_side, p->tokens_per_side},
        {"d_hid", f->d_hid, p->d_hid},
        {"depth", f->depth, p->depth},
        {"num_heads", f->num_heads, p->num_heads},
        {"mlp_ratio", f->mlp_ratio, p->mlp_ratio},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; ++i)
        if (ints[i].a != ints[i].b) {
            snprintf(out, cap, "%s %d in the file, %d planned", ints[i].name, ints[i].a, ints[i].b);
            return;
        }
    if (f->input_scale != p->input_scale)
        snprintf(out, cap, "input_scale \"%s\" in the file, \"%s\" planned", ipr_dit_input_scale_name(f->input_scale),
                 ipr_dit_input_scale_name(p->input_scale));
    else if (f->parameterization != p->parameterization)
        snprintf(out, cap, "parameterization \"%s\" in the file, \"%s\" planned", ipr_dit_param_name(f->parameterization),
                 ipr_dit_param_name(p->parameterization));
    else
        snprintf(out, cap, "t_min %.17g in the file, %.17g planned", f->t_min, p->t_min);
}

int ipr_dit_load_weights(ipr_dit *net, const char *ckpt_path) {
    hid_t f = H5I_INVALID_HID;
    ipr_dit_config fcfg;
    IPR_CHECK(net != NULL && ckpt_path != NULL, "dit: load weights: NULL argument");
    f = ipr_h5_open_read(ckpt_path);
    if (f < 0) return IPR_ERR;
    IPR_TRY(ipr_dit_config_read_h5(f, ckpt_path, &fcfg));
    if (!ipr_dit_config_same_arch(&fcfg, &net->cfg)) {
        char what[160];
        describe_difference(&fcfg, &net->cfg, what, sizeof what);
        IPR_FAIL("checkpoint %s: its architecture (root attributes) differs from the planned network (%s)", ckpt_path,
                 what);
    }
    if (ipr_weights_load_h5(&net->wt, f, "/weights") != IPR_OK) {
        ipr_error_context("checkpoint %s", ckpt_path);
        goto fail;
    }
    H5Fclose(f);
    return IPR_OK;
fail:
    if (f >= 0) H5Fclose(f);
    return IPR_ERR;
}

ipr_dit *ipr_dit_load(const char *ckpt_path, int max_batch) {
    ipr_dit_config cfg;
    ipr_dit *net = NULL;
    int64_t held = 0;
    IPR_TRY(ipr_dit_config_read(ckpt_path, &cfg));
    /* the weights' size is checked against what the file holds before the arena is allocated, so that edited
     * root attributes (d_hid, depth, mlp_ratio) cannot ask for more memory than the checkpoint could fill */
    IPR_TRY(ipr_weights_h5_values(ckpt_path, "/weights", &held));
    net = ipr_dit_new_bounded(&cfg, max_batch, held);
    if (!net) {
        ipr_error_context("checkpoint %s", ckpt_path);
        goto fail;
    }
    IPR_TRY(ipr_dit_load_weights(net, ckpt_path));
    return net;
fail:
    ipr_dit_free(net);
    return NULL;
}

/* The root attributes of train/srm_dit.py save_h5 (which its read_config reads back), then /weights float32. */
int ipr_dit_save(const ipr_dit *net, const char *path) {
    char tmp[4096] = "";
    hid_t f = H5I_INVALID_HID;
    const ipr_dit_config *cfg = &net->cfg;
    IPR_TRY(ipr_tmp_path(tmp, sizeof tmp, path));
    f = ipr_h5_create(tmp);
    if (f < 0) {
        tmp[0] = '\0'; /* nothing was created */
        goto fail;
    }
    IPR_TRY(ipr_h5_attr_str(f, "format", IPR_DIT_FORMAT));
    IPR_TRY(ipr_h5_attr_i64(f, "format_version", IPR_DIT_FORMAT_VERSION));
    IPR_TRY(ipr_h5_attr_i64(f, "d_in", cfg->d_in));
    IPR_TRY(ipr_h5_attr_i64(f, "d_out", cfg->d_out));
    IPR_TRY(ipr_h5_attr_i64(f, "patch_size", cfg->patch_size));
    IPR_TRY(ipr_h5_attr_i64(f, "tokens_per_side", cfg->tokens_per_side));
    IPR_TRY(ipr_h5_attr_i64(f, "d_hid", cfg->d_hid));
    IPR_TRY(ipr_h5_attr_i64(f, "depth", cfg->depth));
    IPR_TRY(ipr_h5_attr_i64(f, "num_heads", cfg->num_heads));
    IPR_TRY(ipr_h5_attr_i64(f, "mlp_ratio", cfg->mlp_ratio));
    const int64_t size[2] = {cfg->image_size[0], cfg->image_size[1]};
    IPR_TRY(ipr_h5_attr_i64_array(f, "image_size", size, 2));
    IPR_TRY(ipr_h5_attr_str(f, "parameterization", ipr_dit_param_name(cfg->parameterization)));
    if (cfg->parameterization == IPR_DIT_PARAM_X) IPR_TRY(ipr_h5_attr_f64(f, "t_min", cfg->t_min));
    if (cfg->input_scale != IPR_DIT_INPUT_NONE)
        IPR_TRY(ipr_h5_attr_str(f, "input_scale", ipr_dit_input_scale_name(cfg->input_scale)));
    IPR_TRY(ipr_h5_attr_str(f, "weight_storage", "float32"));
    /* provenance (the loaders ignore it) */
    IPR_TRY(ipr_h5_attr_str(f, "producer", "ipr_dit_save, libipr " IPR_VERSION " (git " IPR_GIT_SHA ")"));
    const hid_t done = f;
    f = H5I_INVALID_HID; /* closed by ipr_weights_save_file, which also removes tmp on failure */
    IPR_TRY(ipr_weights_save_file(&net->wt, done, tmp, path));
    return IPR_OK;
fail:
    ipr_error_context("writing checkpoint %s", path);
    if (f >= 0) {
        H5Fclose(f);
        if (tmp[0]) remove(tmp); /* no partial file is left behind (path itself is untouched) */
    }
    return IPR_ERR;
}

void ipr_dit_init_random(ipr_dit *net, uint64_t seed) {
    ipr_weights_init_random(&net->wt, seed, IPR_DIT_RNG_TEST_WEIGHTS);
}
