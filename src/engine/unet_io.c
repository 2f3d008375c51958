/* unet_io.c: SRM U-Net checkpoints (fixtures/README.md): root attributes -> ipr_unet_config, /weights/<name>
 * checked both ways against the plan (missing, unexpected, mis-shaped, diverging aliases), writing, and
 * deterministic random weights for tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipr/common.h"
#include "ipr/h5io.h"
#include "unet_internal.h"

/* Philox purpose of test weights; outside the ipr_rng_purpose values, which are for results. */
#define IPR_UNET_RNG_TEST_WEIGHTS 0x7E57u

void ipr_unet_config_init(ipr_unet_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    for (int l = 0; l < IPR_UNET_MAX_LEVELS; ++l) cfg->num_blocks[l] = 2;
    cfg->num_head_channels = 64;
    cfg->t_emb_dim = 512;
    cfg->d_emb = 256;
}

int ipr_unet_config_validate(const ipr_unet_config *cfg) {
    IPR_CHECK(cfg->n_levels >= 1 && cfg->n_levels <= IPR_UNET_MAX_LEVELS, "unet config: %d levels (1..%d allowed)",
              cfg->n_levels, IPR_UNET_MAX_LEVELS);
    IPR_CHECK(cfg->num_head_channels >= 1, "unet config: num_head_channels %d", cfg->num_head_channels);
    for (int l = 0; l < cfg->n_levels; ++l) {
        const int c = cfg->hid_dims[l];
        IPR_CHECK(c >= IPR_GN_GROUPS && c % IPR_GN_GROUPS == 0,
                  "unet config: hid_dims[%d] = %d is not a positive multiple of the %d GroupNorm groups", l, c,
                  IPR_GN_GROUPS);
        IPR_CHECK(cfg->attention[l] == 0 || cfg->attention[l] == 1, "unet config: attention[%d] = %d (0 or 1)", l,
                  cfg->attention[l]);
        IPR_CHECK(!cfg->attention[l] || c % cfg->num_head_channels == 0,
                  "unet config: level %d has attention but %d channels are not a multiple of num_head_channels %d", l,
                  c, cfg->num_head_channels);
        IPR_CHECK(cfg->num_blocks[l] >= 0 && cfg->num_blocks[l] <= 64, "unet config: num_blocks[%d] = %d", l,
                  cfg->num_blocks[l]);
    }
    const int cl = cfg->hid_dims[cfg->n_levels - 1];
    IPR_CHECK(cl % cfg->num_head_channels == 0,
              "unet config: the bottleneck attention needs hid_dims[-1] = %d to be a multiple of num_head_channels %d",
              cl, cfg->num_head_channels);
    IPR_CHECK(cfg->d_in >= 1 && cfg->d_out >= 1, "unet config: d_in %d, d_out %d", cfg->d_in, cfg->d_out);
    IPR_CHECK(cfg->t_emb_dim >= 1 && cfg->d_emb >= 2, "unet config: t_emb_dim %d, d_emb %d", cfg->t_emb_dim,
              cfg->d_emb);
    IPR_CHECK(cfg->patch_size >= 0, "unet config: patch_size %d (0 = image-level)", cfg->patch_size);
    IPR_CHECK(cfg->image_size[0] >= 1 && cfg->image_size[1] >= 1, "unet config: image_size %d x %d",
              cfg->image_size[0], cfg->image_size[1]);
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_unet_config_read_h5(hid_t f, const char *path, ipr_unet_config *cfg) {
    char fmt[128];
    int version = 0;
    int64_t v[IPR_UNET_MAX_LEVELS];
    int n = 0;
    ipr_unet_config_init(cfg);
    IPR_TRY(ipr_h5_read_attr_str(f, "format", fmt, sizeof fmt));
    IPR_CHECK(strcmp(fmt, IPR_UNET_FORMAT) == 0, "attribute 'format' is \"%s\", expected \"%s\"", fmt,
              IPR_UNET_FORMAT);
    IPR_TRY(ipr_attr_int(f, "format_version", 0, 1 << 30, &version));
    IPR_CHECK(version == IPR_UNET_FORMAT_VERSION, "attribute 'format_version' is %d, this build reads version %d",
              version, IPR_UNET_FORMAT_VERSION);
    IPR_TRY(ipr_h5_read_attr_i64_array(f, "hid_dims", v, IPR_UNET_MAX_LEVELS, &n));
    IPR_CHECK(n >= 1, "attribute 'hid_dims' is empty");
    cfg->n_levels = n;
    for (int l = 0; l < n; ++l) {
        IPR_CHECK(v[l] >= 1 && v[l] <= 1 << 16, "attribute 'hid_dims'[%d] = %lld", l, (long long)v[l]);
        cfg->hid_dims[l] = (int)v[l];
    }
    IPR_TRY(ipr_attr_ints(f, "attention", n, 1, 0, 1, cfg->attention));
    IPR_TRY(ipr_attr_ints(f, "num_blocks", n, 1, 0, 64, cfg->num_blocks));
    IPR_TRY(ipr_attr_int(f, "d_in", 1, 1 << 16, &cfg->d_in));
    IPR_TRY(ipr_attr_int(f, "d_out", 1, 1 << 16, &cfg->d_out));
    IPR_TRY(ipr_attr_int(f, "num_head_channels", 1, 1 << 16, &cfg->num_head_channels));
    IPR_TRY(ipr_attr_int(f, "t_emb_dim", 1, 1 << 16, &cfg->t_emb_dim));
    IPR_TRY(ipr_attr_int(f, "d_emb", 2, 1 << 16, &cfg->d_emb));
    IPR_TRY(ipr_attr_int(f, "patch_size", 0, 1 << 16, &cfg->patch_size));
    IPR_TRY(ipr_h5_read_attr_i64_array(f, "image_size", v, IPR_UNET_MAX_LEVELS, &n));
    IPR_CHECK(n == 2 && v[0] >= 1 && v[1] >= 1 && v[0] <= 1 << 16 && v[1] <= 1 << 16,
              "attribute 'image_size' should be [H, W] with positive entries");
    cfg->image_size[0] = (int)v[0];
    cfg->image_size[1] = (int)v[1];
    IPR_TRY(ipr_unet_config_validate(cfg));
    return IPR_OK;
fail:
    ipr_error_context("checkpoint %s", path);
    return IPR_ERR;
}

int ipr_unet_config_read(const char *ckpt_path, ipr_unet_config *cfg) {
    hid_t f = ipr_h5_open_read(ckpt_path);
    if (f < 0) return IPR_ERR;
    int rc = ipr_unet_config_read_h5(f, ckpt_path, cfg);
    H5Fclose(f);
    return rc;
}

int ipr_unet_config_same_arch(const ipr_unet_config *a, const ipr_unet_config *b) {
    if (a->n_levels != b->n_levels || a->d_in != b->d_in || a->d_out != b->d_out ||
        a->num_head_channels != b->num_head_channels || a->t_emb_dim != b->t_emb_dim || a->d_emb != b->d_emb)
        return 0;
    for (int l = 0; l < a->n_levels; ++l)
        if (a->hid_dims[l] != b->hid_dims[l] || a->attention[l] != b->attention[l] ||
            a->num_blocks[l] != b->num_blocks[l])
            return 0;
    return 1;
}

/* ------------------------------------------------------------------------------------------------ */

int ipr_unet_load_weights(ipr_unet *net, const char *ckpt_path) {
    hid_t f = H5I_INVALID_HID;
    ipr_unet_config fcfg;
    f = ipr_h5_open_read(ckpt_path);
    if (f < 0) return IPR_ERR;
    IPR_TRY(ipr_unet_config_read_h5(f, ckpt_path, &fcfg));
    IPR_CHECK(ipr_unet_config_same_arch(&fcfg, &net->cfg),
              "checkpoint %s: its architecture (root attributes) differs from the planned network", ckpt_path);
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

int ipr_unet_save(const ipr_unet *net, const char *path) {
    char tmp[4096];
    hid_t f = H5I_INVALID_HID;
    const ipr_unet_config *cfg = &net->cfg;
    int64_t v[IPR_UNET_MAX_LEVELS];
    IPR_TRY(ipr_tmp_path(tmp, sizeof tmp, path));
    f = ipr_h5_create(tmp);
    IPR_CHECK(f >= 0, "%s", ipr_error_message());
    IPR_TRY(ipr_h5_attr_str(f, "format", IPR_UNET_FORMAT));
    IPR_TRY(ipr_h5_attr_i64(f, "format_version", IPR_UNET_FORMAT_VERSION));
    for (int l = 0; l < cfg->n_levels; ++l) v[l] = cfg->hid_dims[l];
    IPR_TRY(ipr_h5_attr_i64_array(f, "hid_dims", v, (hsize_t)cfg->n_levels));
    for (int l = 0; l < cfg->n_levels; ++l) v[l] = cfg->attention[l];
    IPR_TRY(ipr_h5_attr_i64_array(f, "attention", v, (hsize_t)cfg->n_levels));
    int uniform = 1;
    for (int l = 0; l < cfg->n_levels; ++l) uniform &= cfg->num_blocks[l] == cfg->num_blocks[0];
    if (uniform) {
        IPR_TRY(ipr_h5_attr_i64(f, "num_blocks", cfg->num_blocks[0]));
    } else {
        for (int l = 0; l < cfg->n_levels; ++l) v[l] = cfg->num_blocks[l];
        IPR_TRY(ipr_h5_attr_i64_array(f, "num_blocks", v, (hsize_t)cfg->n_levels));
    }
    IPR_TRY(ipr_h5_attr_i64(f, "d_in", cfg->d_in));
    IPR_TRY(ipr_h5_attr_i64(f, "d_out", cfg->d_out));
    IPR_TRY(ipr_h5_attr_i64(f, "num_head_channels", cfg->num_head_channels));
    IPR_TRY(ipr_h5_attr_i64(f, "t_emb_dim", cfg->t_emb_dim));
    IPR_TRY(ipr_h5_attr_i64(f, "d_emb", cfg->d_emb));
    IPR_TRY(ipr_h5_attr_i64(f, "patch_size", cfg->patch_size));
    v[0] = cfg->image_size[0];
    v[1] = cfg->image_size[1];
    IPR_TRY(ipr_h5_attr_i64_array(f, "image_size", v, 2));
    const hid_t done = f;
    f = H5I_INVALID_HID; /* closed by ipr_weights_save_file, which also removes tmp on failure */
    IPR_TRY(ipr_weights_save_file(&net->wt, done, tmp, path));
    return IPR_OK;
fail:
    ipr_error_context("writing checkpoint %s", path);
    if (f >= 0) {
        H5Fclose(f);
        remove(tmp);
    }
    return IPR_ERR;
}

void ipr_unet_init_random(ipr_unet *net, uint64_t seed) {
    ipr_weights_init_random(&net->wt, seed, IPR_UNET_RNG_TEST_WEIGHTS);
}
