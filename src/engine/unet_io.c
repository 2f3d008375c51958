/* unet_io.c: SRM U-Net checkpoints (fixtures/README.md): root attributes -> ipr_unet_config, /weights/<name>
 * checked both ways against the plan (missing, unexpected, mis-shaped, diverging aliases), writing, and
 * deterministic random weights for tests. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipr/common.h"
#include "ipr/h5io.h"
#include "ipr/rng.h"
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

static int attr_int(hid_t f, const char *name, int lo, int hi, int *out) {
    int64_t v = 0;
    IPR_TRY(ipr_h5_read_attr_i64(f, name, &v));
    IPR_CHECK(v >= lo && v <= hi, "attribute '%s' = %lld outside %d..%d", name, (long long)v, lo, hi);
    *out = (int)v;
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* an int64 attribute with 1 value (broadcast to n) or n values */
static int attr_ints(hid_t f, const char *name, int n, int lo, int hi, int *out) {
    int64_t v[IPR_UNET_MAX_LEVELS];
    int got = 0;
    IPR_TRY(ipr_h5_read_attr_i64_array(f, name, v, IPR_UNET_MAX_LEVELS, &got));
    IPR_CHECK(got == 1 || got == n, "attribute '%s' has %d values, expected 1 or %d (one per level)", name, got, n);
    for (int i = 0; i < n; ++i) {
        const int64_t x = v[got == 1 ? 0 : i];
        IPR_CHECK(x >= lo && x <= hi, "attribute '%s'[%d] = %lld outside %d..%d", name, i, (long long)x, lo, hi);
        out[i] = (int)x;
    }
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
    IPR_TRY(attr_int(f, "format_version", 0, 1 << 30, &version));
    IPR_CHECK(version == IPR_UNET_FORMAT_VERSION, "attribute 'format_version' is %d, this build reads version %d",
              version, IPR_UNET_FORMAT_VERSION);
    IPR_TRY(ipr_h5_read_attr_i64_array(f, "hid_dims", v, IPR_UNET_MAX_LEVELS, &n));
    IPR_CHECK(n >= 1, "attribute 'hid_dims' is empty");
    cfg->n_levels = n;
    for (int l = 0; l < n; ++l) {
        IPR_CHECK(v[l] >= 1 && v[l] <= 1 << 16, "attribute 'hid_dims'[%d] = %lld", l, (long long)v[l]);
        cfg->hid_dims[l] = (int)v[l];
    }
    IPR_TRY(attr_ints(f, "attention", n, 0, 1, cfg->attention));
    IPR_TRY(attr_ints(f, "num_blocks", n, 0, 64, cfg->num_blocks));
    IPR_TRY(attr_int(f, "d_in", 1, 1 << 16, &cfg->d_in));
    IPR_TRY(attr_int(f, "d_out", 1, 1 << 16, &cfg->d_out));
    IPR_TRY(attr_int(f, "num_head_channels", 1, 1 << 16, &cfg->num_head_channels));
    IPR_TRY(attr_int(f, "t_emb_dim", 1, 1 << 16, &cfg->t_emb_dim));
    IPR_TRY(attr_int(f, "d_emb", 2, 1 << 16, &cfg->d_emb));
    IPR_TRY(attr_int(f, "patch_size", 0, 1 << 16, &cfg->patch_size));
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

/* 1 if the two open datasets are one HDF5 object (hard links), 0 if not, IPR_ERR on failure */
static int same_object(hid_t a, hid_t b) {
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t ia, ib;
    int cmp = 1;
    IPR_H5(H5Oget_info3(a, &ia, H5O_INFO_BASIC));
    IPR_H5(H5Oget_info3(b, &ib, H5O_INFO_BASIC));
    if (ia.fileno != ib.fileno) return 0;
    IPR_H5(H5Otoken_cmp(a, &ia.token, &ib.token, &cmp));
    return cmp == 0;
#else
    H5O_info_t ia, ib;
    IPR_H5(H5Oget_info2(a, &ia, H5O_INFO_BASIC));
    IPR_H5(H5Oget_info2(b, &ib, H5O_INFO_BASIC));
    return ia.fileno == ib.fileno && ia.addr == ib.addr;
#endif
fail:
    return IPR_ERR;
}

int ipr_unet_load_weights(ipr_unet *net, const char *ckpt_path) {
    hid_t f = H5I_INVALID_HID, g = H5I_INVALID_HID, ds = H5I_INVALID_HID, ds2 = H5I_INVALID_HID;
    unsigned char *seen = NULL;
    float *scratch = NULL;
    ipr_problems pr;
    ipr_unet_config fcfg;
    const char *cur = "";
    memset(&pr, 0, sizeof pr);

    f = ipr_h5_open_read(ckpt_path);
    if (f < 0) return IPR_ERR;
    IPR_TRY(ipr_unet_config_read_h5(f, ckpt_path, &fcfg));
    IPR_CHECK(ipr_unet_config_same_arch(&fcfg, &net->cfg),
              "checkpoint %s: its architecture (root attributes) differs from the planned network", ckpt_path);
    IPR_CHECK(ipr_h5_exists(f, "/weights"), "checkpoint %s: no /weights group", ckpt_path);
    IPR_H5(g = H5Gopen2(f, "/weights", H5P_DEFAULT));

    /* file -> plan: every name in /weights must be a tensor of the architecture */
    seen = ipr_calloc((size_t)net->n_tensors, 1, "weight table");
    IPR_CHECK(seen != NULL, "%s", ipr_error_message());
    H5G_info_t gi;
    IPR_H5(H5Gget_info(g, &gi));
    for (hsize_t i = 0; i < gi.nlinks; ++i) {
        char name[512];
        ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
        IPR_H5(len);
        int found = -1;
        for (int k = 0; k < net->n_tensors; ++k)
            if (strcmp(net->tensors[k].name, name) == 0) {
                found = k;
                break;
            }
        if (found >= 0) {
            seen[found] = 1;
            continue;
        }
        char shape[96] = "not a dataset";
        H5O_type_t otype = H5O_TYPE_UNKNOWN;
        hid_t o = H5Oopen(g, name, H5P_DEFAULT);
        if (o >= 0) {
            if (H5Iget_type(o) == H5I_DATASET) {
                int r = 0, fl = 0;
                int64_t d[8];
                if (ipr_h5_dataset_shape(o, &r, d, &fl) == IPR_OK) ipr_dims_str(shape, sizeof shape, d, r);
                otype = H5O_TYPE_DATASET;
            }
            H5Oclose(o);
        }
        H5Eclear2(H5E_DEFAULT);
        ipr_problem(&pr, "unexpected tensor '%s' (%s%s): not part of the architecture", name,
                    otype == H5O_TYPE_DATASET ? "shape " : "", shape);
    }

    /* plan -> file: every tensor present, with its exact shape; aliases are the shared MLP */
    for (int k = 0; k < net->n_tensors; ++k) {
        const ipr_unet_tensor *t = &net->tensors[k];
        char want[96], got[96];
        ipr_dims_str(want, sizeof want, t->shape, t->rank);
        cur = t->name;
        if (!seen[k]) {
            ipr_problem(&pr, "missing tensor '%s' (expected shape %s)", t->name, want);
            continue;
        }
        IPR_H5(ds = H5Dopen2(g, t->name, H5P_DEFAULT));
        int rank = 0, is_float = 0;
        int64_t dims[8];
        IPR_TRY(ipr_h5_dataset_shape(ds, &rank, dims, &is_float));
        int same = rank == t->rank;
        for (int i = 0; same && i < rank; ++i) same = dims[i] == t->shape[i];
        if (!same) {
            ipr_dims_str(got, sizeof got, dims, rank);
            ipr_problem(&pr, "tensor '%s': expected shape %s, found %s", t->name, want, got);
        } else if (!is_float) {
            ipr_problem(&pr, "tensor '%s' is not floating point", t->name);
        } else if (pr.n == 0) {
            if (t->alias_of < 0) {
                IPR_H5(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t->data));
            } else {
                /* a name of the shared time MLP: the same HDF5 object, or the same values */
                const ipr_unet_tensor *target = &net->tensors[t->alias_of];
                IPR_H5(ds2 = H5Dopen2(g, target->name, H5P_DEFAULT));
                const int so = same_object(ds, ds2);
                if (so < 0) goto fail;
                if (!so) {
                    if (!scratch) {
                        scratch = ipr_malloc(sizeof(float) * t->numel, "alias check");
                        IPR_CHECK(scratch != NULL, "%s", ipr_error_message());
                    }
                    IPR_H5(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, scratch));
                    if (memcmp(scratch, target->data, sizeof(float) * t->numel) != 0)
                        ipr_problem(&pr,
                                    "tensor '%s' should be the shared time-embedding MLP '%s' (a hard link) but holds "
                                    "different values",
                                    t->name, target->name);
                    free(scratch);
                    scratch = NULL;
                }
                H5Dclose(ds2);
                ds2 = H5I_INVALID_HID;
            }
        }
        H5Dclose(ds);
        ds = H5I_INVALID_HID;
    }
    cur = "";
    IPR_CHECK(pr.n == 0, "checkpoint %s: %d problem%s with /weights: %s%s", ckpt_path, pr.n, pr.n == 1 ? "" : "s",
              pr.msg, pr.n > 4 ? "; ..." : "");
    free(seen);
    H5Gclose(g);
    H5Fclose(f);
    return IPR_OK;
