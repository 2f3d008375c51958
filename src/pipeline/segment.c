/* segment.c: per-batch result rows and segment files. A segment is closed, fsync'ed and renamed before the
 * journal names it, and is never touched again (pipeline-notes 3: crash consistency without HDF5's help). */
#define _POSIX_C_SOURCE 200809L
#include "pipeline/segment.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipr/h5io.h"
#include "ipr/hash.h"

void pl_rows_init(pl_rows *r, int C, int H, int W) {
    memset(r, 0, sizeof *r);
    pl_table_init(&r->units, &pl_units_def);
    pl_table_init(&r->chains, &pl_chains_def);
    pl_table_init(&r->results, &pl_results_def);
    pl_table_init(&r->timing, &pl_timing_def);
    r->C = C;
    r->H = H;
    r->W = W;
}

void pl_rows_free(pl_rows *r) {
    pl_table_free(&r->units);
    pl_table_free(&r->chains);
    pl_table_free(&r->results);
    pl_table_free(&r->timing);
    free(r->images);
    r->images = NULL;
    r->images_cap = 0;
}

void pl_image_to_u8(const float *chw, int C, int H, int W, uint8_t *hwc) {
    size_t plane = (size_t)H * (size_t)W;
    for (int c = 0; c < C; ++c)
        for (size_t p = 0; p < plane; ++p) {
            double v = floor(((double)chw[(size_t)c * plane + p] + 1.0) * 127.5 + 0.5);
            hwc[p * (size_t)C + (size_t)c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
}

static int images_reserve(pl_rows *r, size_t chains) {
    if (chains <= r->images_cap) return IPR_OK;
    size_t cap = r->images_cap ? r->images_cap : 16;
    while (cap < chains) cap *= 2;
    size_t bytes = (size_t)r->C * (size_t)r->H * (size_t)r->W;
    uint8_t *p = realloc(r->images, cap * bytes);
    if (!p) {
        ipr_error_set(__FILE__, __LINE__, "out of memory for %zu final images", cap);
        return IPR_ERR;
    }
    r->images = p;
    r->images_cap = cap;
    return IPR_OK;
}

int pl_rows_add_unit(pl_rows *r, const pl_grid *g, const pl_unit *u, const ipr_chain_result *res, int attempt,
                     const pl_batch_info *info, uint64_t batch_chains) {
    const int K = g->iterations;
    const float frac = (float)g->fractions[u->fraction];
    size_t ur = pl_table_add(&r->units, 1);
    size_t tr = pl_table_add(&r->timing, 1);
    size_t c0 = pl_table_add(&r->chains, u->count);
    size_t r0 = pl_table_add(&r->results, (size_t)u->count * (size_t)(K + 1));
    if (ur == (size_t)-1 || tr == (size_t)-1 || c0 == (size_t)-1 || r0 == (size_t)-1) return IPR_ERR;
    uint64_t nfe_total = 0;
    for (uint32_t i = 0; i < u->count; ++i) {
        const ipr_chain_result *cr = &res[i];
        IPR_CHECK(cr->instance == u->first + i, "chain %u of unit %016llx holds instance %llu, expected %llu", i,
                  (unsigned long long)u->id, (unsigned long long)cr->instance, (unsigned long long)(u->first + i));
        size_t c = c0 + i;
        pl_set_u64(&r->chains, PL_C_UNIT, c, ur);
        pl_set_u64(&r->chains, PL_C_INSTANCE, c, cr->instance);
        pl_set_u64(&r->chains, PL_C_MODEL, c, (uint64_t)u->model);
        pl_set_u64(&r->chains, PL_C_SELECTION, c, (uint64_t)u->selection);
        pl_set_f32(&r->chains, PL_C_FRACTION, c, frac);
        pl_set_u64(&r->chains, PL_C_REPLICATE, c, (uint64_t)u->replicate);
        pl_set_u64(&r->chains, PL_C_SEED, c, u->seed);
        pl_set_u64(&r->chains, PL_C_ITERATIONS_RUN, c, (uint64_t)cr->iterations_run);
        pl_set_u64(&r->chains, PL_C_VALID, c, cr->valid[K]);
        pl_set_f32(&r->chains, PL_C_ERROR, c, cr->error[K]);
        pl_set_u64(&r->chains, PL_C_NFE, c, cr->nfe[K]);
        pl_set_u64(&r->chains, PL_C_SOLUTION_MATCH, c, cr->solution_match);
        nfe_total += cr->nfe[K];
        for (int k = 0; k <= K; ++k) {
            size_t row = r0 + (size_t)i * (size_t)(K + 1) + (size_t)k;
            pl_set_u64(&r->results, PL_R_CHAIN, row, c);
            pl_set_u64(&r->results, PL_R_INSTANCE, row, cr->instance);
            pl_set_u64(&r->results, PL_R_MODEL, row, (uint64_t)u->model);
            pl_set_u64(&r->results, PL_R_SELECTION, row, (uint64_t)u->selection);
            pl_set_f32(&r->results, PL_R_FRACTION, row, frac);
            pl_set_u64(&r->results, PL_R_REPLICATE, row, (uint64_t)u->replicate);
            pl_set_u64(&r->results, PL_R_SEED, row, u->seed);
            pl_set_u64(&r->results, PL_R_ITERATION, row, (uint64_t)k);
            pl_set_u64(&r->results, PL_R_VALID, row, cr->valid[k]);
            pl_set_f32(&r->results, PL_R_ERROR, row, cr->error[k]);
            pl_set_u64(&r->results, PL_R_NFE, row, cr->nfe[k]);
            pl_set_u64(&r->results, PL_R_CHANGED, row, cr->changed[k]);
        }
        if (g->keep_images) {
            IPR_CHECK(cr->image != NULL, "keep_images is set but chain %u of unit %016llx has no image", i,
                      (unsigned long long)u->id);
            IPR_TRY(images_reserve(r, c + 1));
            pl_image_to_u8(cr->image, r->C, r->H, r->W, r->images + c * (size_t)r->C * r->H * r->W);
        }
    }
    pl_set_u64(&r->units, PL_U_UNIT_ID, ur, u->id);
    pl_set_u64(&r->units, PL_U_MODEL, ur, (uint64_t)u->model);
    pl_set_u64(&r->units, PL_U_SELECTION, ur, (uint64_t)u->selection);
    pl_set_f32(&r->units, PL_U_FRACTION, ur, frac);
    pl_set_u64(&r->units, PL_U_REPLICATE, ur, (uint64_t)u->replicate);
    pl_set_u64(&r->units, PL_U_SEED, ur, u->seed);
    pl_set_u64(&r->units, PL_U_INSTANCE_START, ur, u->first);
    pl_set_u64(&r->units, PL_U_INSTANCE_COUNT, ur, u->count);
    pl_set_u64(&r->units, PL_U_STATUS, ur, PL_STATUS_OK);
    pl_set_u64(&r->units, PL_U_ATTEMPTS, ur, (uint64_t)attempt);
    pl_set_u64(&r->units, PL_U_NFE, ur, nfe_total);
    double share = batch_chains ? (double)u->count / (double)batch_chains : 1.0;
    pl_set_f32(&r->timing, PL_T_WALL_S, tr, (float)(info->wall_s * share));
    pl_set_f32(&r->timing, PL_T_CHAINS_PER_S, tr, info->wall_s > 0 ? (float)((double)batch_chains / info->wall_s) : 0.0f);
    pl_set_f32(&r->timing, PL_T_FORWARD_S, tr, (float)(info->forward_s * share));
    pl_set_f32(&r->timing, PL_T_MEAN_BATCH, tr, (float)info->mean_batch);
    pl_set_u64(&r->timing, PL_T_RANK, tr, (uint64_t)info->rank);
    pl_set_u64(&r->timing, PL_T_BATCH_SIZE, tr, (uint64_t)info->batch_size);
    return IPR_OK;
fail:
    return IPR_ERR;
}

int pl_rows_append_from(pl_rows *dst, const pl_rows *src, size_t ur, const uint8_t *src_images) {
    size_t du = pl_table_add(&dst->units, 1), dt = pl_table_add(&dst->timing, 1);
    if (du == (size_t)-1 || dt == (size_t)-1) return IPR_ERR;
    pl_table_copy_row(&dst->units, du, &src->units, ur);
    pl_table_copy_row(&dst->timing, dt, &src->timing, ur);
    IPR_CHECK(src->chains.n == 0 || src->results.n % src->chains.n == 0, "segment: %zu result rows for %zu chains",
              src->results.n, src->chains.n);
    size_t per = src->chains.n ? src->results.n / src->chains.n : 0; /* K + 1 rows per chain, in chain order */
    for (size_t c = 0; c < src->chains.n; ++c) {
        if (pl_get_u64(&src->chains, PL_C_UNIT, c) != ur) continue;
        size_t dc = pl_table_add(&dst->chains, 1);
        if (dc == (size_t)-1) return IPR_ERR;
        pl_table_copy_row(&dst->chains, dc, &src->chains, c);
        pl_set_u64(&dst->chains, PL_C_UNIT, dc, du);
        size_t dr = pl_table_add(&dst->results, per);
        if (dr == (size_t)-1) return IPR_ERR;
        for (size_t k = 0; k < per; ++k) {
            size_t sr = c * per + k;
            IPR_CHECK(pl_get_u64(&src->results, PL_R_CHAIN, sr) == c, "segment: result row %zu is not chain %zu's", sr, c);
            pl_table_copy_row(&dst->results, dr + k, &src->results, sr);
            pl_set_u64(&dst->results, PL_R_CHAIN, dr + k, dc);
        }
        if (src_images) {
            size_t bytes = (size_t)dst->C * dst->H * dst->W;
            if (images_reserve(dst, dc + 1) != IPR_OK) return IPR_ERR;
            memcpy(dst->images + dc * bytes, src_images + c * bytes, bytes);
        }
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

static int write_attrs(hid_t f, const pl_batch_info *info, int seq) {
    unsigned maj, min, rel;
    IPR_H5(H5get_libversion(&maj, &min, &rel));
    char h5v[32];
    snprintf(h5v, sizeof h5v, "%u.%u.%u", maj, min, rel);
    IPR_TRY(ipr_h5_attr_str(f, "format", "ipr-segment"));
    IPR_TRY(ipr_h5_attr_i64(f, "schema_version", PL_SCHEMA_VERSION));
    IPR_TRY(ipr_h5_attr_str(f, "producer", "ipr " IPR_VERSION));
    IPR_TRY(ipr_h5_attr_str(f, "git_sha", IPR_GIT_SHA));
    IPR_TRY(ipr_h5_attr_str(f, "run_id", info->run_id));
    IPR_TRY(ipr_h5_attr_str(f, "config_sha256", info->config_sha256));
    IPR_TRY(ipr_h5_attr_str(f, "session", info->session));
    IPR_TRY(ipr_h5_attr_str(f, "hostname", info->hostname));
    IPR_TRY(ipr_h5_attr_str(f, "device_name", info->device_name));
    IPR_TRY(ipr_h5_attr_str(f, "hdf5_version", h5v));
    IPR_TRY(ipr_h5_attr_i64(f, "rank", info->rank));
    IPR_TRY(ipr_h5_attr_i64(f, "world_size", info->world_size));
    IPR_TRY(ipr_h5_attr_i64(f, "segment_index", seq));
    return IPR_OK;
fail:
    return IPR_ERR;
}

int pl_segment_write(const pl_run *run, const pl_rows *r, const pl_batch_info *info, int seq, char *rel,
                     size_t rel_cap, char sha256[65]) {
    char dir[PL_PATH_MAX + 128], path[PL_PATH_MAX + 200], tmp[PL_PATH_MAX + 240] = "";
    hid_t f = H5I_INVALID_HID, ds = H5I_INVALID_HID;
    snprintf(dir, sizeof dir, "%s/segments/%s", run->dir, info->session);
    IPR_TRY(pl_mkdirs(dir, 0755));
    snprintf(rel, rel_cap, "segments/%s/r%05d-%06d.h5", info->session, info->rank, seq);
    snprintf(path, sizeof path, "%s/%s", run->dir, rel);
    IPR_TRY(ipr_tmp_path(tmp, sizeof tmp, path));
    IPR_TRY_ID(f = ipr_h5_create(tmp));
    IPR_TRY(write_attrs(f, info, seq));
    IPR_TRY(pl_table_write(&r->units, f));
    IPR_TRY(pl_table_write(&r->chains, f));
    IPR_TRY(pl_table_write(&r->results, f));
    IPR_TRY(pl_table_write(&r->timing, f));
    if (r->images && r->chains.n > 0) {
        hsize_t dims[4] = {r->chains.n, (hsize_t)r->H, (hsize_t)r->W, (hsize_t)r->C};
        IPR_TRY_ID(ds = ipr_h5_create_rows(f, "images/final", H5T_STD_U8LE, 4, dims));
        IPR_TRY(ipr_h5_write_rows(ds, H5T_NATIVE_UINT8, 0, r->chains.n, r->images));
        IPR_H5(H5Dclose(ds));
        ds = H5I_INVALID_HID;
    }
    IPR_TRY(ipr_h5_fclose(&f));
    IPR_TRY(ipr_commit_tmp(tmp, path));
    IPR_TRY(ipr_sha256_file(path, sha256));
    return IPR_OK;
fail:
    ipr_error_context("writing segment %s", path);
    if (ds >= 0) H5Dclose(ds);
    if (f >= 0) H5Fclose(f);
    if (tmp[0]) remove(tmp);
    return IPR_ERR;
}

int pl_segment_read(const char *path, pl_rows *r, int with_images) {
    hid_t f = H5I_INVALID_HID;
    void *img = NULL;
    IPR_TRY_ID(f = ipr_h5_open_read(path));
    IPR_TRY(pl_table_read(&r->units, f));
    IPR_TRY(pl_table_read(&r->chains, f));
    IPR_TRY(pl_table_read(&r->results, f));
    IPR_TRY(pl_table_read(&r->timing, f));
    IPR_CHECK(r->timing.n == r->units.n, "%s: %zu timing rows for %zu units", path, r->timing.n, r->units.n);
    if (with_images && ipr_h5_exists(f, "/images/final")) {
        int rank = 0;
        hsize_t dims[8];
        IPR_TRY(ipr_h5_read_alloc(f, "/images/final", H5T_NATIVE_UINT8, 4, &rank, dims, &img));
        IPR_CHECK(dims[0] == r->chains.n && dims[1] == (hsize_t)r->H && dims[2] == (hsize_t)r->W &&
                      dims[3] == (hsize_t)r->C,
                  "%s: images have the wrong shape", path);
        free(r->images);
        r->images = img;
        r->images_cap = r->chains.n;
        img = NULL;
    }
    IPR_TRY(ipr_h5_fclose(&f));
    return IPR_OK;
fail:
    ipr_error_context("reading segment %s", path);
    free(img);
    if (f >= 0) H5Fclose(f);
    return IPR_ERR;
}
