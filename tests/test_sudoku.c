/* test_sudoku.c: generated grids are valid and varied, clues agree with the solution and lie in their
 * difficulty range, the rendering uses the right digits, the scorer detects violations; MNIST loading. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ipr/bench.h"
#include "ipr/common.h"
#include "ipr/mnist.h"

static ipr_mnist_pool g_train, g_test;

static int setup(void **state) {
    (void)state;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/datasets/mnist", IPR_SOURCE_DIR);
    if (ipr_mnist_pool_load(dir, IPR_SPLIT_TRAIN, &g_train) != IPR_OK) return -1;
    if (ipr_mnist_pool_load(dir, IPR_SPLIT_TEST, &g_test) != IPR_OK) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    ipr_mnist_pool_free(&g_train);
    ipr_mnist_pool_free(&g_test);
    return 0;
}

static void test_shipped_pools(void **state) {
    (void)state;
    /* 10,000 digits of the npm package, split 80/20 per class */
    assert_int_equal(g_train.set.count + g_test.set.count, 10000);
    for (int d = 0; d < 10; ++d) {
        uint32_t tr = g_train.n_by_digit[d], te = g_test.n_by_digit[d];
        assert_true(tr > 600 && te > 150);
        assert_true(te * 5 <= tr + te + 4 && te * 5 + 4 >= tr + te); /* 20% up to rounding */
    }
}

static void test_grids_valid_and_varied(void **state) {
    (void)state;
    uint8_t first[81];
    int distinct_first_rows = 0;
    uint8_t rows[500][9];
    for (uint64_t i = 0; i < 500; ++i) {
        uint8_t g[81];
        ipr_sudoku_generate_grid(123, IPR_SPLIT_TEST, i, g);
        assert_true(ipr_sudoku_grid_valid(g));
        assert_int_equal(ipr_sudoku_distance(g), 0);
        if (i == 0) memcpy(first, g, 81);
        memcpy(rows[i], g, 9);
        int seen = 0;
        for (uint64_t j = 0; j < i && !seen; ++j) seen = memcmp(rows[j], g, 9) == 0;
        distinct_first_rows += !seen;
    }
    /* not one base grid relabelled: first rows (9! possibilities) are nearly all distinct */
    assert_true(distinct_first_rows > 490);
    /* same coordinates give the same grid; another split gives another */
    uint8_t again[81], other[81];
    ipr_sudoku_generate_grid(123, IPR_SPLIT_TEST, 0, again);
    ipr_sudoku_generate_grid(123, IPR_SPLIT_TRAIN, 0, other);
    assert_memory_equal(first, again, 81);
    assert_memory_not_equal(first, other, 81);
}

static void test_relabelled_structure_varies(void **state) {
    (void)state;
    /* Relabelling digits preserves "which cells hold equal digits"; compare that structure of the
     * first two rows across grids, which a relabelled base grid would keep identical. */
    int differing = 0;
    uint8_t g0[81];
    ipr_sudoku_generate_grid(7, IPR_SPLIT_TRAIN, 0, g0);
    for (uint64_t i = 1; i < 50; ++i) {
        uint8_t g[81];
        ipr_sudoku_generate_grid(7, IPR_SPLIT_TRAIN, i, g);
        /* where does the digit at (0,c) appear in row 1, in each grid? */
        int same = 1;
        for (int c = 0; c < 9; ++c) {
            int d0 = g0[c], d = g[c];
            int r0 = -1, r1 = -1;
            for (int k = 0; k < 9; ++k) {
                if (g0[9 + k] == d0) r0 = k;
                if (g[9 + k] == d) r1 = k;
            }
            same &= r0 == r1;
        }
        differing += !same;
    }
    assert_true(differing > 40);
}

static void test_instances_clues_and_render(void **state) {
    (void)state;
    ipr_sudoku_instance *inst = malloc(sizeof *inst);
    assert_non_null(inst);
    for (int diff = IPR_SUDOKU_EASY; diff <= IPR_SUDOKU_ANY; ++diff) {
        int lo, hi, minseen = 99, maxseen = -1;
        ipr_sudoku_difficulty_range((ipr_sudoku_difficulty)diff, &lo, &hi);
        for (uint64_t i = 0; i < 300; ++i) {
            const ipr_mnist_pool *pool = (i & 1) ? &g_test : &g_train;
            ipr_split split = (i & 1) ? IPR_SPLIT_TEST : IPR_SPLIT_TRAIN;
            assert_int_equal(ipr_sudoku_make(pool, 99, split, (ipr_sudoku_difficulty)diff, i, inst), IPR_OK);
            assert_true(ipr_sudoku_grid_valid(inst->solution));
            int n = 0;
            for (int c = 0; c < 81; ++c) n += inst->given[c];
            assert_int_equal(n, inst->num_given);
            assert_true(n >= lo && n <= hi);
            if (n < minseen) minseen = n;
            if (n > maxseen) maxseen = n;
            for (int c = 0; c < 81; ++c) {
                /* the cell shows an MNIST image of its solution digit, from its split's pool */
                uint32_t k = inst->digit_image[c];
                assert_true(k < pool->set.count);
                assert_int_equal(pool->set.labels[k], inst->solution[c]);
                const uint8_t *src = pool->set.images + (size_t)k * 784;
                int r0 = (c / 9) * 28, c0 = (c % 9) * 28;
                for (int y = 0; y < 28; ++y)
                    assert_memory_equal(inst->image + (size_t)(r0 + y) * 252 + c0, src + y * 28, 28);
            }
        }
        /* the whole range is used */
        assert_true(minseen <= lo + 2 && maxseen >= hi - 2);
    }
    free(inst);
}

