/* test_util.c: helpers the cmocka tests share: a scratch directory per test program, relative L2 errors, and
 * reading a fixture tensor. */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"

#include <hdf5.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "ipr/common.h"
#include "ipr/h5io.h"

int ipr_test_tmpdir(char *dir, size_t cap, const char *name) {
    const char *base = getenv("TMPDIR");
    int n = snprintf(dir, cap, "%s/%s.XXXXXX", base && base[0] ? base : "/tmp", name);
    if (n < 0 || (size_t)n >= cap) return -1;
    return mkdtemp(dir) ? 0 : -1;
}

int ipr_test_rmtree(const char *dir) {
    char cmd[4200];
    int n = snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (n < 0 || (size_t)n >= sizeof cmd) return -1;
    return system(cmd) == 0 ? 0 : -1;
}

double ipr_test_rel_l2(const float *a, const double *ref, size_t n) {
    double e = 0.0, s = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const double d = (double)a[i] - ref[i];
        e += d * d;
        s += ref[i] * ref[i];
    }
    return sqrt(e / (s > 0 ? s : 1.0));
}

double ipr_test_rel_l2_f(const float *a, const float *ref, size_t n) {
    double e = 0.0, s = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const double d = (double)a[i] - ref[i];
        e += d * d;
        s += (double)ref[i] * ref[i];
    }
    return sqrt(e / (s > 0 ? s : 1.0));
}

void *ipr_test_read_tensor(hid_t file, const char *name, hid_t type, int rank, hsize_t dims[8]) {
    int r = 0;
    void *data = NULL;
    if (ipr_h5_read_alloc(file, name, type, rank, &r, dims, &data) != IPR_OK) {
        ipr_error_print("test");
        fail_msg("cannot read %s", name);
    }
    return data;
}

void ipr_test_read_fixture(const char *path, float **x, hsize_t xd[8], float **t, hsize_t td[8], double **y,
                           hsize_t yd[8]) {
    hid_t f = ipr_h5_open_read(path);
    if (f < 0) {
        ipr_error_print("test");
        fail_msg("cannot open %s", path);
    }
    *x = ipr_test_read_tensor(f, "/input/x", H5T_NATIVE_FLOAT, 4, xd);
    *t = ipr_test_read_tensor(f, "/input/t", H5T_NATIVE_FLOAT, 4, td);
    if (y) *y = ipr_test_read_tensor(f, "/output/y", H5T_NATIVE_DOUBLE, 4, yd);
    H5Fclose(f);
}
