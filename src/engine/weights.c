/* weights.c: the shared weight table (weights.h): registration into one arena, the both-way checked HDF5
 * loader, float32 saving with hard-linked aliases, deterministic random init, root-attribute readers. */
#include "weights.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipr/common.h"
#include "ipr/h5io.h"
#include "ipr/rng.h"

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

static void record_failure(ipr_weights *w, const char *msg, const char *name) {
    if (!w->failed) snprintf(w->fail_msg, sizeof w->fail_msg, "%s: '%.100s'", msg, name);
    w->failed = 1;
}

void ipr_weights_init(ipr_weights *w) { memset(w, 0, sizeof *w); }

/* a new zeroed table entry named `name`, or NULL (failure recorded) */
static ipr_weights_tensor *new_entry(ipr_weights *w, const char *name) {
    if (w->arena) {
        record_failure(w, "tensor registered after the arena was allocated", name);
        return NULL;
    }
    if (strlen(name) >= IPR_WEIGHTS_NAME_CAP) {
        record_failure(w, "state_dict name longer than IPR_WEIGHTS_NAME_CAP", name);
        return NULL;
    }
    if (w->n == w->cap) {
        const int cap = w->cap ? 2 * w->cap : 64;
        ipr_weights_tensor *t = realloc(w->t, sizeof *t * (size_t)cap);
        if (!t) {
            record_failure(w, "out of memory growing the weight table at", name);
            return NULL;
        }
        w->t = t;
        w->cap = cap;
    }
    ipr_weights_tensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    memcpy(t->name, name, strlen(name) + 1);
    return t;
}

int ipr_weights_add(ipr_weights *w, const char *name, int rank, const int64_t *shape, ipr_weights_kind kind,
                    float **bind) {
    if (rank < 1 || rank > 4) {
        record_failure(w, "tensor rank outside 1..4", name);
        return -1;
    }
    ipr_weights_tensor *t = new_entry(w, name);
    if (!t) return -1;
    t->rank = rank;
    t->numel = 1;
    for (int i = 0; i < rank; ++i) {
        t->shape[i] = shape[i];
        t->numel *= (size_t)shape[i];
    }
    t->offset = w->floats;
    t->alias_of = -1;
    t->kind = kind;
    t->bind = bind;
    w->floats += align16(t->numel);
    return w->n++;
}

int ipr_weights_alias(ipr_weights *w, int target, const char *name) {
    if (target < 0 || target >= w->n || w->t[target].alias_of >= 0) {
        record_failure(w, "alias of a tensor that does not own its data", name);
        return -1;
    }
    ipr_weights_tensor *t = new_entry(w, name);
    if (!t) return -1;
    const ipr_weights_tensor *src = &w->t[target];
    t->rank = src->rank;
    memcpy(t->shape, src->shape, sizeof t->shape);
    t->numel = src->numel;
    t->offset = src->offset;
    t->alias_of = target;
    t->kind = src->kind;
    return w->n++;
}

void ipr_weights_derived(ipr_weights *w, size_t n, float **bind) {
    if (w->arena) {
        record_failure(w, "derived region reserved after the arena was allocated", "");
        return;
    }
    if (w->n_derived == w->cap_derived) {
        const int cap = w->cap_derived ? 2 * w->cap_derived : 4;
        ipr_weights_derived_region *d = realloc(w->derived, sizeof *d * (size_t)cap);
        if (!d) {
            record_failure(w, "out of memory growing the derived regions", "");
            return;
        }
        w->derived = d;
        w->cap_derived = cap;
    }
    ipr_weights_derived_region *d = &w->derived[w->n_derived++];
    d->n = n;
    d->offset = 0; /* placed after the tensors by ipr_weights_alloc */
    d->bind = bind;
}

