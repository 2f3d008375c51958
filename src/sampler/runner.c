/* runner.c: chains of SRM sequential generation + IPR refinement (spec 2.6, 3), many per forward pass: each
 * chain has its own schedule, region states and image; a finished chain frees its slot for the next. */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ipr/clock.h"
#include "ipr/common.h"
#include "ipr/rng.h"
#include "ipr/sampler.h"
#include "../engine/ops_cpu.h"
#include "device_sampler.h"
#include "pool.h"
#include "sampler_internal.h"

/* seconds between progress reports while no chain finishes (ipr_runner_run) */
#define IPR_RUNNER_REPORT_S 2.0

/* ================================ generation plans ================================ */

/* The plan of one generation of B >= 1 regions (base: the configured order; IPR: adaptive). */
static int generation_plan(const ipr_sampler_config *cfg, int B, int ipr, ipr_block_plan *plan, int *starts) {
    if (ipr) return ipr_block_plan_make(B, cfg->ipr_steps_per_region, cfg->ipr_overlap, 0, 0, plan, starts);
    if (cfg->order == IPR_ORDER_PARALLEL)
        return ipr_block_plan_parallel(B, cfg->steps_per_region, cfg->overlap, cfg->max_steps, plan, starts);
    /* spec 2.6: with max_steps given, the manual (random, graph) scheduler floors the block length and the
     * adaptive one takes its ceiling; without it, spec 3.1 derives max_steps from steps_per_region */
    const int floor_length = cfg->max_steps > 0 && cfg->order != IPR_ORDER_ADAPTIVE;
    return ipr_block_plan_make(B, cfg->steps_per_region, cfg->overlap, cfg->max_steps, floor_length, plan, starts);
}

/* Passes of a generation of B regions, using the caller's starts (B) as scratch; -1 on error. */
static int plan_passes(const ipr_sampler_config *cfg, int B, int ipr, int *starts) {
    if (B <= 0) return 0;
    ipr_block_plan plan;
    return generation_plan(cfg, B, ipr, &plan, starts) == IPR_OK ? plan.max_steps : -1;
}

int ipr_sampler_generation_passes(const ipr_sampler_config *cfg, int regions, int ipr) {
    int starts[IPR_MAX_REGIONS];
    if (regions > IPR_MAX_REGIONS) {
        ipr_error_set(__FILE__, __LINE__, "%d regions (at most %d)", regions, IPR_MAX_REGIONS);
        return -1;
    }
    return plan_passes(cfg, regions, ipr, starts);
}

/* ================================ results ================================ */

int ipr_chain_result_alloc(ipr_chain_result *r, int iterations, size_t image_floats) {
    memset(r, 0, sizeof *r);
    IPR_CHECK(iterations >= 0 && iterations <= IPR_MAX_ITERATIONS, "chain result: %d iterations outside 0..%d",
              iterations, IPR_MAX_ITERATIONS);
    const size_t n = (size_t)iterations + 1;
    r->iterations = iterations;
    r->valid = ipr_calloc(n, sizeof *r->valid, "chain result");
    r->error = ipr_calloc(n, sizeof *r->error, "chain result");
    r->nfe = ipr_calloc(n, sizeof *r->nfe, "chain result");
    r->changed = ipr_calloc(n, sizeof *r->changed, "chain result");
    if (image_floats) r->image = ipr_calloc(image_floats, sizeof *r->image, "chain result image");
    if (!r->valid || !r->error || !r->nfe || !r->changed || (image_floats && !r->image)) goto fail;
    return IPR_OK;
fail:
    ipr_chain_result_free(r);
    return IPR_ERR;
}

void ipr_chain_result_free(ipr_chain_result *r) {
    if (!r) return;
    free(r->valid), free(r->error), free(r->nfe), free(r->changed), free(r->image);
    memset(r, 0, sizeof *r);
}

/* ================================ chains ================================ */

/* Where a region is in the generation in progress. */
typedef enum {
    REGION_WAITING = 0, /* t = 1 until its ramp starts */
    REGION_RAMPING = 1, /* on its block's level ramp since step `start` */
    REGION_CLEAN = 2    /* t = 0 for the whole generation (a clue, or not in the IPR subset) */
} region_state;

typedef struct {
    region_state state;
    int32_t start; /* REGION_RAMPING: the step its ramp started */
} region_ramp;

typedef struct {
    int in_use;
    int res;                /* index into the run's instances / results */
    uint64_t instance;
    ipr_chain_result *out;
    /* images (C, H, W) */
    float *z;               /* current sample */
    float *clean;           /* clue values (correction: the corrupted grid) */
    float *noise;           /* draws of the current pass */
    /* regions (R) */
    uint8_t *given;         /* 1 = clue */
    float *sigma;           /* pooled sigma_theta of the last pass */
    float *sigma_start;     /* pooled sigma_theta when the region last started its ramp; NAN = never */
    float *t_cur, *t_next;  /* levels of the current pass and the next */
    region_ramp *ramp;      /* each region's state and ramp start */
    int *starts;            /* (B) start step of the k-th block */
    uint16_t *order;        /* predetermined order (parallel, random, graph) */
    uint16_t *refinable;    /* non-clue regions, ascending */
    uint16_t *chosen;       /* IPR subset */
    int n_refinable;
    uint8_t *decoded, *decoded_prev; /* per-region decoded content of the last two generations */
    int solved;             /* the instance's solved grid is known (Sudoku): solution holds it */
    uint8_t solution[81];
    /* the generation in progress */
    int iteration;          /* 0 = base, k = IPR iteration k */
    int adaptive;           /* choose by lowest sigma (else order[]) */
    ipr_block_plan plan;
    int B;                  /* regions of this generation (0: nothing to do) */
    int next_k;             /* next block to start */
    int pass;               /* next pass */
    int ended;              /* the generation has run its passes */
    /* its score when computed on the host threads after the pass that ended it (score_ended), for chain_record */
    int scored;             /* 1: sc_valid, sc_error and decoded hold the score, z the image (GPU path: downloaded) */
    uint8_t sc_valid;
    float sc_error;
    uint32_t nfe;           /* passes of this chain so far */
    int ipr_passes;         /* passes of one IPR iteration of this chain (its subset size is fixed) */
    /* the chain's variant (ipr_runner_run_variants; the config's own values otherwise) */
    double ratio;           /* IPR resampling fraction */
    ipr_selection selection;
    int base_only;          /* stop after the base sample and park it in the runner's store (run_variants) */
} chain;

