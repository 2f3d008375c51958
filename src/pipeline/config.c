/* config.c: the `ipr run` configuration: libyaml's document tree walked against the schema table, typed
 * values with ranges, cross-key checks, canonical JSON (sorted keys, shortest round-trip floats) and its hash. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline/config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "ipr/hash.h"
#include "ipr/model.h"
#include "pipeline/json.h"

#define BIG 1e18

/* The schema. Defaults are the reference's MNIST Sudoku hard settings (spec 3.3) where the key has one. The
 * sampler's and denoiser's ranges come from include/ipr/sampler.h (IPR_SAMPLER_MAX_*), never a copy, and resolve()
 * runs ipr_sampler_config_validate on every grid point: a config the sampler would refuse fails here. */
static const pl_key k_schema[] = {
    {"name", PL_T_STR, 0, 0, 0, "ipr-run", 0, 0, 0, 0, NULL, 0, "label of the run (run directory names, summaries)"},
    {"benchmark", PL_T_ENUM, 0, 0, 1, NULL, 0, 0, 0, 0, "sudoku|even_pixels|counting_polygons", 0,
     "the benchmark (spec 4); `mnist_sudoku` is read as sudoku"},
    {"split", PL_T_ENUM, 0, 0, 1, "test", 0, 0, 0, 0, "train|test", 0, "instance split"},
    {"difficulty", PL_T_ENUM, 0, 0, 1, "hard", 0, 0, 0, 0, "easy|medium|hard|any", 0,
     "Sudoku clue count: easy 54-80, medium 27-53, hard 0-26 (sudoku only)"},
    {"data_seed", PL_T_U64, 0, 0, 1, "0", 0, 9223372036854775807.0, 0, 0, NULL, 0,
     "seed of the instance generator (`ipr datagen --seed`)"},
    {"mode", PL_T_ENUM, 0, 0, 1, "generate", 0, 0, 0, 0, "generate|correction", 0,
     "generate from clues, or correct a corrupted solved grid (sudoku only, spec 3.2)"},
    {"correction_swaps", PL_T_INT, 0, 0, 1, "5", 1, 40, 0, 0, NULL, 0, "swaps that corrupt the grid in correction mode"},
    {"instances.start", PL_T_U64, 0, 0, 1, "0", 0, 9223372036854775807.0, 0, 0, NULL, 0,
     "index of the first instance (with instances.file: the first row, 0-based)"},
    {"instances.count", PL_T_INT, 0, 1, 1, "null", 1, 1e9, 0, 0, NULL, 0,
     "number of instances; required, except with instances.file (null: every row from instances.start)"},
    {"instances.file", PL_T_PATH, 0, 1, 1, "null", 0, 0, 0, 0, NULL, 0,
     "instances from a file instead of the generator (no data_seed, difficulty, split): Sudoku puzzles (text or CSV) "
     "or an `ipr datagen` file of the benchmark; instance i = row i"},
    {"instances.format", PL_T_ENUM, 0, 0, 1, "auto", 0, 0, 0, 0, "auto|text|csv|datagen", 0,
     "format of instances.file (auto: detected; the hashed config holds the format read)"},
    {"instances.file_sha256", PL_T_STR, 0, 1, 1, "null", 0, 0, 0, 0, NULL, 0,
     "SHA-256 of instances.file, computed (never set by hand): a changed file changes config_sha256"},
    {"instances.per_unit", PL_T_INT, 0, 0, 1, "16", 1, 65536, 0, 0, NULL, 0,
     "instances per work unit (the unit of scheduling, commit and resume)"},
    {"model.checkpoint", PL_T_PATH, 1, 0, 1, NULL, 0, 0, 0, 0, NULL, PL_MAX_MODELS,
     "SRM checkpoint(s); a list makes the model a grid axis"},
    {"scorer", PL_T_PATH, 0, 1, 1, "null", 0, 0, 0, 0, NULL, 0,
     "scorer network: digit classifier (sudoku) or polygons classifier; null for even_pixels"},
    {"mnist_dir", PL_T_PATH, 0, 1, 1, "null", 0, 0, 0, 0, NULL, 0, "MNIST IDX files (null: the shipped datasets/mnist)"},
    {"device.kind", PL_T_ENUM, 0, 0, 1, "auto", 0, 0, 0, 0, "auto|cpu|cuda", 0,
     "auto: a GPU per rank when there are enough, else the CPU"},
    {"device.precision", PL_T_ENUM, 0, 0, 1, "fp32", 0, 0, 0, 0, "fp32|tf32|bf16", 0, "CUDA GEMM precision"},
    {"device.batch", PL_T_INT, 0, 0, 0, "16", 1, IPR_DENOISER_MAX_BATCH, 0, 0, NULL, 0, "chains in flight per rank (images per forward)"},
    {"device.cpu_threads", PL_T_INT, 0, 0, 0, "0", 0, 1024, 0, 0, NULL, 0,
     "BLAS threads per rank on the CPU; 0 = the node's cores / ranks on the node"},
    {"device.host_threads", PL_T_INT, 0, 0, 0, "0", 0, 16, 0, 0, NULL, 0,
     "threads per rank for the sampler's host work between passes; 0 = the node's cores / ranks on the node"},
    {"device.sampler", PL_T_ENUM, 0, 0, 0, "host", 0, 0, 0, 0, "host|gpu", 0,
     "where a CUDA rank's chains live between passes: host (noise and transitions on the CPU) or gpu (kernels; "
     "the same numbers up to the rounding of CUDA's log/sin/cos); a CPU rank always uses host"},
    {"device.allow_gpu_sharing", PL_T_BOOL, 0, 0, 0, "false", 0, 0, 0, 0, NULL, 0,
     "let two ranks of a node use the same GPU"},
    {"sampler.order", PL_T_ENUM, 0, 0, 1, "adaptive", 0, 0, 0, 0, "parallel|random|graph|adaptive", 0,
     "base generation order (spec 2.6)"},
    {"sampler.steps_per_region", PL_T_INT, 0, 0, 1, "3", 1, IPR_SAMPLER_MAX_PASSES, 0, 0, NULL, 0, "p: steps per region (spec 3.1)"},
    {"sampler.overlap", PL_T_FLOAT, 0, 0, 1, "0.0", 0, 1, 0, 1, NULL, 0, "o: overlap of consecutive regions"},
    {"sampler.max_steps", PL_T_INT, 0, 0, 1, "0", 0, IPR_SAMPLER_MAX_PASSES, 0, 0, NULL, 0,
     "total steps of the parallel/random/graph orders; 0 = derived from p and o"},
    {"sampler.skip_idle", PL_T_BOOL, 0, 0, 1, "false", 0, 0, 0, 0, NULL, 0,
     "end a generation at the first pass where every region is clean (the reference runs idle passes, spec 9c)"},
    {"sampler.alpha", PL_T_FLOAT, 0, 0, 1, "0.5", 0, 1, 0, 0, NULL, 0, "stochasticity (spec 2.5)"},
    {"sampler.temperature", PL_T_FLOAT, 0, 0, 1, "1.0", 0, 100, 0, 0, NULL, 0, "noise temperature"},
    {"ipr.iterations", PL_T_INT, 0, 0, 1, "30", 0, IPR_SAMPLER_MAX_ITERATIONS, 0, 0, NULL, 0,
     "K: one chain of K iterations records every k <= K"},
    {"ipr.fractions", PL_T_FLOAT, 1, 0, 1, "[0.25]", 0, 1, 1, 0, NULL, PL_MAX_FRACTIONS,
     "resampling fractions in (0, 1] (a grid axis)"},
    {"ipr.steps_per_region", PL_T_INT, 0, 0, 1, "10", 1, IPR_SAMPLER_MAX_PASSES, 0, 0, NULL, 0, "steps per region in refinement"},
    {"ipr.overlap", PL_T_FLOAT, 0, 0, 1, "0.8", 0, 1, 0, 1, NULL, 0, "overlap in refinement"},
    {"ipr.selection", PL_T_ENUM, 1, 0, 1, "[uniform]", 0, 0, 0, 0, "uniform|uncertainty|mix", PL_MAX_SELECTIONS,
     "how regions are chosen for re-noising (a grid axis)"},
    {"ipr.selection_mix", PL_T_FLOAT, 0, 0, 1, "0.5", 0, 1, 0, 0, NULL, 0, "with `mix`: share chosen by uncertainty"},
    {"ipr.early_stop", PL_T_BOOL, 0, 0, 1, "false", 0, 0, 0, 0, NULL, 0,
     "end a chain once an iteration changes nothing (departs from the reference)"},
    {"seeds", PL_T_U64, 1, 0, 1, "[0]", 0, 9223372036854775807.0, 0, 0, NULL, PL_MAX_SEEDS,
     "sampling seeds, one replicate each (integers or \"0x...\" strings)"},
    {"output.keep_images", PL_T_BOOL, 0, 0, 1, "false", 0, 0, 0, 0, NULL, 0, "store each chain's final image"},
    {"run.retries", PL_T_INT, 0, 0, 0, "1", 0, 100, 0, 0, NULL, 0, "retries of a failed unit"},
    {"run.max_failures", PL_T_INT, 0, 1, 0, "null", 0, 1e9, 0, 0, NULL, 0,
     "stop handing out work once more units than this failed after their retries (null: never, 0: at the first)"},
    {"run.units_per_request", PL_T_INT, 0, 1, 0, "null", 1, 65536, 0, 0, NULL, 0,
     "units a rank takes per request (null: enough to fill device.batch)"},
    {"run.progress_interval", PL_T_FLOAT, 0, 0, 0, "60.0", 0.1, 86400, 0, 0, NULL, 0,
     "seconds between progress lines in logs and status.json rewrites"},
    {"estimate.passes_per_s", PL_T_FLOAT, 0, 1, 0, "null", 0, 1e12, 1, 0, NULL, 0,
     "image-passes per second per rank for `ipr plan` (null: the reference H200 rate on CUDA)"},
};
#define N_KEYS ((int)(sizeof k_schema / sizeof k_schema[0]))

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
#define KEY_COMPUTED(k) key_listed((k), k_computed, sizeof k_computed / sizeof *k_computed)
#define KEY_OMIT_UNSET(k) key_listed((k), k_omit_unset, sizeof k_omit_unset / sizeof *k_omit_unset)
#define MAX_ITEMS 1024

