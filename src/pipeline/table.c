/* table.c: columnar result tables (table.h). The column lists here are the results schema of the README;
 * HDF5 layout choices (chunk size, filters, no timestamps) make the bytes a function of the contents. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline/table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipr/common.h"
#include "ipr/h5io.h"

const pl_table_def pl_units_def = {
    "units",
    PL_U_NCOLS,
    {{"unit_id", PL_COL_U64, "deterministic id of the unit (joins with journal records)"},
     {"model", PL_COL_U8, "index into /meta/model_names"},
     {"selection", PL_COL_U8, "index into /meta/selection_names"},
     {"fraction", PL_COL_F32, "resampling fraction"},
     {"replicate", PL_COL_U16, "index into /meta/seeds"},
     {"seed", PL_COL_U64, "sampling seed"},
     {"instance_start", PL_COL_U64, "first instance of the block"},
     {"instance_count", PL_COL_U32, "instances in the block"},
     {"status", PL_COL_U8, "0 ok, 1 failed (after retries)"},
     {"attempts", PL_COL_U8, "runs it took (1 = first try)"},
     {"nfe", PL_COL_U64, "network passes of all its chains (one image through the net = 1)"}},
    "one row per work unit, in plan order",
    PL_U_NCOLS};

const pl_table_def pl_chains_def = {
    "chains",
    PL_C_NCOLS,
    {{"unit", PL_COL_U64, "row in /units"},
     {"instance", PL_COL_U64, "instance index"},
     {"model", PL_COL_U8, "index into /meta/model_names"},
     {"selection", PL_COL_U8, "index into /meta/selection_names"},
     {"fraction", PL_COL_F32, "resampling fraction"},
     {"replicate", PL_COL_U16, "index into /meta/seeds"},
     {"seed", PL_COL_U64, "sampling seed"},
     {"iterations_run", PL_COL_U16, "iterations actually run (< K only with ipr.early_stop)"},
     {"valid", PL_COL_U8, "final sample valid (1) or not (0)"},
     {"error", PL_COL_F32, "final error (Sudoku distance, Even Pixels |count - 512|, polygons: failed checks)"},
     {"nfe", PL_COL_U32, "network passes of the chain"},
     {"solution_match", PL_COL_U8,
      "Sudoku: the final grid against the instance's known solution (/meta/solution_match_names): 0 unknown (no "
      "solution known, or not Sudoku), 1 valid and equal to it, 2 valid but another grid, 3 not valid"}},
    "one row per chain = (unit, instance), in unit then instance order",
    PL_C_SOLUTION_MATCH};

const pl_table_def pl_results_def = {
    "results",
    PL_R_NCOLS,
    {{"chain", PL_COL_U64, "row in /chains"},
     {"instance", PL_COL_U64, "instance index"},
     {"model", PL_COL_U8, "index into /meta/model_names"},
     {"selection", PL_COL_U8, "index into /meta/selection_names"},
     {"fraction", PL_COL_F32, "resampling fraction"},
     {"replicate", PL_COL_U16, "index into /meta/seeds"},
     {"seed", PL_COL_U64, "sampling seed"},
     {"iteration", PL_COL_U16, "k: 0 = the base sample, k = after k refinement iterations"},
     {"valid", PL_COL_U8, "sample valid at k"},
     {"error", PL_COL_F32, "error at k"},
     {"nfe", PL_COL_U32, "network passes spent up to and including k"},
     {"changed", PL_COL_U16, "regions whose decoded content changed at k (k = 0: regions generated)"}},
    "one row per chain and iteration k = 0..K",
    PL_R_NCOLS};

const pl_table_def pl_timing_def = {
    "timing",
    PL_T_NCOLS,
    {{"wall_s", PL_COL_F32, "seconds the unit's batch took, shared out by chains"},
     {"chains_per_s", PL_COL_F32, "chains per second of the batch the unit ran in"},
     {"forward_s", PL_COL_F32, "of wall_s, seconds in the denoiser's forward passes"},
     {"mean_batch", PL_COL_F32, "images per forward pass, averaged over the batch's passes"},
     {"rank", PL_COL_U32, "MPI rank that ran it"},
     {"host", PL_COL_U16, "index into /meta/host_names"},
     {"session", PL_COL_U16, "index into /meta/session_names (each start or resume is a session)"},
     {"device", PL_COL_U16, "index into /meta/device_names"},
     {"batch_size", PL_COL_U16, "chains in flight (device.batch)"}},
    "row-aligned with /units: where and when each unit ran (the only columns that differ between runs)",
    PL_T_NCOLS};

const pl_table_def pl_plan_def = {
    "plan",
    PL_P_NCOLS,
    {{"unit_id", PL_COL_U64, "unit id"},
     {"model", PL_COL_U8, "model index"},
     {"selection", PL_COL_U8, "selection index"},
     {"fraction_index", PL_COL_U16, "index into /meta/fractions"},
     {"replicate", PL_COL_U16, "index into /meta/seeds"},
     {"seed", PL_COL_U64, "sampling seed"},
     {"first", PL_COL_U64, "first instance"},
     {"count", PL_COL_U32, "instances"},
     {"group", PL_COL_U32, "(model, selection, fraction, replicate) group"},
     {"nfe", PL_COL_U64, "estimated network passes"}},
    "the work units in plan order",
    PL_P_NCOLS};

static size_t col_size(pl_col_type t) {
    switch (t) {
    case PL_COL_U8: return 1;
    case PL_COL_U16: return 2;
    case PL_COL_U32: return 4;
    case PL_COL_U64: return 8;
    case PL_COL_F32: return 4;
    }
    return 8;
}

static hid_t mem_type(pl_col_type t) {
    switch (t) {
    case PL_COL_U8: return H5T_NATIVE_UINT8;
    case PL_COL_U16: return H5T_NATIVE_UINT16;
    case PL_COL_U32: return H5T_NATIVE_UINT32;
    case PL_COL_U64: return H5T_NATIVE_UINT64;
    case PL_COL_F32: return H5T_NATIVE_FLOAT;
    }
    return H5T_NATIVE_UINT64;
}

static hid_t file_type(pl_col_type t) {
    switch (t) {
    case PL_COL_U8: return H5T_STD_U8LE;
    case PL_COL_U16: return H5T_STD_U16LE;
    case PL_COL_U32: return H5T_STD_U32LE;
    case PL_COL_U64: return H5T_STD_U64LE;
    case PL_COL_F32: return H5T_IEEE_F32LE;
    }
    return H5T_STD_U64LE;
}

void pl_table_init(pl_table *t, const pl_table_def *def) {
    memset(t, 0, sizeof *t);
    t->def = def;
}

void pl_table_free(pl_table *t) {
    for (int c = 0; c < PL_MAX_COLS; ++c) free(t->col[c]);
    const pl_table_def *def = t->def;
    memset(t, 0, sizeof *t);
    t->def = def;
}

size_t pl_table_add(pl_table *t, size_t k) {
    /* rows of 8 bytes at most: a count whose bytes overflow (or whose doubling would never stop) is refused */
    if (k > ((size_t)1 << 40) - t->n) {
        ipr_error_set(__FILE__, __LINE__, "table %s: %zu more rows is no table's size", t->def->group, k);
        return (size_t)-1;
    }
    if (t->n + k > t->cap) {
        size_t cap = t->cap ? t->cap : 64;
        while (cap < t->n + k) cap *= 2;
        for (int c = 0; c < t->def->n_cols; ++c) {
            size_t es = col_size(t->def->cols[c].type);
            void *p = realloc(t->col[c], cap * es);
            if (!p) {
                ipr_error_set(__FILE__, __LINE__, "out of memory growing table %s to %zu rows", t->def->group, cap);
                return (size_t)-1;
            }
            t->col[c] = p;
        }
        t->cap = cap;
    }
    for (int c = 0; c < t->def->n_cols; ++c) {
        size_t es = col_size(t->def->cols[c].type);
        memset((char *)t->col[c] + t->n * es, 0, k * es);
    }
    size_t first = t->n;
    t->n += k;
    return first;
}