int ipr_weights_alloc(ipr_weights *w, const char *what) {
    IPR_CHECK(!w->failed, "%s: internal: weight table: %s", what, w->fail_msg);
    IPR_CHECK(w->arena == NULL, "%s: internal: weight arena allocated twice", what);
    size_t floats = w->floats;
    for (int i = 0; i < w->n_derived; ++i) {
        w->derived[i].offset = floats;
        floats += align16(w->derived[i].n);
    }
    w->floats = floats;
    /* 16-float entries keep every tensor 64-byte aligned; aligned_alloc needs a multiple of 64 bytes */
    const size_t bytes = sizeof(float) * (floats ? floats : 16);
    w->arena = aligned_alloc(64, bytes);
    IPR_CHECK(w->arena != NULL, "%s: out of memory: weight arena of %zu bytes", what, bytes);
    memset(w->arena, 0, bytes);
    w->params = 0;
    for (int k = 0; k < w->n; ++k) {
        ipr_weights_tensor *t = &w->t[k];
        t->data = w->arena + t->offset;
        if (t->bind) *t->bind = t->data;
        if (t->alias_of < 0) w->params += (int64_t)t->numel;
    }
    for (int i = 0; i < w->n_derived; ++i)
        if (w->derived[i].bind) *w->derived[i].bind = w->arena + w->derived[i].offset;
    return IPR_OK;
fail:
    return IPR_ERR;
}

void ipr_weights_free(ipr_weights *w) {
    if (!w) return;
    free(w->t);
    free(w->derived);
    free(w->arena);
    ipr_weights_init(w);
}

int64_t ipr_weights_table_values(const ipr_weights *w) {
    int64_t n = 0;
    for (int k = 0; k < w->n; ++k)
        if (w->t[k].alias_of < 0) n += (int64_t)w->t[k].numel;
    return n;
}

int ipr_weights_fit_file(const ipr_weights *w, int64_t file_values, const char *what) {
    if (file_values < 0) return IPR_OK;
    const int64_t need = ipr_weights_table_values(w);
    const int64_t most = file_values > INT64_MAX / 4 ? INT64_MAX : 2 * file_values + ((int64_t)1 << 24);
    IPR_CHECK(need <= most,
              "%s: the architecture of the root attributes has %lld parameters; the file's /weights holds %lld values",
              what, (long long)need, (long long)file_values);
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_weights_h5_values(const char *path, const char *group, int64_t *out) {
    hid_t f = H5I_INVALID_HID, g = H5I_INVALID_HID, ds = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    int64_t total = 0;
    *out = 0;
    f = ipr_h5_open_read(path);
    if (f < 0) return IPR_ERR;
    if (ipr_h5_exists(f, group)) {
        g = H5Gopen2(f, group, H5P_DEFAULT);
        if (g < 0) /* not a group: the load names it */
            H5Eclear2(H5E_DEFAULT);
        else {
            H5G_info_t gi;
            IPR_H5(H5Gget_info(g, &gi));
            for (hsize_t i = 0; i < gi.nlinks; ++i) {
                char name[512];
                const ssize_t len =
                    H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
                if (len < 0 || (size_t)len >= sizeof name) { /* the load names it */
                    H5Eclear2(H5E_DEFAULT);
                    continue;
                }
                ds = H5Dopen2(g, name, H5P_DEFAULT);
                if (ds < 0) { /* not a dataset: the load names it */
                    H5Eclear2(H5E_DEFAULT);
                    continue;
                }
                IPR_H5(sp = H5Dget_space(ds));
                const hssize_t n = H5Sget_simple_extent_npoints(sp);
                const hsize_t stored = H5Dget_storage_size(ds);
                H5Sclose(sp), sp = H5I_INVALID_HID;
                H5Dclose(ds), ds = H5I_INVALID_HID;
                if (n <= 0) continue;
                const uint64_t cap = stored > (hsize_t)(INT64_MAX / 64) ? (uint64_t)INT64_MAX : (uint64_t)stored * 64;
                const uint64_t counted = (uint64_t)n < cap ? (uint64_t)n : cap;
                total = counted > (uint64_t)(INT64_MAX - total) ? INT64_MAX : total + (int64_t)counted;
            }
        }
    }
    *out = total;
    if (g >= 0) H5Gclose(g), g = H5I_INVALID_HID;
    const herr_t closed = H5Fclose(f);
    f = H5I_INVALID_HID;
    IPR_CHECK(closed >= 0, "closing the file");
    return IPR_OK;
fail:
    if (sp >= 0) H5Sclose(sp);
    if (ds >= 0) H5Dclose(ds);
    if (g >= 0) H5Gclose(g);
    if (f >= 0) H5Fclose(f);
    ipr_error_context("checkpoint %s", path);
    return IPR_ERR;
}

int ipr_weights_find(const ipr_weights *w, const char *name) {
    for (int k = 0; k < w->n; ++k)
        if (strcmp(w->t[k].name, name) == 0) return k;
    return -1;
}

/* ------------------------------------------------------------------------------------------------ */
/* loading */

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

static const char *class_name(H5T_class_t c) {
    switch (c) {
    case H5T_INTEGER: return "an integer type";
    case H5T_STRING: return "a string type";
    case H5T_COMPOUND: return "a compound type";
    case H5T_OPAQUE: return "an opaque type";
    case H5T_ENUM: return "an enum type";
    case H5T_BITFIELD: return "a bitfield type";
    default: return "a non-numeric type";
    }
}

/* "shape [a, b]" of an object of the group, or "not a dataset" (for an unexpected name) */
static void describe_object(hid_t g, const char *name, char *out, size_t cap) {
    snprintf(out, cap, "not a dataset");
    hid_t o = H5Oopen(g, name, H5P_DEFAULT);
    if (o >= 0) {
        if (H5Iget_type(o) == H5I_DATASET) {
            int r = 0, fl = 0;
            int64_t d[8];
            char s[96] = "?";
            if (ipr_h5_dataset_shape(o, &r, d, &fl) == IPR_OK) ipr_dims_str(s, sizeof s, d, r);
            snprintf(out, cap, "shape %s", s);
        }
        H5Oclose(o);
    }
    H5Eclear2(H5E_DEFAULT);
}

static int read_floats(hid_t ds, const char *name, float *dst) {
    if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0) {
        ipr_h5_error_set(__FILE__, __LINE__, "H5Dread");
        ipr_error_context("tensor '%s' (truncated or corrupt file?)", name);
        return IPR_ERR;
    }
    return IPR_OK;
}

