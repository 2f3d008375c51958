/* config.h: the `ipr run` configuration: a YAML file read through libyaml against a schema table (key,
 * type, range, default), `--set key=value` overrides, and one canonical JSON form whose SHA-256 names it. */
#ifndef IPR_PIPELINE_CONFIG_H
#define IPR_PIPELINE_CONFIG_H

#include <stdint.h>

#include "ipr/bench.h"
#include "ipr/instances.h"
#include "ipr/sampler.h"
#include "ipr/unet_cuda.h"
#include "pipeline/json.h"
#include "pipeline/limits.h"

#define PL_MAX_SETS 256 /* --set options per command */

typedef enum { PL_MODE_GENERATE = 0, PL_MODE_CORRECTION = 1 } pl_mode;

/* The schema: one row per key. Values are YAML scalars (or flow/block sequences for list keys), read
 * against the row's type only: YAML's implicit typing is never consulted. */
typedef enum { PL_T_STR, PL_T_ENUM, PL_T_INT, PL_T_U64, PL_T_FLOAT, PL_T_BOOL, PL_T_PATH } pl_type;

typedef struct {
    const char *key;      /* dotted: "ipr.fractions" is `ipr: {fractions: ...}` */
    pl_type type;
    int list;             /* 1: a list (a single scalar is taken as a list of one) */
    int nullable;         /* 1: null / ~ means "not set" */
    int semantic;         /* 1: part of the hashed config (results depend on it) */
    const char *def;      /* the default as YAML text; NULL = required */
    double lo, hi;        /* numeric range */
    int lo_open, hi_open; /* 1: the bound itself is excluded */
    const char *choices;  /* PL_T_ENUM: "a|b|c" */
    int max_items;        /* lists */
    const char *help;
} pl_key;

const pl_key *pl_config_schema(int *n);

/* The resolved configuration (plain data). Paths are as resolved for this process (relative paths in
 * the file are taken from the file's directory, those of --set from the working directory). The units of a run
 * never read it: pl_plan_build (plan.h) resolves it into the plan they take. */
typedef struct pl_config {
    char name[PL_NAME_MAX];
    ipr_bench_kind bench;
    ipr_split split;
    ipr_sudoku_difficulty difficulty;
    uint64_t data_seed;
    pl_mode mode;
    int correction_swaps;
    uint64_t instance_start;
    int64_t instance_count;
    int per_unit;                                  /* instances per work unit */
    int has_instances_file;                        /* instances.file: instance i is row i of it */
    char instances_file[PL_PATH_MAX];
    ipr_instances_format instances_format;         /* as read (never auto) */
    char instances_sha256[65];                     /* of the file's bytes (also in resolved_json) */
    uint64_t instances_rows;                       /* data rows of the file */
    uint64_t instances_solved;                     /* sudoku: selected rows with a known solution */
    double instances_mean_given;                   /* sudoku: mean clue count of the selected rows (ipr plan) */
    int n_models;
    char model_path[PL_MAX_MODELS][PL_PATH_MAX];
    char model_name[PL_MAX_MODELS][PL_NAME_MAX];   /* file name without .h5: the models' labels */
    int has_scorer;
    char scorer_path[PL_PATH_MAX];
    int has_mnist_dir;
    char mnist_dir[PL_PATH_MAX];
    ipr_device_kind device;                        /* device.kind: auto, cpu or cuda */
    ipr_precision precision;
    int batch;
    int cpu_threads;                               /* 0: cores of the node / ranks on the node */
    int host_threads;                              /* sampler host threads; 0: likewise, at most 16 */
    int gpu_sampler;                               /* device.sampler gpu: chains on the GPU on CUDA ranks */
    int allow_gpu_sharing;
    ipr_sampler_config sampler;                    /* ipr_ratio and selection are set per unit */
    int n_fractions;
    double fractions[PL_MAX_FRACTIONS];
    int n_selections;
    ipr_selection selections[PL_MAX_SELECTIONS];
    int n_seeds;
    uint64_t seeds[PL_MAX_SEEDS];
    int keep_images;
    int retries;
    int has_max_failures;
    int max_failures;
    int has_units_per_request;
    int units_per_request;
    double progress_interval;
    int has_passes_per_s;
    double passes_per_s;
    int limited;                                   /* made with --limit: marked in every output */

    char *resolved_json;    /* canonical JSON of the semantic keys: the hashed bytes */
    char *operational_json; /* canonical JSON of the other keys */
    char *sources_json;     /* where each key's value came from: "default", "FILE:LINE", "--set" */
    char sha256[65];        /* SHA-256 of resolved_json */
    char file[PL_PATH_MAX]; /* the config file as given */
    char where_model[PL_PATH_MAX + 32], where_scorer[PL_PATH_MAX + 32], where_mnist[PL_PATH_MAX + 32]; /* "FILE:LINE" */
    char where_instances[PL_PATH_MAX + 32];
} pl_config;

/* Parse `yaml` (len bytes; the contents of `path`, used for messages and relative paths; NULL = read
 * `path`), apply `sets` ("key=value", value in YAML flow syntax), cap instances.count at `limit` when
 * limit > 0, validate and resolve. On error the message names the key, the file and the line. */
int pl_config_load(const char *path, const char *yaml, size_t len, char *const *sets, int n_sets, int64_t limit,
                   pl_config *out);
void pl_config_free(pl_config *cfg);
/* Checks that need the files: every checkpoint, the scorer and the MNIST directory exist (pl_plan_build then reads
 * each checkpoint, once, and checks that it fits the benchmark). Errors name the key. */
int pl_config_check_files(const pl_config *cfg);

/* The sampler settings of one grid point (pl_plan_build resolves every grid point's once). */
void pl_config_sampler(const pl_config *cfg, double fraction, ipr_selection sel, ipr_sampler_config *out);

/* The schema as a Markdown table (README, `ipr run --help-config`). */
int pl_config_schema_markdown(char **text);

#endif
