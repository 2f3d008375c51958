/* config_resolve.c: the values read for each key resolved into pl_config: enums, paths, the grid axes, the
 * cross-key checks (benchmark-specific keys, scorer, precision, the sampler's own validation of every grid point),
 * an instance file read and checked whole, and the checks that need the files. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pipeline/config_internal.h"

const slot *cfg_get(const store *st, const char *key) { return &st->slots[cfg_key_index(key)]; }
static const char *get_s(const store *st, const char *key) { return cfg_get(st, key)->items[0].s; }
static int64_t get_i(const store *st, const char *key) { return cfg_get(st, key)->items[0].i; }
static double get_f(const store *st, const char *key) { return cfg_get(st, key)->items[0].f; }

int cfg_resolve(const store *st, pl_config *c) {
    const char *src;
    for (int i = 0; i < PL_CONFIG_KEYS; ++i)
        IPR_CHECK(cfg_keys[i].def || st->slots[i].set, "%s: required key '%s' is missing", st->file, cfg_keys[i].key);
    snprintf(c->name, sizeof c->name, "%s", get_s(st, "name"));
    for (const char *p = c->name; *p; ++p)
        IPR_CHECK((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
                      *p == '_' || *p == '.',
                  "%s: key 'name': '%s' may hold only letters, digits, '-', '_' and '.'", cfg_get(st, "name")->source,
                  c->name);
    IPR_TRY(ipr_bench_from_name(get_s(st, "benchmark"), &c->bench));
    IPR_TRY(ipr_split_from_name(get_s(st, "split"), &c->split));
    IPR_TRY(ipr_sudoku_difficulty_from_name(get_s(st, "difficulty"), &c->difficulty));
    c->data_seed = cfg_get(st, "data_seed")->items[0].u;
    c->mode = strcmp(get_s(st, "mode"), "correction") == 0 ? PL_MODE_CORRECTION : PL_MODE_GENERATE;
    c->correction_swaps = (int)get_i(st, "correction_swaps");
    if (c->bench != IPR_BENCH_SUDOKU) {
        IPR_CHECK(!cfg_get(st, "difficulty")->set, "%s: key 'difficulty' applies to sudoku only (benchmark is %s)",
                  cfg_get(st, "difficulty")->source, ipr_bench_name(c->bench));
        IPR_CHECK(c->mode == PL_MODE_GENERATE, "%s: key 'mode': correction applies to sudoku only",
                  cfg_get(st, "mode")->source);
    }
    c->instance_start = cfg_get(st, "instances.start")->items[0].u;
    c->instance_count = get_i(st, "instances.count");
    c->per_unit = (int)get_i(st, "instances.per_unit");

    const slot *m = cfg_get(st, "model.checkpoint");
    snprintf(c->where_model, sizeof c->where_model, "%s", m->source);
    snprintf(c->where_scorer, sizeof c->where_scorer, "%s", cfg_get(st, "scorer")->source);
    snprintf(c->where_mnist, sizeof c->where_mnist, "%s", cfg_get(st, "mnist_dir")->source);
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
    const slot *sc = cfg_get(st, "scorer");
    c->has_scorer = !sc->is_null;
    if (c->has_scorer) snprintf(c->scorer_path, PL_PATH_MAX, "%s", sc->items[0].path);
    src = sc->source;
    IPR_CHECK(c->bench == IPR_BENCH_EVEN_PIXELS || c->has_scorer,
              "%s: key 'scorer' is required for %s (the %s classifier checkpoint)", st->file, ipr_bench_name(c->bench),
              c->bench == IPR_BENCH_SUDOKU ? "digit" : "polygons");
    IPR_CHECK(c->bench != IPR_BENCH_EVEN_PIXELS || !c->has_scorer,
              "%s: key 'scorer': even_pixels is scored by rule, set scorer to null", src);
    const slot *md = cfg_get(st, "mnist_dir");
    c->has_mnist_dir = !md->is_null;
    if (c->has_mnist_dir) snprintf(c->mnist_dir, PL_PATH_MAX, "%s", md->items[0].path);

    /* the key's choices (auto|cpu|cuda) are the device names, so this cannot fail */
    IPR_TRY(ipr_device_from_name(get_s(st, "device.kind"), &c->device));
    IPR_TRY(ipr_precision_from_name(get_s(st, "device.precision"), &c->precision));
    /* precision is the CUDA GEMM mode; the CPU path computes in float32. With kind auto a CPU fallback
     * runs float32 (exec.c says so in the log); asking for the CPU and tf32/bf16 at once is a contradiction */
    IPR_CHECK(c->device != IPR_DEVICE_CPU || c->precision == IPR_PREC_FP32,
              "%s: key 'device.precision': %s needs CUDA, but device.kind is cpu (the CPU path is float32)",
              cfg_get(st, "device.precision")->source, ipr_precision_name(c->precision));
    c->batch = (int)get_i(st, "device.batch");
    c->cpu_threads = (int)get_i(st, "device.cpu_threads");
    c->host_threads = (int)get_i(st, "device.host_threads");
    c->gpu_sampler = !strcmp(get_s(st, "device.sampler"), "gpu");
    c->allow_gpu_sharing = (int)get_i(st, "device.allow_gpu_sharing");

    ipr_sampler_config *s = &c->sampler;
    ipr_sampler_config_init(s);
    /* the key's choices are the sampler's own names (ipr_order_name), so these cannot fail */
    IPR_TRY(ipr_order_from_name(get_s(st, "sampler.order"), &s->order));
    IPR_CHECK(s->order != IPR_ORDER_GRAPH || c->bench == IPR_BENCH_SUDOKU,
              "%s: key 'sampler.order': graph order needs the Sudoku graph (benchmark is %s)",
              cfg_get(st, "sampler.order")->source, ipr_bench_name(c->bench));
    s->steps_per_region = (int)get_i(st, "sampler.steps_per_region");
    s->overlap = get_f(st, "sampler.overlap");
    s->max_steps = (int)get_i(st, "sampler.max_steps");
    s->alpha = get_f(st, "sampler.alpha");
    s->temperature = get_f(st, "sampler.temperature");
    s->skip_idle = (int)get_i(st, "sampler.skip_idle");
    s->ipr_iterations = (int)get_i(st, "ipr.iterations");
    /* ipr_ratio and selection are grid axes: each point sets its own (pl_config_sampler); here the defaults */
    s->ipr_steps_per_region = (int)get_i(st, "ipr.steps_per_region");
    s->ipr_overlap = get_f(st, "ipr.overlap");
    s->selection_mix = get_f(st, "ipr.selection_mix");
    s->early_stop = (int)get_i(st, "ipr.early_stop");
    c->keep_images = (int)get_i(st, "output.keep_images");
    s->keep_images = c->keep_images;
    IPR_CHECK(c->mode == PL_MODE_GENERATE || s->ipr_iterations >= 1,
              "%s: key 'ipr.iterations': correction mode needs at least one iteration", cfg_get(st, "ipr.iterations")->source);

    const slot *fr = cfg_get(st, "ipr.fractions");
    c->n_fractions = fr->n;
    for (int i = 0; i < fr->n; ++i) {
        c->fractions[i] = fr->items[i].f;
        for (int j = 0; j < i; ++j)
            IPR_CHECK(c->fractions[j] != c->fractions[i], "%s: key 'ipr.fractions': %g appears twice", fr->source,
                      c->fractions[i]);
    }
    const slot *se = cfg_get(st, "ipr.selection");
    c->n_selections = se->n;
    for (int i = 0; i < se->n; ++i) {
        IPR_TRY(ipr_selection_from_name(se->items[i].s, &c->selections[i]));
        for (int j = 0; j < i; ++j)
            IPR_CHECK(c->selections[j] != c->selections[i], "%s: key 'ipr.selection': '%s' appears twice", se->source,
                      se->items[i].s);
    }
    const slot *sd = cfg_get(st, "seeds");
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
    c->has_max_failures = !cfg_get(st, "run.max_failures")->is_null;
    c->max_failures = c->has_max_failures ? (int)get_i(st, "run.max_failures") : 0;
    c->has_units_per_request = !cfg_get(st, "run.units_per_request")->is_null;
    c->units_per_request = c->has_units_per_request ? (int)get_i(st, "run.units_per_request") : 0;
    c->progress_interval = get_f(st, "run.progress_interval");
    c->has_passes_per_s = !cfg_get(st, "estimate.passes_per_s")->is_null;
    c->passes_per_s = c->has_passes_per_s ? get_f(st, "estimate.passes_per_s") : 0.0;
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* instances.file: read and check the whole file now, before any run directory or device exists; fill in
 * instances.count when null (the rows from instances.start on), the format read, and the file's SHA-256, which
 * the canonical form holds: a changed file is another config. `limit` (--limit) caps the rows checked below. */