const pl_key *pl_config_schema(int *n) {
    *n = N_KEYS;
    return k_schema;
}

/* ---------------- parsed values ---------------- */

typedef struct {
    int64_t i;
    uint64_t u;
    double f;
    char *s; /* STR / ENUM / PATH: the text; PATH also `path` */
    char *path;
} val;

typedef struct {
    int set;          /* from file or --set (0: default) */
    int is_null;
    int n;            /* items (1 for scalars) */
    val *items;
    char source[PL_PATH_MAX + 32]; /* "default", "FILE:LINE", "--set" */
} slot;

typedef struct {
    const char *file;     /* for messages */
    char dir[PL_PATH_MAX]; /* relative paths of the file start here */
    slot slots[N_KEYS];
} store;

static void slot_clear(slot *s) {
    if (s->items) {
        for (int i = 0; i < s->n; ++i) {
            free(s->items[i].s);
            free(s->items[i].path);
        }
        free(s->items);
    }
    memset(s, 0, sizeof *s);
}

static int key_index(const char *name) {
    for (int i = 0; i < N_KEYS; ++i)
        if (strcmp(k_schema[i].key, name) == 0) return i;
    return -1;
}

static int is_prefix_of_key(const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < N_KEYS; ++i)
        if (strncmp(k_schema[i].key, name, n) == 0 && k_schema[i].key[n] == '.') return 1;
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

