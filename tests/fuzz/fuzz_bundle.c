/* fuzz_bundle.c: `ipr verify FILE` on a bundle (pl_bundle_verify: libarchive's readers, zlib's gzip check, every
 * member re-hashed against MANIFEST.sha256, manifest.json, then results/results.h5). The input is the archive's
 * bytes, in memory. A results.h5 member reaches libhdf5 only when its SHA-256 is the one MANIFEST.sha256 lists,
 * so the fuzzer's bytes never do (their hash cannot match). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_h5.h"
#include "ipr/common.h"
#include "pipeline/bundle.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_h5_init();
    /* the extracted results.h5 goes to $TMPDIR: keep it in memory too */
    setenv("TMPDIR", fuzz_scratch_dir(), 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_memfile(0, data, size);
    int problems = 0;
    (void)pl_bundle_verify(path, &problems);
    ipr_error_clear();
    return 0;
}