fail:
    if (cur[0]) ipr_error_context("checkpoint %s: tensor '%s'", ckpt_path, cur);
    free(seen);
    free(scratch);
    if (ds2 >= 0) H5Dclose(ds2);
    if (ds >= 0) H5Dclose(ds);
    if (g >= 0) H5Gclose(g);
    if (f >= 0) H5Fclose(f);
    return IPR_ERR;
}

int ipr_unet_save(const ipr_unet *net, const char *path) {
    char tmp[4096];
    hid_t f = H5I_INVALID_HID, g = H5I_INVALID_HID;
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
    g = ipr_h5_group(f, "/weights");
    IPR_CHECK(g >= 0, "%s", ipr_error_message());
    for (int k = 0; k < net->n_tensors; ++k) {
        const ipr_unet_tensor *t = &net->tensors[k];
        if (t->alias_of < 0) {
            hsize_t dims[4];
            for (int i = 0; i < t->rank; ++i) dims[i] = (hsize_t)t->shape[i];
            IPR_TRY(ipr_h5_write(g, t->name, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, t->rank, dims, t->data));
        } else {
            IPR_H5(H5Lcreate_hard(g, net->tensors[t->alias_of].name, g, t->name, H5P_DEFAULT, H5P_DEFAULT));
        }
    }
    H5Gclose(g);
    g = H5I_INVALID_HID;
    IPR_H5(H5Fclose(f));
    f = H5I_INVALID_HID;
    IPR_TRY(ipr_commit_tmp(tmp, path));
    return IPR_OK;
fail:
    ipr_error_context("writing checkpoint %s", path);
    if (g >= 0) H5Gclose(g);
    if (f >= 0) H5Fclose(f);
    return IPR_ERR;
}

void ipr_unet_init_random(ipr_unet *net, uint64_t seed) {
    for (int k = 0; k < net->n_tensors; ++k) {
        const ipr_unet_tensor *t = &net->tensors[k];
        if (t->alias_of >= 0) continue;
        ipr_rng r;
        ipr_rng_init(&r, seed, IPR_UNET_RNG_TEST_WEIGHTS, (uint64_t)k, 0);
        double lo = -0.1, hi = 0.1, add = 0.0;
        if (t->kind == IPR_TENSOR_WEIGHT) {
            /* torch's default init scale: U(-1, 1) / sqrt(fan_in) */
            const double a = 1.0 / sqrt((double)t->numel / (double)t->shape[0]);
            lo = -a;
            hi = a;
        } else if (t->kind == IPR_TENSOR_GAIN) {
            add = 1.0;
        }
        for (size_t i = 0; i < t->numel; ++i) t->data[i] = (float)(add + lo + (hi - lo) * ipr_rng_uniform(&r));
    }
}
