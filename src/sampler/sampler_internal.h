/* sampler_internal.h: the sampler's pieces below the public API (block arithmetic, the spec 2.5 transition,
 * region orders and subsets) and the test-only entry points: injection hooks and tasks of any geometry. */
#ifndef IPR_SAMPLER_INTERNAL_H
#define IPR_SAMPLER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ipr/sampler.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Keys of the step noise: step = (iteration << IPR_STEP_BITS) | pass, so IPR iteration k never reuses a
 * base pass's numbers (iteration 0 = the base generation). */
#define IPR_STEP_BITS IPR_SAMPLER_STEP_BITS
#define IPR_MAX_PASSES (IPR_SAMPLER_MAX_PASSES + 1) /* exclusive bound */
#define IPR_MAX_ITERATIONS IPR_SAMPLER_MAX_ITERATIONS
/* spec 9b: the reference clamps variances to >= e^-30 inside its Gaussian, so std >= e^-15 */
#define IPR_VAR_FLOOR_LOG (-30.0)
/* regions per image: ids are uint16 and `changed` counts are uint16 */
#define IPR_MAX_REGIONS 4096

/* ---------------- block arithmetic (spec 3.1 with 9a; spec 2.6 for a given max_steps) ---------------- */

typedef enum {
    IPR_RAMP_LINEAR = 0,   /* region k: 1, (L-1)/L, ..., 1/L from its start, then 0 */
    IPR_RAMP_LINSPACE = 1  /* parallel: every region follows linspace(1, 0, max_steps + 1) from step 0 */
} ipr_ramp_kind;

typedef struct {
    int regions;      /* B: regions to generate */
    int max_steps;    /* network passes */
    float L_ideal;    /* float32 ideal block length */
    int L;            /* ramp length in steps */
    ipr_ramp_kind ramp;
} ipr_block_plan;

/* Sequential plan of B >= 1 regions, float32 in the reference's order (spec 9a, fixtures/README.md):
 * with max_steps <= 0, max_steps = ceil(p + ((B-1)*(1-o))*p), L_ideal = max_steps * (1 / ((B-1)*(1-o) + 1))
 * (torch's int / tensor), L = ceil(L_ideal), start_k = floor((k*L_ideal)*(1-o)), (1-o) rounded to float32
 * from double; checked against torch for B = 1..256, p in {1, 2, 3, 5, 10, 30} and 8 overlaps. With
 * max_steps > 0 given: `floor_length` 0 gives the adaptive sampler's arithmetic of spec 2.6 (the same with
 * that max_steps), 1 the graph_sequential scheduler's (L = floor(L_ideal), start_k = floor(k*L*(1-o))).
 * starts (B), nondecreasing, clamped to [0, max_steps - 1]. */
int ipr_block_plan_make(int B, int p, double o, int max_steps, int floor_length, ipr_block_plan *plan,
                        int *starts);
/* Parallel plan ('fixed'): max_steps passes (<= 0: derived from p and o as above), every start 0. */
int ipr_block_plan_parallel(int B, int p, double o, int max_steps, ipr_block_plan *plan, int *starts);
/* Noise level at step s of a region that started at `start` (s >= start), in float32. The last row
 * (s >= max_steps) is 0. */
float ipr_block_level(const ipr_block_plan *plan, int start, int s);

/* ---------------- the transition (spec 2.5) ---------------- */

/* One transition of one image (C, H, W) from per-region levels t (R) to t_next (R): y is the raw network
 * output (d_out = 2 C + 1, H, W); noise (C, H, W) is read only where t_next > 0. z is updated in place;
 * regions with t == t_next == 0 are not touched (bit-identical). Per-pixel arithmetic in double. */
void ipr_transition(float *z, const float *y, const float *noise, const float *t, const float *t_next, int C, int H,
                    int W, int patch, double alpha, double temperature);

/* ---------------- orders and subsets (counter-based draws, spec 2.6 / 3.2) ---------------- */

/* Random order: the unknown regions (unknown[r] != 0) in ascending order, shuffled by
 * ipr_rng_shuffle_u32 on the stream (seed, IPR_RNG_ORDER, instance, iteration). Returns the count. */
int ipr_order_random(uint64_t seed, uint64_t instance, uint32_t iteration, const uint8_t *unknown, int R,
                     uint16_t *order);
/* Sudoku dependency-graph order (spec 2.6, max_order 1) on a gw x gw grid, gw = b*b: repeatedly the unknown
 * cell with the most known peers (same row, column or b x b box), ties uniformly at random by
 * ipr_rng_below(ties) on the stream (seed, IPR_RNG_TIE_BREAK, instance, iteration), candidates in ascending
 * index. known = given or already ordered. Returns the count, or -1 (error set) for a non-Sudoku grid. */
int ipr_order_graph(uint64_t seed, uint64_t instance, uint32_t iteration, const uint8_t *unknown, int gh, int gw,
                    uint16_t *order);
