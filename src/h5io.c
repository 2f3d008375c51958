/* h5io.c: HDF5 helpers. Reproducible bytes need H5Pset_obj_track_times(0) on the file-, group- and
 * dataset-creation property lists (pipeline-notes 3) and a fixed format version (v1.8). */
#define _POSIX_C_SOURCE 200809L
#include "ipr/h5io.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipr/common.h"

void ipr_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

hid_t ipr_h5_create(const char *path) {
    hid_t fcpl = H5I_INVALID_HID, fapl = H5I_INVALID_HID, f = H5I_INVALID_HID;
    IPR_H5(fcpl = H5Pcreate(H5P_FILE_CREATE));
    IPR_H5(H5Pset_obj_track_times(fcpl, 0));
    IPR_H5(fapl = H5Pcreate(H5P_FILE_ACCESS));
    IPR_H5(H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18));
    f = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    if (f < 0) {
        ipr_h5_error_set(__FILE__, __LINE__, "H5Fcreate");
        ipr_error_context("cannot create %s", path);
        goto fail;
    }
    H5Pclose(fcpl);
    H5Pclose(fapl);
    return f;
fail:
    if (fcpl >= 0) H5Pclose(fcpl);
    if (fapl >= 0) H5Pclose(fapl);
    return H5I_INVALID_HID;
}

hid_t ipr_h5_open_read(const char *path) {
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) {
        H5Eclear2(H5E_DEFAULT);
        FILE *fp = ipr_fopen_read(path, "rb"); /* names a missing file or a directory */
        if (fp) {
            fclose(fp);
            ipr_error_set(__FILE__, __LINE__, "%s: not a readable HDF5 file (truncated or corrupt?)", path);
        }
        return H5I_INVALID_HID;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        ipr_h5_error_set(__FILE__, __LINE__, "H5Fopen");
        ipr_error_context("cannot open %s", path);
    }
    return f;
}

int ipr_h5_fclose(hid_t *f) {
    const hid_t id = *f;
    *f = H5I_INVALID_HID;
    if (H5Fclose(id) < 0) {
        ipr_h5_error_set(__FILE__, __LINE__, "H5Fclose");
        return IPR_ERR;
    }
    return IPR_OK;
}

hid_t ipr_h5_group(hid_t file, const char *path) {
    hid_t lcpl = H5I_INVALID_HID, gcpl = H5I_INVALID_HID, g = H5I_INVALID_HID;
    htri_t ex = H5Lexists(file, path, H5P_DEFAULT);
    if (ex > 0) {
        IPR_H5(g = H5Gopen2(file, path, H5P_DEFAULT));
        return g;
    }
    H5Eclear2(H5E_DEFAULT);
    IPR_H5(lcpl = H5Pcreate(H5P_LINK_CREATE));
    IPR_H5(H5Pset_create_intermediate_group(lcpl, 1));
    IPR_H5(gcpl = H5Pcreate(H5P_GROUP_CREATE));
    IPR_H5(H5Pset_obj_track_times(gcpl, 0));
    IPR_H5(g = H5Gcreate2(file, path, lcpl, gcpl, H5P_DEFAULT));
    H5Pclose(lcpl);
    H5Pclose(gcpl);
    return g;
fail:
    if (lcpl >= 0) H5Pclose(lcpl);
    if (gcpl >= 0) H5Pclose(gcpl);
    return H5I_INVALID_HID;
}