/* " (did you mean 'ipr.fractions'?)" for a near miss, else "". */
static void suggest(const char *name, char *out, size_t cap) {
    int best = 99, at = -1;
    for (int i = 0; i < N_KEYS; ++i) {
        int d = edit_distance(name, k_schema[i].key);
        const char *dot = strrchr(k_schema[i].key, '.');
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
        snprintf(out, cap, " (did you mean '%s'?)", k_schema[at].key);
    else
        out[0] = '\0';
}

static int is_null_text(const char *t) {
    return t[0] == '\0' || strcmp(t, "~") == 0 || strcmp(t, "null") == 0 || strcmp(t, "Null") == 0 ||
           strcmp(t, "NULL") == 0;
}

static void join_path(const char *dir, const char *p, char *out, size_t cap) {
    if (p[0] == '/' || !dir[0])
        snprintf(out, cap, "%s", p);
    else
        snprintf(out, cap, "%s/%s", dir, p);
}

/* Convert one scalar's text to the key's type and check its range. `where` is "FILE:LINE" or "--set". */
static int convert(const pl_key *k, const char *text, int plain, const char *where, const char *dir, val *v) {
    char shown[96];
    snprintf(shown, sizeof shown, "%s", text);
    switch (k->type) {
    case PL_T_STR:
        IPR_CHECK(text[0] != '\0', "%s: key '%s': empty string", where, k->key);
        IPR_TRY_PTR(v->s = strdup(text));
        return IPR_OK;
    case PL_T_PATH:
        IPR_CHECK(text[0] != '\0', "%s: key '%s': empty path", where, k->key);
        IPR_TRY_PTR(v->s = strdup(text));
        IPR_TRY_PTR(v->path = ipr_malloc(PL_PATH_MAX, "path"));
        join_path(dir, text, v->path, PL_PATH_MAX);
        return IPR_OK;
    case PL_T_ENUM: {
        const char *c = k->choices;
        size_t n = strlen(text);
        while (c && *c) {
            const char *bar = strchr(c, '|');
            size_t len = bar ? (size_t)(bar - c) : strlen(c);
            if (len == n && strncmp(c, text, n) == 0) {
                IPR_TRY_PTR(v->s = strdup(text));
                return IPR_OK;
            }
            c = bar ? bar + 1 : NULL;
        }
        if (strcmp(k->key, "benchmark") == 0 && strcmp(text, "mnist_sudoku") == 0) {
            IPR_TRY_PTR(v->s = strdup("sudoku"));
            return IPR_OK;
        }
        IPR_FAIL("%s: key '%s': '%s' is not one of %s", where, k->key, shown, k->choices);
    }
    case PL_T_BOOL:
        if (!strcmp(text, "true") || !strcmp(text, "True") || !strcmp(text, "TRUE")) {
            v->i = 1;
            return IPR_OK;
        }
        if (!strcmp(text, "false") || !strcmp(text, "False") || !strcmp(text, "FALSE")) {
            v->i = 0;
            return IPR_OK;
        }
        IPR_FAIL("%s: key '%s': '%s' is not a boolean (write true or false)", where, k->key, shown);
    case PL_T_INT: {
        char *end = NULL;
        errno = 0;
        long long x = strtoll(text, &end, 10);
        IPR_CHECK(errno == 0 && end != text && *end == '\0' && !strpbrk(text, ".eE"),
                  "%s: key '%s': '%s' is not an integer", where, k->key, shown);
        IPR_CHECK(!(text[0] == '0' && text[1] != '\0'), "%s: key '%s': '%s' has a leading zero (octal is not read)",
                  where, k->key, shown);
        IPR_CHECK((double)x >= k->lo && (double)x <= k->hi, "%s: key '%s': %lld is outside [%.0f, %.0f]", where,
                  k->key, x, k->lo, k->hi);
        v->i = x;
        return IPR_OK;
    }
    case PL_T_U64: {
        char what[128];
        snprintf(what, sizeof what, "%s: key '%s'", where, k->key);
        uint64_t x = 0;
        IPR_TRY(ipr_parse_u64(text, (uint64_t)INT64_MAX, what, &x));
        v->u = x;
        return IPR_OK;
    }
    case PL_T_FLOAT: {
        char *end = NULL;
        errno = 0;
        double x = strtod(text, &end);
        IPR_CHECK(errno == 0 && end != text && *end == '\0' && isfinite(x) && !strpbrk(text, "xXnN"),
                  "%s: key '%s': '%s' is not a number", where, k->key, shown);
        int below = k->lo_open ? !(x > k->lo) : !(x >= k->lo);
        int above = k->hi_open ? !(x < k->hi) : !(x <= k->hi);
        if (below || above) {
            char lo[32], hi[32];
            pl_format_double(k->lo, lo, sizeof lo);
            pl_format_double(k->hi, hi, sizeof hi);
            IPR_FAIL("%s: key '%s': %s is outside %s%s, %s%s", where, k->key, shown, k->lo_open ? "(" : "[", lo, hi,
                     k->hi_open ? ")" : "]");
        }
        v->f = x;
        return IPR_OK;
    }
    }
    IPR_FAIL("internal: key '%s' has no type", k->key);
fail:
    (void)plain;
    return IPR_ERR;
}

/* Assign a YAML node (scalar or sequence of scalars) to key `ki`. */
static int assign(store *st, yaml_document_t *doc, yaml_node_t *node, int ki, const char *where, const char *dir,
                  int from_set) {
    const pl_key *k = &k_schema[ki];
    slot *s = &st->slots[ki];
    slot_clear(s);
    snprintf(s->source, sizeof s->source, "%s", where);
    s->set = from_set ? 2 : 1;
    IPR_TRY_PTR(s->items = ipr_calloc(MAX_ITEMS, sizeof(val), "config values"));
    if (node->type == YAML_SCALAR_NODE) {
        const char *text = (const char *)node->data.scalar.value;
        int plain = node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if (plain && is_null_text(text)) {
            IPR_CHECK(k->nullable, "%s: key '%s' cannot be null", where, k->key);
            s->is_null = 1;
            return IPR_OK;
        }
        IPR_TRY(convert(k, text, plain, where, dir, &s->items[0]));
        s->n = 1;
        return IPR_OK;
    }
    if (node->type == YAML_SEQUENCE_NODE) {
        IPR_CHECK(k->list, "%s: key '%s' takes one value, not a list", where, k->key);
        for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; ++it) {
            yaml_node_t *e = yaml_document_get_node(doc, *it);
            IPR_CHECK(e && e->type == YAML_SCALAR_NODE, "%s: key '%s': list items must be plain values", where, k->key);
            IPR_CHECK(s->n < k->max_items && s->n < MAX_ITEMS, "%s: key '%s': more than %d items", where, k->key,
                      k->max_items);
            int plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            IPR_CHECK(!(plain && is_null_text((const char *)e->data.scalar.value)),
                      "%s: key '%s': item %d is null", where, k->key, s->n);
            IPR_TRY(convert(k, (const char *)e->data.scalar.value, plain, where, dir, &s->items[s->n]));
            s->n++;
        }
        IPR_CHECK(s->n >= 1, "%s: key '%s': the list is empty", where, k->key);
        return IPR_OK;
    }
    IPR_FAIL("%s: key '%s' takes a value, not a mapping", where, k->key);
fail:
    return IPR_ERR;
}

