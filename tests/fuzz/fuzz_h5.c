/* fuzz_h5.c: the edit engine behind the structure-aware HDF5 harnesses (fuzz_h5.h) and the in-memory files
 * every harness hands our readers. Each edit goes through the HDF5 API, so the images are well-formed files
 * whose contents are wrong: exactly what a damaged or foreign checkpoint/segment looks like to our loaders. */
#define _GNU_SOURCE
#include "fuzz_h5.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

hid_t __real_H5Fopen(const char *name, unsigned flags, hid_t fapl);
htri_t __real_H5Fis_hdf5(const char *name);
hid_t __wrap_H5Fopen(const char *name, unsigned flags, hid_t fapl);
htri_t __wrap_H5Fis_hdf5(const char *name);

static uint8_t *g_img;
static size_t g_img_size;

void fuzz_h5_init(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

void fuzz_h5_release(void) {
    free(g_img);
    g_img = NULL;
    g_img_size = 0;
}

/* File image callbacks that share the caller's buffer instead of copying it at every step (property list set,
 * copy, get, file open): a read-only open reads `buf` in place; a writable one gets one private copy at open, and
 * that copy is taken over when the file closes (H5FD_FILE_IMAGE_OP_FILE_CLOSE) instead of freed: the finished file,
 * superblock written and checksummed by the close itself (H5Fget_file_image of a file still open for writing gives
 * a v2 superblock whose checksum fails on reopening). The images are ~1 MiB and were copied several times per
 * input otherwise, which dominated the harnesses' time. */
typedef struct {
    const void *buf;
    size_t size;
    int writable;
    void *taken;       /* writable: the private copy at close */
    size_t taken_size; /* its allocated size (>= the file's end: HDF5 accepts trailing bytes, not missing ones) */
} image_share;

static void *img_malloc(size_t size, H5FD_file_image_op_t op, void *udata) {
    image_share *u = udata;
    if (op == H5FD_FILE_IMAGE_OP_PROPERTY_LIST_SET || op == H5FD_FILE_IMAGE_OP_PROPERTY_LIST_COPY ||
        op == H5FD_FILE_IMAGE_OP_PROPERTY_LIST_GET || (op == H5FD_FILE_IMAGE_OP_FILE_OPEN && !u->writable))
        return (void *)u->buf;
    void *p = malloc(size);
    if (p && op == H5FD_FILE_IMAGE_OP_FILE_OPEN) u->taken_size = size;
    return p;
}

static void *img_memcpy(void *dest, const void *src, size_t size, H5FD_file_image_op_t op, void *udata) {
    (void)op, (void)udata;
    return dest == src ? dest : memcpy(dest, src, size);
}

static void *img_realloc(void *ptr, size_t size, H5FD_file_image_op_t op, void *udata) {
    image_share *u = udata;
    if (ptr == u->buf) return NULL; /* the shared buffer never grows */
    void *p = realloc(ptr, size);
    if (p && op == H5FD_FILE_IMAGE_OP_FILE_RESIZE) u->taken_size = size;
    return p;
}

static herr_t img_free(void *ptr, H5FD_file_image_op_t op, void *udata) {
    image_share *u = udata;
    if (ptr == u->buf) return 0;
    if (u->writable && op == H5FD_FILE_IMAGE_OP_FILE_CLOSE) {
        u->taken = ptr;
        return 0;
    }
    free(ptr);
    return 0;
}

static void *img_udata_copy(void *udata) { return udata; }
static herr_t img_udata_free(void *udata) {
    (void)udata;
    return 0;
}

/* a file access list that opens share->buf as a file in memory (no backing store); `share` outlives the file */
static hid_t image_fapl(image_share *share) {
    H5FD_file_image_callbacks_t cb = {img_malloc,     img_memcpy,     img_realloc, img_free,
                                      img_udata_copy, img_udata_free, share};
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return fapl;
    if (H5Pset_fapl_core(fapl, 1 << 16, 0) < 0 || H5Pset_file_image_callbacks(fapl, &cb) < 0 ||
        H5Pset_file_image(fapl, (void *)share->buf, share->size) < 0) {
        H5Pclose(fapl);
        return H5I_INVALID_HID;
    }
    return fapl;
}

hid_t __wrap_H5Fopen(const char *name, unsigned flags, hid_t fapl) {
    if (!name || strcmp(name, FUZZ_H5_PATH) != 0) return __real_H5Fopen(name, flags, fapl);
    if (!g_img) return H5I_INVALID_HID;
    static image_share share; /* read in place: the image outlives every file opened from it */
    share = (image_share){g_img, g_img_size, 0, NULL, 0};
    hid_t mem = image_fapl(&share);
    if (mem < 0) return mem;
    hid_t f = __real_H5Fopen(name, flags, mem);
    if (f < 0 && getenv("IPR_FUZZ_DEBUG")) H5Eprint2(H5E_DEFAULT, stderr);
    H5Pclose(mem);
    return f;
}

htri_t __wrap_H5Fis_hdf5(const char *name) {
    if (!name || strcmp(name, FUZZ_H5_PATH) != 0) return __real_H5Fis_hdf5(name);
    return g_img != NULL;
}

/* ---------------- the seed ---------------- */

typedef struct {
    fuzz_h5_seed *s;
    const char *obj;
} attr_state;

static herr_t on_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
    (void)loc, (void)info;
    attr_state *a = data;
    fuzz_h5_seed *s = a->s;
    s->attr_obj = realloc(s->attr_obj, (size_t)(s->n_attrs + 1) * sizeof *s->attr_obj);
    s->attr_name = realloc(s->attr_name, (size_t)(s->n_attrs + 1) * sizeof *s->attr_name);
    if (!s->attr_obj || !s->attr_name) abort();
    snprintf(s->attr_obj[s->n_attrs], sizeof s->attr_obj[0], "%s", a->obj);
    snprintf(s->attr_name[s->n_attrs], sizeof s->attr_name[0], "%s", name);
    s->n_attrs++;
    return 0;
}

