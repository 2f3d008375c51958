/* sampler.h: SRM's region-wise sequential mixed-noise sampling and Iterative Partial Refinement (spec 2.5,
 * 2.6, 3), batched over many instances and deterministic: every draw is keyed by (seed, instance, purpose,
 * step), so an instance's result never depends on its batch slot, the batch size, the rank or the order. */
#ifndef IPR_SAMPLER_H
#define IPR_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "ipr/bench.h"
#include "ipr/model.h"
#include "ipr/unet.h"
#include "ipr/unet_cuda.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------- limits ---------------- */

/* The sampler's and the denoiser's limits: ipr_sampler_config_validate and ipr_denoiser_open check them, and the
 * `ipr run` config schema takes its ranges from them (through the sampler's settings table, src/sampler/settings.h,
 * and src/pipeline/config_schema.c), so the two cannot disagree. */
#define IPR_SAMPLER_STEP_BITS 20 /* step noise keys: (iteration << 20) | pass */
/* max_steps, steps per region, and the network passes of one generation */
#define IPR_SAMPLER_MAX_PASSES ((1 << IPR_SAMPLER_STEP_BITS) - 1)
/* K, the IPR iterations of one chain (4095): the iteration fills the step key's upper 12 bits */
#define IPR_SAMPLER_MAX_ITERATIONS ((1 << (32 - IPR_SAMPLER_STEP_BITS)) - 1)
#define IPR_SAMPLER_MAX_HOST_THREADS 256
#define IPR_DENOISER_MAX_BATCH 4096 /* images per forward */

/* ---------------- the denoiser: one forward over host buffers, CPU or CUDA, U-Net or DiT ---------------- */

/* Where a network runs. AUTO is a request (a run config's device.kind: CUDA where a GPU is seen, else the CPU) that
 * the caller resolves before it opens a denoiser, which takes CPU or CUDA only. */
typedef enum { IPR_DEVICE_CPU = 0, IPR_DEVICE_CUDA = 1, IPR_DEVICE_AUTO = 2 } ipr_device_kind;

/* "cpu", "cuda" or "auto"; from_name accepts exactly these. */
const char *ipr_device_name(ipr_device_kind d);
int ipr_device_from_name(const char *name, ipr_device_kind *out);

typedef struct {
    ipr_device_kind device;   /* CPU (default) or CUDA */
    int gpu;                  /* CUDA device index */
    ipr_precision precision;  /* CUDA GEMM precision (fp32 default) */
    int max_batch;            /* images per forward (>= 1) */
    int cpu_threads;          /* OpenBLAS threads on the CPU path; 0 = leave as is */
} ipr_denoiser_config;

void ipr_denoiser_config_init(ipr_denoiser_config *cfg);

typedef struct ipr_denoiser ipr_denoiser;

/* Load a checkpoint of either backbone (its `format` attribute chooses: ipr/model.h) for the checkpoint's image
 * size. NULL on error. */
ipr_denoiser *ipr_denoiser_open(const char *ckpt_path, const ipr_denoiser_config *cfg);
void ipr_denoiser_free(ipr_denoiser *d);
/* The checkpoint's architecture (backbone, image size, channels, regions). */
const ipr_model_info *ipr_denoiser_model_info(const ipr_denoiser *d);
int ipr_denoiser_max_batch(const ipr_denoiser *d);
/* "cpu" or the GPU's name. */
const char *ipr_denoiser_device_name(const ipr_denoiser *d);
/* y (B, d_out, H, W) = net(x (B, d_in, H, W), t (B, 1, H, W)), host buffers, 1 <= B <= max_batch. */
int ipr_denoiser_forward(ipr_denoiser *d, const float *x, const float *t, int B, float *y);
/* The CUDA device index of a denoiser on the GPU, -1 on the CPU. */
int ipr_denoiser_cuda_device(const ipr_denoiser *d);
/* 1 if ipr_denoiser_forward_resident reads the per-pixel map t (the U-Net), 0 if the levels alone (the DiT). */
int ipr_denoiser_wants_tmap(const ipr_denoiser *d);
/* One forward with the data on the GPU (CUDA denoisers only): x (B, C, H, W) and y (B, d_out, H, W) device
 * buffers, levels (B, R) the per-region noise levels on the host, t (B, 1, H, W) the same levels per pixel on the
 * device (read where ipr_denoiser_wants_tmap). Returns once y is written. */