static int walk_mapping(store *st, yaml_document_t *doc, yaml_node_t *map, const char *prefix, const char *file,
                        const char *dir) {
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; ++p) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        int line = kn ? (int)kn->start_mark.line + 1 : 0;
        IPR_CHECK(kn && kn->type == YAML_SCALAR_NODE, "%s:%d: keys must be plain names", file, line);
        char name[256];
        snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? "." : "", (const char *)kn->data.scalar.value);
        char where[PL_PATH_MAX + 32];
        snprintf(where, sizeof where, "%s:%d", file, line);
        int ki = key_index(name);
        if (ki < 0 && vn && vn->type == YAML_MAPPING_NODE && is_prefix_of_key(name)) {
            IPR_TRY(walk_mapping(st, doc, vn, name, file, dir));
            continue;
        }
        if (ki < 0) {
            char hint[128];
            suggest(name, hint, sizeof hint);
            IPR_FAIL("%s: unknown key '%s'%s", where, name, hint);
        }
        IPR_CHECK(!KEY_COMPUTED(name), "%s: key '%s' is computed (from instances.file); a config cannot set it", where,
                  name);
        IPR_CHECK(st->slots[ki].set == 0, "%s: key '%s' appears twice (first at %s)", where, name,
                  st->slots[ki].source);
        IPR_TRY(assign(st, doc, vn, ki, where, dir, 0));
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* Parse YAML text into a document; errors carry the file (or "--set KEY") and line. */
static int load_doc(const char *text, size_t len, const char *what, yaml_document_t *doc) {
    yaml_parser_t parser;
    IPR_CHECK(yaml_parser_initialize(&parser), "%s: cannot initialise the YAML parser", what);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, doc)) {
        ipr_error_set(__FILE__, __LINE__, "%s:%d: YAML syntax error: %s%s%s", what, (int)parser.problem_mark.line + 1,
                      parser.problem ? parser.problem : "unknown", parser.context ? " " : "",
                      parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return IPR_ERR;
    }
    yaml_parser_delete(&parser);
    return IPR_OK;
fail:
    return IPR_ERR;
}

static int apply_set(store *st, const char *set) {
    yaml_document_t doc;
    int have_doc = 0;
    char name[256];
    const char *eq = strchr(set, '=');
    IPR_CHECK(eq && eq != set && (size_t)(eq - set) < sizeof name, "--set '%s': expected KEY=VALUE", set);
    memcpy(name, set, (size_t)(eq - set));
    name[eq - set] = '\0';
    int ki = key_index(name);
    if (ki < 0) {
        char hint[128];
        suggest(name, hint, sizeof hint);
        IPR_FAIL("--set: unknown key '%s'%s", name, hint);
    }
    IPR_CHECK(!KEY_COMPUTED(name), "--set: key '%s' is computed (from instances.file); it cannot be set", name);
    char what[300];
    snprintf(what, sizeof what, "--set %s", name);
    const char *value = eq + 1;
    /* "key=" (an empty value) is null, as an empty YAML value is */
    IPR_TRY(load_doc(value[0] ? value : "~", value[0] ? strlen(value) : 1, what, &doc));
    have_doc = 1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    IPR_CHECK(root != NULL, "%s: no value", what);
    /* relative paths given on the command line start at the working directory */
    IPR_TRY(assign(st, &doc, root, ki, what, "", 1));
    yaml_document_delete(&doc);
    return IPR_OK;
fail:
    if (have_doc) yaml_document_delete(&doc);
    return IPR_ERR;
}