/* A parked base sample (ipr_runner_run_variants): what the IPR iterations of every variant start from. */
typedef struct {
    float *z;               /* (C, H, W) */
    float *sigma, *sigma_start; /* (R) */
    uint8_t *decoded;       /* the base's decoded content (the "previous" of iteration 1) */
    uint32_t nfe;
} base_snap;

struct ipr_runner {
    ipr_denoiser *den;
    ipr_task *task;
    ipr_sampler_config cfg;
    ipr_sampler_hooks hooks;
    int have_hooks;
    int C, H, W, patch, gh, gw, R, d_out;
    size_t chw, hw, dec_bytes;
    int max_batch;
    chain *slots;
    void *arena;            /* every buffer below and the slots' buffers */
    size_t arena_bytes;
    float *bx, *bt, *by;    /* batch (MB, C, H, W), (MB, 1, H, W), (MB, d_out, H, W) */
    int *row_slot;          /* (MB) slot of each batch row */
    ipr_pool *pool;         /* per-chain host work between passes */
    ipr_task_scorer **scorers; /* (pool threads) one per worker: the task's scorer scratch is not shareable */
    int *score_slot;        /* (MB) slots whose generation ended in the last pass, to be scored */
    int score_local_threads; /* GEMM threads of each scoring item (ipr_cpu_set_local_threads; 0: not capped) */
    ipr_dsamp *ds;          /* the images on the GPU (cfg.gpu_sampler), else NULL */
    float *lv_cur, *lv_next, *bsigma; /* (MB, R): per-row levels and pooled sigma of the GPU path */
    ipr_dsamp_row *brows;   /* (MB) */
    const ipr_model_info *model;
    uint64_t seed;
    base_snap *snaps;       /* (max_batch) parked base samples of the current wave (run_variants) */
    /* stats */
    double *ph_seconds;
    uint64_t *ph_generations, *ph_passes;
    double forward_s, host_s, score_s;
    uint64_t forwards, images, pool_scored;
};

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

ipr_runner *ipr_runner_new(ipr_denoiser *d, ipr_task *t, const ipr_sampler_config *cfg) {
    ipr_runner *r = NULL;
    IPR_CHECK(d && t && cfg, "runner: NULL argument");
    IPR_TRY(ipr_sampler_config_validate(cfg));
    r = ipr_calloc(1, sizeof *r, "runner");
    if (!r) goto fail;
    r->den = d, r->task = t, r->cfg = *cfg;
    ipr_task_shape(t, &r->C, &r->H, &r->W, &r->patch, &r->R);
    r->gh = r->H / r->patch, r->gw = r->W / r->patch;
    r->model = ipr_denoiser_model_info(d);
    const ipr_model_info *u = r->model;
    IPR_TRY(ipr_task_check_model(t, u));
    IPR_CHECK(r->R >= 1 && r->R <= IPR_MAX_REGIONS, "%d regions (1..%d supported)", r->R, IPR_MAX_REGIONS);
    IPR_CHECK(cfg->order != IPR_ORDER_GRAPH || (r->gh == r->gw && (r->gw == 4 || r->gw == 9 || r->gw == 16)),
              "order graph needs a Sudoku grid of regions (4 x 4, 9 x 9 or 16 x 16), this task has %d x %d", r->gh,
              r->gw);
    r->d_out = u->d_out;
    r->hw = (size_t)r->H * r->W;
    r->chw = (size_t)r->C * r->hw;
    r->dec_bytes = ipr_task_decoded_bytes(t);
    r->max_batch = ipr_denoiser_max_batch(d);
    const int MB = r->max_batch, R = r->R, K = cfg->ipr_iterations;

    /* style habit 5: every buffer planned here, one arena; nothing is allocated while chains run */
    const size_t slot_bytes = 3 * align64(r->chw * sizeof(float)) + 2 * align64(r->dec_bytes) + align64((size_t)R) +
                              4 * align64((size_t)R * sizeof(float)) + align64((size_t)R * sizeof(region_ramp)) +
                              align64((size_t)R * sizeof(int32_t)) +
                              3 * align64((size_t)R * sizeof(uint16_t));
    const size_t batch_bytes = align64((size_t)MB * r->chw * sizeof(float)) + align64((size_t)MB * r->hw * sizeof(float)) +
                               align64((size_t)MB * r->d_out * r->hw * sizeof(float)) +
                               2 * align64((size_t)MB * sizeof(int));
    const size_t stats_bytes = align64((size_t)(K + 1) * sizeof(double)) + 2 * align64((size_t)(K + 1) * sizeof(uint64_t));
    const size_t gpu_bytes = 3 * align64((size_t)MB * R * sizeof(float)) + align64((size_t)MB * sizeof(ipr_dsamp_row));
    /* ipr_runner_run_variants parks a wave of max_batch base samples */
    const size_t snap_bytes = align64((size_t)MB * sizeof(base_snap)) +
                              (size_t)MB * (align64(r->chw * sizeof(float)) + 2 * align64((size_t)R * sizeof(float)) +
                                            align64(r->dec_bytes));
    const size_t total = align64((size_t)MB * sizeof(chain)) + (size_t)MB * slot_bytes + batch_bytes + stats_bytes +
                         gpu_bytes + snap_bytes;
    r->arena = ipr_calloc(1, total, "sampler arena");
    if (!r->arena) goto fail;
    char *p = r->arena;
#define CARVE(ptr, bytes)                      \
    do {                                       \
        (ptr) = (void *)p;                     \
        p += align64(bytes);                   \
    } while (0)
    CARVE(r->slots, (size_t)MB * sizeof(chain));
    for (int s = 0; s < MB; ++s) {
        chain *ch = &r->slots[s];
        CARVE(ch->z, r->chw * sizeof(float));
        CARVE(ch->clean, r->chw * sizeof(float));
        CARVE(ch->noise, r->chw * sizeof(float));
        CARVE(ch->decoded, r->dec_bytes);
        CARVE(ch->decoded_prev, r->dec_bytes);
        CARVE(ch->given, (size_t)R);
        CARVE(ch->sigma, (size_t)R * sizeof(float));
        CARVE(ch->sigma_start, (size_t)R * sizeof(float));
        CARVE(ch->t_cur, (size_t)R * sizeof(float));
        CARVE(ch->t_next, (size_t)R * sizeof(float));
        CARVE(ch->ramp, (size_t)R * sizeof(region_ramp));
        CARVE(ch->starts, (size_t)R * sizeof(int32_t));
        CARVE(ch->order, (size_t)R * sizeof(uint16_t));
        CARVE(ch->refinable, (size_t)R * sizeof(uint16_t));
        CARVE(ch->chosen, (size_t)R * sizeof(uint16_t));
    }
    CARVE(r->bx, (size_t)MB * r->chw * sizeof(float));
    CARVE(r->bt, (size_t)MB * r->hw * sizeof(float));
    CARVE(r->by, (size_t)MB * r->d_out * r->hw * sizeof(float));
    CARVE(r->row_slot, (size_t)MB * sizeof(int));
    CARVE(r->score_slot, (size_t)MB * sizeof(int));
    CARVE(r->ph_seconds, (size_t)(K + 1) * sizeof(double));
    CARVE(r->ph_generations, (size_t)(K + 1) * sizeof(uint64_t));
    CARVE(r->ph_passes, (size_t)(K + 1) * sizeof(uint64_t));
    CARVE(r->lv_cur, (size_t)MB * R * sizeof(float));
    CARVE(r->lv_next, (size_t)MB * R * sizeof(float));
    CARVE(r->bsigma, (size_t)MB * R * sizeof(float));
    CARVE(r->brows, (size_t)MB * sizeof(ipr_dsamp_row));
    CARVE(r->snaps, (size_t)MB * sizeof(base_snap));
    for (int s = 0; s < MB; ++s) {
        base_snap *sn = &r->snaps[s];
        CARVE(sn->z, r->chw * sizeof(float));
        CARVE(sn->sigma, (size_t)R * sizeof(float));
        CARVE(sn->sigma_start, (size_t)R * sizeof(float));
        CARVE(sn->decoded, r->dec_bytes);
    }
#undef CARVE
    if (cfg->gpu_sampler) {
        IPR_CHECK(ipr_denoiser_cuda_device(d) >= 0, "gpu_sampler needs a denoiser on a CUDA device (this one runs on "
                                                   "%s)", ipr_denoiser_device_name(d));
        IPR_TRY_PTR(r->ds = ipr_dsamp_new(d, MB, r->C, r->H, r->W, r->patch, r->d_out));
    }
    int threads = cfg->host_threads;
    if (threads == 0) {
        const long online = sysconf(_SC_NPROCESSORS_ONLN);
        threads = online < 1 ? 1 : online > 16 ? 16 : (int)online;
    }
    if (threads > MB) threads = MB; /* one chain per item: more threads than chains would idle */
    IPR_TRY_PTR(r->pool = ipr_pool_new(threads));
    r->scorers = ipr_calloc((size_t)threads, sizeof *r->scorers, "sampler scorers");
    if (!r->scorers) goto fail;
    for (int w = 0; w < threads; ++w) IPR_TRY_PTR(r->scorers[w] = ipr_task_scorer_new(t));
    r->arena_bytes = total;
    ipr_log(IPR_LOG_DEBUG, "sampler: arena %.1f MiB for %d chains of %d x %d x %d, %d regions; %d host threads",
            total / 1048576.0, MB, r->C, r->H, r->W, R, threads);
    return r;
fail:
    ipr_runner_free(r);
    return NULL;
}

