/* mnist.c: IDX reader (through zlib, which reads gzip and raw files alike) and per-digit pools.
 * IDX: big-endian magic (0x0803 images, 0x0801 labels), big-endian dims, then uint8 payload. */
#define _POSIX_C_SOURCE 200809L
#include "ipr/mnist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "ipr/common.h"

static int read_exact(gzFile gz, void *buf, size_t n, const char *path, const char *what) {
    size_t done = 0;
    while (done < n) {
        unsigned chunk = (unsigned)((n - done) > (1u << 30) ? (1u << 30) : (n - done));
        int got = gzread(gz, (char *)buf + done, chunk);
        if (got <= 0) {
            int zerr = 0;
            const char *msg = gzerror(gz, &zerr);
            ipr_error_set(__FILE__, __LINE__, "%s: truncated or corrupt while reading %s (%s)", path, what,
                          zerr != Z_OK && msg && *msg ? msg : "unexpected end of file");
            return IPR_ERR;
        }
        done += (size_t)got;
    }
    return IPR_OK;
}

static uint32_t be32(const uint8_t b[4]) {
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

static gzFile open_gz(const char *path) {
    gzFile gz = gzopen(path, "rb");
    if (!gz) ipr_errno_set(__FILE__, __LINE__, path);
    return gz;
}

/* After the payload the file must end: trailing bytes mean the header lied about the count. */
static int expect_eof(gzFile gz, const char *path) {
    char extra;
    int got = gzread(gz, &extra, 1);
    if (got != 0) {
        ipr_error_set(__FILE__, __LINE__, "%s: trailing data after the declared payload (corrupt header?)",
                      path);
        return IPR_ERR;
    }
    int zerr = 0;
    const char *msg = gzerror(gz, &zerr);
    if (zerr != Z_OK && zerr != Z_STREAM_END) {
        ipr_error_set(__FILE__, __LINE__, "%s: corrupt gzip stream (%s)", path, msg);
        return IPR_ERR;
    }
    return IPR_OK;
}

int ipr_mnist_load(const char *images_path, const char *labels_path, ipr_mnist_set *out) {
    gzFile gi = NULL, gl = NULL;
    memset(out, 0, sizeof *out);
    uint8_t hdr[16];

    gi = open_gz(images_path);
    if (!gi) goto fail;
    IPR_TRY(read_exact(gi, hdr, 16, images_path, "the IDX header"));
    IPR_CHECK(be32(hdr) == 0x00000803u, "%s: not an IDX image file (magic 0x%08x, expected 0x00000803)",
              images_path, be32(hdr));
    uint32_t n = be32(hdr + 4), rows = be32(hdr + 8), cols = be32(hdr + 12);
    IPR_CHECK(rows == IPR_MNIST_SIDE && cols == IPR_MNIST_SIDE, "%s: images are %ux%u, expected 28x28",
              images_path, rows, cols);
    IPR_CHECK(n > 0 && n <= 10000000u, "%s: implausible image count %u", images_path, n);

    gl = open_gz(labels_path);
    if (!gl) goto fail;
    IPR_TRY(read_exact(gl, hdr, 8, labels_path, "the IDX header"));
    IPR_CHECK(be32(hdr) == 0x00000801u, "%s: not an IDX label file (magic 0x%08x, expected 0x00000801)",
              labels_path, be32(hdr));
    IPR_CHECK(be32(hdr + 4) == n, "%s holds %u labels but %s holds %u images", labels_path, be32(hdr + 4),
              images_path, n);

    out->count = n;
    out->images = ipr_malloc((size_t)n * 784, "MNIST images");
    out->labels = ipr_malloc(n, "MNIST labels");
    if (!out->images || !out->labels) goto fail;
    IPR_TRY(read_exact(gi, out->images, (size_t)n * 784, images_path, "the pixels"));
    IPR_TRY(expect_eof(gi, images_path));
    IPR_TRY(read_exact(gl, out->labels, n, labels_path, "the labels"));
    IPR_TRY(expect_eof(gl, labels_path));
    for (uint32_t i = 0; i < n; ++i)
        IPR_CHECK(out->labels[i] <= 9, "%s: label %u of item %u is not a digit", labels_path,
                  out->labels[i], i);
    gzclose(gi);
    gzclose(gl);
    return IPR_OK;
fail:
    if (gi) gzclose(gi);
    if (gl) gzclose(gl);
    ipr_mnist_free(out);
    return IPR_ERR;
}

void ipr_mnist_free(ipr_mnist_set *set) {
    free(set->images);
    free(set->labels);
    memset(set, 0, sizeof *set);
}

/* Prefer NAME.gz, fall back to the raw NAME. */
static int find_file(char *out, size_t cap, const char *dir, const char *name) {
    struct stat st;
    snprintf(out, cap, "%s/%s.gz", dir, name);
    if (stat(out, &st) == 0) return IPR_OK;
    snprintf(out, cap, "%s/%s", dir, name);
    if (stat(out, &st) == 0) return IPR_OK;
    ipr_error_set(__FILE__, __LINE__, "MNIST file %s/%s(.gz) not found", dir, name);
    return IPR_ERR;
}

int ipr_mnist_pool_load(const char *dir, ipr_split split, ipr_mnist_pool *out) {
    memset(out, 0, sizeof *out);
    char ipath[4096], lpath[4096];
    const char *prefix = split == IPR_SPLIT_TRAIN ? "train" : "t10k";
    char iname[64], lname[64];
    snprintf(iname, sizeof iname, "%s-images-idx3-ubyte", prefix);
    snprintf(lname, sizeof lname, "%s-labels-idx1-ubyte", prefix);
    IPR_TRY(find_file(ipath, sizeof ipath, dir, iname));
    IPR_TRY(find_file(lpath, sizeof lpath, dir, lname));
    IPR_TRY(ipr_mnist_load(ipath, lpath, &out->set));
    for (uint32_t i = 0; i < out->set.count; ++i) out->n_by_digit[out->set.labels[i]]++;
    for (int d = 0; d < 10; ++d) {
        out->by_digit[d] = ipr_malloc((size_t)(out->n_by_digit[d] ? out->n_by_digit[d] : 1) * sizeof(uint32_t),
                                      "MNIST pool index");
        if (!out->by_digit[d]) goto fail;
        out->n_by_digit[d] = 0;
    }
    for (uint32_t i = 0; i < out->set.count; ++i) {
        int d = out->set.labels[i];
        out->by_digit[d][out->n_by_digit[d]++] = i;
    }
    for (int d = 1; d <= 9; ++d)
        IPR_CHECK(out->n_by_digit[d] > 0, "%s: no image of digit %d (a Sudoku needs 1..9)", ipath, d);
    return IPR_OK;
fail:
    ipr_mnist_pool_free(out);
    return IPR_ERR;
}

void ipr_mnist_pool_free(ipr_mnist_pool *pool) {
    ipr_mnist_free(&pool->set);
    for (int d = 0; d < 10; ++d) free(pool->by_digit[d]);
    memset(pool, 0, sizeof *pool);
}

const char *ipr_mnist_default_dir(void) {
    const char *env = getenv("IPR_MNIST_DIR");
    if (env && *env) return env;
#ifdef IPR_SOURCE_DIR
    return IPR_SOURCE_DIR "/datasets/mnist";
#else
    return "datasets/mnist";
#endif
}
