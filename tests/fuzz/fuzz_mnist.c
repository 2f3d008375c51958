/* fuzz_mnist.c: the MNIST IDX reader and the curation file of a pool directory, as a Sudoku run loads them
 * (ipr_mnist_pool_load of the test split). The input is cut at "\n--8<--\n" lines into the IDX image file, the
 * IDX label file and, when there is a third part, curation.txt (either IDX file may also be gzip: zlib reads both). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_h5.h"
#include "ipr/common.h"
#include "ipr/mnist.h"

static const char *g_dir;

/* write the parts and load the pool: 1 if it loaded */
static int load(const uint8_t *data, size_t size) {
    const uint8_t *part[3];
    size_t len[3];
    int n = fuzz_split(data, size, part, len, 3);
    if (n < 2) return 0;
    int loaded = 0;
    fuzz_write(g_dir, "t10k-images-idx3-ubyte", part[0], len[0]);
    fuzz_write(g_dir, "t10k-labels-idx1-ubyte", part[1], len[1]);
    char cur[700];
    snprintf(cur, sizeof cur, "%s/%s", g_dir, IPR_MNIST_CURATION_FILE);
    if (n == 3)
        fuzz_write(g_dir, IPR_MNIST_CURATION_FILE, part[2], len[2]);
    else
        unlink(cur);
    ipr_mnist_pool pool;
    if (ipr_mnist_pool_load(g_dir, IPR_SPLIT_TEST, &pool) == IPR_OK) {
        loaded = 1;
        /* what a Sudoku instance reads: an image of each digit the pool holds */
        unsigned sum = 0;
        for (int d = 0; d < 10; ++d)
            for (uint32_t k = 0; k < pool.n_by_digit[d]; ++k) sum += pool.set.images[(size_t)pool.by_digit[d][k] * 784];
        (void)sum;
        ipr_mnist_pool_free(&pool);
    }
    ipr_error_clear();
    return loaded;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    g_dir = fuzz_scratch_dir();
    /* the harness's own check: ten 28x28 images and their labels (one of each digit) load as a pool */
    static uint8_t good[16 + 7840 + sizeof FUZZ_SEP - 1 + 18];
    const uint8_t hdr[16] = {0, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28};
    const uint8_t lab[8] = {0, 0, 8, 1, 0, 0, 0, 10};
    size_t n = 0;
    memcpy(good, hdr, 16), n = 16 + 7840;
    memcpy(good + n, FUZZ_SEP, sizeof FUZZ_SEP - 1), n += sizeof FUZZ_SEP - 1;
    memcpy(good + n, lab, 8), n += 8;
    for (int d = 0; d < 10; ++d) good[n++] = (uint8_t)d;
    if (!load(good, n)) {
        ipr_error_print("fuzz: a good IDX pair does not load");
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    (void)load(data, size);
    return 0;
}
