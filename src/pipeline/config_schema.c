/* config_schema.c: the keys of the `ipr run` configuration (type, range, default, help: one row each), their
 * lookup with suggestions for near misses, and the Markdown table of `ipr run --help-config`. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>

#include "ipr/sampler.h"
#include "pipeline/config_internal.h"
#include "pipeline/json.h"
#include "sampler/settings.h"

/* The schema. Defaults are the reference's MNIST Sudoku hard settings (spec 3.3) where the key has one. A sampler
 * setting's range and default come from its row in the sampler's settings table (IPR_SETTING_* of
 * src/sampler/settings.h), never a copy, except where a comment says why the key differs; the denoiser's limits
 * come from include/ipr/sampler.h. resolve() runs ipr_sampler_config_validate on every grid point: a config the
 * sampler would refuse fails here. Fields left out are 0 / NULL: not a list, not nullable, not hashed, required (no
 * default), no range. */
const pl_key cfg_keys[PL_CONFIG_KEYS] = {
    {.key = "name", .type = PL_T_STR, .def = "ipr-run",
     .help = "label of the run (run directory names, summaries)"},
    {.key = "benchmark", .type = PL_T_ENUM, .semantic = 1, .choices = "sudoku|even_pixels|counting_polygons",
     .help = "the benchmark (spec 4); `mnist_sudoku` is read as sudoku"},
    {.key = "split", .type = PL_T_ENUM, .semantic = 1, .def = "test", .choices = "train|test",
     .help = "instance split"},
    {.key = "difficulty", .type = PL_T_ENUM, .semantic = 1, .def = "hard", .choices = "easy|medium|hard|any",
     .help = "Sudoku clue count: easy 54-80, medium 27-53, hard 0-26 (sudoku only)"},
    {.key = "data_seed", .type = PL_T_U64, .semantic = 1, .def = "0", .hi = 9223372036854775807.0,
     .help = "seed of the instance generator (`ipr datagen --seed`)"},
    {.key = "mode", .type = PL_T_ENUM, .semantic = 1, .def = "generate", .choices = "generate|correction",
     .help = "generate from clues, or correct a corrupted solved grid (sudoku only, spec 3.2)"},
    {.key = "correction_swaps", .type = PL_T_INT, .semantic = 1, .def = "5", .lo = 1, .hi = 40,
     .help = "swaps that corrupt the grid in correction mode"},
    {.key = "instances.start", .type = PL_T_U64, .semantic = 1, .def = "0", .hi = 9223372036854775807.0,
     .help = "index of the first instance (with instances.file: the first row, 0-based)"},
    {.key = "instances.count", .type = PL_T_INT, .nullable = 1, .semantic = 1, .def = "null", .lo = 1, .hi = 1e9,
     .help = "number of instances; required, except with instances.file (null: every row from instances.start)"},
    {.key = "instances.file", .type = PL_T_PATH, .nullable = 1, .semantic = 1, .def = "null",
     .help = "instances from a file instead of the generator (no data_seed, difficulty, split): Sudoku puzzles (text "
             "or CSV) " "or an `ipr datagen` file of the benchmark; instance i = row i"},
    {.key = "instances.format", .type = PL_T_ENUM, .semantic = 1, .def = "auto", .choices = "auto|text|csv|datagen",
     .help = "format of instances.file (auto: detected; the hashed config holds the format read)"},
    {.key = "instances.file_sha256", .type = PL_T_STR, .nullable = 1, .semantic = 1, .def = "null",
     .help = "SHA-256 of instances.file, computed (never set by hand): a changed file changes config_sha256"},
    {.key = "instances.per_unit", .type = PL_T_INT, .semantic = 1, .def = "16", .lo = 1, .hi = 65536,
     .help = "instances per work unit (the unit of scheduling, commit and resume)"},
    {.key = "model.checkpoint", .type = PL_T_PATH, .list = 1, .semantic = 1, .max_items = PL_MAX_MODELS,
     .help = "SRM checkpoint(s); a list makes the model a grid axis"},
    {.key = "scorer", .type = PL_T_PATH, .nullable = 1, .semantic = 1, .def = "null",
     .help = "scorer network: digit classifier (sudoku) or polygons classifier; null for even_pixels"},
    {.key = "mnist_dir", .type = PL_T_PATH, .nullable = 1, .semantic = 1, .def = "null",
     .help = "MNIST IDX files (null: the shipped datasets/mnist)"},
    {.key = "device.kind", .type = PL_T_ENUM, .semantic = 1, .def = "auto", .choices = "auto|cpu|cuda",
     .help = "auto: a GPU per rank when there are enough, else the CPU"},
    {.key = "device.precision", .type = PL_T_ENUM, .semantic = 1, .def = "fp32", .choices = "fp32|tf32|bf16",
     .help = "CUDA GEMM precision"},
    {.key = "device.batch", .type = PL_T_INT, .def = "16", .lo = 1, .hi = IPR_DENOISER_MAX_BATCH,
     .help = "chains in flight per rank (images per forward)"},
    {.key = "device.cpu_threads", .type = PL_T_INT, .def = "0", .hi = 1024,
     .help = "BLAS threads per rank on the CPU; 0 = the node's cores / ranks on the node"},
    {.key = "device.host_threads", .type = PL_T_INT, .lo = IPR_SETTING_LO(host_threads),
     .def = IPR_SETTING_DEF(host_threads), .hi = 16, /* per rank: the sampler would take up to 256 */
     .help = "threads per rank for the sampler's host work between passes; 0 = the node's cores / ranks on the node"},
    {.key = "device.sampler", .type = PL_T_ENUM, .def = "host", .choices = "host|gpu",
     .help = "where a CUDA rank's chains live between passes: host (noise and transitions on the CPU) or gpu (kernels; "
             "the same numbers up to the rounding of CUDA's log/sin/cos); a CPU rank always uses host"},
    {.key = "device.allow_gpu_sharing", .type = PL_T_BOOL, .def = "false",
     .help = "let two ranks of a node use the same GPU"},
    {.key = "sampler.order", .type = PL_T_ENUM, .semantic = 1, .def = IPR_SETTING_DEF(order),
     .choices = "parallel|random|graph|adaptive",
     .help = "base generation order (spec 2.6)"},
    {.key = "sampler.steps_per_region", .type = PL_T_INT, .semantic = 1, IPR_SETTING_NUMBERS(steps_per_region),
     .help = "p: steps per region (spec 3.1)"},
    {.key = "sampler.overlap", .type = PL_T_FLOAT, .semantic = 1, IPR_SETTING_NUMBERS(overlap),
     .help = "o: overlap of consecutive regions"},
    {.key = "sampler.max_steps", .type = PL_T_INT, .semantic = 1, IPR_SETTING_NUMBERS(max_steps),
     .help = "total steps of the parallel/random/graph orders; 0 = derived from p and o"},
    {.key = "sampler.skip_idle", .type = PL_T_BOOL, .semantic = 1, .def = IPR_SETTING_DEF(skip_idle),
     .help = "end a generation at the first pass where every region is clean (the reference runs idle passes, spec "
             "9c)"},
    {.key = "sampler.alpha", .type = PL_T_FLOAT, .semantic = 1, IPR_SETTING_NUMBERS(alpha),
     .help = "stochasticity (spec 2.5)"},
    {.key = "sampler.temperature", .type = PL_T_FLOAT, .semantic = 1, .lo = IPR_SETTING_LO(temperature),
     .def = IPR_SETTING_DEF(temperature), .hi = 100, /* a bound the sampler has not: any finite value runs */
     .help = "noise temperature"},
    {.key = "ipr.iterations", .type = PL_T_INT, .semantic = 1, IPR_SETTING_RANGE(ipr_iterations),
     .def = "30", /* runs refine; `ipr sample` defaults to K = 0 */
     .help = "K: one chain of K iterations records every k <= K"},
    {.key = "ipr.fractions", .type = PL_T_FLOAT, .list = 1, .semantic = 1, IPR_SETTING_RANGE(ipr_ratio),
     .def = "[" IPR_SETTING_DEF(ipr_ratio) "]", .max_items = PL_MAX_FRACTIONS,
     .help = "resampling fractions in (0, 1] (a grid axis)"},
    {.key = "ipr.steps_per_region", .type = PL_T_INT, .semantic = 1, IPR_SETTING_NUMBERS(ipr_steps_per_region),
     .help = "steps per region in refinement"},
    {.key = "ipr.overlap", .type = PL_T_FLOAT, .semantic = 1, IPR_SETTING_NUMBERS(ipr_overlap),
     .help = "overlap in refinement"},
    {.key = "ipr.selection", .type = PL_T_ENUM, .list = 1, .semantic = 1, .def = "[" IPR_SETTING_DEF(selection) "]",
     .choices = "uniform|uncertainty|mix", .max_items = PL_MAX_SELECTIONS,
     .help = "how regions are chosen for re-noising (a grid axis)"},
    {.key = "ipr.selection_mix", .type = PL_T_FLOAT, .semantic = 1, IPR_SETTING_NUMBERS(selection_mix),
     .help = "with `mix`: share chosen by uncertainty"},
    {.key = "ipr.early_stop", .type = PL_T_BOOL, .semantic = 1, .def = IPR_SETTING_DEF(early_stop),
     .help = "end a chain once an iteration changes nothing (departs from the reference)"},
    {.key = "seeds", .type = PL_T_U64, .list = 1, .semantic = 1, .def = "[0]", .hi = 9223372036854775807.0,
     .max_items = PL_MAX_SEEDS,
     .help = "sampling seeds, one replicate each (integers or \"0x...\" strings)"},
    {.key = "output.keep_images", .type = PL_T_BOOL, .semantic = 1, .def = IPR_SETTING_DEF(keep_images),
     .help = "store each chain's final image"},
    {.key = "run.retries", .type = PL_T_INT, .def = "1", .hi = 100,
     .help = "retries of a failed unit"},
    {.key = "run.max_failures", .type = PL_T_INT, .nullable = 1, .def = "null", .hi = 1e9,
     .help = "stop handing out work once more units than this failed after their retries (null: never, 0: at the "
             "first)"},
    {.key = "run.units_per_request", .type = PL_T_INT, .nullable = 1, .def = "null", .lo = 1, .hi = 65536,
     .help = "units a rank takes per request (null: enough to fill device.batch)"},
    {.key = "run.progress_interval", .type = PL_T_FLOAT, .def = "60.0", .lo = 0.1, .hi = 86400,
     .help = "seconds between progress lines in logs and status.json rewrites"},
    {.key = "estimate.passes_per_s", .type = PL_T_FLOAT, .nullable = 1, .def = "null", .hi = 1e12, .lo_open = 1,
     .help = "image-passes per second per rank for `ipr plan` (null: the reference H200 rate on CUDA)"},
};
_Static_assert(sizeof cfg_keys / sizeof cfg_keys[0] == PL_CONFIG_KEYS, "PL_CONFIG_KEYS counts the rows");