void pl_table_copy_row(pl_table *dst, size_t dr, const pl_table *src, size_t sr) {
    for (int c = 0; c < dst->def->n_cols; ++c) {
        size_t es = col_size(dst->def->cols[c].type);
        memcpy((char *)dst->col[c] + dr * es, (const char *)src->col[c] + sr * es, es);
    }
}

void pl_set_u64(pl_table *t, int c, size_t r, uint64_t v) {
    void *p = t->col[c];
    switch (t->def->cols[c].type) {
    case PL_COL_U8: ((uint8_t *)p)[r] = (uint8_t)v; break;
    case PL_COL_U16: ((uint16_t *)p)[r] = (uint16_t)v; break;
    case PL_COL_U32: ((uint32_t *)p)[r] = (uint32_t)v; break;
    case PL_COL_U64: ((uint64_t *)p)[r] = v; break;
    case PL_COL_F32: ((float *)p)[r] = (float)v; break;
    }
}

void pl_set_f32(pl_table *t, int c, size_t r, float v) {
    if (t->def->cols[c].type == PL_COL_F32)
        ((float *)t->col[c])[r] = v;
    else
        pl_set_u64(t, c, r, (uint64_t)v);
}

uint64_t pl_get_u64(const pl_table *t, int c, size_t r) {
    const void *p = t->col[c];
    switch (t->def->cols[c].type) {
    case PL_COL_U8: return ((const uint8_t *)p)[r];
    case PL_COL_U16: return ((const uint16_t *)p)[r];
    case PL_COL_U32: return ((const uint32_t *)p)[r];
    case PL_COL_U64: return ((const uint64_t *)p)[r];
    case PL_COL_F32: return (uint64_t)((const float *)p)[r];
    }
    return 0;
}