void ipr_runner_free(ipr_runner *r) {
    if (!r) return;
    ipr_dsamp_free(r->ds);
    if (r->scorers)
        for (int w = 0; w < ipr_pool_threads(r->pool); ++w) ipr_task_scorer_free(r->scorers[w]);
    free(r->scorers);
    ipr_pool_free(r->pool);
    free(r->arena);
    free(r);
}

void ipr_runner_set_hooks(ipr_runner *r, const ipr_sampler_hooks *hooks) {
    if (hooks) {
        r->hooks = *hooks;
        r->have_hooks = 1;
    } else {
        memset(&r->hooks, 0, sizeof r->hooks);
        r->have_hooks = 0;
    }
}

void ipr_runner_get_stats(const ipr_runner *r, ipr_runner_stats *st) {
    memset(st, 0, sizeof *st);
    st->phases = r->cfg.ipr_iterations + 1;
    st->seconds = r->ph_seconds;
    st->generations = r->ph_generations;
    st->passes = r->ph_passes;
    st->forward_s = r->forward_s;
    st->host_s = r->host_s;
    st->score_s = r->score_s;
    st->forwards = r->forwards;
    st->images = r->images;
    st->pool_scored = r->pool_scored;
    st->arena_bytes = r->arena_bytes;
    st->host_threads = ipr_pool_threads(r->pool);
    st->device_bytes = ipr_dsamp_bytes(r->ds);
}

/* ---------------- draws (through the hooks in tests) ---------------- */

/* Noise of (purpose, step) for the regions with want[r] != 0 (NULL: all), into ch->noise at the pixels'
 * own indices (c * H * W + y * W + x): a pure function of (seed, instance, purpose, step, index). */
static int draw_noise(ipr_runner *r, chain *ch, uint32_t purpose, uint32_t step, const uint8_t *want,
                      const float *t_next) {
    if (r->have_hooks && r->hooks.noise) {
        if (r->hooks.noise(r->hooks.ctx, purpose, ch->instance, step, ch->noise, r->chw) != IPR_OK) {
            ipr_error_set(__FILE__, __LINE__, "noise hook failed (purpose %u, step %u)", purpose, step);
            return IPR_ERR;
        }
        return IPR_OK;
    }
    for (int reg = 0; reg < r->R; ++reg) {
        if (want && !want[reg]) continue;
        if (t_next && !(t_next[reg] > 0.0f)) continue;
        const int gy = reg / r->gw, gx = reg % r->gw;
        for (int c = 0; c < r->C; ++c)
            for (int y = gy * r->patch; y < (gy + 1) * r->patch; ++y) {
                const size_t first = (size_t)c * r->hw + (size_t)y * r->W + (size_t)gx * r->patch;
                ipr_rng_fill_normal_range(r->seed, purpose, ch->instance, step, first, ch->noise + first,
                                          (uint64_t)r->patch);
            }
    }
    return IPR_OK;
}

/* Copy region reg of src into dst (C, H, W). */
static void copy_region(const ipr_runner *r, float *dst, const float *src, int reg) {
    const int gy = reg / r->gw, gx = reg % r->gw;
    for (int c = 0; c < r->C; ++c)
        for (int y = gy * r->patch; y < (gy + 1) * r->patch; ++y) {
            const size_t o = (size_t)c * r->hw + (size_t)y * r->W + (size_t)gx * r->patch;
            memcpy(dst + o, src + o, sizeof(float) * (size_t)r->patch);
        }
}

/* spec 2.5: given regions are re-pasted after every step (z = masked + mask * z) */
static void paste_clues(const ipr_runner *r, chain *ch) {
    for (int reg = 0; reg < r->R; ++reg)
        if (ch->given[reg]) copy_region(r, ch->z, ch->clean, reg);
}