static void list_attrs(hid_t f, fuzz_h5_seed *s, const char *obj) {
    attr_state a = {s, obj};
    H5Aiterate_by_name(f, obj, H5_INDEX_NAME, H5_ITER_INC, NULL, on_attr, &a, H5P_DEFAULT);
}

typedef struct {
    fuzz_h5_seed *s;
    char (*objs)[256];
    int n_objs;
} visit_state;

static herr_t on_link(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    visit_state *v = data;
    if (info->type != H5L_TYPE_HARD) return 0;
    hid_t o = H5Oopen(g, name, H5P_DEFAULT);
    if (o < 0) return 0;
    char path[256];
    snprintf(path, sizeof path, "/%s", name);
    if (H5Iget_type(o) == H5I_DATASET) {
        fuzz_h5_seed *s = v->s;
        s->datasets = realloc(s->datasets, (size_t)(s->n_datasets + 1) * sizeof *s->datasets);
        if (!s->datasets) abort();
        snprintf(s->datasets[s->n_datasets++], sizeof s->datasets[0], "%s", path);
    }
    v->objs = realloc(v->objs, (size_t)(v->n_objs + 1) * sizeof *v->objs);
    if (!v->objs) abort();
    snprintf(v->objs[v->n_objs++], sizeof v->objs[0], "%s", path);
    H5Oclose(o);
    return 0;
}

void fuzz_h5_seed_load(fuzz_h5_seed *s, const char *path) {
    memset(s, 0, sizeof *s);
    FILE *fp = fopen(path, "rb");
    if (!fp || fseek(fp, 0, SEEK_END) != 0) {
        fprintf(stderr, "fuzz: cannot read seed %s\n", path);
        exit(1);
    }
    long n = ftell(fp);
    rewind(fp);
    s->bytes = malloc((size_t)n);
    if (!s->bytes || fread(s->bytes, 1, (size_t)n, fp) != (size_t)n) {
        fprintf(stderr, "fuzz: cannot read seed %s\n", path);
        exit(1);
    }
    fclose(fp);
    s->size = (size_t)n;
    static image_share share;
    share = (image_share){s->bytes, s->size, 0, NULL, 0};
    hid_t fapl = image_fapl(&share);
    hid_t f = __real_H5Fopen("seed.h5", H5F_ACC_RDONLY, fapl);
    if (f < 0) {
        fprintf(stderr, "fuzz: seed %s is not an HDF5 file\n", path);
        exit(1);
    }
    visit_state v = {s, NULL, 0};
    H5Lvisit(f, H5_INDEX_NAME, H5_ITER_INC, on_link, &v);
    list_attrs(f, s, "/");
    for (int i = 0; i < v.n_objs; ++i) list_attrs(f, s, v.objs[i]);
    free(v.objs);
    H5Fclose(f);
    H5Pclose(fapl);
    if (s->n_datasets == 0) {
        fprintf(stderr, "fuzz: seed %s holds no dataset\n", path);
        exit(1);
    }
}