int ipr_denoiser_forward_resident(ipr_denoiser *d, const float *x, const float *levels, const float *t, int B,
                                  float *y);

/* ---------------- the task: a benchmark's instances and its scorer ---------------- */

typedef struct {
    ipr_bench_kind bench;
    ipr_split split;                    /* test by default */
    ipr_sudoku_difficulty difficulty;   /* Sudoku only; hard by default */
    uint64_t data_seed;                 /* seed of the instance generator (datagen --seed) */
    const char *mnist_dir;              /* NULL: the shipped datasets/mnist */
    const char *scorer_path;            /* digit classifier (Sudoku) / polygons classifier; NULL for Even Pixels */
    int correction;                     /* Sudoku correction mode (spec 3.2): solved grid + swaps, all refinable */
    int correction_swaps;               /* swaps in correction mode (5, as ms_corrupted_test) */
    /* An instance file instead of the generator (ipr/instances.h): instance i is row i of the file. NULL: the
     * generator (data_seed, split, difficulty). Puzzle files are rendered from the MNIST TEST pool. */
    const char *instances_file;
    int instances_format;               /* ipr_instances_format; AUTO detects */
    uint64_t instances_start;           /* the rows the task is asked for: [start, start + count), count >= 1 */
    uint64_t instances_count;
    const char *instances_sha256;       /* NULL, or the SHA-256 (hex) the file must have (a run's record of it) */
} ipr_task_config;

void ipr_task_config_init(ipr_task_config *cfg);

typedef struct ipr_task ipr_task;

ipr_task *ipr_task_new(const ipr_task_config *cfg);
void ipr_task_free(ipr_task *t);
/* Image (C, H, W), region side in pixels, regions = (H / patch) * (W / patch). */
void ipr_task_shape(const ipr_task *t, int *C, int *H, int *W, int *patch, int *regions);
/* Instance `index`: its clean image (C, H, W) in [-1, 1] and given (regions): 1 = clue (kept clean,
 * never regenerated), 0 = to generate. In correction mode the clean image is the corrupted solved grid
 * and every region is refinable (given all 0). `seed` keys the corruption swaps. */
int ipr_task_instance(ipr_task *t, uint64_t seed, uint64_t index, float *clean, uint8_t *given);
/* Score n generated images (n, C, H, W) in [-1, 1]: valid (n) 0/1 and error (n) (Sudoku distance,
 * Even Pixels |count - 512|, Counting Polygons: 0 when both metrics hold, else the number that fail).
 * A Sudoku or Counting Polygons task opened without scorer_path scores valid 0 and error NAN. */
int ipr_task_score(ipr_task *t, const float *images, int n, uint8_t *valid, float *error);
/* 1 when the task can score (Even Pixels always; the others with a scorer checkpoint). */
int ipr_task_has_scorer(const ipr_task *t);
/* The MNIST pool a Sudoku task draws its cells from (provenance: its name and sha256); NULL otherwise (and for an
 * instance file of datagen images, which are used as stored). */
const struct ipr_mnist_pool *ipr_task_mnist_pool(const ipr_task *t);
/* The instance file's SHA-256 (hex) and format name when the task reads one; NULL otherwise. */
const char *ipr_task_instances_sha256(const ipr_task *t);
const char *ipr_task_instances_format(const ipr_task *t);
/* IPR_OK when a network of this architecture (ipr_model_info_read of a checkpoint, either backbone) fits the
 * task's images: image size, d_in = C, d_out = 2 C + 1, patch size; else an error naming both values. */
int ipr_task_check_model(const ipr_task *t, const ipr_model_info *m);

/* ---------------- sampler and IPR settings ---------------- */

typedef enum {
    IPR_ORDER_PARALLEL = 0,  /* 'fixed': all unknown regions share one level schedule */
    IPR_ORDER_RANDOM = 1,    /* one uniformly random unknown region after another */
    IPR_ORDER_GRAPH = 2,     /* Sudoku dependency-graph order (max_order 1) */
    IPR_ORDER_ADAPTIVE = 3   /* predicted uncertainty: lowest pooled sigma first (the SRM headline) */
} ipr_order;

typedef enum {
    IPR_SELECT_UNIFORM = 0,      /* the reference: a uniformly random subset */
    IPR_SELECT_UNCERTAINTY = 1,  /* the highest pooled sigma among refinable regions */
    IPR_SELECT_MIX = 2           /* selection_mix of the subset by uncertainty, the rest uniform */
} ipr_selection;