/* Keys added after the first schema: the canonical (hashed) form leaves them out while unset, so that a config
 * that does not use them keeps its config_sha256 and its runs stay resumable. */
static const char *const k_omit_unset[] = {"instances.file", "instances.format", "instances.file_sha256"};
/* Keys computed from others, which a config may not set. */
static const char *const k_computed[] = {"instances.file_sha256"};

static int key_listed(const char *key, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; ++i)
        if (strcmp(key, list[i]) == 0) return 1;
    return 0;
}
int cfg_key_computed(const char *key) { return key_listed(key, k_computed, sizeof k_computed / sizeof *k_computed); }

int cfg_key_omit_unset(const char *key) {
    return key_listed(key, k_omit_unset, sizeof k_omit_unset / sizeof *k_omit_unset);
}

const pl_key *pl_config_schema(int *n) {
    *n = PL_CONFIG_KEYS;
    return cfg_keys;
}

int cfg_key_index(const char *name) {
    for (int i = 0; i < PL_CONFIG_KEYS; ++i)
        if (strcmp(cfg_keys[i].key, name) == 0) return i;
    return -1;
}

int cfg_is_prefix_of_key(const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < PL_CONFIG_KEYS; ++i)
        if (strncmp(cfg_keys[i].key, name, n) == 0 && cfg_keys[i].key[n] == '.') return 1;
    return 0;
}

