/* bench.c: benchmark and split names shared by the CLI, the pipeline and the Python tools. */
#include <string.h>

#include "ipr/bench.h"
#include "ipr/common.h"

static const char *const k_bench_names[IPR_BENCH_COUNT] = {"sudoku", "even_pixels", "counting_polygons"};

const char *ipr_bench_name(ipr_bench_kind kind) {
    return (unsigned)kind < IPR_BENCH_COUNT ? k_bench_names[kind] : "unknown";
}

int ipr_bench_from_name(const char *name, ipr_bench_kind *out) {
    if (name) {
        if (strcmp(name, "mnist_sudoku") == 0) {
            *out = IPR_BENCH_SUDOKU;
            return IPR_OK;
        }
        for (int i = 0; i < IPR_BENCH_COUNT; ++i)
            if (strcmp(name, k_bench_names[i]) == 0) {
                *out = (ipr_bench_kind)i;
                return IPR_OK;
            }
    }
    ipr_error_set(__FILE__, __LINE__,
                  "unknown benchmark '%s' (expected sudoku, even_pixels or counting_polygons)",
                  name ? name : "");
    return IPR_ERR;
}

const char *ipr_split_name(ipr_split split) { return split == IPR_SPLIT_TRAIN ? "train" : "test"; }

int ipr_split_from_name(const char *name, ipr_split *out) {
    if (name && strcmp(name, "train") == 0) {
        *out = IPR_SPLIT_TRAIN;
        return IPR_OK;
    }
    if (name && strcmp(name, "test") == 0) {
        *out = IPR_SPLIT_TEST;
        return IPR_OK;
    }
    ipr_error_set(__FILE__, __LINE__, "unknown split '%s' (expected train or test)", name ? name : "");
    return IPR_ERR;
}