int ipr_weights_load_h5(ipr_weights *w, hid_t file, const char *group) {
    hid_t g = H5I_INVALID_HID, ds = H5I_INVALID_HID, ds2 = H5I_INVALID_HID, type = H5I_INVALID_HID;
    unsigned char *seen = NULL;
    float *scratch = NULL;
    ipr_problems pr;
    memset(&pr, 0, sizeof pr);
    IPR_CHECK(w->arena != NULL || w->n == 0, "internal: weights loaded before the arena was allocated");
    IPR_CHECK(ipr_h5_exists(file, group), "no %s group", group);
    IPR_H5(g = H5Gopen2(file, group, H5P_DEFAULT));
    seen = ipr_calloc((size_t)w->n + 1, 1, "weight table");
    if (!seen) goto fail; /* error recorded by ipr_calloc */

    /* file -> table: every name in the group must be a tensor of the architecture */
    H5G_info_t gi;
    IPR_H5(H5Gget_info(g, &gi));
    for (hsize_t i = 0; i < gi.nlinks; ++i) {
        char name[512];
        const ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
        IPR_H5(len);
        const int found = ipr_weights_find(w, name);
        if (found >= 0) {
            seen[found] = 1;
            continue;
        }
        char what[112];
        describe_object(g, name, what, sizeof what);
        ipr_problem(&pr, "unexpected tensor '%s' (%s): not part of the architecture", name, what);
    }

    /* table -> file: every tensor present with its exact shape; an alias is its target's object or values.
     * Targets precede their aliases in the table, so a target is read before its aliases are compared. */
    for (int k = 0; k < w->n; ++k) {
        const ipr_weights_tensor *t = &w->t[k];
        char want[96], got[96];
        ipr_dims_str(want, sizeof want, t->shape, t->rank);
        if (!seen[k]) {
            ipr_problem(&pr, "missing tensor '%s' (expected shape %s)", t->name, want);
            continue;
        }
        ds = H5Dopen2(g, t->name, H5P_DEFAULT);
        if (ds < 0) {
            H5Eclear2(H5E_DEFAULT);
            ipr_problem(&pr, "'%s' is not a dataset (expected a tensor of shape %s)", t->name, want);
            continue;
        }
        int rank = 0, is_float = 0;
        int64_t dims[8];
        IPR_TRY(ipr_h5_dataset_shape(ds, &rank, dims, &is_float));
        int same = rank == t->rank;
        for (int i = 0; same && i < rank; ++i) same = dims[i] == t->shape[i];
        if (!same) {
            ipr_dims_str(got, sizeof got, dims, rank);
            ipr_problem(&pr, "tensor '%s': expected shape %s, found %s", t->name, want, got);
        } else if (!is_float) {
            /* bfloat16 written as raw uint16 words lands here: it has to be stored as an HDF5 float type */
            IPR_H5(type = H5Dget_type(ds));
            ipr_problem(&pr,
                        "tensor '%s' is not floating point (stored as %s; weights must be an HDF5 float type: float32, "
                        "float16 or bfloat16)",
                        t->name, class_name(H5Tget_class(type)));
            H5Tclose(type);
            type = H5I_INVALID_HID;
        } else if (pr.n == 0) {
            if (t->alias_of < 0) {
                IPR_TRY(read_floats(ds, t->name, t->data));
            } else {
                const ipr_weights_tensor *target = &w->t[t->alias_of];
                IPR_H5(ds2 = H5Dopen2(g, target->name, H5P_DEFAULT));
                const int so = same_object(ds, ds2);
                if (so < 0) goto fail;
                if (!so) {
                    scratch = ipr_malloc(sizeof(float) * (t->numel ? t->numel : 1), "alias check");
                    if (!scratch) goto fail; /* error recorded by ipr_malloc */
                    IPR_TRY(read_floats(ds, t->name, scratch));
                    if (memcmp(scratch, target->data, sizeof(float) * t->numel) != 0)
                        ipr_problem(&pr, "tensor '%s' should be %s '%s' (a hard link) but holds different values",
                                    t->name, w->alias_what ? w->alias_what : "the same tensor as", target->name);
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
    IPR_CHECK(pr.n == 0, "%d problem%s with %s: %s%s", pr.n, pr.n == 1 ? "" : "s", group, pr.msg,
              pr.n > 4 ? "; ..." : "");
    free(seen);
    H5Gclose(g);
    return IPR_OK;
fail:
    free(seen);
    free(scratch);
    if (type >= 0) H5Tclose(type);
    if (ds2 >= 0) H5Dclose(ds2);
    if (ds >= 0) H5Dclose(ds);
    if (g >= 0) H5Gclose(g);
    return IPR_ERR;
}

/* ------------------------------------------------------------------------------------------------ */

int ipr_weights_save_h5(const ipr_weights *w, hid_t group) {
    for (int k = 0; k < w->n; ++k) {
        const ipr_weights_tensor *t = &w->t[k];
        if (t->alias_of < 0) {
            hsize_t dims[4];
            for (int i = 0; i < t->rank; ++i) dims[i] = (hsize_t)t->shape[i];
            IPR_TRY(ipr_h5_write(group, t->name, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, t->rank, dims, t->data));
        } else {
            IPR_H5(H5Lcreate_hard(group, w->t[t->alias_of].name, group, t->name, H5P_DEFAULT, H5P_DEFAULT));
        }
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

void ipr_weights_init_random(ipr_weights *w, uint64_t seed, uint32_t purpose) {
    for (int k = 0; k < w->n; ++k) {
        const ipr_weights_tensor *t = &w->t[k];
        if (t->alias_of >= 0) continue;
        ipr_rng r;
        ipr_rng_init(&r, seed, purpose, (uint64_t)k, 0);
        double lo = -0.1, hi = 0.1, add = 0.0;
        if (t->kind == IPR_WEIGHTS_WEIGHT) {
            /* torch's default init scale: U(-1, 1) / sqrt(fan_in) */
            const double a = 1.0 / sqrt((double)t->numel / (double)t->shape[0]);
            lo = -a;
            hi = a;
        } else if (t->kind == IPR_WEIGHTS_GAIN) {
            add = 1.0;
        }
        for (size_t i = 0; i < t->numel; ++i) t->data[i] = (float)(add + lo + (hi - lo) * ipr_rng_uniform(&r));
    }
}

/* ------------------------------------------------------------------------------------------------ */
/* root attributes */

int ipr_attr_int(hid_t loc, const char *name, int lo, int hi, int *out) {
    int64_t v = 0;
    IPR_TRY(ipr_h5_read_attr_i64(loc, name, &v));
    IPR_CHECK(v >= lo && v <= hi, "attribute '%s' = %lld outside %d..%d", name, (long long)v, lo, hi);
    *out = (int)v;
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_attr_ints(hid_t loc, const char *name, int n, int broadcast, int64_t lo, int64_t hi, int *out) {
    int64_t v[IPR_ATTR_INTS_MAX];
    int got = 0;
    IPR_CHECK(n >= 1 && n <= IPR_ATTR_INTS_MAX, "internal: attribute '%s' read as %d values", name, n);
    IPR_TRY(ipr_h5_read_attr_i64_array(loc, name, v, IPR_ATTR_INTS_MAX, &got));
    if (broadcast)
        IPR_CHECK(got == 1 || got == n, "attribute '%s' has %d values, expected 1 or %d", name, got, n);
    else
        IPR_CHECK(got == n, "attribute '%s' has %d value%s, expected %d", name, got, got == 1 ? "" : "s", n);
    for (int i = 0; i < n; ++i) {
        const int64_t x = v[got == 1 ? 0 : i];
        IPR_CHECK(x >= lo && x <= hi, "attribute '%s'[%d] = %lld outside %lld..%lld", name, i, (long long)x,
                  (long long)lo, (long long)hi);
        out[i] = (int)x;
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_attr_f64(hid_t loc, const char *name, double *out) {
    hid_t a = H5I_INVALID_HID, s = H5I_INVALID_HID, t = H5I_INVALID_HID;
    const htri_t ex = H5Aexists(loc, name);
    if (ex <= 0) {
        H5Eclear2(H5E_DEFAULT);
        IPR_FAIL("attribute '%s' missing", name);
    }
    IPR_H5(a = H5Aopen(loc, name, H5P_DEFAULT));
    IPR_H5(t = H5Aget_type(a));
    const H5T_class_t c = H5Tget_class(t);
    IPR_CHECK(c == H5T_FLOAT || c == H5T_INTEGER, "attribute '%s' is not a number", name);
    IPR_H5(s = H5Aget_space(a));
    const hssize_t count = H5Sget_simple_extent_npoints(s);
    IPR_CHECK(count == 1, "attribute '%s' should hold one value, holds %lld", name, (long long)count);
    IPR_H5(H5Aread(a, H5T_NATIVE_DOUBLE, out));
    H5Sclose(s);
    H5Tclose(t);
    H5Aclose(a);
    return IPR_OK;
fail:
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return IPR_ERR;
}

int ipr_weights_save_file(const ipr_weights *w, hid_t f, const char *tmp, const char *path) {
    hid_t g = ipr_h5_group(f, "/weights");
    if (g < 0) goto fail;
    IPR_TRY(ipr_weights_save_h5(w, g));
    H5Gclose(g);
    g = H5I_INVALID_HID;
    const herr_t closed = H5Fclose(f);
    f = H5I_INVALID_HID;
    IPR_H5(closed);
    IPR_TRY(ipr_commit_tmp(tmp, path));
    return IPR_OK;
fail:
    if (g >= 0) H5Gclose(g);
    if (f >= 0) H5Fclose(f);
    remove(tmp);
    return IPR_ERR;
}
