/* mnist.h: the MNIST IDX loader (gzip or raw) and the per-digit pools Sudoku cells are drawn from. */
#ifndef IPR_MNIST_H
#define IPR_MNIST_H

#include <stdint.h>

#include "ipr/bench.h"

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

typedef struct ipr_mnist_pool {
    ipr_mnist_set set;
    uint32_t *by_digit[10];   /* indices into set, per digit */
    uint32_t n_by_digit[10];
} ipr_mnist_pool;

/* Load the pool of a split from DIR, using the standard MNIST file names:
 * train: train-images-idx3-ubyte[.gz] + train-labels-idx1-ubyte[.gz]
 * test:  t10k-images-idx3-ubyte[.gz]  + t10k-labels-idx1-ubyte[.gz]
 * so a directory holding the full MNIST release works as well as the shipped datasets/mnist. */
int ipr_mnist_pool_load(const char *dir, ipr_split split, ipr_mnist_pool *out);
void ipr_mnist_pool_free(ipr_mnist_pool *pool);

/* The directory used when a user names none: $IPR_MNIST_DIR, else the source tree's datasets/mnist. */
const char *ipr_mnist_default_dir(void);

#ifdef __cplusplus
}
#endif
#endif
