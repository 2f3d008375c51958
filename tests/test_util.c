/* test_util.c: helpers the cmocka tests share: a scratch directory per test program. */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>

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
