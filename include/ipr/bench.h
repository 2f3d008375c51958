/* bench.h: the three benchmarks of the IPR paper (spec section 4) as deterministic instance generators
 * and rule scorers. An instance is a pure function of (seed, split, index [, difficulty]). */
#ifndef IPR_BENCH_H
#define IPR_BENCH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    IPR_BENCH_SUDOKU = 0,
    IPR_BENCH_EVEN_PIXELS = 1,
    IPR_BENCH_COUNTING_POLYGONS = 2,
    IPR_BENCH_COUNT = 3
} ipr_bench_kind;

typedef enum { IPR_SPLIT_TRAIN = 0, IPR_SPLIT_TEST = 1 } ipr_split;

const char *ipr_bench_name(ipr_bench_kind kind);
/* Accepts "sudoku" (alias "mnist_sudoku"), "even_pixels", "counting_polygons". */
int ipr_bench_from_name(const char *name, ipr_bench_kind *out);
const char *ipr_split_name(ipr_split split);
int ipr_split_from_name(const char *name, ipr_split *out);

/* ---------------- MNIST Sudoku (spec 4.1) ---------------- */
#define IPR_SUDOKU_CELL 28
#define IPR_SUDOKU_SIDE 252 /* 9 x 28 */

typedef enum {
    IPR_SUDOKU_EASY = 0,   /* 54..80 given cells */
    IPR_SUDOKU_MEDIUM = 1, /* 27..53 */
    IPR_SUDOKU_HARD = 2,   /* 0..26 */
    IPR_SUDOKU_ANY = 3     /* 0..80, the training distribution */
} ipr_sudoku_difficulty;

const char *ipr_sudoku_difficulty_name(ipr_sudoku_difficulty d);
int ipr_sudoku_difficulty_from_name(const char *name, ipr_sudoku_difficulty *out);
void ipr_sudoku_difficulty_range(ipr_sudoku_difficulty d, int *lo, int *hi);

struct ipr_mnist_pool;

typedef struct {
    uint8_t solution[81];    /* row-major digits 1..9 */
    uint8_t given[81];       /* 1 = clue cell (shown clean), 0 = to generate */
    uint32_t digit_image[81]; /* index into the pool's MNIST set rendering each cell */
    int num_given;
    uint8_t image[IPR_SUDOKU_SIDE * IPR_SUDOKU_SIDE]; /* (252, 252) uint8, every cell rendered */
} ipr_sudoku_instance;


/* Fill `grid` with a valid solved Sudoku drawn from the stream (seed, IPR_RNG_SUDOKU_GRID, index, split). */
void ipr_sudoku_generate_grid(uint64_t seed, ipr_split split, uint64_t index, uint8_t grid[81]);
/* 1 if every row, column and box holds 1..9 exactly once. */
int ipr_sudoku_grid_valid(const uint8_t grid[81]);
/* Spec 4.1 distance: sum over rows, columns and boxes of sum_{d=1..9} |count_d - 1|. 0 = valid.
 * Cells read as 0 (or anything outside 1..9) count towards no digit. */
int ipr_sudoku_distance(const uint8_t digits[81]);
int ipr_sudoku_make(const struct ipr_mnist_pool *pool, uint64_t seed, ipr_split split,
                    ipr_sudoku_difficulty difficulty, uint64_t index, ipr_sudoku_instance *out);

/* ---------------- Even Pixels (spec 4.2) ---------------- */
#define IPR_EP_SIDE 32
#define IPR_EP_PIXELS 1024

typedef struct {
    float hue_offset;            /* h0 ~ U(0, 0.5) */
    uint8_t mask[IPR_EP_PIXELS]; /* 1 = pixel has hue h0 + 0.5 (exactly 512 ones) */
    uint8_t image[IPR_EP_PIXELS * 3]; /* (32, 32, 3) RGB uint8 */
} ipr_even_pixels_instance;

int ipr_even_pixels_make(uint64_t seed, ipr_split split, uint64_t index, ipr_even_pixels_instance *out);
/* PIL's uint8 HSV -> RGB conversion (ImageMode "HSV" convert("RGB")). */
void ipr_hsv_to_rgb_u8(const uint8_t hsv[3], uint8_t rgb[3]);
/* The spec 4.2 scorer on an image in [-1, 1], layout (3, H, W) float: clamp to [0, 1], hue as
 * matplotlib's rgb_to_hsv, 256-bin histogram, count between the two borders, |count - H*W/2|. */
int ipr_even_pixels_error_chw(const float *img, int h, int w);
/* Same scorer for a uint8 RGB image (H, W, 3), e.g. a generated instance. */
int ipr_even_pixels_error_u8(const uint8_t *rgb, int h, int w);

/* ---------------- Counting Polygons (spec 4.3) ---------------- */
#define IPR_POLY_SIDE 128
#define IPR_POLY_SUPER 4 /* drawn at 512 x 512 then box-filtered to 128 */
#define IPR_POLY_MAX_POLYGONS 9
#define IPR_POLY_MAX_CIRCLES (IPR_POLY_MAX_POLYGONS + 2)
#define IPR_POLY_NUM_PAIRS 35

typedef struct {
    int num_polygons; /* 1..9 */
    int num_vertices; /* 3..7, the same for every polygon */
    int num_circles;  /* num_polygons + 2: the polygons first, then the count numeral, then the vertex numeral */
    float cx[IPR_POLY_MAX_CIRCLES], cy[IPR_POLY_MAX_CIRCLES], radius[IPR_POLY_MAX_CIRCLES]; /* 128-px units */
    float rotation[IPR_POLY_MAX_POLYGONS]; /* radians */
    uint8_t color[3];  /* RGB of shapes and numerals: least frequent background hue, S 1, V 0.9 */
    int pair_label;    /* 0..34: index of the unordered numeral pair {count, vertices} */
    uint8_t image[IPR_POLY_SIDE * IPR_POLY_SIDE * 3]; /* (128, 128, 3) RGB uint8 */
} ipr_polygons_instance;

int ipr_polygons_make(uint64_t seed, ipr_split split, uint64_t index, ipr_polygons_instance *out);
/* Index of the unordered pair {a, b} among the 35 pairs {count 1..9, vertices 3..7}; -1 if none. */
int ipr_polygons_pair_index(int a, int b);
/* The pair of pair index i (a <= b). */
void ipr_polygons_pair_values(int index, int *a, int *b);

#ifdef __cplusplus
}
#endif
#endif
