/* plan.c: grid expansion and cost model. Costs count network passes per image (spec 3.1 block arithmetic,
 * spec 3.3 derived costs); they order the hand-out (most expensive first) and drive `ipr plan`. */
#define _POSIX_C_SOURCE 200809L
#include "pipeline/plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ipr/common.h"
#include "ipr/h5io.h"
#include "ipr/hash.h"
#include "ipr/model.h"
#include "pipeline/config.h"
#include "pipeline/table.h"

static uint64_t unit_id(const char *cfg_sha, const pl_unit *u, double fraction) {
    char text[256], hex[IPR_SHA256_HEX];
    uint64_t fbits;
    memcpy(&fbits, &fraction, sizeof fbits);
    snprintf(text, sizeof text, "%s|m%d|s%d|f%016llx|r%d|i%llu|n%u", cfg_sha, u->model, u->selection,
             (unsigned long long)fbits, u->replicate, (unsigned long long)u->first, u->count);
    ipr_sha256_hex(text, strlen(text), hex);
    uint64_t id = 0;
    for (int i = 0; i < 16; ++i) {
        char c = hex[i];
        id = (id << 4) | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    return id;
}

static const pl_unit *g_sort_units;
static int by_id(const void *a, const void *b) {
    uint64_t x = g_sort_units[*(const int *)a].id, y = g_sort_units[*(const int *)b].id;
    return x < y ? -1 : x > y ? 1 : 0;
}

static const double *g_family_nfe;
/* the hand-out order: families by estimated cost, most expensive first (LPT), ties by family; a family's units
 * together, most expensive first, ties in plan order */
static int by_cost(const void *a, const void *b) {
    const pl_unit *x = &g_sort_units[*(const int *)a], *y = &g_sort_units[*(const int *)b];
    const double fx = g_family_nfe[x->family], fy = g_family_nfe[y->family];
    if (fx != fy) return fx > fy ? -1 : 1;
    if (x->family != y->family) return x->family - y->family;
    if (x->nfe != y->nfe) return x->nfe > y->nfe ? -1 : 1;
    return x->index - y->index;
}

static int by_family_key(const void *a, const void *b) {
    const pl_unit *x = &g_sort_units[*(const int *)a], *y = &g_sort_units[*(const int *)b];
    if (x->model != y->model) return x->model - y->model;
    if (x->replicate != y->replicate) return x->replicate - y->replicate;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    return x->index - y->index;
}

/* Number the families (model, replicate, instance block) in key order, sum their estimated cost, and sort the
 * hand-out order (p->handout holds every unit index) and the id index. */
static int order_units(pl_plan *p) {
    const int n = p->n_units;
    int *ord = NULL;
    IPR_TRY_PTR(ord = ipr_calloc((size_t)n, sizeof(int), "unit order"));
    for (int i = 0; i < n; ++i) ord[i] = i;
    g_sort_units = p->units;
    qsort(ord, (size_t)n, sizeof(int), by_family_key);
    int fam = -1;
    for (int j = 0; j < n; ++j) {
        const pl_unit *u = &p->units[ord[j]], *prev = j ? &p->units[ord[j - 1]] : NULL;
        if (!prev || u->model != prev->model || u->replicate != prev->replicate || u->first != prev->first) ++fam;
        p->units[ord[j]].family = fam;
    }
    free(ord);
    p->n_families = fam + 1;
    IPR_TRY_PTR(p->family_nfe = ipr_calloc((size_t)p->n_families + 1, sizeof(double), "family costs"));
    for (int i = 0; i < n; ++i) p->family_nfe[p->units[i].family] += p->units[i].nfe;
    g_family_nfe = p->family_nfe;
    qsort(p->handout, (size_t)n, sizeof(int), by_cost);
    qsort(p->by_id, (size_t)n, sizeof(int), by_id);
    g_sort_units = NULL;
    g_family_nfe = NULL;
    return IPR_OK;
fail:
    g_sort_units = NULL;
    return IPR_ERR;
}

/* Read checkpoint m once: its architecture, which must fit the benchmark's images (C channels, side x side, a
 * patch that tiles them), its size, and its SHA-256 unless rank 0's is given. */
static int read_model(const pl_config *cfg, int m, int C, int side, const char *sha, pl_model *out, char *sha_out) {
    const char *p = cfg->model_path[m];
    struct stat sb;
    snprintf(out->path, sizeof out->path, "%s", p);
    if (ipr_model_info_read(p, &out->info) != IPR_OK) {
        ipr_error_context("%s: key 'model.checkpoint': %s is not an SRM checkpoint", cfg->where_model, p);
        return IPR_ERR;
    }
    const ipr_model_info *uc = &out->info;
    IPR_CHECK(uc->d_in == C && uc->image_size[0] == side && uc->image_size[1] == side,
              "%s: key 'model.checkpoint': %s was trained on %dx%d images with %d channels; %s has %dx%d with %d",
              cfg->where_model, p, uc->image_size[0], uc->image_size[1], uc->d_in, ipr_bench_name(cfg->bench), side,
              side, C);
    IPR_CHECK(uc->patch_size > 0 && side % uc->patch_size == 0,
              "%s: key 'model.checkpoint': %s has patch size %d, which does not tile %dx%d regions", cfg->where_model, p,
              uc->patch_size, side, side);
    IPR_IO(stat(p, &sb) == 0, p);
    out->size_bytes = (int64_t)sb.st_size;
    if (sha) {
        snprintf(sha_out, IPR_SHA256_HEX, "%s", sha);
    } else if (ipr_sha256_file(p, sha_out) != IPR_OK) {
        ipr_error_context("key 'model.checkpoint'");
        return IPR_ERR;
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* Everything but the checkpoints: the task, the denoiser template, each grid point's sampler settings and the
 * run's operational settings, copied out of cfg so that nothing downstream reads it. */
static void resolve(const pl_config *cfg, pl_resolved *r) {
    snprintf(r->name, sizeof r->name, "%s", cfg->name);
    ipr_task_config *tc = &r->task;
    ipr_task_config_init(tc);
    tc->bench = cfg->bench;
    tc->split = cfg->split;
    tc->difficulty = cfg->difficulty;
    tc->data_seed = cfg->data_seed;
    if (cfg->has_mnist_dir) {
        snprintf(r->mnist_dir, sizeof r->mnist_dir, "%s", cfg->mnist_dir);
        tc->mnist_dir = r->mnist_dir;
    }
    if (cfg->has_scorer) {
        snprintf(r->scorer_path, sizeof r->scorer_path, "%s", cfg->scorer_path);
        tc->scorer_path = r->scorer_path;
    }
    tc->correction = cfg->mode == PL_MODE_CORRECTION;
    tc->correction_swaps = cfg->correction_swaps;
    if (cfg->has_instances_file) { /* checked whole by pl_config_load; the task keeps the rows of this run */
        snprintf(r->instances_file, sizeof r->instances_file, "%s", cfg->instances_file);
        memcpy(r->instances_sha256, cfg->instances_sha256, sizeof r->instances_sha256);
        tc->instances_file = r->instances_file;
        tc->instances_format = cfg->instances_format;
        tc->instances_start = cfg->instance_start;
        tc->instances_count = (uint64_t)cfg->instance_count;
        tc->instances_sha256 = r->instances_sha256;
    }
    ipr_denoiser_config_init(&r->denoiser);
    r->denoiser.precision = cfg->precision;
    r->denoiser.max_batch = cfg->batch;
    for (int s = 0; s < cfg->n_selections; ++s)
        for (int f = 0; f < cfg->n_fractions; ++f)
            pl_config_sampler(cfg, cfg->fractions[f], cfg->selections[s], &r->sampler[s][f]);
    r->device = cfg->device;
    r->cpu_threads = cfg->cpu_threads;
    r->host_threads = cfg->host_threads;
    r->gpu_sampler = cfg->gpu_sampler;
    r->allow_gpu_sharing = cfg->allow_gpu_sharing;
    r->chunk_units = pl_plan_chunk_units(cfg);
    r->chunk_explicit = cfg->has_units_per_request;
    r->family_units = pl_plan_shared_variants(cfg);
    r->retries = cfg->retries;
    r->has_max_failures = cfg->has_max_failures;
    r->max_failures = cfg->max_failures;
    r->progress_interval = cfg->progress_interval;
}

int pl_plan_build(const pl_config *cfg, pl_plan *out) { return pl_plan_build_hashed(cfg, NULL, out); }

int pl_plan_build_hashed(const pl_config *cfg, const char (*model_sha256)[65], pl_plan *out) {
    memset(out, 0, sizeof *out);
    pl_grid *g = &out->grid;
    g->bench = cfg->bench;
    g->iterations = cfg->sampler.ipr_iterations;
    g->keep_images = cfg->keep_images;
    g->limited = cfg->limited;
    g->C = cfg->bench == IPR_BENCH_SUDOKU ? 1 : 3;
    g->n_models = cfg->n_models;
    for (int m = 0; m < cfg->n_models; ++m) snprintf(g->model_name[m], PL_NAME_MAX, "%s", cfg->model_name[m]);
    g->n_selections = cfg->n_selections;
    memcpy(g->selections, cfg->selections, sizeof g->selections);
    g->n_fractions = cfg->n_fractions;
    memcpy(g->fractions, cfg->fractions, sizeof g->fractions);
    g->n_seeds = cfg->n_seeds;
    memcpy(g->seeds, cfg->seeds, sizeof g->seeds);
    memcpy(g->config_sha256, cfg->sha256, sizeof g->config_sha256);
    int side = cfg->bench == IPR_BENCH_SUDOKU ? IPR_SUDOKU_SIDE
               : cfg->bench == IPR_BENCH_EVEN_PIXELS ? IPR_EP_SIDE : IPR_POLY_SIDE;
    g->H = g->W = side;
    IPR_TRY_PTR(out->resolved = ipr_calloc(1, sizeof *out->resolved, "resolved run settings"));
    pl_resolved *rs = out->resolved;
    resolve(cfg, rs);
    for (int m = 0; m < cfg->n_models; ++m) {
        IPR_TRY(read_model(cfg, m, g->C, side, model_sha256 ? model_sha256[m] : NULL, &rs->model[m],
                           g->model_sha256[m]));
        const ipr_model_info *uc = &rs->model[m].info;
        int patch = uc->patch_size;
        int R = (side / patch) * (side / patch);
        double unknown = R;
        if (cfg->bench == IPR_BENCH_SUDOKU && cfg->mode == PL_MODE_GENERATE && cfg->has_instances_file) {
            unknown = R * (81.0 - cfg->instances_mean_given) / 81.0; /* the file's puzzles, counted */
        } else if (cfg->bench == IPR_BENCH_SUDOKU && cfg->mode == PL_MODE_GENERATE) {
            int lo, hi;
            ipr_sudoku_difficulty_range(cfg->difficulty, &lo, &hi);
            unknown = R * (81.0 - 0.5 * (lo + hi)) / 81.0; /* clues are uniform in [lo, hi] */
        }
        out->regions[m] = R;
        out->backbone[m] = uc->backbone;
        out->refinable[m] = unknown;
        /* the runner's own block arithmetic (spec 3.1, 9a): idle passes included unless skip_idle */
        int B = (int)lround(unknown);
        int base = cfg->mode == PL_MODE_CORRECTION ? 0 : ipr_sampler_generation_passes(&rs->sampler[0][0], B, 0);
        IPR_CHECK(base >= 0, "cannot plan the base generation of %d regions", B);
        out->base_nfe[m] = base;
        for (int f = 0; f < cfg->n_fractions; ++f) {
            int mm = (int)floor(unknown * cfg->fractions[f]);
            if (mm < 1) mm = 1;
            int it = ipr_sampler_generation_passes(&rs->sampler[0][f], mm, 1);
            IPR_CHECK(it >= 0, "cannot plan an IPR iteration of %d regions", mm);
            out->iter_nfe[m][f] = it;
        }
    }
    int64_t blocks = (cfg->instance_count + cfg->per_unit - 1) / cfg->per_unit;
    int64_t n = (int64_t)cfg->n_models * cfg->n_selections * cfg->n_fractions * cfg->n_seeds * blocks;
    IPR_CHECK(n >= 1 && n <= 50000000, "the grid has %lld work units; raise instances.per_unit", (long long)n);
    IPR_TRY_PTR(out->units = ipr_calloc((size_t)n, sizeof(pl_unit), "work units"));
    IPR_TRY_PTR(out->handout = ipr_calloc((size_t)n, sizeof(int), "hand-out order"));
    IPR_TRY_PTR(out->by_id = ipr_calloc((size_t)n, sizeof(int), "unit index"));
    int k = 0, group = 0;
    const double shared = pl_plan_shared_variants(cfg); /* units that split one base generation */
    for (int m = 0; m < cfg->n_models; ++m)
        for (int s = 0; s < cfg->n_selections; ++s)
            for (int f = 0; f < cfg->n_fractions; ++f)
                for (int r = 0; r < cfg->n_seeds; ++r, ++group)
                    for (int64_t b = 0; b < blocks; ++b, ++k) {
                        pl_unit *u = &out->units[k];
                        u->index = k;
                        u->model = m;
                        u->selection = s;
                        u->fraction = f;
                        u->replicate = r;
                        u->seed = cfg->seeds[r];
                        u->first = cfg->instance_start + (uint64_t)b * (uint64_t)cfg->per_unit;
                        int64_t left = cfg->instance_count - b * cfg->per_unit;
                        u->count = (uint32_t)(left < cfg->per_unit ? left : cfg->per_unit);
                        u->group = group;
                        /* whole passes, as plan.h5 stores them (a loaded plan orders its units the same) */
                        u->nfe = (double)llround(u->count * (out->base_nfe[m] / shared +
                                                             cfg->sampler.ipr_iterations * out->iter_nfe[m][f]));
                        u->id = unit_id(cfg->sha256, u, cfg->fractions[f]);
                        out->nfe_total += u->nfe;
                        out->handout[k] = k;
                        out->by_id[k] = k;
                    }
    out->n_units = (int)n;
    out->n_groups = group;
    IPR_TRY(order_units(out));
    for (int i = 1; i < out->n_units; ++i)
        IPR_CHECK(out->units[out->by_id[i]].id != out->units[out->by_id[i - 1]].id, "two work units share an id");
    return IPR_OK;
fail:
    pl_plan_free(out);
    return IPR_ERR;
}

void pl_plan_free(pl_plan *p) {
    free(p->resolved);
    free(p->units);
    free(p->handout);
    free(p->family_nfe);
    free(p->by_id);
    memset(p, 0, sizeof *p);
}

void pl_plan_shards(const pl_plan *p, int nshards, int *shard_of) {
    double load[4096];
    int ns = nshards < 4096 ? nshards : 4096;
    for (int i = 0; i < ns; ++i) load[i] = 0.0;
    /* the hand-out order keeps a family's units together: each family goes whole to the least loaded shard */
    int best = 0;
    for (int j = 0; j < p->n_units; ++j) {
        const int u = p->handout[j];
        if (j == 0 || p->units[u].family != p->units[p->handout[j - 1]].family) {
            best = 0;
            for (int i = 1; i < ns; ++i)
                if (load[i] < load[best]) best = i;
        }
        shard_of[u] = best;
        load[best] += p->units[u].nfe;
    }
}

int pl_parse_shard(const char *text, int *shard, int *nshards) {
    char *end = NULL;
    long i = strtol(text, &end, 10);
    IPR_CHECK(end != text && *end == '/', "--shard '%s': expected I/N, e.g. 3/16", text);
    const char *rest = end + 1;
    long n = strtol(rest, &end, 10);
    IPR_CHECK(end != rest && *end == '\0', "--shard '%s': expected I/N, e.g. 3/16", text);
    IPR_CHECK(n >= 1 && n <= 4096 && i >= 0 && i < n, "--shard '%s': need 0 <= I < N <= 4096", text);
    *shard = (int)i;
    *nshards = (int)n;
    return IPR_OK;
fail:
    return IPR_ERR;
}

int pl_plan_find(const pl_plan *p, uint64_t id) {
    int lo = 0, hi = p->n_units - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        uint64_t v = p->units[p->by_id[mid]].id;
        if (v == id) return p->by_id[mid];
        if (v < id) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

int pl_plan_shared_variants(const pl_config *cfg) {
    return cfg->sampler.ipr_iterations > 0 && cfg->mode == PL_MODE_GENERATE ? cfg->n_selections * cfg->n_fractions
                                                                             : 1;
}

int pl_plan_chunk_units(const pl_config *cfg) {
    if (cfg->has_units_per_request) return cfg->units_per_request;
    int n = (cfg->batch + cfg->per_unit - 1) / cfg->per_unit;
    n = (n < 1 ? 1 : n) * pl_plan_shared_variants(cfg);
    return n > PL_MAX_CHUNK_UNITS ? PL_MAX_CHUNK_UNITS : n;
}

double pl_reference_rate(const pl_config *cfg) {
    /* reference-throughput.md: one H200, B = 64 (32 for ms1000_28), full-size models */
    static const double bf16[IPR_BENCH_COUNT] = {154, 2601, 558};
    static const double fp32[IPR_BENCH_COUNT] = {42, 2252, 162};
    if (cfg->device == IPR_DEVICE_CPU) return 0.0;
    return cfg->precision == IPR_PREC_FP32 ? fp32[cfg->bench] : bf16[cfg->bench];
}

/* ---------------- plan.h5 ---------------- */

int pl_plan_save(const pl_plan *p, const char *path) {
    char tmp[PL_PATH_MAX + 32] = "";
    hid_t f = H5I_INVALID_HID, g = H5I_INVALID_HID;
    pl_table t;
    pl_table_init(&t, &pl_plan_def);
    const pl_grid *gr = &p->grid;
    if (p->n_units > 0 && pl_table_add(&t, (size_t)p->n_units) == (size_t)-1) goto fail;
    for (int i = 0; i < p->n_units; ++i) {
        const pl_unit *u = &p->units[i];
        pl_set_u64(&t, PL_P_UNIT_ID, (size_t)i, u->id);
        pl_set_u64(&t, PL_P_MODEL, (size_t)i, (uint64_t)u->model);
        pl_set_u64(&t, PL_P_SELECTION, (size_t)i, (uint64_t)u->selection);
        pl_set_u64(&t, PL_P_FRACTION_INDEX, (size_t)i, (uint64_t)u->fraction);
        pl_set_u64(&t, PL_P_REPLICATE, (size_t)i, (uint64_t)u->replicate);
        pl_set_u64(&t, PL_P_SEED, (size_t)i, u->seed);
        pl_set_u64(&t, PL_P_FIRST, (size_t)i, u->first);
        pl_set_u64(&t, PL_P_COUNT, (size_t)i, u->count);
        pl_set_u64(&t, PL_P_GROUP, (size_t)i, (uint64_t)u->group);
        pl_set_u64(&t, PL_P_NFE, (size_t)i, (uint64_t)llround(u->nfe));
    }
    IPR_TRY(ipr_tmp_path(tmp, sizeof tmp, path));
    IPR_TRY_ID(f = ipr_h5_create(tmp));
    IPR_TRY(ipr_h5_attr_str(f, "format", "ipr-plan"));
    IPR_TRY(ipr_h5_attr_str(f, "benchmark", ipr_bench_name(gr->bench)));
    IPR_TRY(ipr_h5_attr_str(f, "config_sha256", gr->config_sha256));
    IPR_TRY(ipr_h5_attr_i64(f, "iterations", gr->iterations));
    IPR_TRY(ipr_h5_attr_i64(f, "keep_images", gr->keep_images));
    IPR_TRY(ipr_h5_attr_i64(f, "limited", gr->limited));
    int64_t shape[3] = {gr->C, gr->H, gr->W};
    IPR_TRY(ipr_h5_attr_i64_array(f, "image_chw", shape, 3));
    IPR_TRY(pl_table_write(&t, f));
    IPR_TRY_ID(g = ipr_h5_group(f, "meta"));
    {
        const char *names[PL_MAX_MODELS], *shas[PL_MAX_MODELS], *sels[PL_MAX_SELECTIONS];
        for (int m = 0; m < gr->n_models; ++m) {
            names[m] = gr->model_name[m];
            shas[m] = gr->model_sha256[m];
        }
        for (int s = 0; s < gr->n_selections; ++s) sels[s] = ipr_selection_name(gr->selections[s]);
        IPR_TRY(pl_h5_write_strings(g, "model_names", names, gr->n_models));
        IPR_TRY(pl_h5_write_strings(g, "model_sha256", shas, gr->n_models));
        IPR_TRY(pl_h5_write_strings(g, "selection_names", sels, gr->n_selections));
        hsize_t nf = (hsize_t)gr->n_fractions, ns = (hsize_t)gr->n_seeds;
        IPR_TRY(ipr_h5_write(g, "fractions", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, &nf, gr->fractions));
        IPR_TRY(ipr_h5_write(g, "seeds", H5T_NATIVE_UINT64, H5T_STD_U64LE, 1, &ns, gr->seeds));
    }
    IPR_H5(H5Gclose(g));
    g = H5I_INVALID_HID;
    IPR_TRY(ipr_h5_fclose(&f));
    IPR_TRY(ipr_commit_tmp(tmp, path));
    pl_table_free(&t);
    return IPR_OK;
fail:
    ipr_error_context("writing %s", path);
    if (g >= 0) H5Gclose(g);
    if (f >= 0) H5Fclose(f);
    if (tmp[0]) remove(tmp);
    pl_table_free(&t);
    return IPR_ERR;
}

static int read_strings(hid_t loc, const char *name, char *out, size_t stride, int cap, int *n) {
    hid_t ds = H5I_INVALID_HID, sp = H5I_INVALID_HID, t = H5I_INVALID_HID;
    char *vals[PL_MAX_SEEDS];
    int have = 0;
    IPR_H5(ds = H5Dopen2(loc, name, H5P_DEFAULT));
    IPR_H5(sp = H5Dget_space(ds));
    hssize_t cnt = H5Sget_simple_extent_npoints(sp);
    IPR_CHECK(cnt >= 0 && cnt <= cap, "%s: %lld strings, at most %d expected", name, (long long)cnt, cap);
    IPR_H5(t = H5Tcopy(H5T_C_S1));
    IPR_H5(H5Tset_size(t, H5T_VARIABLE));
    IPR_H5(H5Tset_cset(t, H5T_CSET_UTF8));
    if (cnt > 0) {
        IPR_H5(H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, vals));
        have = 1;
    }
    for (hssize_t i = 0; i < cnt; ++i) snprintf(out + (size_t)i * stride, stride, "%s", vals[i] ? vals[i] : "");
    if (have) IPR_H5(H5Dvlen_reclaim(t, sp, H5P_DEFAULT, vals));
    *n = (int)cnt;
    IPR_H5(H5Tclose(t));
    t = H5I_INVALID_HID;
    IPR_H5(H5Sclose(sp));
    sp = H5I_INVALID_HID;
    IPR_H5(H5Dclose(ds));
    return IPR_OK;
fail:
    if (t >= 0) H5Tclose(t);
    if (sp >= 0) H5Sclose(sp);
    if (ds >= 0) H5Dclose(ds);
    return IPR_ERR;
}

int pl_plan_load(const char *path, pl_plan *p) {
    hid_t f = H5I_INVALID_HID;
    pl_table t;
    void *data = NULL;
    pl_table_init(&t, &pl_plan_def);
    memset(p, 0, sizeof *p);
    pl_grid *g = &p->grid;
    char text[128];
    int64_t v, shape[3];
    int n = 0, rank = 0;
    hsize_t dims[8];
    IPR_TRY_ID(f = ipr_h5_open_read(path));
    IPR_TRY(ipr_h5_read_attr_str(f, "format", text, sizeof text));
    IPR_CHECK(strcmp(text, "ipr-plan") == 0, "%s is not a plan file", path);
    IPR_TRY(ipr_h5_read_attr_str(f, "benchmark", text, sizeof text));
    IPR_TRY(ipr_bench_from_name(text, &g->bench));
    IPR_TRY(ipr_h5_read_attr_str(f, "config_sha256", g->config_sha256, sizeof g->config_sha256));
    IPR_TRY(ipr_h5_read_attr_i64(f, "iterations", &v));
    IPR_CHECK(v >= 0 && v <= IPR_SAMPLER_MAX_ITERATIONS, "%s: iterations %lld is outside [0, %d]", path, (long long)v,
              IPR_SAMPLER_MAX_ITERATIONS);
    g->iterations = (int)v;
    IPR_TRY(ipr_h5_read_attr_i64(f, "keep_images", &v));
    g->keep_images = (int)v;
    IPR_TRY(ipr_h5_read_attr_i64(f, "limited", &v));
    g->limited = (int)v;
    IPR_TRY(ipr_h5_read_attr_i64_array(f, "image_chw", shape, 3, &n));
    /* the image shape sizes every image buffer of a merge: three plausible numbers, or the file is damaged */
    IPR_CHECK(n == 3 && shape[0] >= 1 && shape[0] <= 4 && shape[1] >= 1 && shape[1] <= 4096 && shape[2] >= 1 &&
                  shape[2] <= 4096,
              "%s: image_chw is not a (C, H, W) of an image", path);
    g->C = (int)shape[0];
    g->H = (int)shape[1];
    g->W = (int)shape[2];
    IPR_TRY(read_strings(f, "/meta/model_names", &g->model_name[0][0], PL_NAME_MAX, PL_MAX_MODELS, &g->n_models));
    IPR_TRY(read_strings(f, "/meta/model_sha256", &g->model_sha256[0][0], 65, PL_MAX_MODELS, &n));
    {
        char sels[PL_MAX_SELECTIONS][16];
        IPR_TRY(read_strings(f, "/meta/selection_names", &sels[0][0], 16, PL_MAX_SELECTIONS, &g->n_selections));
        for (int s = 0; s < g->n_selections; ++s) IPR_TRY(ipr_selection_from_name(sels[s], &g->selections[s]));
    }
    IPR_TRY(ipr_h5_read_alloc(f, "/meta/fractions", H5T_NATIVE_DOUBLE, 1, &rank, dims, &data));
    IPR_CHECK(dims[0] <= PL_MAX_FRACTIONS, "too many fractions");
    g->n_fractions = (int)dims[0];
    memcpy(g->fractions, data, dims[0] * sizeof(double));
    free(data);
    data = NULL;
    IPR_TRY(ipr_h5_read_alloc(f, "/meta/seeds", H5T_NATIVE_UINT64, 1, &rank, dims, &data));
    IPR_CHECK(dims[0] <= PL_MAX_SEEDS, "too many seeds");
    g->n_seeds = (int)dims[0];
    memcpy(g->seeds, data, dims[0] * sizeof(uint64_t));
    free(data);
    data = NULL;
    IPR_TRY(pl_table_read(&t, f));
    IPR_TRY(ipr_h5_fclose(&f));
    p->n_units = (int)t.n;
    IPR_TRY_PTR(p->units = ipr_calloc(t.n, sizeof(pl_unit), "work units"));
    IPR_TRY_PTR(p->handout = ipr_calloc(t.n, sizeof(int), "hand-out order"));
    IPR_TRY_PTR(p->by_id = ipr_calloc(t.n, sizeof(int), "unit index"));
    for (size_t i = 0; i < t.n; ++i) {
        pl_unit *u = &p->units[i];
        u->index = (int)i;
        u->id = pl_get_u64(&t, PL_P_UNIT_ID, i);
        u->model = (int)pl_get_u64(&t, PL_P_MODEL, i);
        u->selection = (int)pl_get_u64(&t, PL_P_SELECTION, i);
        u->fraction = (int)pl_get_u64(&t, PL_P_FRACTION_INDEX, i);
        u->replicate = (int)pl_get_u64(&t, PL_P_REPLICATE, i);
        u->seed = pl_get_u64(&t, PL_P_SEED, i);
        u->first = pl_get_u64(&t, PL_P_FIRST, i);
        u->count = (uint32_t)pl_get_u64(&t, PL_P_COUNT, i);
        u->group = (int)pl_get_u64(&t, PL_P_GROUP, i);
        u->nfe = (double)pl_get_u64(&t, PL_P_NFE, i);
        /* compared as read (uint64), before the int casts above could make a huge index negative */
        IPR_CHECK(pl_get_u64(&t, PL_P_MODEL, i) < (uint64_t)g->n_models &&
                      pl_get_u64(&t, PL_P_SELECTION, i) < (uint64_t)g->n_selections &&
                      pl_get_u64(&t, PL_P_FRACTION_INDEX, i) < (uint64_t)g->n_fractions &&
                      pl_get_u64(&t, PL_P_REPLICATE, i) < (uint64_t)g->n_seeds &&
                      pl_get_u64(&t, PL_P_GROUP, i) < (uint64_t)t.n,
                  "%s: unit %zu indexes outside the grid", path, i);
        if (u->group + 1 > p->n_groups) p->n_groups = u->group + 1;
        p->nfe_total += u->nfe;
        p->handout[i] = (int)i;
        p->by_id[i] = (int)i;
    }
    IPR_TRY(order_units(p));
    pl_table_free(&t);
    return IPR_OK;
fail:
    ipr_error_context("reading %s", path);
    if (f >= 0) H5Fclose(f);
    free(data);
    pl_table_free(&t);
    pl_plan_free(p);
    return IPR_ERR;
}