float pl_get_f32(const pl_table *t, int c, size_t r) {
    if (t->def->cols[c].type == PL_COL_F32) return ((const float *)t->col[c])[r];
    return (float)pl_get_u64(t, c, r);
}

static int write_column(hid_t g, const char *name, pl_col_type type, size_t n, const void *data) {
    hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, ds = H5I_INVALID_HID;
    hsize_t dims = n;
    IPR_H5(space = H5Screate_simple(1, &dims, NULL));
    IPR_H5(dcpl = H5Pcreate(H5P_DATASET_CREATE));
    IPR_H5(H5Pset_obj_track_times(dcpl, 0));
    if (n > 0) {
        hsize_t chunk = n < 65536 ? n : 65536;
        IPR_H5(H5Pset_chunk(dcpl, 1, &chunk));
        IPR_H5(H5Pset_shuffle(dcpl));
        IPR_H5(H5Pset_deflate(dcpl, 4));
    }
    IPR_H5(ds = H5Dcreate2(g, name, file_type(type), space, H5P_DEFAULT, dcpl, H5P_DEFAULT));
    if (n > 0) IPR_H5(H5Dwrite(ds, mem_type(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
    IPR_H5(H5Dclose(ds));
    IPR_H5(H5Pclose(dcpl));
    IPR_H5(H5Sclose(space));
    return IPR_OK;
fail:
    ipr_error_context("writing column %s", name);
    if (ds >= 0) H5Dclose(ds);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    return IPR_ERR;
}

int pl_table_write(const pl_table *t, hid_t file) {
    hid_t g = H5I_INVALID_HID;
    IPR_TRY_ID(g = ipr_h5_group(file, t->def->group));
    for (int c = 0; c < t->def->n_cols; ++c)
        IPR_TRY(write_column(g, t->def->cols[c].name, t->def->cols[c].type, t->n, t->col[c]));
    IPR_TRY(ipr_h5_attr_i64(g, "n_rows", (int64_t)t->n));
    IPR_TRY(ipr_h5_attr_str(g, "description", t->def->doc));
    IPR_H5(H5Gclose(g));
    return IPR_OK;
fail:
    ipr_error_context("writing table /%s", t->def->group);
    if (g >= 0) H5Gclose(g);
    return IPR_ERR;
}

int pl_table_read(pl_table *t, hid_t file) {
    char path[128];
    void *data = NULL;
    const pl_table_def *def = t->def;
    pl_table_free(t);
    int64_t n_rows = 0;
    hid_t g = H5I_INVALID_HID, ds = H5I_INVALID_HID;
    snprintf(path, sizeof path, "/%s", def->group);
    IPR_CHECK(ipr_h5_exists(file, path), "table %s missing", path);
    IPR_H5(g = H5Gopen2(file, path, H5P_DEFAULT));
    IPR_TRY(ipr_h5_read_attr_i64(g, "n_rows", &n_rows));
    IPR_H5(H5Gclose(g));
    g = H5I_INVALID_HID;
    IPR_CHECK(n_rows >= 0, "table %s: negative n_rows", path);
    {
        /* the attribute sizes nothing before the first column's length confirms it (a damaged n_rows of 2^60 would
         * otherwise be an allocation; tests/fuzz/corpus/fuzz_segment/crash-*) */
        char name[160];
        int rank = 0, is_float = 0;
        int64_t dims[8] = {0};
        snprintf(name, sizeof name, "%s/%s", path, def->cols[0].name);
        IPR_CHECK(ipr_h5_exists(file, name), "column %s missing", name);
        IPR_H5(ds = H5Dopen2(file, name, H5P_DEFAULT));
        IPR_TRY(ipr_h5_dataset_shape(ds, &rank, dims, &is_float));
        IPR_H5(H5Dclose(ds));
        ds = H5I_INVALID_HID;
        IPR_CHECK(rank == 1 && dims[0] == n_rows, "column %s has %lld rows, the table %lld", name,
                  (long long)(rank == 1 ? dims[0] : -1), (long long)n_rows);
    }
    if (n_rows > 0 && pl_table_add(t, (size_t)n_rows) == (size_t)-1) goto fail;
    for (int c = 0; c < def->n_cols; ++c) {
        char name[160];
        int rank = 0;
        hsize_t dims[8];
        snprintf(name, sizeof name, "%s/%s", path, def->cols[c].name);
        if (c >= def->n_first && !ipr_h5_exists(file, name)) continue; /* written before the column: zeros */
        IPR_TRY(ipr_h5_read_alloc(file, name, mem_type(def->cols[c].type), 1, &rank, dims, &data));
        IPR_CHECK(dims[0] == (hsize_t)n_rows, "column %s has %llu rows, the table %lld", name,
                  (unsigned long long)dims[0], (long long)n_rows);
        if (n_rows > 0) memcpy(t->col[c], data, (size_t)n_rows * col_size(def->cols[c].type));
        free(data);
        data = NULL;
    }
    return IPR_OK;
fail:
    if (g >= 0) H5Gclose(g);
    if (ds >= 0) H5Dclose(ds);
    free(data);
    pl_table_free(t);
    return IPR_ERR;
}

int pl_h5_write_strings(hid_t loc, const char *name, const char *const *values, int n) {
    hid_t t = H5I_INVALID_HID, s = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, lcpl = H5I_INVALID_HID,
          ds = H5I_INVALID_HID;
    IPR_H5(t = H5Tcopy(H5T_C_S1));
    IPR_H5(H5Tset_size(t, H5T_VARIABLE));
    IPR_H5(H5Tset_cset(t, H5T_CSET_UTF8));
    if (n < 0) {
        IPR_H5(s = H5Screate(H5S_SCALAR));
    } else {
        hsize_t dims = (hsize_t)n;
        IPR_H5(s = H5Screate_simple(1, &dims, NULL));
    }
    IPR_H5(dcpl = H5Pcreate(H5P_DATASET_CREATE));
    IPR_H5(H5Pset_obj_track_times(dcpl, 0));
    IPR_H5(lcpl = H5Pcreate(H5P_LINK_CREATE));
    IPR_H5(H5Pset_create_intermediate_group(lcpl, 1));
    IPR_H5(ds = H5Dcreate2(loc, name, t, s, lcpl, dcpl, H5P_DEFAULT));
    if (n != 0) IPR_H5(H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, values));
    IPR_H5(H5Dclose(ds));
    IPR_H5(H5Pclose(lcpl));
    IPR_H5(H5Pclose(dcpl));
    IPR_H5(H5Sclose(s));
    IPR_H5(H5Tclose(t));
    return IPR_OK;
fail:
    ipr_error_context("writing %s", name);
    if (ds >= 0) H5Dclose(ds);
    if (lcpl >= 0) H5Pclose(lcpl);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
    return IPR_ERR;
}

int pl_h5_write_string(hid_t loc, const char *name, const char *value) {
    return pl_h5_write_strings(loc, name, &value, -1);
}

