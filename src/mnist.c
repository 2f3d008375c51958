/* mnist.c: IDX reader (through zlib, which reads gzip and raw files alike) and per-digit pools, restricted to a
 * curation file's items where the directory has one. IDX: big-endian magic (0x0803 images, 0x0801 labels),
 * big-endian dims, then uint8 payload. */
#define _POSIX_C_SOURCE 200809L
#include "ipr/mnist.h"

#include <errno.h>
#include <limits.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
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

/* n records of `size` bytes into a buffer that grows with what the file holds (doubling from 64 Ki records): a header
 * may claim up to 10^7 images (7.8 GB) while the file holds a few bytes, and that claim must not be an allocation
 * (tests/fuzz/corpus/fuzz_mnist/crash-count-1e7). The error names what was read. */
static int read_records(gzFile gz, uint8_t **buf, uint32_t n, size_t size, const char *path, const char *what) {
    size_t have = 0, cap = 0;
    uint8_t *p = NULL;
    while (have < n) {
        if (have == cap) {
            cap = cap ? 2 * cap : 65536;
            if (cap > n) cap = n;
            uint8_t *q = realloc(p, cap * size);
            if (!q) {
                free(p);
                ipr_error_set(__FILE__, __LINE__, "out of memory reading %s (%zu records)", path, cap);
                return IPR_ERR;
            }
            p = q;
        }
        if (read_exact(gz, p + have * size, (cap - have) * size, path, what) != IPR_OK) {
            free(p);
            return IPR_ERR;
        }
        have = cap;
    }
    *buf = p;
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
    IPR_TRY(read_records(gi, &out->images, n, 784, images_path, "the pixels"));
    IPR_TRY(expect_eof(gi, images_path));
    IPR_TRY(read_records(gl, &out->labels, n, 1, labels_path, "the labels"));
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

/* The pool's content hash (mnist.h): per digit, its count (uint32 LE) then its images in pool order. */
static void pool_sha256(ipr_mnist_pool *p) {
    static const char hexd[] = "0123456789abcdef";
    struct sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];
    sha256_init(&ctx);
    for (int d = 0; d < 10; ++d) {
        const uint32_t n = p->n_by_digit[d];
        const uint8_t le[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
        sha256_update(&ctx, 4, le);
        for (uint32_t k = 0; k < n; ++k)
            sha256_update(&ctx, 784, p->set.images + (size_t)p->by_digit[d][k] * 784);
    }
    sha256_digest(&ctx, SHA256_DIGEST_SIZE, digest);
    for (int i = 0; i < SHA256_DIGEST_SIZE; ++i) {
        p->sha256[2 * i] = hexd[digest[i] >> 4];
        p->sha256[2 * i + 1] = hexd[digest[i] & 15];
    }
    p->sha256[64] = '\0';
}

/* Every digit of the IDX files, in index order. */
static int pool_all(ipr_mnist_pool *p) {
    for (uint32_t i = 0; i < p->set.count; ++i) p->n_by_digit[p->set.labels[i]]++;
    for (int d = 0; d < 10; ++d) {
        p->by_digit[d] = ipr_malloc((size_t)(p->n_by_digit[d] ? p->n_by_digit[d] : 1) * sizeof(uint32_t),
                                    "MNIST pool index");
        if (!p->by_digit[d]) return IPR_ERR;
        p->n_by_digit[d] = 0;
    }
    for (uint32_t i = 0; i < p->set.count; ++i) {
        int d = p->set.labels[i];
        p->by_digit[d][p->n_by_digit[d]++] = i;
    }
    snprintf(p->name, sizeof p->name, "%s", IPR_MNIST_POOL_ALL);
    return IPR_OK;
}

/* A decimal integer token (no sign, no trailing characters) at most `max`. */
static int parse_uint(const char *tok, unsigned long max, unsigned long *out) {
    if (!tok || *tok < '0' || *tok > '9') return IPR_ERR;
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(tok, &end, 10);
    if (errno != 0 || *end != '\0' || v > max) return IPR_ERR;
    *out = v;
    return IPR_OK;
}

static int name_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= IPR_MNIST_POOL_NAME_MAX || strcmp(s, IPR_MNIST_POOL_ALL) == 0) return 0;
    for (size_t i = 0; i < n; ++i)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '-' || s[i] == '_' || s[i] == '.'))
            return 0;
    return 1;
}