typedef struct {
    /* base generation */
    ipr_order order;            /* adaptive */
    int steps_per_region;       /* p: steps a region takes (adaptive / sequential); 3 */
    double overlap;             /* o in [0, 1); 0 */
    int max_steps;              /* parallel / random / graph: total steps; 0 = derived from p and o */
    double alpha;               /* stochasticity in [0, 1]; 0.5 */
    double temperature;         /* 1.0 */
    /* IPR (spec 3.2) */
    int ipr_iterations;         /* K >= 0 */
    double ipr_ratio;           /* resampling fraction in (0, 1]; 0.25 */
    int ipr_steps_per_region;   /* 10 */
    double ipr_overlap;         /* 0.8 */
    ipr_selection selection;    /* uniform */
    double selection_mix;       /* with IPR_SELECT_MIX: fraction chosen by uncertainty; 0.5 */
    int early_stop;             /* stop a chain once an iteration changes no region's decoded content */
    int keep_images;            /* copy each chain's final image into its result */
    int skip_idle;              /* end a generation at the first pass where every region is at t = 0 (the
                                   reference runs it: spec 9c); 0 */
    int host_threads;           /* threads for the per-chain host work between passes (noise, transitions, scoring);
                                   0 = the online CPUs, at most 16. Results do not depend on it. */
    int gpu_sampler;            /* 1: keep the chains' images on the denoiser's GPU (noise, transitions and the
                                   clue paste as kernels; CUDA denoisers only); 0: on the host. The same
                                   numbers up to the rounding of CUDA's log / sin / cos. */
} ipr_sampler_config;

/* Defaults: the reference's MNIST Sudoku hard settings (spec 3.3) with K = 0. Every field's type, range, default and
 * `ipr sample` option is a row of one table (src/sampler/settings.c), which init, set and validate read. */
void ipr_sampler_config_init(ipr_sampler_config *cfg);
/* Range checks (ratio in (0, 1], overlaps in [0, 1), steps >= 1, ...): IPR_ERR naming the bad field. */
int ipr_sampler_config_validate(const ipr_sampler_config *cfg);
/* Set one field from text, by its name in the struct ("order" = parallel|fixed|random|graph|adaptive,
 * "selection" = uniform|uncertainty|mix, numbers for the rest): for the CLI, configs and ctypes. The value
 * is parsed strictly; ranges are left to ipr_sampler_config_validate. */
int ipr_sampler_config_set(ipr_sampler_config *cfg, const char *key, const char *value);
/* sizeof(ipr_sampler_config), for ctypes callers that allocate it as bytes. */
size_t ipr_sampler_config_size(void);
const char *ipr_order_name(ipr_order order);
int ipr_order_from_name(const char *name, ipr_order *out);
const char *ipr_selection_name(ipr_selection selection);
int ipr_selection_from_name(const char *name, ipr_selection *out);
/* Network passes of one generation of `regions` regions: the base generation (ipr = 0) or an IPR
 * iteration (ipr = 1); 0 when regions is 0. The same arithmetic the runner uses (spec 3.1, 9a). */
int ipr_sampler_generation_passes(const ipr_sampler_config *cfg, int regions, int ipr);

/* ---------------- running chains ---------------- */

/* Whether a chain's final Sudoku grid is the instance's known solution (puzzles of few clues often have several
 * solutions, so a valid grid need not be the given one). Codes are stored in results files: never renumber. */
typedef enum {
    IPR_SOLUTION_UNKNOWN = 0, /* nothing to compare: no known solution (a puzzle file row without one), not Sudoku,
                                 or no scorer to read the digits */
    IPR_SOLUTION_MATCH = 1,   /* the final grid is valid and its digits equal the known solution */
    IPR_SOLUTION_OTHER = 2,   /* the final grid is valid but another grid than the known solution */
    IPR_SOLUTION_INVALID = 3  /* the final grid is not valid */
} ipr_solution_match;
#define IPR_SOLUTION_MATCH_CODES 4
const char *ipr_solution_match_name(ipr_solution_match m);

/* One instance's chain: base generation, then K refinement iterations. Arrays hold K + 1 entries, entry 0
 * for the base sample and entry k for iteration k. Allocated by the caller (ipr_chain_result_alloc). */
