/* fuzz_h5.h: structure-aware fuzzing of HDF5 inputs. The fuzzer's bytes are decoded into edits (drop a
 * dataset or attribute, change a shape, dtype, attribute value or type, truncate data, write NaN/Inf) applied
 * through the HDF5 API to a copy of a real seed file held in memory (core driver, no backing store); the result
 * is what our loaders see when they open FUZZ_H5_PATH. Raw fuzzed bytes never reach libhdf5's parser. */
#ifndef IPR_FUZZ_H5_H
#define IPR_FUZZ_H5_H

#include <stddef.h>
#include <stdint.h>

/* The name our loaders are handed: H5Fis_hdf5 / H5Fopen of it open the current edited image (the harnesses link
 * with -Wl,--wrap=H5Fopen,--wrap=H5Fis_hdf5); every other name goes to the real functions. */
#define FUZZ_H5_PATH "fuzz-memory.h5"

typedef struct {
    uint8_t *bytes; /* the seed file's image */
    size_t size;
    int n_datasets;
    char (*datasets)[256]; /* paths of its datasets */
    int n_attrs;
    char (*attr_obj)[256]; /* object path and name of each attribute (root "/", groups, datasets) */
    char (*attr_name)[128];
} fuzz_h5_seed;

/* Errors of libhdf5 silenced (the edits fail often, on purpose). */
void fuzz_h5_init(void);
/* Read a seed file into memory and list its datasets and attributes. Exits the process on failure. */
void fuzz_h5_seed_load(fuzz_h5_seed *s, const char *path);
/* Copy the seed, apply the edits `data` decodes to, and publish the image as FUZZ_H5_PATH. Returns the number of
 * edits applied. */
int fuzz_h5_mutate(const fuzz_h5_seed *s, const uint8_t *data, size_t size);
/* Drop the published image. */
void fuzz_h5_release(void);

/* ---- fuzz_util.c: what several harnesses share ---- */

/* A file that lives in memory (memfd): its "/proc/self/fd/N" path, rewritten with `data` on each call. */
const char *fuzz_memfile(int slot, const uint8_t *data, size_t size);
/* A scratch directory (under /dev/shm when there is one, else $TMPDIR or /tmp), removed with its files (two
 * levels deep) at exit. */
const char *fuzz_scratch_dir(void);
/* Write `size` bytes to DIR/REL (exits the process on failure). */
void fuzz_write(const char *dir, const char *rel, const void *data, size_t size);
/* A random-weight U-Net checkpoint at path: the geometry of `make_test_checkpoint PATH 3 32 32 4 7 32 32` (the
 * pipeline tests' Even Pixels model), with a small time embedding and one block per level. */
void fuzz_write_unet(const char *path);
/* Cut `data` at the separator "\n--8<--\n" into at most `max` parts (pointers into data, not terminated). */
#define FUZZ_SEP "\n--8<--\n"
int fuzz_split(const uint8_t *data, size_t size, const uint8_t **part, size_t *len, int max);

#endif