int ipr_h5_write(hid_t loc, const char *name, hid_t mem_type, hid_t file_type, int rank,
                 const hsize_t *dims, const void *data) {
    hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, lcpl = H5I_INVALID_HID, ds = H5I_INVALID_HID;
    IPR_H5(space = H5Screate_simple(rank, dims, NULL));
    IPR_H5(dcpl = H5Pcreate(H5P_DATASET_CREATE));
    IPR_H5(H5Pset_obj_track_times(dcpl, 0));
    hsize_t total = 1;
    for (int i = 0; i < rank; ++i) total *= dims[i];
    size_t esize = H5Tget_size(file_type);
    if (rank >= 1 && total * esize >= (1u << 16) && dims[0] > 0) {
        /* chunk along the first axis, about 1 MiB per chunk */
        hsize_t chunk[8];
        hsize_t row = total / dims[0] * esize;
        hsize_t rows = row ? (1u << 20) / row : 1;
        if (rows < 1) rows = 1;
        if (rows > dims[0]) rows = dims[0];
        chunk[0] = rows;
        for (int i = 1; i < rank; ++i) chunk[i] = dims[i];
        IPR_H5(H5Pset_chunk(dcpl, rank, chunk));
        IPR_H5(H5Pset_shuffle(dcpl));
        IPR_H5(H5Pset_deflate(dcpl, 4));
    }
    IPR_H5(lcpl = H5Pcreate(H5P_LINK_CREATE));
    IPR_H5(H5Pset_create_intermediate_group(lcpl, 1));
    IPR_H5(ds = H5Dcreate2(loc, name, file_type, space, lcpl, dcpl, H5P_DEFAULT));
    if (total > 0) IPR_H5(H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
    H5Dclose(ds);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(space);
    return IPR_OK;
fail:
    ipr_error_context("writing dataset %s", name);
    if (ds >= 0) H5Dclose(ds);
    if (lcpl >= 0) H5Pclose(lcpl);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    return IPR_ERR;
}

hid_t ipr_h5_create_rows(hid_t loc, const char *name, hid_t file_type, int rank, const hsize_t *dims) {
    hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, lcpl = H5I_INVALID_HID, ds = H5I_INVALID_HID;
    IPR_CHECK(rank >= 1 && rank <= 8 && dims[0] > 0, "dataset %s: bad shape", name);
    IPR_H5(space = H5Screate_simple(rank, dims, NULL));
    IPR_H5(dcpl = H5Pcreate(H5P_DATASET_CREATE));
    IPR_H5(H5Pset_obj_track_times(dcpl, 0));
    hsize_t chunk[8];
    hsize_t row = H5Tget_size(file_type);
    for (int i = 1; i < rank; ++i) row *= dims[i];
    hsize_t rows = row ? ((hsize_t)1 << 20) / row : 1; /* about 1 MiB per chunk */
    if (rows < 1) rows = 1;
    if (rows > dims[0]) rows = dims[0];
    chunk[0] = rows;
    for (int i = 1; i < rank; ++i) chunk[i] = dims[i];
    IPR_H5(H5Pset_chunk(dcpl, rank, chunk));
    IPR_H5(H5Pset_shuffle(dcpl));
    IPR_H5(H5Pset_deflate(dcpl, 4));
    IPR_H5(lcpl = H5Pcreate(H5P_LINK_CREATE));
    IPR_H5(H5Pset_create_intermediate_group(lcpl, 1));
    IPR_H5(ds = H5Dcreate2(loc, name, file_type, space, lcpl, dcpl, H5P_DEFAULT));
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(space);
    return ds;
fail:
    ipr_error_context("creating dataset %s", name);
    if (lcpl >= 0) H5Pclose(lcpl);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    return H5I_INVALID_HID;
}

int ipr_h5_write_rows(hid_t ds, hid_t mem_type, hsize_t start, hsize_t count, const void *data) {
    hid_t fspace = H5I_INVALID_HID, mspace = H5I_INVALID_HID;
    hsize_t dims[8], off[8] = {0}, cnt[8];
    IPR_H5(fspace = H5Dget_space(ds));
    int rank = H5Sget_simple_extent_ndims(fspace);
    IPR_CHECK(rank >= 1 && rank <= 8, "bad dataset rank %d", rank);
    IPR_H5(H5Sget_simple_extent_dims(fspace, dims, NULL));
    IPR_CHECK(start + count <= dims[0], "rows %llu..%llu beyond the dataset's %llu rows",
              (unsigned long long)start, (unsigned long long)(start + count), (unsigned long long)dims[0]);
    off[0] = start;
    cnt[0] = count;
    for (int i = 1; i < rank; ++i) cnt[i] = dims[i];
    IPR_H5(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, off, NULL, cnt, NULL));
    IPR_H5(mspace = H5Screate_simple(rank, cnt, NULL));
    IPR_H5(H5Dwrite(ds, mem_type, mspace, fspace, H5P_DEFAULT, data));
    H5Sclose(mspace);
    H5Sclose(fspace);
    return IPR_OK;
fail:
    if (mspace >= 0) H5Sclose(mspace);
    if (fspace >= 0) H5Sclose(fspace);
    return IPR_ERR;
}

static int write_attr(hid_t loc, const char *name, hid_t type, hid_t space, const void *data) {
    hid_t a = H5I_INVALID_HID;
    IPR_H5(a = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT));
    IPR_H5(H5Awrite(a, type, data));
    H5Aclose(a);
    return IPR_OK;
fail:
    ipr_error_context("writing attribute %s", name);
    if (a >= 0) H5Aclose(a);
    return IPR_ERR;
}