static void test_distance_detects_violations(void **state) {
    (void)state;
    uint8_t g[81];
    ipr_sudoku_generate_grid(5, IPR_SPLIT_TEST, 3, g);
    assert_int_equal(ipr_sudoku_distance(g), 0);
    /* swapping two cells of one row keeps the row valid but breaks two columns and maybe boxes */
    uint8_t s[81];
    memcpy(s, g, 81);
    uint8_t t = s[0];
    s[0] = s[4], s[4] = t;
    assert_true(ipr_sudoku_distance(s) > 0);
    /* one wrong digit: its row, column and box each gain a duplicate and lose a digit: 6 */
    memcpy(s, g, 81);
    s[40] = (uint8_t)(s[40] % 9 + 1);
    assert_int_equal(ipr_sudoku_distance(s), 6);
    /* a cell read as 0 loses one digit in its row, column and box: 3 */
    memcpy(s, g, 81);
    s[0] = 0;
    assert_int_equal(ipr_sudoku_distance(s), 3);
    /* all zero: every unit misses all nine digits */
    memset(s, 0, 81);
    assert_int_equal(ipr_sudoku_distance(s), 27 * 9);
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static void test_mnist_errors(void **state) {
    (void)state;
    char dir[] = "/tmp/ipr-mnist-XXXXXX";
    assert_non_null(mkdtemp(dir));
    ipr_mnist_pool pool;
    char path[4200], lpath[4200];
    /* missing directory */
    assert_int_equal(ipr_mnist_pool_load("/nonexistent/mnist", IPR_SPLIT_TRAIN, &pool), IPR_ERR);
    assert_non_null(strstr(ipr_error_message(), "not found"));
    /* corrupt: wrong magic */
    uint8_t hdr[16] = {0, 0, 8, 4, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28};
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    write_file(path, hdr, 16);
    uint8_t lab[9] = {0, 0, 8, 1, 0, 0, 0, 1, 3};
    snprintf(lpath, sizeof lpath, "%s/train-labels-idx1-ubyte", dir);
    write_file(lpath, lab, 9);
    assert_int_equal(ipr_mnist_pool_load(dir, IPR_SPLIT_TRAIN, &pool), IPR_ERR);
    assert_non_null(strstr(ipr_error_message(), "magic"));
    /* truncated payload */
    hdr[3] = 3;
    write_file(path, hdr, 16);
    assert_int_equal(ipr_mnist_pool_load(dir, IPR_SPLIT_TRAIN, &pool), IPR_ERR);
    assert_non_null(strstr(ipr_error_message(), "truncated"));
    /* wrong image size */
    uint8_t *big = calloc(1, 16 + 784);
    memcpy(big, hdr, 16);
    big[11] = 27;
    write_file(path, big, 16 + 784);
    assert_int_equal(ipr_mnist_pool_load(dir, IPR_SPLIT_TRAIN, &pool), IPR_ERR);
    assert_non_null(strstr(ipr_error_message(), "28x28"));
    /* a complete file whose only digit is 3: no 1..9 pool */
    big[11] = 28;
    write_file(path, big, 16 + 784);
    assert_int_equal(ipr_mnist_pool_load(dir, IPR_SPLIT_TRAIN, &pool), IPR_ERR);
    assert_non_null(strstr(ipr_error_message(), "no image of digit"));
    /* label count disagreeing with the image count */
    lab[7] = 2;
    write_file(lpath, lab, 9);
    assert_int_equal(ipr_mnist_pool_load(dir, IPR_SPLIT_TRAIN, &pool), IPR_ERR);
    assert_non_null(strstr(ipr_error_message(), "labels"));
    free(big);
    unlink(path);
    unlink(lpath);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_pools),
        cmocka_unit_test(test_grids_valid_and_varied),
        cmocka_unit_test(test_relabelled_structure_varies),
        cmocka_unit_test(test_instances_clues_and_render),
        cmocka_unit_test(test_distance_detects_violations),
        cmocka_unit_test(test_mnist_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
