/* sudoku.c: MNIST Sudoku instances (spec 4.1): valid solved grids, difficulty clue masks, MNIST cell
 * renderings, and the rule scorer (distance 0 = valid). */
#include <string.h>

#include "ipr/bench.h"
#include "ipr/common.h"
#include "ipr/mnist.h"
#include "ipr/rng.h"

static const char *const k_diff_names[] = {"easy", "medium", "hard", "any"};

const char *ipr_sudoku_difficulty_name(ipr_sudoku_difficulty d) {
    return (unsigned)d <= IPR_SUDOKU_ANY ? k_diff_names[d] : "unknown";
}

int ipr_sudoku_difficulty_from_name(const char *name, ipr_sudoku_difficulty *out) {
    for (int i = 0; name && i <= IPR_SUDOKU_ANY; ++i)
        if (strcmp(name, k_diff_names[i]) == 0) {
            *out = (ipr_sudoku_difficulty)i;
            return IPR_OK;
        }
    ipr_error_set(__FILE__, __LINE__, "unknown Sudoku difficulty '%s' (expected easy, medium, hard or any)",
                  name ? name : "");
    return IPR_ERR;
}

/* spec 4.1 / 2.7: given-cell counts per difficulty, inclusive */
void ipr_sudoku_difficulty_range(ipr_sudoku_difficulty d, int *lo, int *hi) {
    switch (d) {
    case IPR_SUDOKU_EASY: *lo = 54, *hi = 80; break;
    case IPR_SUDOKU_MEDIUM: *lo = 27, *hi = 53; break;
    case IPR_SUDOKU_HARD: *lo = 0, *hi = 26; break;
    default: *lo = 0, *hi = 80; break;
    }
}

/* Randomized backtracking over cells in row-major order; each cell tries 1..9 in an order drawn from
 * the stream. Every valid grid is reachable, and the digit orders vary per cell, so grids are not one
 * base grid relabelled. An empty grid always completes, so this always returns 1. */
static int fill(ipr_rng *r, uint8_t g[81], uint16_t rows[9], uint16_t cols[9], uint16_t boxes[9], int cell) {
    if (cell == 81) return 1;
    int row = cell / 9, col = cell % 9, box = (row / 3) * 3 + col / 3;
    uint16_t used = rows[row] | cols[col] | boxes[box];
    uint32_t cand[9];
    uint32_t n = 0;
    for (uint32_t d = 1; d <= 9; ++d)
        if (!(used & (1u << d))) cand[n++] = d;
    ipr_rng_shuffle_u32(r, cand, n);
    for (uint32_t i = 0; i < n; ++i) {
        uint16_t bit = (uint16_t)(1u << cand[i]);
        g[cell] = (uint8_t)cand[i];
        rows[row] |= bit, cols[col] |= bit, boxes[box] |= bit;
        if (fill(r, g, rows, cols, boxes, cell + 1)) return 1;
        rows[row] &= (uint16_t)~bit, cols[col] &= (uint16_t)~bit, boxes[box] &= (uint16_t)~bit;
    }
    g[cell] = 0;
    return 0;
}

void ipr_sudoku_generate_grid(uint64_t seed, ipr_split split, uint64_t index, uint8_t grid[81]) {
    ipr_rng r;
    ipr_rng_init(&r, seed, IPR_RNG_SUDOKU_GRID, index, (uint32_t)split);
    uint16_t rows[9] = {0}, cols[9] = {0}, boxes[9] = {0};
    memset(grid, 0, 81);
    fill(&r, grid, rows, cols, boxes, 0);
}

/* Per unit (row, column or box) and digit: |count - 1|, summed. */
int ipr_sudoku_distance(const uint8_t digits[81]) {
    int dist = 0;
    for (int u = 0; u < 9; ++u) {
        int rc[10] = {0}, cc[10] = {0}, bc[10] = {0};
        for (int k = 0; k < 9; ++k) {
            uint8_t dr = digits[u * 9 + k];
            uint8_t dc = digits[k * 9 + u];
            uint8_t db = digits[((u / 3) * 3 + k / 3) * 9 + (u % 3) * 3 + k % 3];
            if (dr >= 1 && dr <= 9) rc[dr]++;
            if (dc >= 1 && dc <= 9) cc[dc]++;
            if (db >= 1 && db <= 9) bc[db]++;
        }
        for (int d = 1; d <= 9; ++d)
            dist += (rc[d] > 1 ? rc[d] - 1 : 1 - rc[d]) + (cc[d] > 1 ? cc[d] - 1 : 1 - cc[d]) +
                    (bc[d] > 1 ? bc[d] - 1 : 1 - bc[d]);
    }
    return dist;
}

int ipr_sudoku_grid_valid(const uint8_t grid[81]) { return ipr_sudoku_distance(grid) == 0; }

int ipr_sudoku_make(const ipr_mnist_pool *pool, uint64_t seed, ipr_split split,
                    ipr_sudoku_difficulty difficulty, uint64_t index, ipr_sudoku_instance *out) {
    IPR_CHECK(pool && pool->set.images, "Sudoku needs a loaded MNIST pool");
    IPR_CHECK((unsigned)difficulty <= IPR_SUDOKU_ANY, "invalid Sudoku difficulty %d", (int)difficulty);
    memset(out, 0, sizeof *out);
    ipr_sudoku_generate_grid(seed, split, index, out->solution);

    /* clues: count uniform in the difficulty's range, positions a uniform subset */
    int lo, hi;
    ipr_sudoku_difficulty_range(difficulty, &lo, &hi);
    ipr_rng r;
    ipr_rng_init(&r, seed, IPR_RNG_SUDOKU_CLUES, index, (uint32_t)split);
    out->num_given = ipr_rng_range(&r, lo, hi);
    uint32_t cells[81];
    for (uint32_t i = 0; i < 81; ++i) cells[i] = i;
    ipr_rng_shuffle_u32(&r, cells, 81);
    for (int i = 0; i < out->num_given; ++i) out->given[cells[i]] = 1;

    /* cell images: uniform from the pool of the cell's digit */
    ipr_rng_init(&r, seed, IPR_RNG_SUDOKU_DIGITS, index, (uint32_t)split);
    for (int c = 0; c < 81; ++c) {
        int d = out->solution[c];
        IPR_CHECK(pool->n_by_digit[d] > 0, "MNIST pool has no image of digit %d", d);
        uint32_t pick = pool->by_digit[d][ipr_rng_below(&r, pool->n_by_digit[d])];
        out->digit_image[c] = pick;
        const uint8_t *src = pool->set.images + (size_t)pick * 784;
        int r0 = (c / 9) * IPR_SUDOKU_CELL, c0 = (c % 9) * IPR_SUDOKU_CELL;
        for (int y = 0; y < IPR_SUDOKU_CELL; ++y)
            memcpy(out->image + (size_t)(r0 + y) * IPR_SUDOKU_SIDE + c0, src + y * IPR_SUDOKU_CELL,
                   IPR_SUDOKU_CELL);
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}
