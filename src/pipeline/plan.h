/* plan.h: a config expanded into work units (model, selection, fraction, replicate, instance block), their
 * deterministic ids, estimated cost in network passes, the hand-out order and static shard maps. */
#ifndef IPR_PIPELINE_PLAN_H
#define IPR_PIPELINE_PLAN_H

#include <stdint.h>

#include "pipeline/config.h"

typedef struct {
    uint64_t id;        /* first 8 bytes of SHA-256(config hash, coordinates): joins journals and tables */
    int index;          /* position in plan order (model, selection, fraction, replicate, block) */
    int model, selection, fraction, replicate; /* indices into the config's lists */
    uint64_t seed;      /* cfg->seeds[replicate] */
    uint64_t first;     /* first instance */
    uint32_t count;     /* instances */
    int group;          /* one (model, selection, fraction, replicate): a runner call may mix its units */
    double nfe;         /* estimated network passes (one image through the net = 1) of all its chains */
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

typedef struct {
    pl_grid grid;
    int n_units;
    pl_unit *units;     /* plan order */
    int *handout;       /* unit indices, most expensive first (LPT), ties in plan order */
    int *by_id;         /* unit indices sorted by id (pl_plan_find) */
    int n_groups;
    double nfe_total;
    double base_nfe[PL_MAX_MODELS];                   /* per chain: the initial generation */
    double iter_nfe[PL_MAX_MODELS][PL_MAX_FRACTIONS]; /* per chain: one refinement iteration */
    int regions[PL_MAX_MODELS];                       /* regions per image */
    double refinable[PL_MAX_MODELS];                  /* expected regions to generate / refine */
    ipr_backbone backbone[PL_MAX_MODELS];             /* U-Net or DiT (the reference rates are the U-Net's) */
} pl_plan;

/* Expand cfg (its checkpoints are read for their patch size). */
int pl_plan_build(const pl_config *cfg, pl_plan *out);
void pl_plan_free(pl_plan *p);
/* plan.h5 in the run directory: the grid and the units, so that merge/status/verify need no config. */
int pl_plan_save(const pl_plan *p, const char *path);
int pl_plan_load(const char *path, pl_plan *p);

/* Static partition into nshards by LPT on the estimated cost: shard_of[u] for every unit. */
void pl_plan_shards(const pl_plan *p, int nshards, int *shard_of);
/* "I/N" with 0 <= I < N (--shard). */
int pl_parse_shard(const char *text, int *shard, int *nshards);
/* Index of the unit with this id, or -1. */
int pl_plan_find(const pl_plan *p, uint64_t id);
/* Units a rank takes per request: run.units_per_request, else enough to fill device.batch. */
int pl_plan_chunk_units(const pl_config *cfg);
/* Reference passes/s of one H200 for the full-size model (reference-throughput.md), 0 if unknown. */
double pl_reference_rate(const pl_config *cfg);

#endif