static int edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    int d[64][64];
    for (size_t i = 0; i <= la; ++i) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; ++j) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; ++i)
        for (size_t j = 1; j <= lb; ++j) {
            int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
            d[i][j] = c;
        }
    return d[la][lb];
}

void cfg_suggest(const char *name, char *out, size_t cap) {
    int best = 99, at = -1;
    for (int i = 0; i < PL_CONFIG_KEYS; ++i) {
        int d = edit_distance(name, cfg_keys[i].key);
        const char *dot = strrchr(cfg_keys[i].key, '.');
        if (dot) {
            int d2 = edit_distance(name, dot + 1);
            if (d2 < d) d = d2;
        }
        if (d < best) {
            best = d;
            at = i;
        }
    }
    if (at >= 0 && best <= 3)
        snprintf(out, cap, " (did you mean '%s'?)", cfg_keys[at].key);
    else
        out[0] = '\0';
}

int pl_config_schema_markdown(char **text) {
    pl_buf b;
    pl_buf_init(&b);
    pl_buf_add(&b, "| key | type | default | range / values | hashed | what |\n|---|---|---|---|---|---|\n");
    static const char *tn[] = {"string", "enum", "int", "uint64", "float", "bool", "path"};
    for (int i = 0; i < PL_CONFIG_KEYS; ++i) {
        const pl_key *k = &cfg_keys[i];
        char range[128] = "";
        if (k->type == PL_T_ENUM) {
            snprintf(range, sizeof range, "%s", k->choices);
            for (char *p = range; *p; ++p)
                if (*p == '|') *p = ',';
        } else if (k->type == PL_T_INT || k->type == PL_T_FLOAT) {
            char lo[32], hi[32];
            if (k->type == PL_T_INT) {
                snprintf(lo, sizeof lo, "%.0f", k->lo);
                snprintf(hi, sizeof hi, "%.0f", k->hi);
            } else {
                snprintf(lo, sizeof lo, "%g", k->lo);
                snprintf(hi, sizeof hi, "%g", k->hi);
            }
            snprintf(range, sizeof range, "%s%s, %s%s", k->lo_open ? "(" : "[", lo, hi, k->hi_open ? ")" : "]");
        } else if (k->type == PL_T_U64) {
            snprintf(range, sizeof range, "0 .. 2^63-1 or \"0x..\"");
        }
        pl_buf_printf(&b, "| `%s` | %s%s%s | %s | %s | %s | %s |\n", k->key, k->list ? "list of " : "", tn[k->type],
                      k->nullable ? " or null" : "", cfg_key_computed(k->key) ? "computed" : k->def ? k->def : "**required**",
                      range, k->semantic ? "yes" : "no",
                      k->help);
    }
    if (pl_buf_ok(&b) != IPR_OK) {
        pl_buf_free(&b);
        return IPR_ERR;
    }
    *text = b.data;
    return IPR_OK;
}