/* Restrict the pool of `split` to the items the curation file lists (format: mnist.h). The other split's
 * lines are checked for form only (its IDX files are not loaded). */
static int pool_curated(const char *path, ipr_split split, ipr_mnist_pool *p) {
    FILE *fp = NULL;
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int have_magic = 0, have_items[2] = {0, 0}, have_digit[2][10] = {{0}};
    unsigned long items[2] = {0, 0};
    const char *want = ipr_split_name(split);
    IPR_TRY_PTR(fp = ipr_fopen_read(path, "r"));
    for (;;) {
        errno = 0;
        ssize_t got = getline(&line, &cap, fp);
        if (got < 0) {
            IPR_IO(!ferror(fp), path);
            break;
        }
        ++lineno;
        if (got > 0 && line[got - 1] == '\n') line[--got] = '\0';
        if (line[0] == '#' || line[strspn(line, " \t")] == '\0') continue;
        char *save = NULL;
        const char *key = strtok_r(line, " \t", &save);
        if (!have_magic) {
            const char *ver = strtok_r(NULL, " \t", &save);
            IPR_CHECK(strcmp(key, "ipr-mnist-curation") == 0 && ver,
                      "%s:%ld: not an MNIST curation file (expected the header 'ipr-mnist-curation 1')", path, lineno);
            IPR_CHECK(strcmp(ver, "1") == 0 && !strtok_r(NULL, " \t", &save),
                      "%s:%ld: curation format version '%s' is not supported (this build reads 1)", path, lineno, ver);
            have_magic = 1;
        } else if (strcmp(key, "name") == 0) {
            const char *nm = strtok_r(NULL, " \t", &save);
            IPR_CHECK(!p->name[0], "%s:%ld: a second 'name' line", path, lineno);
            IPR_CHECK(nm && name_ok(nm) && !strtok_r(NULL, " \t", &save),
                      "%s:%ld: bad name (1-%d characters of A-Z a-z 0-9 . _ -, not '%s')", path, lineno,
                      IPR_MNIST_POOL_NAME_MAX - 1, IPR_MNIST_POOL_ALL);
            snprintf(p->name, sizeof p->name, "%s", nm);
        } else if (strcmp(key, "items") == 0) {
            const char *sp = strtok_r(NULL, " \t", &save);
            ipr_split s;
            unsigned long n = 0;
            IPR_CHECK(sp && ipr_split_from_name(sp, &s) == IPR_OK &&
                          parse_uint(strtok_r(NULL, " \t", &save), 10000000ul, &n) == IPR_OK &&
                          !strtok_r(NULL, " \t", &save),
                      "%s:%ld: expected 'items train|test COUNT'", path, lineno);
            IPR_CHECK(!have_items[s], "%s:%ld: a second 'items %s' line", path, lineno, sp);
            have_items[s] = 1;
            items[s] = n;
            IPR_CHECK(s != split || n == p->set.count,
                      "%s:%ld: the curation was made for %lu %s items, but the IDX files hold %u (another MNIST "
                      "directory? remove %s to use every digit)",
                      path, lineno, n, sp, p->set.count, IPR_MNIST_CURATION_FILE);
        } else {
            ipr_split s;
            IPR_CHECK(ipr_split_from_name(key, &s) == IPR_OK,
                      "%s:%ld: unknown line '%s' (expected name, items, train or test)", path, lineno, key);
            IPR_CHECK(p->name[0] && have_items[s], "%s:%ld: the 'name' and 'items %s' lines must come first", path,
                      lineno, key);
            unsigned long d = 0, n = 0;
            IPR_CHECK(parse_uint(strtok_r(NULL, " \t", &save), 9, &d) == IPR_OK &&
                          parse_uint(strtok_r(NULL, " \t", &save), items[s], &n) == IPR_OK,
                      "%s:%ld: expected '%s DIGIT COUNT INDEX...' with DIGIT 0-9 and COUNT at most %lu", path, lineno,
                      key, items[s]);
            IPR_CHECK(!have_digit[s][d], "%s:%ld: a second line for %s digit %lu", path, lineno, key, d);
            have_digit[s][d] = 1;
            uint32_t *idx = NULL;
            if (s == split) {
                p->by_digit[d] = idx = ipr_malloc((size_t)(n ? n : 1) * sizeof(uint32_t), "MNIST pool index");
                if (!idx) goto fail;
            }
            unsigned long k = 0, prev = 0;
            for (const char *tok; (tok = strtok_r(NULL, " \t", &save)) != NULL; ++k) {
                unsigned long v = 0;
                IPR_CHECK(k < n, "%s:%ld: %s digit %lu lists more than the %lu indices it declares", path, lineno, key,
                          d, n);
                IPR_CHECK(parse_uint(tok, ULONG_MAX, &v) == IPR_OK, "%s:%ld: index '%s' is not a number", path,
                          lineno, tok);
                IPR_CHECK(v < items[s], "%s:%ld: index %lu is out of range (the %s IDX files hold %lu items)", path,
                          lineno, v, key, items[s]);
                IPR_CHECK(k == 0 || v > prev, "%s:%ld: index %lu after %lu: indices must be strictly ascending", path,
                          lineno, v, prev);
                prev = v;
                if (idx) {
                    IPR_CHECK(p->set.labels[v] == d, "%s:%ld: item %lu is labelled %u in the IDX file, not %lu", path,
                              lineno, v, p->set.labels[v], d);
                    idx[k] = (uint32_t)v;
                }
            }
            IPR_CHECK(k == n, "%s:%ld: %s digit %lu lists %lu indices, not the %lu it declares", path, lineno, key, d,
                      k, n);
            if (idx) p->n_by_digit[d] = (uint32_t)n;
        }
    }
    IPR_CHECK(have_magic, "%s: empty curation file", path);
    IPR_CHECK(p->name[0], "%s: no 'name' line", path);
    IPR_CHECK(have_items[split], "%s: no 'items %s' line", path, want);
    for (int d = 0; d < 10; ++d) IPR_CHECK(have_digit[split][d], "%s: no line for %s digit %d", path, want, d);
    free(line);
    fclose(fp);
    return IPR_OK;
fail:
    free(line);
    if (fp) fclose(fp);
    return IPR_ERR;
}

