/* test_util.h: helpers the cmocka tests share (linked into each by ipr_add_ctest).
 * A scratch directory per test program, under $TMPDIR (default /tmp), removed at teardown. */
#ifndef IPR_TEST_UTIL_H
#define IPR_TEST_UTIL_H

#include <hdf5.h>
#include <stddef.h>

/* dir (cap bytes) = a new directory "$TMPDIR/NAME.XXXXXX". 0 on success, -1 on failure. */
int ipr_test_tmpdir(char *dir, size_t cap, const char *name);
/* Remove dir and everything below it. 0 on success, -1 on failure. */
int ipr_test_rmtree(const char *dir);

/* ||a - ref|| / ||ref|| (relative L2 in double; a zero reference counts as norm 1). */
double ipr_test_rel_l2(const float *a, const double *ref, size_t n);
double ipr_test_rel_l2_f(const float *a, const float *ref, size_t n);

/* A dataset of an open HDF5 file read as `type` (H5T_NATIVE_FLOAT, ...) into a new buffer, its rank checked
 * (rank > 0) and its dims returned (up to 8); on failure the recorded error is printed and the test fails. */
void *ipr_test_read_tensor(hid_t file, const char *name, hid_t type, int rank, hsize_t dims[8]);
/* A network fixture's /input/x and /input/t (float, rank 4) and, when y is not NULL, /output/y (double), read and
 * the file closed; any failure fails the test. */
void ipr_test_read_fixture(const char *path, float **x, hsize_t xd[8], float **t, hsize_t td[8], double **y,
                           hsize_t yd[8]);

#endif