static int apply_defaults(store *st) {
    for (int i = 0; i < N_KEYS; ++i) {
        if (st->slots[i].set) continue;
        const pl_key *k = &k_schema[i];
        if (!k->def) continue; /* required: checked later */
        yaml_document_t doc;
        IPR_TRY(load_doc(k->def, strlen(k->def), "default", &doc));
        int rc = assign(st, &doc, yaml_document_get_root_node(&doc), i, "default", "", 0);
        yaml_document_delete(&doc);
        IPR_TRY(rc);
        st->slots[i].set = 0;
        snprintf(st->slots[i].source, sizeof st->slots[i].source, "default");
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* ---------------- canonical JSON ---------------- */

static void emit_value(pl_buf *b, const pl_key *k, const slot *s) {
    if (s->is_null) {
        pl_buf_add(b, "null");
        return;
    }
    if (k->list) pl_buf_add(b, "[");
    for (int i = 0; i < s->n; ++i) {
        if (i) pl_buf_add(b, ", ");
        const val *v = &s->items[i];
        switch (k->type) {
        case PL_T_STR:
        case PL_T_ENUM:
        case PL_T_PATH: pl_buf_json_str(b, v->s); break;
        case PL_T_BOOL: pl_buf_add(b, v->i ? "true" : "false"); break;
        case PL_T_INT: pl_buf_printf(b, "%lld", (long long)v->i); break;
        case PL_T_U64: pl_buf_printf(b, "%llu", (unsigned long long)v->u); break;
        case PL_T_FLOAT: pl_buf_json_double(b, v->f); break;
        }
    }
    if (k->list) pl_buf_add(b, "]");
}

static int cmp_key(const void *a, const void *b) {
    return strcmp(k_schema[*(const int *)a].key, k_schema[*(const int *)b].key);
}

/* Nested, sorted, two-space indented, one leaf per line. which: 1 semantic keys, 0 the others,
 * 2 the sources of all keys. */
static int emit_json(const store *st, int which, char **out) {
    int order[N_KEYS], n = 0;
    for (int i = 0; i < N_KEYS; ++i)
        if ((which == 2 || k_schema[i].semantic == which) &&
            !(which == 1 && KEY_OMIT_UNSET(k_schema[i].key) && !st->slots[i].set))
            order[n++] = i;
    qsort(order, (size_t)n, sizeof order[0], cmp_key);
    pl_buf b;
    pl_buf_init(&b);
    pl_buf_add(&b, "{");
    char open[8][64];
    int depth = 0, first = 1;
    for (int j = 0; j <= n; ++j) {
        char parts[8][64];
        int np = 0;
        const char *leaf_name = NULL;
        if (j < n) {
            char tmp[256];
            snprintf(tmp, sizeof tmp, "%s", k_schema[order[j]].key);
            for (char *tok = strtok(tmp, "."); tok && np < 8; tok = strtok(NULL, ".")) snprintf(parts[np++], 64, "%s", tok);
            leaf_name = parts[np - 1];
        }
        int common = 0;
        while (common < depth && common < np - 1 && strcmp(open[common], parts[common]) == 0) ++common;
        while (depth > common) {
            --depth;
            pl_buf_add(&b, "\n");
            for (int d = 0; d <= depth; ++d) pl_buf_add(&b, "  ");
            pl_buf_add(&b, "}");
        }
        if (j == n) break;
        for (; depth < np - 1; ++depth) {
            pl_buf_add(&b, first ? "\n" : ",\n");
            first = 0;
            for (int d = 0; d <= depth; ++d) pl_buf_add(&b, "  ");
            pl_buf_json_str(&b, parts[depth]);
            pl_buf_add(&b, ": {");
            snprintf(open[depth], 64, "%s", parts[depth]);
            first = 1;
        }
        pl_buf_add(&b, first ? "\n" : ",\n");
        first = 0;
        for (int d = 0; d <= depth; ++d) pl_buf_add(&b, "  ");
        pl_buf_json_str(&b, leaf_name);
        pl_buf_add(&b, ": ");
        if (which == 2)
            pl_buf_json_str(&b, st->slots[order[j]].source);
        else
            emit_value(&b, &k_schema[order[j]], &st->slots[order[j]]);
    }
    pl_buf_add(&b, "\n}\n");
    if (pl_buf_ok(&b) != IPR_OK) {
        pl_buf_free(&b);
        return IPR_ERR;
    }
    *out = b.data;
    return IPR_OK;
}

/* ---------------- resolve into pl_config ---------------- */

static const slot *get(const store *st, const char *key) { return &st->slots[key_index(key)]; }
static const char *get_s(const store *st, const char *key) { return get(st, key)->items[0].s; }
static int64_t get_i(const store *st, const char *key) { return get(st, key)->items[0].i; }
static double get_f(const store *st, const char *key) { return get(st, key)->items[0].f; }

const char *pl_selection_name(ipr_selection s) {
    switch (s) {
    case IPR_SELECT_UNIFORM: return "uniform";
    case IPR_SELECT_UNCERTAINTY: return "uncertainty";
    case IPR_SELECT_MIX: return "mix";
    }
    return "?";
}

const char *pl_device_name(pl_device_kind d) {
    return d == PL_DEVICE_CPU ? "cpu" : d == PL_DEVICE_CUDA ? "cuda" : "auto";
}

static ipr_order order_from(const char *s) {
    if (!strcmp(s, "parallel")) return IPR_ORDER_PARALLEL;
    if (!strcmp(s, "random")) return IPR_ORDER_RANDOM;
    if (!strcmp(s, "graph")) return IPR_ORDER_GRAPH;
    return IPR_ORDER_ADAPTIVE;
}

static ipr_selection selection_from(const char *s) {
    if (!strcmp(s, "uncertainty")) return IPR_SELECT_UNCERTAINTY;
    if (!strcmp(s, "mix")) return IPR_SELECT_MIX;
    return IPR_SELECT_UNIFORM;
}

static int resolve(const store *st, pl_config *c) {
    const char *src;
    for (int i = 0; i < N_KEYS; ++i)
        IPR_CHECK(k_schema[i].def || st->slots[i].set, "%s: required key '%s' is missing", st->file, k_schema[i].key);
    snprintf(c->name, sizeof c->name, "%s", get_s(st, "name"));
    for (const char *p = c->name; *p; ++p)
        IPR_CHECK((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
                      *p == '_' || *p == '.',
                  "%s: key 'name': '%s' may hold only letters, digits, '-', '_' and '.'", get(st, "name")->source,
                  c->name);
    IPR_TRY(ipr_bench_from_name(get_s(st, "benchmark"), &c->bench));
    IPR_TRY(ipr_split_from_name(get_s(st, "split"), &c->split));
    IPR_TRY(ipr_sudoku_difficulty_from_name(get_s(st, "difficulty"), &c->difficulty));
    c->data_seed = get(st, "data_seed")->items[0].u;
    c->mode = strcmp(get_s(st, "mode"), "correction") == 0 ? PL_MODE_CORRECTION : PL_MODE_GENERATE;
    c->correction_swaps = (int)get_i(st, "correction_swaps");
    if (c->bench != IPR_BENCH_SUDOKU) {
        IPR_CHECK(!get(st, "difficulty")->set, "%s: key 'difficulty' applies to sudoku only (benchmark is %s)",
                  get(st, "difficulty")->source, ipr_bench_name(c->bench));
        IPR_CHECK(c->mode == PL_MODE_GENERATE, "%s: key 'mode': correction applies to sudoku only",
                  get(st, "mode")->source);
    }
    c->instance_start = get(st, "instances.start")->items[0].u;
    c->instance_count = get_i(st, "instances.count");
    c->per_unit = (int)get_i(st, "instances.per_unit");

    const slot *m = get(st, "model.checkpoint");
    snprintf(c->where_model, sizeof c->where_model, "%s", m->source);
    snprintf(c->where_scorer, sizeof c->where_scorer, "%s", get(st, "scorer")->source);
    snprintf(c->where_mnist, sizeof c->where_mnist, "%s", get(st, "mnist_dir")->source);
    c->n_models = m->n;
    for (int i = 0; i < m->n; ++i) {
        snprintf(c->model_path[i], PL_PATH_MAX, "%s", m->items[i].path);
        const char *base = strrchr(m->items[i].s, '/');
        base = base ? base + 1 : m->items[i].s;
        snprintf(c->model_name[i], PL_NAME_MAX, "%s", base);
        size_t L = strlen(c->model_name[i]);
        if (L > 3 && strcmp(c->model_name[i] + L - 3, ".h5") == 0) c->model_name[i][L - 3] = '\0';
        for (int j = 0; j < i; ++j)
            IPR_CHECK(strcmp(c->model_name[i], c->model_name[j]) != 0,
                      "%s: key 'model.checkpoint': two checkpoints are both named '%s'", m->source, c->model_name[i]);
    }
    const slot *sc = get(st, "scorer");
    c->has_scorer = !sc->is_null;
    if (c->has_scorer) snprintf(c->scorer_path, PL_PATH_MAX, "%s", sc->items[0].path);
    src = sc->source;
    IPR_CHECK(c->bench == IPR_BENCH_EVEN_PIXELS || c->has_scorer,
              "%s: key 'scorer' is required for %s (the %s classifier checkpoint)", st->file, ipr_bench_name(c->bench),
              c->bench == IPR_BENCH_SUDOKU ? "digit" : "polygons");
    IPR_CHECK(c->bench != IPR_BENCH_EVEN_PIXELS || !c->has_scorer,
              "%s: key 'scorer': even_pixels is scored by rule, set scorer to null", src);
    const slot *md = get(st, "mnist_dir");
    c->has_mnist_dir = !md->is_null;
    if (c->has_mnist_dir) snprintf(c->mnist_dir, PL_PATH_MAX, "%s", md->items[0].path);

    const char *dk = get_s(st, "device.kind");
    c->device = !strcmp(dk, "cpu") ? PL_DEVICE_CPU : !strcmp(dk, "cuda") ? PL_DEVICE_CUDA : PL_DEVICE_AUTO;
    IPR_TRY(ipr_precision_from_name(get_s(st, "device.precision"), &c->precision));
    /* precision is the CUDA GEMM mode; the CPU path computes in float32. With kind auto a CPU fallback
     * runs float32 (exec.c says so in the log); asking for the CPU and tf32/bf16 at once is a contradiction */
    IPR_CHECK(c->device != PL_DEVICE_CPU || c->precision == IPR_PREC_FP32,
              "%s: key 'device.precision': %s needs CUDA, but device.kind is cpu (the CPU path is float32)",
              get(st, "device.precision")->source, ipr_precision_name(c->precision));
    c->batch = (int)get_i(st, "device.batch");
    c->cpu_threads = (int)get_i(st, "device.cpu_threads");
    c->host_threads = (int)get_i(st, "device.host_threads");
    c->gpu_sampler = !strcmp(get_s(st, "device.sampler"), "gpu");
    c->allow_gpu_sharing = (int)get_i(st, "device.allow_gpu_sharing");

    ipr_sampler_config *s = &c->sampler;
    ipr_sampler_config_init(s);
    s->order = order_from(get_s(st, "sampler.order"));
    IPR_CHECK(s->order != IPR_ORDER_GRAPH || c->bench == IPR_BENCH_SUDOKU,
              "%s: key 'sampler.order': graph order needs the Sudoku graph (benchmark is %s)",
              get(st, "sampler.order")->source, ipr_bench_name(c->bench));
    s->steps_per_region = (int)get_i(st, "sampler.steps_per_region");
    s->overlap = get_f(st, "sampler.overlap");
    s->max_steps = (int)get_i(st, "sampler.max_steps");
    s->alpha = get_f(st, "sampler.alpha");
    s->temperature = get_f(st, "sampler.temperature");
    s->skip_idle = (int)get_i(st, "sampler.skip_idle");
    s->ipr_iterations = (int)get_i(st, "ipr.iterations");
    s->ipr_ratio = 0.25;
    s->ipr_steps_per_region = (int)get_i(st, "ipr.steps_per_region");
    s->ipr_overlap = get_f(st, "ipr.overlap");
    s->selection = IPR_SELECT_UNIFORM;
    s->selection_mix = get_f(st, "ipr.selection_mix");
    s->early_stop = (int)get_i(st, "ipr.early_stop");
    c->keep_images = (int)get_i(st, "output.keep_images");
    s->keep_images = c->keep_images;
    IPR_CHECK(c->mode == PL_MODE_GENERATE || s->ipr_iterations >= 1,
              "%s: key 'ipr.iterations': correction mode needs at least one iteration", get(st, "ipr.iterations")->source);

    const slot *fr = get(st, "ipr.fractions");
    c->n_fractions = fr->n;
    for (int i = 0; i < fr->n; ++i) {
        c->fractions[i] = fr->items[i].f;
        for (int j = 0; j < i; ++j)
            IPR_CHECK(c->fractions[j] != c->fractions[i], "%s: key 'ipr.fractions': %g appears twice", fr->source,
                      c->fractions[i]);
    }
    const slot *se = get(st, "ipr.selection");
    c->n_selections = se->n;
    for (int i = 0; i < se->n; ++i) {
        c->selections[i] = selection_from(se->items[i].s);
        for (int j = 0; j < i; ++j)
            IPR_CHECK(c->selections[j] != c->selections[i], "%s: key 'ipr.selection': '%s' appears twice", se->source,
                      se->items[i].s);
    }
    const slot *sd = get(st, "seeds");
    c->n_seeds = sd->n;
    for (int i = 0; i < sd->n; ++i) {
        c->seeds[i] = sd->items[i].u;
        for (int j = 0; j < i; ++j)
            IPR_CHECK(c->seeds[j] != c->seeds[i], "%s: key 'seeds': %llu appears twice (replicates need distinct seeds)",
                      sd->source, (unsigned long long)c->seeds[i]);
    }
    /* every grid point's settings as the sampler itself checks them: its limits are the only ones */
    for (int f = 0; f < c->n_fractions; ++f)
        for (int i = 0; i < c->n_selections; ++i) {
            ipr_sampler_config point;
            pl_config_sampler(c, c->fractions[f], c->selections[i], &point);
            if (ipr_sampler_config_validate(&point) != IPR_OK) {
                ipr_error_context("%s: the sampler refuses these settings", st->file);
                goto fail;
            }
        }
    c->retries = (int)get_i(st, "run.retries");
    c->has_max_failures = !get(st, "run.max_failures")->is_null;
    c->max_failures = c->has_max_failures ? (int)get_i(st, "run.max_failures") : 0;
    c->has_units_per_request = !get(st, "run.units_per_request")->is_null;
    c->units_per_request = c->has_units_per_request ? (int)get_i(st, "run.units_per_request") : 0;
    c->progress_interval = get_f(st, "run.progress_interval");
    c->has_passes_per_s = !get(st, "estimate.passes_per_s")->is_null;
    c->passes_per_s = c->has_passes_per_s ? get_f(st, "estimate.passes_per_s") : 0.0;
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* instances.file: read and check the whole file now, before any run directory or device exists; fill in
 * instances.count when null (the rows from instances.start on), the format read, and the file's SHA-256, which
 * the canonical form holds: a changed file is another config. `limit` (--limit) caps the rows checked below. */
static int resolve_instances(store *st, pl_config *c, int64_t limit) {
    ipr_instance_file *f = NULL;
    slot *fs = &st->slots[key_index("instances.file")], *fmt = &st->slots[key_index("instances.format")];
    slot *cnt = &st->slots[key_index("instances.count")], *sha = &st->slots[key_index("instances.file_sha256")];
    if (fs->is_null) {
        IPR_CHECK(!fmt->set, "%s: key 'instances.format' describes instances.file, which is not set", fmt->source);
        IPR_CHECK(!cnt->is_null, "%s: required key 'instances.count' is missing (only instances.file can supply it)",
                  st->file);
        return IPR_OK;
    }
    static const char *const generator_keys[] = {"data_seed", "difficulty", "split"};
    for (size_t i = 0; i < sizeof generator_keys / sizeof *generator_keys; ++i) {
        const slot *x = get(st, generator_keys[i]);
        IPR_CHECK(!x->set,
                  "%s: key '%s' belongs to the instance generator, and instances.file (%s) replaces it (puzzle files "
                  "are drawn from the MNIST test pool; a datagen file's images are used as stored)",
                  x->source, generator_keys[i], fs->source);
    }
    c->has_instances_file = 1;
    snprintf(c->instances_file, sizeof c->instances_file, "%s", fs->items[0].path);
    snprintf(c->where_instances, sizeof c->where_instances, "%s", fs->source);
    ipr_instances_format want;
    IPR_TRY(ipr_instances_format_from_name(fmt->items[0].s, &want));
    uint64_t keep = cnt->is_null ? UINT64_MAX : (uint64_t)cnt->items[0].i;
    if (limit > 0 && (uint64_t)limit < keep) keep = (uint64_t)limit;
    f = ipr_instance_file_open(c->instances_file, want, c->bench, c->instance_start, keep);
    if (!f) {
        ipr_error_context("%s: key 'instances.file'", fs->source);
        goto fail;
    }
    const uint64_t rows = ipr_instance_file_rows(f), start = c->instance_start;
    IPR_CHECK(start < rows, "%s: key 'instances.start': row %llu is past the end of %s (%llu rows, 0..%llu)",
              get(st, "instances.start")->source, (unsigned long long)start, c->instances_file,
              (unsigned long long)rows, (unsigned long long)rows - 1);
    if (cnt->is_null) {
        IPR_CHECK(rows - start <= 1000000000ull, "%s: %llu rows from row %llu: set instances.count (at most 1e9)",
                  c->instances_file, (unsigned long long)(rows - start), (unsigned long long)start);
        cnt->is_null = 0;
        cnt->n = 1;
        cnt->items[0].i = (int64_t)(rows - start);
        snprintf(cnt->source, sizeof cnt->source, "instances.file (rows %llu..%llu)", (unsigned long long)start,
                 (unsigned long long)rows - 1);
    } else {
        IPR_CHECK((uint64_t)cnt->items[0].i <= rows - start,
                  "%s: key 'instances.count': rows %llu..%llu were asked for, but %s has %llu rows (0..%llu)",
                  cnt->source, (unsigned long long)start, (unsigned long long)(start + (uint64_t)cnt->items[0].i - 1),
                  c->instances_file, (unsigned long long)rows, (unsigned long long)rows - 1);
    }
    c->instance_count = cnt->items[0].i;
    /* the canonical form records what was read: the format (auto resolved) and the content hash */
    const char *fmt_name = ipr_instances_format_name(ipr_instance_file_format(f));
    free(fmt->items[0].s);
    IPR_TRY_PTR(fmt->items[0].s = strdup(fmt_name));
    if (!fmt->set) snprintf(fmt->source, sizeof fmt->source, "detected in instances.file");
    fmt->set = 1;
    free(sha->items[0].s);
    IPR_TRY_PTR(sha->items[0].s = strdup(ipr_instance_file_sha256(f)));
    sha->is_null = 0;
    sha->n = 1;
    sha->set = 1;
    snprintf(sha->source, sizeof sha->source, "computed from instances.file");
    c->instances_format = ipr_instance_file_format(f);
    snprintf(c->instances_sha256, sizeof c->instances_sha256, "%s", ipr_instance_file_sha256(f));
    c->instances_rows = rows;
    c->instances_solved = ipr_instance_file_solved(f);
    c->instances_mean_given = ipr_instance_file_mean_given(f);
    uint64_t row = 0, line = 0;
    if (c->mode == PL_MODE_CORRECTION && ipr_instance_file_first_unsolved(f, &row, &line)) {
        if (line)
            IPR_FAIL("%s: key 'mode': correction mode corrupts each puzzle's solved grid, but %s:%llu (row %llu) has no "
                     "solution",
                     get(st, "mode")->source, c->instances_file, (unsigned long long)line, (unsigned long long)row);
        IPR_FAIL("%s: key 'mode': correction mode corrupts each puzzle's solved grid, but row %llu of %s has no solution",
                 get(st, "mode")->source, (unsigned long long)row, c->instances_file);
    }
    ipr_instance_file_free(f);
    return IPR_OK;
fail:
    ipr_instance_file_free(f);
    return IPR_ERR;
}

void pl_config_sampler(const pl_config *cfg, double fraction, ipr_selection sel, ipr_sampler_config *out) {
    *out = cfg->sampler;
    out->ipr_ratio = fraction;
    out->selection = sel;
}

int pl_config_load(const char *path, const char *yaml, size_t len, char *const *sets, int n_sets, int64_t limit,
                   pl_config *out) {
    store *st = NULL;
    char *owned = NULL;
    yaml_document_t doc;
    int have_doc = 0;
    memset(out, 0, sizeof *out);
    snprintf(out->file, sizeof out->file, "%s", path);
    IPR_TRY_PTR(st = ipr_calloc(1, sizeof *st, "config store"));
    st->file = path;
    {
        char tmp[PL_PATH_MAX];
        snprintf(tmp, sizeof tmp, "%s", path);
        char *slash = strrchr(tmp, '/');
        if (slash) {
            *slash = '\0';
            snprintf(st->dir, sizeof st->dir, "%s", tmp[0] ? tmp : "/");
        }
    }
    if (!yaml) {
        if (pl_read_file(path, &owned, &len) != IPR_OK) {
            ipr_error_context("reading the config");
            goto fail;
        }
        yaml = owned;
    }
    IPR_TRY(load_doc(yaml, len, path, &doc));
    have_doc = 1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    IPR_CHECK(root != NULL, "%s: the config is empty", path);
    IPR_CHECK(root->type == YAML_MAPPING_NODE, "%s:%d: the config must be a mapping of keys to values", path,
              (int)root->start_mark.line + 1);
    IPR_TRY(walk_mapping(st, &doc, root, "", path, st->dir));
    yaml_document_delete(&doc);
    have_doc = 0;
    for (int i = 0; i < n_sets; ++i) IPR_TRY(apply_set(st, sets[i]));
    IPR_TRY(apply_defaults(st));
    IPR_TRY(resolve(st, out));
    IPR_TRY(resolve_instances(st, out, limit));
    if (limit > 0 && limit < out->instance_count) {
        out->instance_count = limit;
        slot *s = &st->slots[key_index("instances.count")];
        s->items[0].i = limit;
        snprintf(s->source, sizeof s->source, "--limit");
        out->limited = 1;
    }
    IPR_TRY(emit_json(st, 1, &out->resolved_json));
    IPR_TRY(emit_json(st, 0, &out->operational_json));
    IPR_TRY(emit_json(st, 2, &out->sources_json));
    ipr_sha256_hex(out->resolved_json, strlen(out->resolved_json), out->sha256);
    for (int i = 0; i < N_KEYS; ++i) slot_clear(&st->slots[i]);
    free(st);
    free(owned);
    return IPR_OK;
fail:
    if (have_doc) yaml_document_delete(&doc);
    if (st) {
        for (int i = 0; i < N_KEYS; ++i) slot_clear(&st->slots[i]);
        free(st);
    }
    free(owned);
    pl_config_free(out);
    return IPR_ERR;
}

void pl_config_free(pl_config *cfg) {
    free(cfg->resolved_json);
    free(cfg->operational_json);
    free(cfg->sources_json);
    cfg->resolved_json = cfg->operational_json = cfg->sources_json = NULL;
}

static int file_readable(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && access(path, R_OK) == 0;
}

int pl_config_check_files(const pl_config *cfg) {
    int C = 3, side = IPR_EP_SIDE;
    if (cfg->bench == IPR_BENCH_SUDOKU) {
        C = 1;
        side = IPR_SUDOKU_SIDE;
    } else if (cfg->bench == IPR_BENCH_COUNTING_POLYGONS) {
        side = IPR_POLY_SIDE;
    }
    for (int i = 0; i < cfg->n_models; ++i) {
        const char *p = cfg->model_path[i];
        IPR_CHECK(file_readable(p), "%s: key 'model.checkpoint': model file %s does not exist or is not readable",
                  cfg->where_model, p);
        ipr_model_info uc;
        if (ipr_model_info_read(p, &uc) != IPR_OK) {
            ipr_error_context("%s: key 'model.checkpoint': %s is not an SRM checkpoint", cfg->where_model, p);
            return IPR_ERR;
        }
        IPR_CHECK(uc.d_in == C && uc.image_size[0] == side && uc.image_size[1] == side,
                  "%s: key 'model.checkpoint': %s was trained on %dx%d images with %d channels; %s has %dx%d with %d",
                  cfg->where_model, p, uc.image_size[0], uc.image_size[1], uc.d_in, ipr_bench_name(cfg->bench), side, side, C);
        IPR_CHECK(uc.patch_size > 0 && side % uc.patch_size == 0,
                  "%s: key 'model.checkpoint': %s has patch size %d, which does not tile %dx%d regions", cfg->where_model, p,
                  uc.patch_size, side, side);
    }
    if (cfg->has_scorer)
        IPR_CHECK(file_readable(cfg->scorer_path), "%s: key 'scorer': %s does not exist or is not readable",
                  cfg->where_scorer, cfg->scorer_path);
    if (cfg->has_mnist_dir) {
        struct stat sb;
        IPR_CHECK(stat(cfg->mnist_dir, &sb) == 0 && S_ISDIR(sb.st_mode), "%s: key 'mnist_dir': %s is not a directory",
                  cfg->where_mnist, cfg->mnist_dir);
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* ---------------- flatten and diff ---------------- */

static const char *skip_sp(const char *p) {
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') ++p;
    return p;
}

static const char *flatten_obj(const char *p, const char *prefix, pl_buf *out) {
    p = skip_sp(p);
    if (*p != '{') return NULL;
    p = skip_sp(p + 1);
    if (*p == '}') return p + 1;
    for (;;) {
        char name[256], path[512];
        p = pl_json_parse_str(skip_sp(p), name, sizeof name);
        if (!p) return NULL;
        p = skip_sp(p);
        if (*p != ':') return NULL;
        p = skip_sp(p + 1);
        snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", name);
        if (*p == '{') {
            p = flatten_obj(p, path, out);
        } else {
            const char *end = pl_json_skip_value(p);
            if (!end) return NULL;
            pl_buf_printf(out, "%s = %.*s\n", path, (int)(end - p), p);
            p = end;
        }
        if (!p) return NULL;
        p = skip_sp(p);
        if (*p == ',') {
            ++p;
            continue;
        }
        if (*p == '}') return p + 1;
        return NULL;
    }
}

int pl_json_flatten(const char *json, char **lines) {
    pl_buf b;
    pl_buf_init(&b);
    pl_buf_add(&b, "");
    if (!flatten_obj(json, "", &b) || pl_buf_ok(&b) != IPR_OK) {
        pl_buf_free(&b);
        ipr_error_set(__FILE__, __LINE__, "malformed JSON");
        return IPR_ERR;
    }
    *lines = b.data;
    return IPR_OK;
}

static int line_in(const char *line, size_t n, const char *text) {
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, line, n) == 0) return 1;
        p = e ? e + 1 : p + len;
    }
    return 0;
}

int pl_config_diff(const char *old_json, const char *new_json, char **text) {
    char *a = NULL, *b = NULL;
    pl_buf out;
    pl_buf_init(&out);
    pl_buf_add(&out, "");
    IPR_TRY(pl_json_flatten(old_json, &a));
    IPR_TRY(pl_json_flatten(new_json, &b));
    for (int pass = 0; pass < 2; ++pass) {
        const char *from = pass ? b : a, *other = pass ? a : b;
        for (const char *p = from; *p;) {
            const char *e = strchr(p, '\n');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            if (!line_in(p, len, other)) pl_buf_printf(&out, "  %s %.*s\n", pass ? "now:" : "was:", (int)len, p);
            p = e ? e + 1 : p + len;
        }
    }
    free(a);
    free(b);
    IPR_TRY(pl_buf_ok(&out));
    *text = out.data;
    return IPR_OK;
fail:
    free(a);
    free(b);
    pl_buf_free(&out);
    return IPR_ERR;
}

int pl_config_schema_markdown(char **text) {
    pl_buf b;
    pl_buf_init(&b);
    pl_buf_add(&b, "| key | type | default | range / values | hashed | what |\n|---|---|---|---|---|---|\n");
    static const char *tn[] = {"string", "enum", "int", "uint64", "float", "bool", "path"};
    for (int i = 0; i < N_KEYS; ++i) {
        const pl_key *k = &k_schema[i];
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
                      k->nullable ? " or null" : "", KEY_COMPUTED(k->key) ? "computed" : k->def ? k->def : "**required**",
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