int ipr_mnist_pool_load(const char *dir, ipr_split split, ipr_mnist_pool *out) {
    memset(out, 0, sizeof *out);
    char ipath[4096], lpath[4096], cpath[4096];
    const char *prefix = split == IPR_SPLIT_TRAIN ? "train" : "t10k";
    char iname[64], lname[64];
    snprintf(iname, sizeof iname, "%s-images-idx3-ubyte", prefix);
    snprintf(lname, sizeof lname, "%s-labels-idx1-ubyte", prefix);
    IPR_TRY(find_file(ipath, sizeof ipath, dir, iname));
    IPR_TRY(find_file(lpath, sizeof lpath, dir, lname));
    IPR_TRY(ipr_mnist_load(ipath, lpath, &out->set));
    snprintf(cpath, sizeof cpath, "%s/%s", dir, IPR_MNIST_CURATION_FILE);
    struct stat st;
    if (stat(cpath, &st) == 0) {
        if (pool_curated(cpath, split, out) != IPR_OK) {
            ipr_error_context("MNIST %s pool of %s", ipr_split_name(split), dir);
            goto fail;
        }
    } else {
        IPR_IO(errno == ENOENT, cpath);
        IPR_TRY(pool_all(out));
    }
    for (int d = 1; d <= 9; ++d)
        IPR_CHECK(out->n_by_digit[d] > 0, "%s: no image of digit %d (a Sudoku needs 1..9)", ipath, d);
    pool_sha256(out);
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
