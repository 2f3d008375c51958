/* mnist.h: the MNIST IDX loader (gzip or raw) and the per-digit pools Sudoku cells are drawn from. */
#ifndef IPR_MNIST_H
#define IPR_MNIST_H

#include <stdint.h>

#include "ipr/bench.h"
#include "ipr/hash.h"

#ifdef __cplusplus
extern "C" {
#endif

#define IPR_MNIST_SIDE 28

typedef struct {
    uint32_t count;
    uint8_t *images; /* (count, 28, 28) uint8, 0 = black background */
    uint8_t *labels; /* (count) digits 0..9 */
} ipr_mnist_set;

/* Read an IDX image file (magic 0x00000803, 28x28) and its IDX label file (magic 0x00000801).
 * Either may be gzip-compressed or raw. Checks magic numbers, sizes, counts and label range. */
int ipr_mnist_load(const char *images_path, const char *labels_path, ipr_mnist_set *out);
void ipr_mnist_free(ipr_mnist_set *set);

/* The curation file of a directory: which items of each split the pools keep (datasets/mnist/README.md).
 * Text: "ipr-mnist-curation 1", "name NAME", "items SPLIT N" (the IDX files' item count), then one line
 * "SPLIT DIGIT COUNT INDEX..." per split and digit 0..9 (0-based IDX indices, strictly ascending, each
 * labelled DIGIT); '#' starts a comment line. Written by train/curate_digits.py. */
#define IPR_MNIST_CURATION_FILE "curation.txt"
#define IPR_MNIST_POOL_NAME_MAX 32
#define IPR_MNIST_POOL_ALL "all" /* the name of an uncurated pool (every digit of the IDX files) */

typedef struct ipr_mnist_pool {
    ipr_mnist_set set;        /* the whole IDX files, curated or not */
    uint32_t *by_digit[10];   /* indices into set, per digit, ascending: the pool order */
    uint32_t n_by_digit[10];
    char name[IPR_MNIST_POOL_NAME_MAX]; /* the curation's name (e.g. "curated-v1"), or IPR_MNIST_POOL_ALL */
    char sha256[IPR_SHA256_HEX]; /* the pool's content: SHA-256 (hex) of, per digit 0..9, its count as uint32
                                  * little-endian then the 784 bytes of each of its images in pool order */
} ipr_mnist_pool;

/* Load the pool of a split from DIR, using the standard MNIST file names:
 * train: train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz]
 * test:  t10k-images-idx3-ubyte[.gz]  + t10k-labels-idx1-ubyte[.gz]
 * so a directory holding the full MNIST release works as well as the shipped datasets/mnist. When DIR holds
 * IPR_MNIST_CURATION_FILE (the shipped datasets/mnist does) each digit's pool is restricted to the items it
 * lists; a file that does not parse or does not fit the IDX files (count, index range, label) is an error.
 * Without it every digit is kept and the name is IPR_MNIST_POOL_ALL. */
int ipr_mnist_pool_load(const char *dir, ipr_split split, ipr_mnist_pool *out);
void ipr_mnist_pool_free(ipr_mnist_pool *pool);

/* The directory used when a user names none: $IPR_MNIST_DIR, else the source tree's datasets/mnist. */
const char *ipr_mnist_default_dir(void);

#ifdef __cplusplus
}
#endif
#endif