int ipr_h5_attr_str(hid_t loc, const char *name, const char *value) {
    hid_t t = H5I_INVALID_HID, s = H5I_INVALID_HID;
    int rc = IPR_ERR;
    IPR_H5(t = H5Tcopy(H5T_C_S1));
    IPR_H5(H5Tset_size(t, H5T_VARIABLE));
    IPR_H5(H5Tset_cset(t, H5T_CSET_UTF8));
    IPR_H5(s = H5Screate(H5S_SCALAR));
    rc = write_attr(loc, name, t, s, &value);
fail:
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    return rc;
}

int ipr_h5_attr_i64(hid_t loc, const char *name, int64_t value) {
    hid_t s = H5I_INVALID_HID;
    int rc = IPR_ERR;
    IPR_H5(s = H5Screate(H5S_SCALAR));
    rc = write_attr(loc, name, H5T_NATIVE_INT64, s, &value);
fail:
    if (s >= 0) H5Sclose(s);
    return rc;
}

int ipr_h5_attr_f64(hid_t loc, const char *name, double value) {
    hid_t s = H5I_INVALID_HID;
    int rc = IPR_ERR;
    IPR_H5(s = H5Screate(H5S_SCALAR));
    rc = write_attr(loc, name, H5T_NATIVE_DOUBLE, s, &value);
fail:
    if (s >= 0) H5Sclose(s);
    return rc;
}

int ipr_h5_attr_i64_array(hid_t loc, const char *name, const int64_t *values, hsize_t n) {
    hid_t s = H5I_INVALID_HID;
    int rc = IPR_ERR;
    IPR_H5(s = H5Screate_simple(1, &n, NULL));
    rc = write_attr(loc, name, H5T_NATIVE_INT64, s, values);
fail:
    if (s >= 0) H5Sclose(s);
    return rc;
}

int ipr_h5_exists(hid_t loc, const char *path) {
    /* walk the path so that a missing intermediate group is "no", not an error */
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; ; ++p) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            htri_t e = H5Lexists(loc, buf, H5P_DEFAULT);
            if (e <= 0) {
                H5Eclear2(H5E_DEFAULT);
                return 0;
            }
            *p = c;
            if (c == '\0') break;
        }
    }
    return 1;
}

int ipr_h5_read_alloc(hid_t loc, const char *name, hid_t mem_type, int expect_rank, int *rank,
                      hsize_t dims[8], void **data) {
    hid_t ds = H5I_INVALID_HID, space = H5I_INVALID_HID;
    void *buf = NULL;
    *data = NULL;
    IPR_CHECK(ipr_h5_exists(loc, name), "dataset %s not found", name);
    IPR_H5(ds = H5Dopen2(loc, name, H5P_DEFAULT));
    IPR_H5(space = H5Dget_space(ds));
    int r = H5Sget_simple_extent_ndims(space);
    IPR_CHECK(r >= 0 && r <= 8, "dataset %s: unsupported rank %d", name, r);
    IPR_CHECK(expect_rank <= 0 || r == expect_rank, "dataset %s: expected rank %d, found rank %d", name,
              expect_rank, r);
    IPR_H5(H5Sget_simple_extent_dims(space, dims, NULL));
    hsize_t total = 1;
    for (int i = 0; i < r; ++i) total *= dims[i];
    size_t esize = H5Tget_size(mem_type);
    buf = ipr_malloc((size_t)total * esize, name);
    IPR_CHECK(buf != NULL, "%s", ipr_error_message());
    if (total > 0) IPR_H5(H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf));
    *rank = r;
    *data = buf;
    H5Sclose(space);
    H5Dclose(ds);
    return IPR_OK;
fail:
    ipr_error_context("reading %s", name);
    free(buf);
    if (space >= 0) H5Sclose(space);
    if (ds >= 0) H5Dclose(ds);
    return IPR_ERR;
}

static int read_attr_open(hid_t loc, const char *name, hid_t *a) {
    htri_t ex = H5Aexists(loc, name);
    if (ex <= 0) {
        H5Eclear2(H5E_DEFAULT);
        ipr_error_set(__FILE__, __LINE__, "attribute '%s' missing", name);
        return IPR_ERR;
    }
    *a = H5Aopen(loc, name, H5P_DEFAULT);
    if (*a < 0) {
        ipr_h5_error_set(__FILE__, __LINE__, "H5Aopen");
        return IPR_ERR;
    }
    return IPR_OK;
}