typedef struct {
    uint64_t instance;
    int iterations;        /* K requested */
    int iterations_run;    /* < K when early_stop ended the chain; later entries repeat the last */
    uint8_t *valid;        /* (K + 1) */
    float *error;          /* (K + 1) */
    uint32_t *nfe;         /* (K + 1) network passes spent up to and including this entry */
    uint16_t *changed;     /* (K + 1) regions whose decoded content changed (entry 0: regions generated) */
    float *image;          /* (C, H, W) final image when keep_images, else NULL */
    uint32_t nfe_saved;    /* passes the iterations skipped by early_stop would have cost (0 without) */
    uint8_t solution_match; /* ipr_solution_match of the final sample */
} ipr_chain_result;

int ipr_chain_result_alloc(ipr_chain_result *r, int iterations, size_t image_floats);
void ipr_chain_result_free(ipr_chain_result *r);

typedef struct ipr_runner ipr_runner;

/* A runner keeps up to the denoiser's max_batch chains in flight; a finished chain frees its slot for the
 * next instance. */
ipr_runner *ipr_runner_new(ipr_denoiser *d, ipr_task *t, const ipr_sampler_config *cfg);
void ipr_runner_free(ipr_runner *r);
/* Run the chains of instances[0..n) under `seed`; results[i] is instances[i]'s. progress (may be NULL) is
 * called after each finished chain, and at least every 2 s of work while none finishes (done then repeats):
 * chains of one batch run in lockstep, and callers keep heartbeats and status fresh from it. */
typedef void (*ipr_progress_fn)(int done, int total, void *ctx);
int ipr_runner_run(ipr_runner *r, uint64_t seed, const uint64_t *instances, int n, ipr_chain_result *results,
                   ipr_progress_fn progress, void *ctx);

/* One point of a grid over the IPR settings that leave the base generation unchanged: the resampling fraction and
 * the subset selection (selection_mix and every other setting are the runner's config's). */
typedef struct {
    double ipr_ratio;
    ipr_selection selection;
} ipr_variant;
/* Run the chains of instances[0..n) under `seed` once per variant, generating each instance's base sample once:
 * results[v * n + i] is instance i under variants[v], the same as an ipr_runner_run with the config's ipr_ratio and
 * selection set to the variant's (bitwise on the host path; on the GPU, batch composition changes rounding as it
 * always does). Instances go in waves of max_batch: their base samples (one batch), then every variant's IPR
 * iterations from them, so a grid of V points costs one base generation instead of V. Without IPR iterations, in
 * correction mode (no base generation) or with hooks set, the V x n chains simply run independently. progress
 * counts finished results (of n_variants x n). The stats count each base generation once. */
int ipr_runner_run_variants(ipr_runner *r, uint64_t seed, const uint64_t *instances, int n, const ipr_variant *variants,
                            int n_variants, ipr_chain_result *results, ipr_progress_fn progress, void *ctx);

/* Where the time of the runs so far went. A forward pass over B chains charges 1/B of its time (and of the
 * host work after it) to each chain's current phase: phase 0 = base generation, phase k = IPR iteration k,
 * so instances/s of phase k = generations[k] / seconds[k] whatever mix of phases shared the batches. */
typedef struct {
    int phases;              /* K + 1 */
    const double *seconds;   /* (K + 1) wall seconds charged to each phase */
    const uint64_t *generations; /* (K + 1) generations completed per phase (skipped ones not counted) */
    const uint64_t *passes;  /* (K + 1) network passes per phase, summed over chains */
    double forward_s;        /* wall seconds in the denoiser */
    double host_s;           /* host work around the passes: schedules, noise, transitions, scoring */
    double score_s;          /* of which the scorer (wall seconds: the generations a pass ended are scored at once on
                                the host threads) */
    uint64_t forwards;       /* forward calls */
    uint64_t images;         /* images over all forward calls (mean batch = images / forwards) */
    uint64_t pool_scored;    /* generations scored that way, after the pass that ended them (the rest, those that end
                                with no pass, one at a time) */
    size_t arena_bytes;      /* the runner's one host arena (chains' images and states, batch buffers) */
    int host_threads;        /* threads of the per-chain host work */
    size_t device_bytes;     /* the GPU sampler's device arena (0 on the host path) */
} ipr_runner_stats;
/* Valid until the next run or free. */
void ipr_runner_get_stats(const ipr_runner *r, ipr_runner_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
