/* h5io.h: small HDF5 helpers that make reproducible files (no object timestamps, v1.8 format) and
 * read tensors with their shapes checked. Every call records a precise error on failure. */
#ifndef IPR_H5IO_H
#define IPR_H5IO_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "ipr/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Silence HDF5's own stack printing; ipr reports errors itself. Call once at startup. */
void ipr_h5_quiet(void);

/* Create a file (truncating) whose bytes depend only on what is written: times not tracked. */
hid_t ipr_h5_create(const char *path);
/* Open read-only; a missing or non-HDF5 file is a clear error. */
hid_t ipr_h5_open_read(const char *path);
/* H5Fclose(*f) with *f set to H5I_INVALID_HID first: after a failed close (a write or close(2) under it failed, e.g.
 * disk full) libhdf5 has released the file already, and a second H5Fclose of that id crashes inside libhdf5. */
int ipr_h5_fclose(hid_t *f);
/* Create intermediate groups as needed ("/a/b"); returns the group id. */
hid_t ipr_h5_group(hid_t file, const char *path);

/* Write a contiguous dataset of `rank` dims. type_id e.g. H5T_NATIVE_UINT8; stored type = file_type
 * (H5T_STD_U8LE, H5T_IEEE_F32LE, ...). Large datasets are chunked + shuffle + deflate(4). */
int ipr_h5_write(hid_t loc, const char *name, hid_t mem_type, hid_t file_type, int rank,
                 const hsize_t *dims, const void *data);
/* A dataset written in row blocks: created with its final dims (chunked along axis 0, shuffle +
 * deflate(4)), then filled with ipr_h5_write_rows. Returns the dataset id. */
hid_t ipr_h5_create_rows(hid_t loc, const char *name, hid_t file_type, int rank, const hsize_t *dims);
int ipr_h5_write_rows(hid_t ds, hid_t mem_type, hsize_t start, hsize_t count, const void *data);
int ipr_h5_attr_str(hid_t loc, const char *name, const char *value);
int ipr_h5_attr_i64(hid_t loc, const char *name, int64_t value);
int ipr_h5_attr_f64(hid_t loc, const char *name, double value);
int ipr_h5_attr_i64_array(hid_t loc, const char *name, const int64_t *values, hsize_t n);

/* Read a dataset as mem_type into a freshly allocated buffer; dims (up to 8) returned.
 * If expect_rank > 0 the rank must match. */
int ipr_h5_read_alloc(hid_t loc, const char *name, hid_t mem_type, int expect_rank, int *rank,
                      hsize_t dims[8], void **data);
int ipr_h5_read_attr_i64(hid_t loc, const char *name, int64_t *value);
int ipr_h5_read_attr_i64_array(hid_t loc, const char *name, int64_t *values, int cap, int *n);
int ipr_h5_read_attr_str(hid_t loc, const char *name, char *out, size_t cap);
int ipr_h5_exists(hid_t loc, const char *path);
/* Rank (<= 8), dims and whether the element type is floating point, of an open dataset. */
int ipr_h5_dataset_shape(hid_t ds, int *rank, int64_t dims[8], int *is_float);

/* Checking a checkpoint's tensors both ways: "[a, b, c]" of n integers for messages, and the problems found,
 * all counted and the first four spelled out ("; "-separated). */
void ipr_dims_str(char *out, size_t cap, const int64_t *dims, int n);
typedef struct {
    char msg[1536];
    int n;
} ipr_problems;
void ipr_problem(ipr_problems *p, const char *fmt, ...) IPR_PRINTF(2, 3);

#ifdef __cplusplus
}
#endif
#endif
