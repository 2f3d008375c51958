/* fuzz_puzzles.c: the Sudoku puzzle-file reader (src/bench/instances.c), text and CSV, as a run's
 * `instances.file` or `ipr sample --instances-file` reads it: open and check every row, then render the kept rows
 * with MNIST test digits as the benchmark shows them. The first byte picks the format (auto, text, csv) and how
 * many rows to keep; the rest is the file. Auto detection sends a file with the HDF5 signature to the datagen
 * reader, so such inputs are read as text or CSV only: raw bytes never reach libhdf5. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_h5.h"
#include "ipr/bench.h"
#include "ipr/common.h"
#include "ipr/instances.h"
#include "ipr/mnist.h"

static ipr_mnist_pool g_pool;
static int g_have_pool;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_h5_init();
    g_have_pool = ipr_mnist_pool_load(IPR_SOURCE_DIR "/datasets/mnist", IPR_SPLIT_TEST, &g_pool) == IPR_OK;
    ipr_error_clear();
    /* the harness's own check: two good puzzles open as two rows */
    static const char good[] = "530070000600195000098000060800060003400803001700020006060000280000419005000080079\n"
                               "..3.2.6..9..3.5..1..18.64....81.29..7.......8..67.82....26.95..8..2.3..9..5.1.3..\n";
    ipr_instance_file *f = ipr_instance_file_open(fuzz_memfile(0, (const uint8_t *)good, sizeof good - 1),
                                                  IPR_INSTANCES_TEXT, IPR_BENCH_SUDOKU, 0, 2);
    if (!f || ipr_instance_file_rows(f) != 2 || !g_have_pool) {
        ipr_error_print("fuzz: good puzzles (or the MNIST test pool) do not load");
        abort();
    }
    ipr_instance_file_free(f);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const uint8_t hdf5_sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    ipr_instances_format fmt = (ipr_instances_format)(data[0] % 3); /* AUTO, TEXT, CSV */
    const uint64_t first = (data[0] >> 2) & 3, keep = (data[0] >> 4) & 7;
    data++, size--;
    if (fmt == IPR_INSTANCES_AUTO && size >= 8 && memcmp(data, hdf5_sig, 8) == 0) fmt = IPR_INSTANCES_TEXT;
    const char *path = fuzz_memfile(0, data, size);
    ipr_instance_file *f = ipr_instance_file_open(path, fmt, IPR_BENCH_SUDOKU, first, keep);
    if (f) {
        uint64_t k0 = 0, kn = 0, row = 0, line = 0;
        ipr_instance_file_kept(f, &k0, &kn);
        (void)ipr_instance_file_rows(f);
        (void)ipr_instance_file_solved(f);
        (void)ipr_instance_file_first_unsolved(f, &row, &line);
        (void)ipr_instance_file_mean_given(f);
        for (uint64_t r = k0; g_have_pool && r < k0 + kn; ++r) {
            ipr_sudoku_instance inst;
            int solved = 0;
            (void)ipr_instance_file_sudoku(f, &g_pool, r, &inst, &solved);
        }
        ipr_instance_file_free(f);
    }
    ipr_error_clear();
    return 0;
}
