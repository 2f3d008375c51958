/* rng.h: the counter-based generator (Philox4x32-10) behind every random draw in ipr.
 * A stream is keyed by (run seed) and addressed by (purpose, instance, step), never by batch slot or rank. */
#ifndef IPR_RNG_H
#define IPR_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a stream is for. Values are part of the on-disk reproducibility contract: never renumber. */
typedef enum {
    IPR_RNG_SUDOKU_GRID = 1,     /* solved grid of a Sudoku instance */
    IPR_RNG_SUDOKU_CLUES = 2,    /* clue count and clue positions */
    IPR_RNG_SUDOKU_DIGITS = 3,   /* which MNIST image renders each cell */
    IPR_RNG_EVEN_PIXELS = 4,     /* hue offset and the 512-pixel permutation */
    IPR_RNG_POLY_LAYOUT = 5,     /* counts, vertices, circles, rotations */
    IPR_RNG_POLY_BACKGROUND = 6, /* procedural background */
    IPR_RNG_SUDOKU_FILE_DIGITS = 7, /* puzzle files: the MNIST image of a cell (key = file hash, step = cell) */
    IPR_RNG_INIT_NOISE = 32,     /* initial N(0,1) noise of a generation */
    IPR_RNG_STEP_NOISE = 33,     /* per-step transition noise (step = network pass) */
    IPR_RNG_IPR_SUBSET = 34,     /* region subset of an IPR iteration (step = iteration) */
    IPR_RNG_IPR_NOISE = 35,      /* fresh noise of the re-noised regions (step = iteration) */
    IPR_RNG_CORRUPT_SWAPS = 36,  /* correction mode: cell swaps */
    IPR_RNG_TIE_BREAK = 37,      /* random tie breaks in graph order */
    IPR_RNG_ORDER = 38,          /* random region order */
} ipr_rng_purpose;

/* A sequential stream over consecutive Philox blocks. */
typedef struct {
    uint32_t key[2]; /* run seed */
    uint32_t ctr[4]; /* [block, step, instance lo, purpose<<16 | instance hi] */
    uint32_t buf[4]; /* current block's output */
    unsigned pos;    /* next unread word of buf (4 = exhausted) */
    int has_spare;   /* Box-Muller's second normal is kept */
    double spare;
} ipr_rng;

/* One Philox4x32-10 block: out = philox(ctr, key). */
void ipr_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* instance must fit in 48 bits. */
void ipr_rng_init(ipr_rng *r, uint64_t seed, uint32_t purpose, uint64_t instance, uint32_t step);
uint32_t ipr_rng_u32(ipr_rng *r);
uint64_t ipr_rng_u64(ipr_rng *r);
/* Uniform double in [0, 1) with 53 random bits. */
double ipr_rng_uniform(ipr_rng *r);
/* Uniform integer in [0, n), unbiased (rejection). n >= 1. */
uint32_t ipr_rng_below(ipr_rng *r, uint32_t n);
/* Uniform integer in [lo, hi] inclusive. */
int32_t ipr_rng_range(ipr_rng *r, int32_t lo, int32_t hi);
/* Standard normal (Box-Muller, double precision). */
double ipr_rng_normal(ipr_rng *r);
/* In-place uniform shuffle (Fisher-Yates from the last element down). */
void ipr_rng_shuffle_u32(ipr_rng *r, uint32_t *v, uint32_t n);

/* Counter-indexed normals: element `index` of the stream (seed, purpose, instance, step) is a pure
 * function of those five numbers, so any device, batch slot or thread computes the same value.
 * Block index/4 of Philox gives two (u1, u2) pairs; each pair gives r*cos and r*sin. */
float ipr_rng_normal_at(uint64_t seed, uint32_t purpose, uint64_t instance, uint32_t step, uint64_t index);
void ipr_rng_fill_normal(uint64_t seed, uint32_t purpose, uint64_t instance, uint32_t step, float *out,
                         uint64_t n);
/* Elements [first, first + n) of the same stream: out[i] == ipr_rng_normal_at(..., first + i) bitwise, with
 * one Philox block per four elements (the sampler draws a region's rows this way). */
void ipr_rng_fill_normal_range(uint64_t seed, uint32_t purpose, uint64_t instance, uint32_t step, uint64_t first,
                               float *out, uint64_t n);

#ifdef __cplusplus
}
#endif
#endif