/* ---------------- the edits ---------------- */

typedef struct {
    const uint8_t *p;
    size_t n, at;
} reader;

static unsigned u8(reader *r) { return r->at < r->n ? r->p[r->at++] : 0; }
static unsigned u16(reader *r) { return u8(r) | (u8(r) << 8); }
static uint64_t u64(reader *r) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= (uint64_t)u8(r) << (8 * i);
    return v;
}

/* integers that sit on the edges of what a loader checks */
static int64_t special_int(reader *r) {
    static const int64_t k[] = {0,    1,     -1,      2,         3,          4,         7,       8,
                                16,   28,    31,      32,        33,         63,        64,      65,
                                96,   128,   255,     256,       1023,       4096,      65535,   65536,
                                1 << 20,     1 << 24, 2147483647, -2147483647 - 1, 4294967296LL, 1000000000000LL,
                                INT64_MAX,   INT64_MIN};
    unsigned c = u8(r);
    if (c >= 224) return (int64_t)u64(r);
    return k[c % (sizeof k / sizeof k[0])];
}

static double special_float(reader *r) {
    static const double k[] = {0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-30, 1e30, 1e300, -1e300, 3.5e38, 1e-320};
    unsigned c = u8(r);
    switch (c % 16) {
    case 12: return NAN;
    case 13: return INFINITY;
    case 14: return -INFINITY;
    case 15: {
        uint64_t b = u64(r);
        double d;
        memcpy(&d, &b, sizeof d);
        return d;
    }
    default: return k[c % 12];
    }
}

/* the file types an edit may turn a dataset or attribute into */
static hid_t pick_type(reader *r) {
    switch (u8(r) % 9) {
    case 0: return H5T_STD_I8LE;
    case 1: return H5T_STD_U8LE;
    case 2: return H5T_STD_I32LE;
    case 3: return H5T_STD_I64LE;
    case 4: return H5T_STD_U64LE;
    case 5: return H5T_IEEE_F32LE;
    case 6: return H5T_IEEE_F64LE;
    case 7: return H5T_IEEE_F32BE;
    default: return H5T_STD_I16BE;
    }
}

#define MAX_VALUES (1u << 22)

/* A dataset's shape and values as doubles (strings and other classes read as zeros). */
static int read_dataset(hid_t f, const char *path, int *rank, hsize_t dims[8], double **vals, size_t *n,
                        hid_t *ftype) {
    hid_t ds = H5Dopen2(f, path, H5P_DEFAULT);
    if (ds < 0) return -1;
    hid_t sp = H5Dget_space(ds);
    int rk = H5Sget_simple_extent_ndims(sp);
    if (rk < 0 || rk > 8) {
        H5Sclose(sp);
        H5Dclose(ds);
        return -1;
    }
    H5Sget_simple_extent_dims(sp, dims, NULL);
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    if (np < 0 || (size_t)np > MAX_VALUES) {
        H5Dclose(ds);
        return -1;
    }
    *vals = calloc((size_t)np + 1, sizeof(double));
    hid_t t = H5Dget_type(ds);
    H5T_class_t cls = H5Tget_class(t);
    *ftype = (cls == H5T_INTEGER || cls == H5T_FLOAT) ? H5Tcopy(t) : H5Tcopy(H5T_IEEE_F32LE);
    if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && np > 0) H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, *vals);
    H5Tclose(t);
    H5Dclose(ds);
    *rank = rk;
    *n = (size_t)np;
    return 0;
}