static float region_level(const chain *ch, int reg, int s) {
    const region_ramp *rp = &ch->ramp[reg];
    if (rp->state == REGION_CLEAN || s >= ch->plan.max_steps) return 0.0f;
    if (rp->state == REGION_WAITING) return 1.0f;
    return ipr_block_level(&ch->plan, rp->start, s);
}

/* ---------------- generations ---------------- */

/* Begin generation `iteration` over the regions with gen[r] != 0 (the rest stay clean): plan, order, state.
 * z must already hold the starting image. */
static int gen_begin(ipr_runner *r, chain *ch, int iteration, const uint8_t *gen) {
    const ipr_sampler_config *cfg = &r->cfg;
    ch->iteration = iteration;
    ch->pass = 0;
    ch->next_k = 0;
    ch->ended = 0;
    int B = 0;
    for (int reg = 0; reg < r->R; ++reg) {
        ch->ramp[reg].state = gen[reg] ? REGION_WAITING : REGION_CLEAN;
        ch->ramp[reg].start = 0;
        B += gen[reg] ? 1 : 0;
    }
    ch->B = B;
    memset(&ch->plan, 0, sizeof ch->plan);
    if (B == 0) {
        ch->ended = 1; /* nothing to generate: no pass */
        return IPR_OK;
    }
    const int ipr = iteration > 0;
    IPR_TRY(generation_plan(cfg, B, ipr, &ch->plan, ch->starts));
    ch->adaptive = ipr || cfg->order == IPR_ORDER_ADAPTIVE;
    if (!ch->adaptive) {
        int n = 0;
        if (cfg->order == IPR_ORDER_RANDOM) {
            n = ipr_order_random(r->seed, ch->instance, (uint32_t)iteration, gen, r->R, ch->order);
        } else if (cfg->order == IPR_ORDER_GRAPH) {
            IPR_TRY_ID(n = ipr_order_graph(r->seed, ch->instance, (uint32_t)iteration, gen, r->gh, r->gw, ch->order));
        } else {
            for (int reg = 0; reg < r->R; ++reg)
                if (gen[reg]) ch->order[n++] = (uint16_t)reg;
        }
        IPR_CHECK(n == B, "order: %d regions ordered, %d to generate", n, B);
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* Before a pass: the per-region levels and the batch row (x, t). */
static void gen_fill_row(ipr_runner *r, chain *ch, float *x, float *t) {
    for (int reg = 0; reg < r->R; ++reg) ch->t_cur[reg] = region_level(ch, reg, ch->pass);
    memcpy(x, ch->z, r->chw * sizeof(float));
    /* spec 1.4: the network gets a per-pixel level map, constant on each region */
    for (int y = 0; y < r->H; ++y) {
        const float *tr = ch->t_cur + (size_t)(y / r->patch) * r->gw;
        float *row = t + (size_t)y * r->W;
        for (int gx = 0; gx < r->gw; ++gx)
            for (int k = 0; k < r->patch; ++k) row[gx * r->patch + k] = tr[gx];
    }
    if (r->have_hooks && r->hooks.on_pass)
        r->hooks.on_pass(r->hooks.ctx, ch->instance, ch->iteration, ch->pass, ch->z, ch->t_cur, r->R);
}

/* After a pass whose pooled sigma is in ch->sigma: start the blocks due at this pass and set the levels of the
 * next (ch->t_next); *any_next = some region is still noisy. */
static int gen_decide(ipr_runner *r, chain *ch, int *any_next) {
    const int s = ch->pass;
    /* blocks starting at s: usually one; several when float starts repeat (spec 2.6's degenerate case),
     * and then the several lowest-sigma regions start together (the reference stops choosing instead) */
    while (ch->next_k < ch->B && ch->starts[ch->next_k] == s) {
        int reg = -1;
        if (ch->adaptive) {
            /* spec 2.6 / 9d: argmin of the pooled sigma over the waiting regions, ties to the lowest index */
            for (int q = 0; q < r->R; ++q)
                if (ch->ramp[q].state == REGION_WAITING && (reg < 0 || ch->sigma[q] < ch->sigma[reg])) reg = q;
        } else {
            reg = ch->order[ch->next_k];
        }
        IPR_CHECK(reg >= 0 && ch->ramp[reg].state == REGION_WAITING, "schedule: no waiting region for block %d",
                  ch->next_k);
        ch->ramp[reg].state = REGION_RAMPING;
        ch->ramp[reg].start = s;
        ch->sigma_start[reg] = ch->sigma[reg];
        ch->next_k++;
        if (r->have_hooks && r->hooks.on_choice)
            r->hooks.on_choice(r->hooks.ctx, ch->instance, ch->iteration, s, reg, ch->sigma, r->R);
    }
    *any_next = 0;
    for (int reg = 0; reg < r->R; ++reg) {
        ch->t_next[reg] = region_level(ch, reg, s + 1);
        *any_next |= ch->t_next[reg] > 0.0f;
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* The step-noise key of the chain's current pass (spec 9b: every pixel with t* > 0 draws, even at alpha 0 and
 * in waiting regions, std e^-15). */
static uint32_t step_key(const chain *ch) { return ((uint32_t)ch->iteration << IPR_STEP_BITS) | (uint32_t)ch->pass; }

/* After the transition: count the pass; the generation ends after its last pass (spec 9c: the reference runs
 * every pass; skip_idle ends once all regions are clean and none waits). */
static void gen_advance(ipr_runner *r, chain *ch, int any_next) {
    ch->pass++;
    ch->nfe++;
    if (ch->pass >= ch->plan.max_steps || (r->cfg.skip_idle && !any_next && ch->next_k == ch->B)) ch->ended = 1;
}

/* After a pass with raw output y (d_out, H, W) on the host path: sigma, decisions, noise, transition, clues. */
static int gen_after_pass(ipr_runner *r, chain *ch, const float *y) {
    IPR_TRY(ipr_split_output(r->model->d_out, r->model->patch_size, y, 1, r->H, r->W, NULL, NULL, NULL, ch->sigma));
    int any_next = 0;
    IPR_TRY(gen_decide(r, ch, &any_next));
    IPR_TRY(draw_noise(r, ch, IPR_RNG_STEP_NOISE, step_key(ch), NULL, ch->t_next));
    ipr_transition(ch->z, y, ch->noise, ch->t_cur, ch->t_next, r->C, r->H, r->W, r->patch, r->cfg.alpha,
                   r->cfg.temperature);
    paste_clues(r, ch);
    gen_advance(r, ch, any_next);
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* ---------------- chain life ---------------- */

/* Score the current image into entry k and count changed regions against the previous entry. The score is the one
 * score_ended computed after the pass when there is one (it leaves the image on the host, as this does), else it is
 * computed here: a generation that ended without a pass (nothing to generate), correction mode's entry 0. */
static int chain_record(ipr_runner *r, chain *ch, int k, int generated) {
    const double t0 = ipr_clock_monotonic_s();
    ipr_chain_result *o = ch->out;
    uint8_t valid = 0;
    float error = NAN;
    if (ch->scored) {
        valid = ch->sc_valid;
        error = ch->sc_error;
        ch->scored = 0;
    } else {
        if (r->ds) IPR_TRY(ipr_dsamp_download(r->ds, (int)(ch - r->slots), ch->z));
        IPR_TRY(ipr_task_score_decode(r->task, ch->z, &valid, &error, ch->decoded));
    }
    o->valid[k] = valid;
    o->error[k] = error;
    o->nfe[k] = ch->nfe;
    o->changed[k] = (uint16_t)(k == 0 ? generated : ipr_task_decoded_changed(r->task, ch->decoded_prev, ch->decoded));
    uint8_t *tmp = ch->decoded_prev;
    ch->decoded_prev = ch->decoded;
    ch->decoded = tmp;
    r->score_s += ipr_clock_monotonic_s() - t0;
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* Begin IPR iteration k (spec 3.2): choose the subset, re-noise it at t = 1, keep the rest clean. */
static int chain_begin_iteration(ipr_runner *r, chain *ch, int k) {
    uint8_t gen[IPR_MAX_REGIONS];
    memset(gen, 0, (size_t)r->R);
    const int m = ipr_subset_size(ch->n_refinable, ch->ratio);
    if (m > 0) {
        if (r->have_hooks && r->hooks.subset) {
            if (r->hooks.subset(r->hooks.ctx, ch->instance, k, ch->refinable, ch->n_refinable, m, ch->chosen) !=
                IPR_OK) {
                ipr_error_set(__FILE__, __LINE__, "subset hook failed (iteration %d)", k);
                return IPR_ERR;
            }
        } else {
            ipr_subset_choose(r->seed, ch->instance, (uint32_t)k, ch->refinable, ch->n_refinable, m, ch->selection,
                              r->cfg.selection_mix, ch->sigma_start, ch->chosen);
        }
        for (int i = 0; i < m; ++i) {
            IPR_CHECK(ch->chosen[i] < r->R && !ch->given[ch->chosen[i]] && !gen[ch->chosen[i]],
                      "IPR subset: region %d is not a distinct refinable region", (int)ch->chosen[i]);
            gen[ch->chosen[i]] = 1;
        }
        /* fresh N(0, 1) for the subset (noise_type "random"), keyed by the iteration */
        if (r->ds) {
            IPR_TRY(ipr_dsamp_renoise(r->ds, (int)(ch - r->slots), gen, r->seed, ch->instance, (uint32_t)k));
        } else {
            IPR_TRY(draw_noise(r, ch, IPR_RNG_IPR_NOISE, (uint32_t)k, gen, NULL));
            for (int reg = 0; reg < r->R; ++reg)
                if (gen[reg]) copy_region(r, ch->z, ch->noise, reg);
            paste_clues(r, ch);
        }
    }
    return gen_begin(r, ch, k, gen);
fail:
    return IPR_ERR;
}

/* A chain's instance into a free slot (clues, mask, the known solution, refinable regions), under variant
 * (ratio, selection); nothing generated yet. */
static int chain_setup(ipr_runner *r, chain *ch, int res, uint64_t instance, ipr_chain_result *out, double ratio,
                       ipr_selection selection, int base_only) {
    ch->in_use = 1;
    ch->res = res;
    ch->instance = instance;
    ch->out = out;
    ch->nfe = 0;
    ch->scored = 0;
    ch->ratio = ratio;
    ch->selection = selection;
    ch->base_only = base_only;
    out->instance = instance;
    out->iterations_run = 0;
    out->nfe_saved = 0;
    out->solution_match = IPR_SOLUTION_UNKNOWN;
    ch->solved = 0;
    for (int reg = 0; reg < r->R; ++reg) ch->sigma_start[reg] = NAN;
    /* the instance: clue values and mask (or, in correction mode, the corrupted grid) */
    if (r->have_hooks && r->hooks.instance) {
        IPR_CHECK(r->hooks.instance(r->hooks.ctx, instance, ch->clean, ch->given) == IPR_OK, "instance hook failed");
    } else if (ipr_task_conditional(r->task)) {
        IPR_TRY(ipr_task_instance(r->task, r->seed, instance, ch->clean, ch->given));
        ch->solved = ipr_task_solution(r->task, instance, ch->solution);
    } else {
        memset(ch->clean, 0, r->chw * sizeof(float));
        memset(ch->given, 0, (size_t)r->R);
    }
    ch->n_refinable = 0;
    for (int reg = 0; reg < r->R; ++reg)
        if (!ch->given[reg]) ch->refinable[ch->n_refinable++] = (uint16_t)reg;
    IPR_TRY_ID(ch->ipr_passes = plan_passes(&r->cfg, ipr_subset_size(ch->n_refinable, ratio), 1, ch->starts));
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* Entry 0 is recorded and nothing is left to generate before iteration 1: with K = 0 the chain ends (chain_settle
 * finishes it), else iteration 1 begins. */
static int chain_after_entry0(ipr_runner *r, chain *ch) {
    if (r->cfg.ipr_iterations == 0) {
        ch->ended = 1;
        ch->iteration = 0;
        ch->B = -1; /* marks "recorded" for chain_settle */
        return IPR_OK;
    }
    return chain_begin_iteration(r, ch, 1);
}

static int chain_start(ipr_runner *r, chain *ch, int res, uint64_t instance, ipr_chain_result *out, double ratio,
                       ipr_selection selection, int base_only) {
    IPR_TRY(chain_setup(r, ch, res, instance, out, ratio, selection, base_only));
    if (ipr_task_correction(r->task)) {
        /* spec 3.2 correction: no base generation; entry 0 scores the corrupted grid */
        memcpy(ch->z, ch->clean, r->chw * sizeof(float));
        if (r->ds) IPR_TRY(ipr_dsamp_chain_start(r->ds, (int)(ch - r->slots), ch->clean, ch->given, r->seed, instance, 0));
        IPR_TRY(chain_record(r, ch, 0, 0));
        return chain_after_entry0(r, ch);
    }
    /* z = masked + mask * z_init (spec 2.5; fixtures/README.md) */
    uint8_t gen[IPR_MAX_REGIONS];
    for (int reg = 0; reg < r->R; ++reg) gen[reg] = !ch->given[reg];
    if (r->ds) {
        IPR_TRY(ipr_dsamp_chain_start(r->ds, (int)(ch - r->slots), ch->clean, ch->given, r->seed, instance, 1));
    } else {
        IPR_TRY(draw_noise(r, ch, IPR_RNG_INIT_NOISE, 0, NULL, NULL));
        memcpy(ch->z, ch->noise, r->chw * sizeof(float));
        paste_clues(r, ch);
    }
    return gen_begin(r, ch, 0, gen);
fail:
    return IPR_ERR;
}

/* A chain of a variant that starts from its instance's parked base sample `sn` (ipr_runner_run_variants): entry 0
 * is the base's (`base`, the result its base-only chain recorded), and the state the IPR iterations read (the image,
 * the pooled sigmas, the decoded content, the pass count) is the base's, as if this chain had generated it. */
static int chain_resume(ipr_runner *r, chain *ch, int res, uint64_t instance, ipr_chain_result *out, double ratio,
                        ipr_selection selection, const base_snap *sn, const ipr_chain_result *base) {
    IPR_TRY(chain_setup(r, ch, res, instance, out, ratio, selection, 0));
    memcpy(ch->z, sn->z, r->chw * sizeof(float));
    memcpy(ch->sigma, sn->sigma, (size_t)r->R * sizeof(float));
    memcpy(ch->sigma_start, sn->sigma_start, (size_t)r->R * sizeof(float));
    memcpy(ch->decoded_prev, sn->decoded, r->dec_bytes);
    ch->nfe = sn->nfe;
    if (out != base) {
        out->valid[0] = base->valid[0];
        out->error[0] = base->error[0];
        out->nfe[0] = base->nfe[0];
        out->changed[0] = base->changed[0];
    }
    if (r->ds) {
        const int slot = (int)(ch - r->slots);
        IPR_TRY(ipr_dsamp_chain_start(r->ds, slot, ch->clean, ch->given, r->seed, instance, 0));
        IPR_TRY(ipr_dsamp_upload(r->ds, slot, ch->z));
    }
    return chain_after_entry0(r, ch);
fail:
    return IPR_ERR;
}

/* A base-only chain's generation is recorded: park its state in snaps[ch->res] and free the slot. chain_record
 * left the image on the host (ch->z) and the base's decoded content in decoded_prev. */
static void chain_park(ipr_runner *r, chain *ch) {
    base_snap *sn = &r->snaps[ch->res];
    memcpy(sn->z, ch->z, r->chw * sizeof(float));
    memcpy(sn->sigma, ch->sigma, (size_t)r->R * sizeof(float));
    memcpy(sn->sigma_start, ch->sigma_start, (size_t)r->R * sizeof(float));
    memcpy(sn->decoded, ch->decoded_prev, r->dec_bytes);
    sn->nfe = ch->nfe;
    ch->in_use = 0;
}

/* Finish the chain: repeat the last entry into the skipped ones, copy the image, free the slot. */
static void chain_finish(ipr_runner *r, chain *ch, int last) {
    ipr_chain_result *o = ch->out;
    const int K = r->cfg.ipr_iterations;
    o->iterations_run = last;
    for (int k = last + 1; k <= K; ++k) {
        o->valid[k] = o->valid[last];
        o->error[k] = o->error[last];
        o->nfe[k] = o->nfe[last];
        o->changed[k] = 0;
    }
    if (last < K) o->nfe_saved = (uint32_t)(K - last) * (uint32_t)ch->ipr_passes;
    /* the final grid against the known solution: decoded_prev holds the digits of entry `last` (chain_record) */
    if (ch->solved && ipr_task_reads_digits(r->task))
        o->solution_match = !o->valid[last]                             ? IPR_SOLUTION_INVALID
                            : memcmp(ch->decoded_prev, ch->solution, 81) == 0 ? IPR_SOLUTION_MATCH
                                                                              : IPR_SOLUTION_OTHER;
    if (r->cfg.keep_images && o->image) memcpy(o->image, ch->z, r->chw * sizeof(float));
    ch->in_use = 0;
}

/* Process ended generations until the chain needs a pass (*finished = 0) or is done (*finished = 1). */
static int chain_settle(ipr_runner *r, chain *ch, int *finished) {
    *finished = 0;
    const int K = r->cfg.ipr_iterations;
    while (ch->ended) {
        const int k = ch->iteration;
        if (ch->B >= 0) {
            /* a generation ended: hooks, stats, score */
            if (ch->B > 0) r->ph_generations[k]++;
            if (r->have_hooks && r->hooks.on_generation) {
                if (r->ds && !ch->scored) IPR_TRY(ipr_dsamp_download(r->ds, (int)(ch - r->slots), ch->z));
                r->hooks.on_generation(r->hooks.ctx, ch->instance, k, ch->pass, ch->z);
            }
            IPR_TRY(chain_record(r, ch, k, ch->B));
        }
        if (ch->base_only) {
            chain_park(r, ch);
            *finished = 1;
            return IPR_OK;
        }
        const int stop = r->cfg.early_stop && k >= 1 && ch->out->changed[k] == 0;
        if (k >= K || stop) {
            chain_finish(r, ch, k);
            *finished = 1;
            return IPR_OK;
        }
        IPR_TRY(chain_begin_iteration(r, ch, k + 1));
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* ================================ the run ================================ */

static int job_fill(void *vr, int b, int worker) {
    ipr_runner *r = vr;
    (void)worker;
    gen_fill_row(r, &r->slots[r->row_slot[b]], r->bx + (size_t)b * r->chw, r->bt + (size_t)b * r->hw);
    return IPR_OK;
}

static int job_step(void *vr, int b, int worker) {
    ipr_runner *r = vr;
    (void)worker;
    return gen_after_pass(r, &r->slots[r->row_slot[b]], r->by + (size_t)b * r->d_out * r->hw);
}

/* Run a per-row job on the pool; with hooks (tests record in order, unsynchronised) on this thread alone. */
static int pool_rows(ipr_runner *r, ipr_pool_fn fn, int B) {
    if (r->have_hooks) {
        for (int b = 0; b < B; ++b) IPR_TRY(fn(r, b, 0));
        return IPR_OK;
    }
    return ipr_pool_run(r->pool, fn, r, B);
fail:
    return IPR_ERR;
}

/* Score the generation that ended in score_slot[b] on the worker's own scorer, for chain_record. */
static int job_score(void *vr, int b, int worker) {
    ipr_runner *r = vr;
    chain *ch = &r->slots[r->score_slot[b]];
    const int cap = r->score_local_threads ? ipr_cpu_set_local_threads(r->score_local_threads) : 0;
    const int rc = ipr_task_scorer_score_decode(r->scorers[worker], ch->z, &ch->sc_valid, &ch->sc_error, ch->decoded);
    if (r->score_local_threads) ipr_cpu_set_local_threads(cap);
    ch->scored = rc == IPR_OK;
    return rc;
}

/* After a pass over the B rows in row_slot: score every generation that pass ended (what chain_settle would score
 * first: ended, B >= 0), all at once on the pool, where chain_settle would take them one by one on this thread
 * (13 ms a Sudoku grid: ~100 s a batch of 256 chains at K = 30). Each image is scored alone by the same network, so
 * the numbers do not depend on the threads; chain_settle then records them in row order, hooks and progress as
 * before. On the GPU path the images come down first, here (no CUDA call on the pool's threads). */
static int score_ended(ipr_runner *r, int B) {
    const double t0 = ipr_clock_monotonic_s();
    int n = 0;
    for (int b = 0; b < B; ++b) {
        const chain *ch = &r->slots[r->row_slot[b]];
        if (ch->ended && ch->B >= 0) r->score_slot[n++] = r->row_slot[b];
    }
    if (n == 0) return IPR_OK;
    if (r->ds)
        for (int i = 0; i < n; ++i) IPR_TRY(ipr_dsamp_download(r->ds, r->score_slot[i], r->slots[r->score_slot[i]].z));
    /* items on several threads at once: one GEMM thread each (ops_cpu.h), not an OpenMP team of every core each */
    r->score_local_threads = n > 1 && !r->have_hooks && ipr_pool_threads(r->pool) > 1 ? 1 : 0;
    IPR_TRY(pool_rows(r, job_score, n));
    r->pool_scored += (uint64_t)n;
    r->score_s += ipr_clock_monotonic_s() - t0;
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* One pass of the B rows in row_slot on the GPU path: levels up, forward, pooled sigma down, the block starts
 * and next levels decided here, then the transition of every row in one kernel. t1, t2 bracket the forward. */
static int gpu_pass(ipr_runner *r, int B, double *t1, double *t2) {
    const int R = r->R;
    for (int b = 0; b < B; ++b) {
        chain *ch = &r->slots[r->row_slot[b]];
        for (int reg = 0; reg < R; ++reg) ch->t_cur[reg] = region_level(ch, reg, ch->pass);
        memcpy(r->lv_cur + (size_t)b * R, ch->t_cur, (size_t)R * sizeof(float));
    }
    *t1 = ipr_clock_monotonic_s();
    IPR_TRY(ipr_dsamp_forward(r->ds, r->row_slot, r->lv_cur, B, r->bsigma));
    *t2 = ipr_clock_monotonic_s();
    int any[IPR_DENOISER_MAX_BATCH];
    for (int b = 0; b < B; ++b) {
        chain *ch = &r->slots[r->row_slot[b]];
        memcpy(ch->sigma, r->bsigma + (size_t)b * R, (size_t)R * sizeof(float));
        IPR_TRY(gen_decide(r, ch, &any[b]));
        memcpy(r->lv_next + (size_t)b * R, ch->t_next, (size_t)R * sizeof(float));
        r->brows[b].instance = ch->instance;
        r->brows[b].key = step_key(ch);
        r->brows[b].slot = r->row_slot[b];
    }
    IPR_TRY(ipr_dsamp_step(r->ds, r->brows, r->lv_cur, r->lv_next, B, r->seed, r->cfg.alpha, r->cfg.temperature));
    for (int b = 0; b < B; ++b) gen_advance(r, &r->slots[r->row_slot[b]], any[b]);
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* What a drive() call runs: n_jobs chains, job j started by start(r, ch, j, ctx) into a free slot; each finished
 * job adds `counts` to *done and reports progress against `total`. */
typedef struct {
    int n_jobs;
    int (*start)(ipr_runner *r, chain *ch, int j, void *ctx);
    void *ctx;
    int counts;               /* 1: a finished job is a finished result; 0: a parked base (no progress) */
    int *done, total;
    ipr_progress_fn progress;
    void *pctx;
    double *last_report;
} drive_jobs;

static int drive(ipr_runner *r, const drive_jobs *jb) {
    const int MB = r->max_batch;
    int next = 0, finished = 0;
    while (finished < jb->n_jobs) {
        double t0 = ipr_clock_monotonic_s();
        /* fill free slots; a chain with nothing to run finishes at once */
        for (int s = 0; s < MB && next < jb->n_jobs; ++s) {
            chain *ch = &r->slots[s];
            while (!ch->in_use && next < jb->n_jobs) {
                IPR_TRY(jb->start(r, ch, next++, jb->ctx));
                int fin = 0;
                IPR_TRY(chain_settle(r, ch, &fin));
                if (fin) {
                    ++finished;
                    *jb->done += jb->counts;
                    if (jb->progress && jb->counts) jb->progress(*jb->done, jb->total, jb->pctx);
                }
            }
        }
        /* one forward over every chain in flight, rows in slot order */
        int B = 0;
        for (int s = 0; s < MB; ++s)
            if (r->slots[s].in_use) r->row_slot[B++] = s;
        if (B == 0) continue;
        double t1, t2;
        if (r->ds) {
            IPR_TRY(gpu_pass(r, B, &t1, &t2));
        } else {
            IPR_TRY(pool_rows(r, job_fill, B));
            t1 = ipr_clock_monotonic_s();
            IPR_TRY(ipr_denoiser_forward(r->den, r->bx, r->bt, B, r->by));
            t2 = ipr_clock_monotonic_s();
        }
        r->forward_s += t2 - t1;
        r->forwards++;
        r->images += (uint64_t)B;
        int phase[4096];
        for (int b = 0; b < B; ++b) {
            phase[b] = r->slots[r->row_slot[b]].iteration;
            r->ph_passes[phase[b]]++;
        }
        /* per chain, in parallel: block starts, noise, transition (chains share nothing); on the GPU path
         * gpu_pass did it */
        if (!r->ds) IPR_TRY(pool_rows(r, job_step, B));
        /* the generations that ended, scored in parallel */
        IPR_TRY(score_ended(r, B));
        /* then in order: ended generations are recorded and the next iteration set up (progress is reported in
         * order) */
        for (int b = 0; b < B; ++b) {
            chain *ch = &r->slots[r->row_slot[b]];
            int fin = 0;
            IPR_TRY(chain_settle(r, ch, &fin));
            if (fin) {
                ++finished;
                *jb->done += jb->counts;
                if (jb->progress && jb->counts) jb->progress(*jb->done, jb->total, jb->pctx);
            }
        }
        const double t3 = ipr_clock_monotonic_s();
        r->host_s += (t1 - t0) + (t3 - t2);
        /* chains of a batch run in lockstep and finish together: report at least every
         * IPR_RUNNER_REPORT_S while working, so that a caller's heartbeat and status stay fresh */
        if (jb->progress && t3 - *jb->last_report >= IPR_RUNNER_REPORT_S) {
            jb->progress(*jb->done, jb->total, jb->pctx);
            *jb->last_report = t3;
        }
        /* charge the cycle's time evenly to the chains that shared it, by their phase */
        const double share = (t3 - t0) / B;
        for (int b = 0; b < B; ++b) r->ph_seconds[phase[b]] += share;
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* the arguments of one run_variants call, for the job starters */
typedef struct {
    const uint64_t *instances;
    int n, first, count;           /* the wave: instances [first, first + count) */
    const ipr_variant *variants;
    int n_variants;
    ipr_chain_result *results;     /* (n_variants, n) */
} variants_run;

/* every chain independent (one variant, or what cannot share a base): job j = (variant j / n, instance j % n) */
static int start_full(ipr_runner *r, chain *ch, int j, void *vctx) {
    const variants_run *v = vctx;
    const int var = j / v->n, i = j % v->n;
    return chain_start(r, ch, i, v->instances[i], &v->results[(size_t)var * v->n + i], v->variants[var].ipr_ratio,
                       v->variants[var].selection, 0);
}

/* the wave's base samples, recorded into variant 0's results and parked in snaps[j] */
static int start_base(ipr_runner *r, chain *ch, int j, void *vctx) {
    const variants_run *v = vctx;
    const int i = v->first + j;
    return chain_start(r, ch, j, v->instances[i], &v->results[i], v->variants[0].ipr_ratio, v->variants[0].selection,
                       1);
}

/* the wave's IPR chains, variant-major: job j = (variant j / count, wave instance j % count) */
static int start_resume(ipr_runner *r, chain *ch, int j, void *vctx) {
    const variants_run *v = vctx;
    const int var = j / v->count, w = j % v->count, i = v->first + w;
    return chain_resume(r, ch, i, v->instances[i], &v->results[(size_t)var * v->n + i], v->variants[var].ipr_ratio,
                        v->variants[var].selection, &r->snaps[w], &v->results[i]);
}

int ipr_runner_run_variants(ipr_runner *r, uint64_t seed, const uint64_t *instances, int n, const ipr_variant *variants,
                            int n_variants, ipr_chain_result *results, ipr_progress_fn progress, void *ctx) {
    IPR_CHECK(r && n >= 0 && n_variants >= 1 && variants && (n == 0 || (instances && results)),
              "runner run: bad arguments");
    const int K = r->cfg.ipr_iterations, MB = r->max_batch;
    IPR_CHECK((int64_t)n * n_variants <= INT_MAX, "runner run: %d instances x %d variants is too many chains", n,
              n_variants);
    for (int v = 0; v < n_variants; ++v) {
        IPR_CHECK(variants[v].ipr_ratio > 0.0 && variants[v].ipr_ratio <= 1.0,
                  "variant %d: ipr_ratio %g outside (0, 1]", v, variants[v].ipr_ratio);
        IPR_CHECK((unsigned)variants[v].selection <= IPR_SELECT_MIX, "variant %d: unknown selection %d", v,
                  (int)variants[v].selection);
    }
    for (int q = 0; q < n * n_variants; ++q) {
        const ipr_chain_result *o = &results[q];
        const int i = q % (n ? n : 1);
        IPR_CHECK(instances[i] < (1ull << 48), "instance %llu is not below 2^48", (unsigned long long)instances[i]);
        IPR_CHECK(o->iterations == K && o->valid && o->error && o->nfe && o->changed,
                  "result %d was not allocated for %d iterations (ipr_chain_result_alloc)", q, K);
        IPR_CHECK(!r->cfg.keep_images || o->image, "result %d has no image buffer but keep_images is set", q);
    }
    IPR_CHECK(!r->ds || !r->have_hooks || (!r->hooks.noise && !r->hooks.on_pass),
              "the noise and on_pass hooks need the host sampler (gpu_sampler 0)");
    r->seed = seed;
    memset(r->ph_seconds, 0, (size_t)(K + 1) * sizeof(double));
    memset(r->ph_generations, 0, (size_t)(K + 1) * sizeof(uint64_t));
    memset(r->ph_passes, 0, (size_t)(K + 1) * sizeof(uint64_t));
    r->forward_s = r->host_s = r->score_s = 0.0;
    r->forwards = r->images = r->pool_scored = 0;
    for (int s = 0; s < MB; ++s) r->slots[s].in_use = 0;

    int done = 0;
    const int total = n * n_variants;
    double last_report = ipr_clock_monotonic_s();
    variants_run v = {instances, n, 0, n, variants, n_variants, results};
    drive_jobs jb = {0, NULL, &v, 1, &done, total, progress, ctx, &last_report};
    /* A shared base needs IPR iterations to share it with, a generation to share (correction mode has none) and
     * no hooks (a test's hooks see every chain's generations) */
    if (n_variants == 1 || K == 0 || ipr_task_correction(r->task) || r->have_hooks) {
        jb.n_jobs = total;
        jb.start = start_full;
        IPR_TRY(drive(r, &jb));
        return IPR_OK;
    }
    /* waves of max_batch instances: their base samples (one batch), then every variant's iterations from them */
    for (v.first = 0; v.first < n; v.first += MB) {
        v.count = n - v.first < MB ? n - v.first : MB;
        jb.n_jobs = v.count;
        jb.start = start_base;
        jb.counts = 0;
        IPR_TRY(drive(r, &jb));
        jb.n_jobs = v.count * n_variants;
        jb.start = start_resume;
        jb.counts = 1;
        IPR_TRY(drive(r, &jb));
    }
    return IPR_OK;
fail:
    ipr_error_context("sampler");
    return IPR_ERR;
}

int ipr_runner_run(ipr_runner *r, uint64_t seed, const uint64_t *instances, int n, ipr_chain_result *results,
                   ipr_progress_fn progress, void *ctx) {
    IPR_CHECK(r, "runner run: bad arguments");
    const ipr_variant own = {r->cfg.ipr_ratio, r->cfg.selection};
    return ipr_runner_run_variants(r, seed, instances, n, &own, 1, results, progress, ctx);
fail:
    return IPR_ERR;
}
