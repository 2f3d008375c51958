/* test_util.h: helpers the cmocka tests share (linked into each by ipr_add_ctest).
 * A scratch directory per test program, under $TMPDIR (default /tmp), removed at teardown. */
#ifndef IPR_TEST_UTIL_H
#define IPR_TEST_UTIL_H

#include <stddef.h>

/* dir (cap bytes) = a new directory "$TMPDIR/NAME.XXXXXX". 0 on success, -1 on failure. */
int ipr_test_tmpdir(char *dir, size_t cap, const char *name);
/* Remove dir and everything below it. 0 on success, -1 on failure. */
int ipr_test_rmtree(const char *dir);

#endif