/* Replace `path` by a dataset of type ftype and shape (rank, dims) whose values repeat vals[0..n). */
static void write_dataset(hid_t f, const char *path, hid_t ftype, int rank, const hsize_t *dims, const double *vals,
                          size_t n) {
    size_t total = 1;
    for (int i = 0; i < rank; ++i) {
        if (dims[i] > MAX_VALUES || (dims[i] && total > MAX_VALUES / dims[i])) return;
        total *= dims[i];
    }
    H5Ldelete(f, path, H5P_DEFAULT);
    hid_t sp = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t ds = H5Dcreate2(f, path, ftype, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (ds >= 0 && total > 0) {
        double *buf = malloc(total * sizeof(double));
        if (buf) {
            for (size_t i = 0; i < total; ++i) buf[i] = n ? vals[i % n] : 0.0;
            H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
            free(buf);
        }
    }
    if (ds >= 0) H5Dclose(ds);
    H5Pclose(lcpl);
    H5Sclose(sp);
}

static void edit_dataset(hid_t f, const char *path, unsigned op, reader *r) {
    int rank = 0;
    hsize_t dims[9] = {0};
    double *vals = NULL;
    size_t n = 0;
    hid_t ftype = H5I_INVALID_HID;
    if (read_dataset(f, path, &rank, dims, &vals, &n, &ftype) != 0) return;
    switch (op) {
    case 0: { /* shape: one dimension changed, or one dimension more or less */
        unsigned c = u8(r);
        if (c % 4 == 0 && rank < 8) {
            dims[rank++] = 1 + u8(r) % 3;
        } else if (c % 4 == 1 && rank > 0) {
            rank--;
        } else if (rank > 0) {
            int d = (int)(u8(r) % (unsigned)rank);
            static const int delta[] = {-1, 1, 0};
            unsigned m = u8(r);
            if (m % 4 < 2)
                dims[d] = (hsize_t)((int64_t)dims[d] + delta[m % 2]);
            else if (m % 4 == 2)
                dims[d] *= 2;
            else
                dims[d] = u8(r) % 70;
        }
        write_dataset(f, path, ftype, rank, dims, vals, n);
        break;
    }
    case 1: /* dtype */
        write_dataset(f, path, pick_type(r), rank, dims, vals, n);
        break;
    case 2: { /* truncated data: the first dimension cut (or the whole thing flattened and cut) */
        if (rank == 0) break;
        unsigned c = u8(r);
        if (c & 1) {
            hsize_t flat = n ? (hsize_t)((n * (c >> 1)) / 128) : 0;
            write_dataset(f, path, ftype, 1, &flat, vals, n);
        } else {
            dims[0] = dims[0] ? (dims[0] * (c >> 1)) / 128 : 0;
            write_dataset(f, path, ftype, rank, dims, vals, n);
        }
        break;
    }
    case 3: { /* NaN, Inf or extreme values at a few places, or everywhere */
        if (n == 0) break;
        unsigned count = 1 + u8(r) % 4;
        if (u8(r) % 8 == 0) {
            double v = special_float(r);
            for (size_t i = 0; i < n; ++i) vals[i] = v;
        } else {
            for (unsigned i = 0; i < count; ++i) {
                size_t at = (size_t)u16(r) * 2654435761u % n;
                vals[at] = special_float(r);
            }
        }
        write_dataset(f, path, ftype, rank, dims, vals, n);
        break;
    }
    default: { /* a string where numbers belong */
        H5Ldelete(f, path, H5P_DEFAULT);
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, 8);
        hid_t sp = H5Screate(H5S_SCALAR);
        hid_t ds = H5Dcreate2(f, path, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (ds >= 0) {
            H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, "garbage!");
            H5Dclose(ds);
        }
        H5Sclose(sp);
        H5Tclose(t);
        break;
    }
    }
    if (ftype >= 0) H5Tclose(ftype);
    free(vals);
}

/* Replace an attribute: numbers (the old ones with one changed, fewer, more, or one special value; any numeric
 * type) or a string. */