/* The IPR subset (spec 3.2) of m regions among the n refinable ones (ascending, refinable[n]):
 * uniform = the first m of the list shuffled by ipr_rng_shuffle_u32 on (seed, IPR_RNG_IPR_SUBSET,
 * instance, iteration); uncertainty = the m highest sigma (ties: lowest index); mix = the round(mix * m)
 * highest sigma, then the rest uniformly (the shuffle of the remaining list). sigma (R) may hold NAN for a
 * region never generated; with no finite sigma at all, uncertainty and mix fall back to uniform.
 * chosen (m) ascending. */
void ipr_subset_choose(uint64_t seed, uint64_t instance, uint32_t iteration, const uint16_t *refinable, int n,
                       int m, ipr_selection selection, double mix, const float *sigma, uint16_t *chosen);
/* m = max(1, floor(n * ratio)) for n >= 1, 0 for n = 0 (spec 3.2). */
int ipr_subset_size(int n, double ratio);

/* ---------------- test-only: injection hooks and tasks of any geometry ---------------- */

typedef struct {
    void *ctx;
    /* Replace a noise draw: fill out (C*H*W, the whole image) for (purpose, instance, step) where purpose
     * is IPR_RNG_INIT_NOISE (step 0), IPR_RNG_STEP_NOISE (step key above) or IPR_RNG_IPR_NOISE (step =
     * iteration). Return IPR_OK; any other value fails the run. */
    int (*noise)(void *ctx, uint32_t purpose, uint64_t instance, uint32_t step, float *out, size_t n);
    /* Replace the IPR subset: fill chosen (m) with regions from refinable (n). */
    int (*subset)(void *ctx, uint64_t instance, int iteration, const uint16_t *refinable, int n, int m,
                  uint16_t *chosen);
    /* Replace the instance: clean (C, H, W) clue values, given (R) 1 = clue. */
    int (*instance)(void *ctx, uint64_t instance, float *clean, uint8_t *given);
    /* Before each pass: z (C, H, W) and the per-region levels t (R) the network gets. */
    void (*on_pass)(void *ctx, uint64_t instance, int iteration, int pass, const float *z, const float *t, int R);
    /* A region's ramp starts at `pass`; sigma (R) the pooled sigma_theta of that pass. */
    void (*on_choice)(void *ctx, uint64_t instance, int iteration, int pass, int region, const float *sigma, int R);
    /* A generation (iteration 0 = base) ended with image z (C, H, W) after `passes` passes. */
    void (*on_generation)(void *ctx, uint64_t instance, int iteration, int passes, const float *z);
} ipr_sampler_hooks;

/* NULL switches them off. The hooks are copied. */
void ipr_runner_set_hooks(ipr_runner *r, const ipr_sampler_hooks *hooks);

/* A task of any geometry with no scorer and no instances of its own (every instance is all-unknown with
 * clean 0, unless the instance hook says otherwise): for the golden fixture's 28 x 28 image of 7 x 7
 * regions. */
ipr_task *ipr_task_new_custom(int C, int H, int W, int patch);

/* Per-region "decoded content" (early stop, `changed`): Sudoku with a scorer = the digit read per cell
 * (81 bytes); otherwise the image quantized to uint8 (C*H*W bytes, round((x + 1) * 127.5) clamped), each
 * region owning its pixels. decoded_bytes tells the size; task_decode also scores (valid, error). */
size_t ipr_task_decoded_bytes(const ipr_task *t);
int ipr_task_score_decode(ipr_task *t, const float *image, uint8_t *valid, float *error, uint8_t *decoded);
/* ipr_task_score_decode is not thread-safe (the task's scorer network has one scratch arena). A task scorer is a
 * scorer of one thread's own: the task's networks cloned (weights shared, scratch separate), so that threads each
 * holding one score at once, every result bit-identical to ipr_task_score_decode's. Free it before the task; the
 * task must not change meanwhile. NULL on error. */
typedef struct ipr_task_scorer ipr_task_scorer;
ipr_task_scorer *ipr_task_scorer_new(const ipr_task *t);
void ipr_task_scorer_free(ipr_task_scorer *s);
int ipr_task_scorer_score_decode(ipr_task_scorer *s, const float *image, uint8_t *valid, float *error,
                                 uint8_t *decoded);
/* Regions whose decoded content differs between a and b. */
int ipr_task_decoded_changed(const ipr_task *t, const uint8_t *a, const uint8_t *b);
/* 1 when instances carry clues or a corrupted grid (ipr_task_instance must be called), 0 when every
 * instance starts all-unknown (Even Pixels, Counting Polygons). */
int ipr_task_conditional(const ipr_task *t);
int ipr_task_correction(const ipr_task *t);
/* After ipr_task_instance(t, ..., index, ...): 1 and the instance's solved grid (81 digits 1-9) when the task
 * knows one (Sudoku: a generated grid, or a file row with a solution), else 0. */
int ipr_task_solution(const ipr_task *t, uint64_t index, uint8_t solution[81]);
/* 1 when the decoded content (ipr_task_score_decode) is the 81 digits the Sudoku scorer reads. */
int ipr_task_reads_digits(const ipr_task *t);

#ifdef __cplusplus
}
#endif
#endif