int ipr_h5_read_attr_i64_array(hid_t loc, const char *name, int64_t *values, int cap, int *n) {
    hid_t a = H5I_INVALID_HID, s = H5I_INVALID_HID, t = H5I_INVALID_HID;
    IPR_TRY(read_attr_open(loc, name, &a));
    IPR_H5(t = H5Aget_type(a));
    IPR_CHECK(H5Tget_class(t) == H5T_INTEGER, "attribute '%s' is not an integer", name);
    IPR_H5(s = H5Aget_space(a));
    hssize_t count = H5Sget_simple_extent_npoints(s);
    IPR_CHECK(count >= 0 && count <= cap, "attribute '%s' has %lld values, at most %d expected", name,
              (long long)count, cap);
    IPR_H5(H5Aread(a, H5T_NATIVE_INT64, values));
    *n = (int)count;
    H5Tclose(t);
    H5Sclose(s);
    H5Aclose(a);
    return IPR_OK;
fail:
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    if (a >= 0) H5Aclose(a);
    return IPR_ERR;
}

int ipr_h5_read_attr_i64(hid_t loc, const char *name, int64_t *value) {
    int n = 0;
    if (ipr_h5_read_attr_i64_array(loc, name, value, 1, &n) != IPR_OK) return IPR_ERR;
    if (n != 1) {
        ipr_error_set(__FILE__, __LINE__, "attribute '%s' should hold one value, holds %d", name, n);
        return IPR_ERR;
    }
    return IPR_OK;
}

int ipr_h5_read_attr_str(hid_t loc, const char *name, char *out, size_t cap) {
    hid_t a = H5I_INVALID_HID, t = H5I_INVALID_HID, mt = H5I_INVALID_HID;
    IPR_TRY(read_attr_open(loc, name, &a));
    IPR_H5(t = H5Aget_type(a));
    IPR_CHECK(H5Tget_class(t) == H5T_STRING, "attribute '%s' is not a string", name);
    if (H5Tis_variable_str(t) > 0) {
        char *v = NULL;
        IPR_H5(mt = H5Tcopy(H5T_C_S1));
        IPR_H5(H5Tset_size(mt, H5T_VARIABLE));
        IPR_H5(H5Tset_cset(mt, H5Tget_cset(t))); /* UTF-8 attributes need a UTF-8 memory type */
        IPR_H5(H5Aread(a, mt, &v));
        snprintf(out, cap, "%s", v ? v : "");
        H5free_memory(v);
    } else {
        size_t sz = H5Tget_size(t);
        IPR_CHECK(sz < cap, "attribute '%s' too long", name);
        IPR_H5(mt = H5Tcopy(H5T_C_S1));
        IPR_H5(H5Tset_size(mt, sz + 1));
        IPR_H5(H5Tset_cset(mt, H5Tget_cset(t)));
        IPR_H5(H5Aread(a, mt, out));
        out[sz] = '\0';
    }
    H5Tclose(mt);
    H5Tclose(t);
    H5Aclose(a);
    return IPR_OK;
fail:
    if (mt >= 0) H5Tclose(mt);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return IPR_ERR;
}

int ipr_h5_dataset_shape(hid_t ds, int *rank, int64_t dims[8], int *is_float) {
    hid_t space = H5I_INVALID_HID, type = H5I_INVALID_HID;
    hsize_t d[8];
    IPR_H5(space = H5Dget_space(ds));
    const int r = H5Sget_simple_extent_ndims(space);
    IPR_CHECK(r >= 0 && r <= 8, "unsupported rank %d", r);
    IPR_H5(H5Sget_simple_extent_dims(space, d, NULL));
    for (int i = 0; i < r; ++i) dims[i] = (int64_t)d[i];
    *rank = r;
    IPR_H5(type = H5Dget_type(ds));
    *is_float = H5Tget_class(type) == H5T_FLOAT;
    H5Tclose(type);
    H5Sclose(space);
    return IPR_OK;
fail:
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    return IPR_ERR;
}

void ipr_dims_str(char *out, size_t cap, const int64_t *dims, int n) {
    size_t at = 0;
    at += (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < n && at < cap; ++i)
        at += (size_t)snprintf(out + at, cap - at, i ? ", %lld" : "%lld", (long long)dims[i]);
    if (at < cap) snprintf(out + at, cap - at, "]");
}

void ipr_problem(ipr_problems *p, const char *fmt, ...) {
    const size_t at = strlen(p->msg);
    if (p->n < 4 && at + 8 < sizeof p->msg) {
        if (p->n) snprintf(p->msg + at, sizeof p->msg - at, "; ");
        const size_t at2 = strlen(p->msg);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->msg + at2, sizeof p->msg - at2, fmt, ap);
        va_end(ap);
    }
    p->n++;
}