static void edit_attr(hid_t f, const char *obj, const char *name, unsigned op, reader *r) {
    double old[64];
    int n_old = 0;
    hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
        H5T_class_t cls = H5Tget_class(t);
        hssize_t np = H5Sget_simple_extent_npoints(sp);
        if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && np > 0 && np <= 64 &&
            H5Aread(a, H5T_NATIVE_DOUBLE, old) >= 0)
            n_old = (int)np;
        H5Tclose(t);
        H5Sclose(sp);
        H5Aclose(a);
    }
    H5Adelete_by_name(f, obj, name, H5P_DEFAULT);
    if (op == 0) return; /* dropped */
    hid_t type, sp;
    if (op == 1) { /* a string, fixed or variable length, of the fuzzer's bytes */
        char text[40];
        unsigned len = u8(r) % 33;
        for (unsigned i = 0; i < len; ++i) text[i] = (char)u8(r);
        text[len] = '\0';
        int vlen = u8(r) & 1;
        type = H5Tcopy(H5T_C_S1);
        H5Tset_size(type, vlen ? H5T_VARIABLE : (len ? len : 1));
        if (vlen) H5Tset_cset(type, H5T_CSET_UTF8);
        sp = H5Screate(H5S_SCALAR);
        hid_t at = H5Acreate_by_name(f, obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (at >= 0) {
            const char *p = text;
            H5Awrite(at, type, vlen ? (const void *)&p : (const void *)text);
            H5Aclose(at);
        }
        H5Tclose(type);
        H5Sclose(sp);
        return;
    }
    double v[65];
    int n = n_old;
    memcpy(v, old, sizeof(double) * (size_t)n_old);
    unsigned mode = u8(r) % 5;
    if (mode == 0 || n == 0) { /* one value */
        n = 1;
        v[0] = op == 2 ? (double)special_int(r) : special_float(r);
    } else if (mode == 1) { /* one element changed */
        v[u8(r) % (unsigned)n] = op == 2 ? (double)special_int(r) : special_float(r);
    } else if (mode == 2) { /* one fewer */
        n--;
    } else if (mode == 3 && n < 64) { /* one more */
        v[n++] = op == 2 ? (double)special_int(r) : special_float(r);
    } else { /* a few of anything */
        n = (int)(u8(r) % 9);
        for (int i = 0; i < n; ++i) v[i] = op == 2 ? (double)special_int(r) : special_float(r);
    }
    type = op == 2 ? (u8(r) & 1 ? H5T_STD_I64LE : pick_type(r)) : H5T_IEEE_F64LE;
    hsize_t dim = (hsize_t)n;
    sp = (n == 1 && (u8(r) & 1)) ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dim, NULL);
    hid_t at = H5Acreate_by_name(f, obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (at >= 0) {
        if (n > 0) H5Awrite(at, H5T_NATIVE_DOUBLE, v);
        H5Aclose(at);
    }
    H5Sclose(sp);
}

int fuzz_h5_mutate(const fuzz_h5_seed *s, const uint8_t *data, size_t size) {
    fuzz_h5_release();
    static image_share share; /* one private, writable copy at open */
    share = (image_share){s->bytes, s->size, 1, NULL, 0};
    hid_t fapl = image_fapl(&share);
    hid_t f = __real_H5Fopen("edit.h5", H5F_ACC_RDWR, fapl);
    if (f < 0) abort(); /* the seed opened before: this is the harness's fault */
    reader r = {data, size, 0};
    int edits = 0;
    while (r.at < r.n && edits < 8) {
        unsigned op = u8(&r) % 12;
        if (op < 5) { /* a dataset: dropped, reshaped, retyped, truncated, NaN/Inf */
            const char *path = s->datasets[u16(&r) % (unsigned)s->n_datasets];
            if (op == 0)
                H5Ldelete(f, path, H5P_DEFAULT);
            else
                edit_dataset(f, path, op - 1, &r);
        } else if (op < 9) { /* an attribute: dropped, made a string, integers, floats */
            if (s->n_attrs == 0) continue;
            int k = (int)(u16(&r) % (unsigned)s->n_attrs);
            edit_attr(f, s->attr_obj[k], s->attr_name[k], op - 5, &r);
        } else if (op == 9) { /* a dataset moved onto another's name (one missing, one in the wrong place) */
            const char *a = s->datasets[u16(&r) % (unsigned)s->n_datasets];
            const char *b = s->datasets[u16(&r) % (unsigned)s->n_datasets];
            if (strcmp(a, b) != 0) {
                H5Ldelete(f, b, H5P_DEFAULT);
                H5Lmove(f, a, f, b, H5P_DEFAULT, H5P_DEFAULT);
            }
        } else if (op == 10) { /* a string dataset in place of numbers */
            edit_dataset(f, s->datasets[u16(&r) % (unsigned)s->n_datasets], 4, &r);
        } else { /* an extra dataset beside a known one */
            char path[300];
            snprintf(path, sizeof path, "%s_%u", s->datasets[u16(&r) % (unsigned)s->n_datasets], u8(&r));
            hsize_t d = 1 + u8(&r) % 16;
            double v = special_float(&r);
            write_dataset(f, path, H5T_IEEE_F32LE, 1, &d, &v, 1);
        }
        edits++;
    }
    H5Fclose(f); /* hands the finished image to img_free */
    H5Pclose(fapl);
    g_img = share.taken;
    g_img_size = share.taken_size;
    H5Eclear2(H5E_DEFAULT);
    return edits;
}
