/* plan.h: a config resolved once into what a run needs: each checkpoint read (architecture, size, SHA-256), every
 * grid point's sampler settings, the task and denoiser a worker opens, the run's operational settings, and the work
 * units (model, selection, fraction, replicate, instance block) with their deterministic ids, estimated cost in
 * network passes, the hand-out order and static shard maps. Data flows one way: config -> plan -> the units of a
 * run (exec, coord, rundir, merge), which take the plan and never the config. */
#ifndef IPR_PIPELINE_PLAN_H
#define IPR_PIPELINE_PLAN_H

#include <stdint.h>

#include "ipr/model.h"
#include "ipr/sampler.h"
#include "pipeline/limits.h"

typedef struct pl_config pl_config; /* config.h: what pl_plan_build resolves */

typedef struct {
    uint64_t id;        /* first 8 bytes of SHA-256(config hash, coordinates): joins journals and tables */
    int index;          /* position in plan order (model, selection, fraction, replicate, block) */
    int model, selection, fraction, replicate; /* indices into the config's lists */
    uint64_t seed;      /* cfg->seeds[replicate] */
    uint64_t first;     /* first instance */
    uint32_t count;     /* instances */
    int group;          /* one (model, selection, fraction, replicate) */
    int family;         /* one (model, replicate, instance block): its units (every selection and fraction) share
                           each instance's base sample when they run in one batch (exec.c) */
    double nfe;         /* estimated network passes (one image through the net = 1) of all its chains; with a
                           shared base, each unit of a family carries its share of the base generation */
} pl_unit;

/* What a run's tables are indexed by: everything merge, status and analysis need, without the config. */
typedef struct {
    ipr_bench_kind bench;
    int iterations;   /* K */
    int keep_images;
    int limited;
    int C, H, W;      /* image shape */
    int n_models;
    char model_name[PL_MAX_MODELS][PL_NAME_MAX];
    char model_sha256[PL_MAX_MODELS][65];
    int n_selections;
    ipr_selection selections[PL_MAX_SELECTIONS];
    int n_fractions;
    double fractions[PL_MAX_FRACTIONS];
    int n_seeds;
    uint64_t seeds[PL_MAX_SEEDS];
    char config_sha256[65];
} pl_grid;

/* One checkpoint, as pl_plan_build read it (the only read of its header and bytes before a worker opens it). */
typedef struct {
    char path[PL_PATH_MAX];   /* as resolved for this process */
    ipr_model_info info;      /* architecture: backbone, image size, channels, patch size (root attributes) */
    int64_t size_bytes;
} pl_model;

/* The config resolved for the units of a run: everything a worker, the coordinator and the run directory need.
 * Heap memory of the plan (task's strings point into it); NULL in a plan read from plan.h5. */
typedef struct {
    char name[PL_NAME_MAX];      /* the run's name (run.json) */
    pl_model model[PL_MAX_MODELS];
    /* the task every rank opens (instances and scorer); its strings point at the copies below */
    ipr_task_config task;
    char mnist_dir[PL_PATH_MAX], scorer_path[PL_PATH_MAX], instances_file[PL_PATH_MAX], instances_sha256[65];
    /* the denoiser every rank opens per checkpoint: device, gpu and cpu_threads are set from the rank's binding */
    ipr_denoiser_config denoiser;
    /* per grid point (selection, fraction; the same for every model and seed): host_threads and gpu_sampler are
     * set per rank */
    ipr_sampler_config sampler[PL_MAX_SELECTIONS][PL_MAX_FRACTIONS];
    /* device binding (gpu.h) */
    ipr_device_kind device;      /* device.kind: auto, cpu or cuda */
    int cpu_threads, host_threads; /* 0: the node's cores divided between its ranks */
    int gpu_sampler;             /* device.sampler gpu: chains on the GPU on CUDA ranks */
    int allow_gpu_sharing;
    /* the coordinator (coord.h) */
    int chunk_units;             /* units per request (pl_plan_chunk_units) */
    int chunk_explicit;          /* run.units_per_request set it: the coordinator keeps it whatever the ranks */
    int family_units;            /* units sharing a base sample (pl_plan_shared_variants): a request keeps them */
    int retries;
    int has_max_failures, max_failures;
    double progress_interval;
} pl_resolved;

typedef struct {
    pl_grid grid;
    pl_resolved *resolved; /* pl_plan_build's; NULL after pl_plan_load */
    int n_units;
    pl_unit *units;     /* plan order */
    int *handout;       /* unit indices by family, most expensive family first (LPT), a family's units together
                           in plan order */
    int *by_id;         /* unit indices sorted by id (pl_plan_find) */
    int n_groups;
    int n_families;
    double *family_nfe; /* (n_families) estimated passes of each family */
    double nfe_total;
    double base_nfe[PL_MAX_MODELS];                   /* per chain: the initial generation */
    double iter_nfe[PL_MAX_MODELS][PL_MAX_FRACTIONS]; /* per chain: one refinement iteration */
    int regions[PL_MAX_MODELS];                       /* regions per image */
    double refinable[PL_MAX_MODELS];                  /* expected regions to generate / refine */
    ipr_backbone backbone[PL_MAX_MODELS];             /* U-Net or DiT (the reference rates are the U-Net's) */
} pl_plan;

/* Resolve and expand cfg. Each checkpoint is read here, once: its architecture (which must fit the benchmark: the
 * error names the key), size and SHA-256. */
int pl_plan_build(const pl_config *cfg, pl_plan *out);
/* The same with the checkpoints' SHA-256 given (rank 0's plan, broadcast): the other ranks of a run read each
 * checkpoint's architecture but do not hash its bytes again. */
int pl_plan_build_hashed(const pl_config *cfg, const char (*model_sha256)[65], pl_plan *out);
void pl_plan_free(pl_plan *p);
/* plan.h5 in the run directory: the grid and the units, so that merge/status/verify need no config. */
int pl_plan_save(const pl_plan *p, const char *path);
int pl_plan_load(const char *path, pl_plan *p);

/* Static partition into nshards by LPT on the estimated cost of families (a family's units stay together, so that
 * they share base samples): shard_of[u] for every unit. */
void pl_plan_shards(const pl_plan *p, int nshards, int *shard_of);
/* "I/N" with 0 <= I < N (--shard). */
int pl_parse_shard(const char *text, int *shard, int *nshards);
/* Index of the unit with this id, or -1. */
int pl_plan_find(const pl_plan *p, uint64_t id);
/* Units a rank takes per request: run.units_per_request, else enough to fill device.batch with base samples: with a
 * shared base (K > 0, generate mode) that many instance blocks times the family's selections x fractions
 * (pl_plan_build keeps it as resolved->chunk_units for the coordinator). */
int pl_plan_chunk_units(const pl_config *cfg);
/* Units of one family that share a base sample: selections x fractions when IPR iterations follow a base generation
 * (K > 0, generate mode), else 1 (nothing to share). */
int pl_plan_shared_variants(const pl_config *cfg);
/* Reference passes/s of one H200 for the full-size model (reference-throughput.md), 0 if unknown. */
double pl_reference_rate(const pl_config *cfg);

#endif