int cfg_resolve_instances(store *st, pl_config *c, int64_t limit) {
    ipr_instance_file *f = NULL;
    slot *fs = &st->slots[cfg_key_index("instances.file")], *fmt = &st->slots[cfg_key_index("instances.format")];
    slot *cnt = &st->slots[cfg_key_index("instances.count")], *sha = &st->slots[cfg_key_index("instances.file_sha256")];
    if (fs->is_null) {
        IPR_CHECK(!fmt->set, "%s: key 'instances.format' describes instances.file, which is not set", fmt->source);
        IPR_CHECK(!cnt->is_null, "%s: required key 'instances.count' is missing (only instances.file can supply it)",
                  st->file);
        return IPR_OK;
    }
    static const char *const generator_keys[] = {"data_seed", "difficulty", "split"};
    for (size_t i = 0; i < sizeof generator_keys / sizeof *generator_keys; ++i) {
        const slot *x = cfg_get(st, generator_keys[i]);
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
              cfg_get(st, "instances.start")->source, (unsigned long long)start, c->instances_file,
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
                     cfg_get(st, "mode")->source, c->instances_file, (unsigned long long)line, (unsigned long long)row);
        IPR_FAIL("%s: key 'mode': correction mode corrupts each puzzle's solved grid, but row %llu of %s has no solution",
                 cfg_get(st, "mode")->source, (unsigned long long)row, c->instances_file);
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

static int file_readable(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && access(path, R_OK) == 0;
}

int pl_config_check_files(const pl_config *cfg) {
    /* a checkpoint is read (architecture, fit, SHA-256) once, by pl_plan_build; here only that it is there */
    for (int i = 0; i < cfg->n_models; ++i) {
        const char *p = cfg->model_path[i];
        IPR_CHECK(file_readable(p), "%s: key 'model.checkpoint': model file %s does not exist or is not readable",
                  cfg->where_model, p);
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

