/* test_pipeline.c: the pipeline's pieces without MPI: config schema checks and canonical hashing, number
 * formatting, key-level diffs, the plan (ids, LPT order, shards, plan.h5 round trip) and journal scans. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "ipr/common.h"
#include "ipr/h5io.h"
#include "ipr/hash.h"
#include "ipr/unet.h"
#include "pipeline/config.h"
#include "pipeline/json.h"
#include "pipeline/plan.h"
#include "pipeline/rundir.h"
#include "sampler/settings.h"

static char g_dir[256];
static char g_ckpt[300];

static int setup(void **state) {
    (void)state;
    ipr_h5_quiet();
    snprintf(g_dir, sizeof g_dir, "/tmp/ipr-test-pipeline-XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    /* a tiny Even Pixels checkpoint: the plan reads its patch size */
    ipr_unet_config c;
    ipr_unet_config_init(&c);
    c.n_levels = 2;
    c.hid_dims[0] = c.hid_dims[1] = 32;
    c.num_head_channels = 32;
    c.d_in = 3;
    c.d_out = 7;
    c.patch_size = 4;
    c.image_size[0] = c.image_size[1] = 32;
    ipr_unet *net = ipr_unet_new(&c, 1, 32, 32, 0);
    if (!net) return -1;
    ipr_unet_init_random(net, 1);
    snprintf(g_ckpt, sizeof g_ckpt, "%s/ep.h5", g_dir);
    int rc = ipr_unet_save(net, g_ckpt);
    ipr_unet_free(net);
    return rc == IPR_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *k_yaml =
    "# a comment\n"
    "benchmark: even_pixels\n"
    "instances:\n"
    "  count: 10\n"
    "  per_unit: 4\n"
    "model: {checkpoint: ep.h5}\n"
    "ipr:\n"
    "  fractions: [0.1, 0.5]\n"
    "  iterations: 3\n"
    "seeds: [5, \"0x10\"]\n";

static int load(const char *yaml, char *const *sets, int n, pl_config *c) {
    char path[300];
    snprintf(path, sizeof path, "%s/c.yaml", g_dir);
    return pl_config_load(path, yaml, strlen(yaml), sets, n, 0, c);
}

static void test_number_format(void **state) {
    (void)state;
    char b[64];
    pl_format_double(0.1, b, sizeof b);
    assert_string_equal(b, "0.1");
    pl_format_double(1.0, b, sizeof b);
    assert_string_equal(b, "1.0");
    pl_format_double(0.25, b, sizeof b);
    assert_string_equal(b, "0.25");
    pl_format_double(1e-6, b, sizeof b);
    assert_string_equal(b, "1e-06");
    pl_format_double(1.0 / 3.0, b, sizeof b);
    assert_true(strtod(b, NULL) == 1.0 / 3.0);
}

static void test_config_canonical(void **state) {
    (void)state;
    pl_config *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    assert_int_equal(load(k_yaml, NULL, 0, a), IPR_OK);
    /* the same settings in another order, other styles and with defaults spelled out: the same hash */
    const char *other = "seeds:\n  - 5\n  - 16\nipr: {iterations: 3, fractions: [0.10, 5e-1], overlap: 0.8}\n"
                        "model:\n  checkpoint: [ep.h5]\ninstances: {per_unit: 4, count: 10}\nbenchmark: even_pixels\n";
    assert_int_equal(load(other, NULL, 0, b), IPR_OK);
    assert_string_equal(a->sha256, b->sha256);
    assert_string_equal(a->resolved_json, b->resolved_json);
    /* hashed bytes are the file's bytes */
    char hex[65];
    ipr_sha256_hex(a->resolved_json, strlen(a->resolved_json), hex);
    assert_string_equal(hex, a->sha256);
    assert_non_null(strstr(a->resolved_json, "\"fractions\": [0.1, 0.5]"));
    assert_non_null(strstr(a->resolved_json, "\"seeds\": [5, 16]"));
    assert_int_equal(a->n_seeds, 2);
    assert_int_equal(a->sampler.ipr_iterations, 3);
    assert_true(a->sampler.ipr_overlap == 0.8); /* default */
    /* operational keys do not change the hash; semantic ones do */
    char *sets1[] = {"device.batch=64", "run.progress_interval=5"};
    pl_config_free(b);
    assert_int_equal(load(k_yaml, sets1, 2, b), IPR_OK);
    assert_string_equal(a->sha256, b->sha256);
    assert_int_equal(b->batch, 64);
    assert_non_null(strstr(b->sources_json, "\"batch\": \"--set device.batch\""));
    char *sets2[] = {"ipr.fractions=[0.1, 0.25]"};
    pl_config_free(b);
    assert_int_equal(load(k_yaml, sets2, 1, b), IPR_OK);
    assert_string_not_equal(a->sha256, b->sha256);
    char *diff = NULL;
    assert_int_equal(pl_config_diff(a->resolved_json, b->resolved_json, &diff), IPR_OK);
    assert_non_null(strstr(diff, "was: ipr.fractions = [0.1, 0.5]"));
    assert_non_null(strstr(diff, "now: ipr.fractions = [0.1, 0.25]"));
    assert_null(strstr(diff, "seeds"));
    free(diff);
    pl_config_free(a);
    pl_config_free(b);
    free(a);
    free(b);
}

/* Each bad input fails, and the message names the place and the key. */
static void expect_error(const char *yaml, char *set, const char *needle) {
    pl_config *c = calloc(1, sizeof *c);
    char *sets[1] = {set};
    ipr_error_clear();
    assert_int_equal(load(yaml, sets, set ? 1 : 0, c), IPR_ERR);
    if (!strstr(ipr_error_message(), needle)) fail_msg("message '%s' lacks '%s'", ipr_error_message(), needle);
    free(c);
}

static void test_config_errors(void **state) {
    (void)state;
    expect_error("benchmark: even_pixels\ninstances: {count: 3}\nmodel: {checkpoint: ep.h5}\nipr: {fraction: 0.5}\n",
                 NULL, "c.yaml:4: unknown key 'ipr.fraction' (did you mean 'ipr.fractions'?)");
    expect_error("benchmark: even_pixels\ninstances: {count: 3}\nmodel: {checkpoint: ep.h5}\nipr: {fractions: [0]}\n",
                 NULL, "c.yaml:4: key 'ipr.fractions': 0 is outside (0.0, 1.0]");
    expect_error("benchmark: even_pixels\ninstances: {count: 3}\nmodel: {checkpoint: ep.h5}\nipr: {fractions: 1.5}\n",
                 NULL, "key 'ipr.fractions': 1.5 is outside");
    expect_error("benchmark: even_pixels\ninstances: {count: 010}\nmodel: {checkpoint: ep.h5}\n", NULL,
                 "c.yaml:2: key 'instances.count': '010' has a leading zero");
    expect_error("benchmark: even_pixels\ninstances: {count: 3}\nmodel: {checkpoint: ep.h5}\nipr: {early_stop: yes}\n",
                 NULL, "'yes' is not a boolean");
    expect_error("benchmark: even_pixels\ninstances: {count: 3}\nmodel: {checkpoint: ep.h5}\nsampler: {order: [a]}\n",
                 NULL, "key 'sampler.order' takes one value, not a list");
    expect_error("benchmark: even_pixels\nbenchmark: sudoku\ninstances: {count: 3}\nmodel: {checkpoint: ep.h5}\n",
                 NULL, "c.yaml:2: key 'benchmark' appears twice");
    expect_error("benchmark: even_pixels\nmodel: {checkpoint: ep.h5}\n", NULL, "required key 'instances.count'");
    expect_error("benchmark: sudoku\ninstances: {count: 3}\nmodel: {checkpoint: ep.h5}\n", NULL,
                 "key 'scorer' is required for sudoku");
    expect_error("benchmark: even_pixels\ninstances: {count: 3}\nmodel: {checkpoint: ep.h5}\nseeds: [1, 1]\n", NULL,
                 "key 'seeds': 1 appears twice");
    expect_error("benchmark: even_pixels\ninstances: {count: 3}\nmodel: {checkpoint: ep.h5}\n", "ipr.overlap=1.0",
                 "--set ipr.overlap: key 'ipr.overlap': 1.0 is outside [0.0, 1.0)");
    expect_error("benchmark: even_pixels\ninstances: {count: 3}\nmodel: {checkpoint: ep.h5}\n", "nope=1",
                 "--set: unknown key 'nope'");
    expect_error("benchmark: even_pixels\ninstances: {count: [3\n", NULL, "YAML syntax error");
}

static void test_plan(void **state) {
    (void)state;
    pl_config *c = calloc(1, sizeof *c);
    assert_int_equal(load(k_yaml, NULL, 0, c), IPR_OK);
    assert_int_equal(pl_config_check_files(c), IPR_OK);
    pl_plan p, q;
    assert_int_equal(pl_plan_build(c, &p), IPR_OK);
    /* 2 fractions x 2 seeds x ceil(10 / 4) blocks */
    assert_int_equal(p.n_units, 12);
    assert_int_equal(p.units[2].count, 2);
    assert_int_equal(p.regions[0], 64);
    /* families (model, seed, instance block: 2 seeds x 3 blocks) by cost, most expensive first, each family's units
     * together (they share base samples), most expensive first */
    assert_int_equal(p.n_families, 6);
    for (int i = 0; i < p.n_units; ++i) {
        assert_int_equal(pl_plan_find(&p, p.units[i].id), i);
        if (!i) continue;
        const pl_unit *a = &p.units[p.handout[i - 1]], *b = &p.units[p.handout[i]];
        assert_true(p.family_nfe[a->family] >= p.family_nfe[b->family]);
        if (a->family == b->family) assert_true(a->nfe >= b->nfe);
        for (int j = 0; j < i - 1 && a->family != b->family; ++j)
            assert_true(p.units[p.handout[j]].family != b->family); /* a family is not split */
    }
    /* the bigger fraction costs more per iteration, so its units come first */
    assert_int_equal(p.units[p.handout[0]].fraction, 1);
    /* ids depend on the config hash and the coordinates only */
    assert_int_equal(pl_plan_build(c, &q), IPR_OK);
    for (int i = 0; i < p.n_units; ++i) assert_true(p.units[i].id == q.units[i].id);
    pl_plan_free(&q);
    /* static shards: every unit in one shard, a family's units in the same one, loads within one family of each
     * other */
    int shard_of[64];
    pl_plan_shards(&p, 3, shard_of);
    double load3[3] = {0, 0, 0}, maxu = 0;
    for (int i = 0; i < p.n_units; ++i) {
        assert_true(shard_of[i] >= 0 && shard_of[i] < 3);
        load3[shard_of[i]] += p.units[i].nfe;
        if (p.family_nfe[p.units[i].family] > maxu) maxu = p.family_nfe[p.units[i].family];
        for (int j = 0; j < i; ++j)
            if (p.units[j].family == p.units[i].family) assert_int_equal(shard_of[j], shard_of[i]);
    }
    for (int s = 0; s < 3; ++s)
        for (int t = 0; t < 3; ++t) assert_true(load3[s] - load3[t] <= maxu);
    /* plan.h5 round trip */
    char path[300];
    snprintf(path, sizeof path, "%s/plan.h5", g_dir);
    assert_int_equal(pl_plan_save(&p, path), IPR_OK);
    assert_int_equal(pl_plan_load(path, &q), IPR_OK);
    assert_int_equal(q.n_units, p.n_units);
    assert_int_equal(q.grid.n_fractions, 2);
    assert_true(q.grid.fractions[0] == 0.1);
    assert_int_equal(q.grid.seeds[1], 16);
    assert_string_equal(q.grid.config_sha256, c->sha256);
    for (int i = 0; i < p.n_units; ++i) {
        assert_true(q.units[i].id == p.units[i].id);
        assert_int_equal(q.handout[i], p.handout[i]);
    }
    int sh = 0, n = 0;
    assert_int_equal(pl_parse_shard("2/5", &sh, &n), IPR_OK);
    assert_int_equal(sh * 10 + n, 25);
    assert_int_equal(pl_parse_shard("5/5", &sh, &n), IPR_ERR);
    pl_plan_free(&q);
    pl_plan_free(&p);
    pl_config_free(c);
    free(c);
}

/* The plan resolves the config once for the units of a run: each checkpoint read (architecture, size, SHA-256),
 * every grid point's sampler settings, the task and denoiser templates; a plan read back from plan.h5 has none. */
static void test_plan_resolved(void **state) {
    (void)state;
    pl_config *c = calloc(1, sizeof *c);
    assert_int_equal(load(k_yaml, NULL, 0, c), IPR_OK);
    pl_plan p, q;
    assert_int_equal(pl_plan_build(c, &p), IPR_OK);
    const pl_resolved *r = p.resolved;
    assert_non_null(r);
    char sha[65];
    assert_int_equal(ipr_sha256_file(g_ckpt, sha), IPR_OK);
    assert_string_equal(p.grid.model_sha256[0], sha);
    assert_int_equal(r->model[0].info.patch_size, 4);
    assert_true(r->model[0].size_bytes > 0);
    assert_int_equal(r->task.bench, IPR_BENCH_EVEN_PIXELS);
    assert_null(r->task.scorer_path);
    assert_null(r->task.instances_file);
    assert_int_equal(r->denoiser.max_batch, c->batch);
    assert_int_equal(r->device, c->device);
    assert_int_equal(r->chunk_units, pl_plan_chunk_units(c));
    for (int f = 0; f < 2; ++f) {
        ipr_sampler_config want;
        pl_config_sampler(c, c->fractions[f], c->selections[0], &want);
        assert_memory_equal(&r->sampler[0][f], &want, sizeof want);
    }
    assert_true(r->sampler[0][1].ipr_ratio == 0.5);
    /* rank 0's hashes given: the same plan without hashing the file again */
    char given[PL_MAX_MODELS][65];
    memset(given, 0, sizeof given);
    snprintf(given[0], sizeof given[0], "%s", sha);
    assert_int_equal(pl_plan_build_hashed(c, (const char(*)[65])given, &q), IPR_OK);
    assert_string_equal(q.grid.model_sha256[0], sha);
    for (int i = 0; i < p.n_units; ++i) assert_true(q.units[i].id == p.units[i].id);
    pl_plan_free(&q);
    char path[300];
    snprintf(path, sizeof path, "%s/plan_resolved.h5", g_dir);
    assert_int_equal(pl_plan_save(&p, path), IPR_OK);
    assert_int_equal(pl_plan_load(path, &q), IPR_OK);
    assert_null(q.resolved);
    assert_string_equal(q.grid.model_sha256[0], sha);
    pl_plan_free(&q);
    pl_plan_free(&p);
    /* a checkpoint of another benchmark is refused by the plan, naming the key */
    pl_config_free(c);
    memset(c, 0, sizeof *c);
    assert_int_equal(load("benchmark: counting_polygons\ninstances: {count: 3}\nmodel: {checkpoint: ep.h5}\n"
                          "scorer: ep.h5\n", NULL, 0, c),
                     IPR_OK);
    assert_int_equal(pl_plan_build(c, &p), IPR_ERR);
    assert_non_null(strstr(ipr_error_message(), "key 'model.checkpoint'"));
    assert_non_null(strstr(ipr_error_message(), "was trained on 32x32 images with 3 channels"));
    ipr_error_clear();
    pl_config_free(c);
    free(c);
}

static void write_text(const char *path, const char *text) {
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void test_journal_scan(void **state) {
    (void)state;
    pl_config *c = calloc(1, sizeof *c);
    assert_int_equal(load(k_yaml, NULL, 0, c), IPR_OK);
    pl_plan p;
    assert_int_equal(pl_plan_build(c, &p), IPR_OK);
    pl_run run;
    memset(&run, 0, sizeof run);
    snprintf(run.dir, sizeof run.dir, "%s/run", g_dir);
    char path[PL_PATH_MAX + 64], sha[65], line[2048];
    snprintf(path, sizeof path, "%s/journal", run.dir);
    assert_int_equal(pl_mkdirs(path, 0755), IPR_OK);
    snprintf(path, sizeof path, "%s/segments/s1", run.dir);
    assert_int_equal(pl_mkdirs(path, 0755), IPR_OK);
    snprintf(path, sizeof path, "%s/segments/s1/a.h5", run.dir);
    write_text(path, "segment a");
    assert_int_equal(ipr_sha256_file(path, sha), IPR_OK);
    snprintf(path, sizeof path, "%s/segments/s1/b.h5", run.dir);
    write_text(path, "segment b, altered after its record");
    snprintf(path, sizeof path, "%s/segments/s1/c.h5.tmp.1", run.dir);
    write_text(path, "half written");
    /* a: units 0 and 1; b: unit 2 with a wrong hash; a failure of unit 3; a torn last line naming unit 4 */
    snprintf(path, sizeof path, "%s/journal/s1-r00000.jsonl", run.dir);
    snprintf(line, sizeof line,
             "{\"ev\":\"commit\",\"segment\":\"segments/s1/a.h5\",\"sha256\":\"%s\",\"units\":[\"%016llx\",\"%016llx\"]}\n"
             "{\"ev\":\"commit\",\"segment\":\"segments/s1/b.h5\",\"sha256\":\"%s\",\"units\":[\"%016llx\"]}\n"
             "{\"ev\":\"fail\",\"unit\":\"%016llx\",\"attempt\":1,\"reason\":\"boom\"}\n"
             "{\"ev\":\"commit\",\"segment\":\"segments/s1/a.h5\",\"sha256\":\"%s\",\"units\":[\"%016llx\"",
             sha, (unsigned long long)p.units[0].id, (unsigned long long)p.units[1].id, sha,
             (unsigned long long)p.units[2].id, (unsigned long long)p.units[3].id, sha, (unsigned long long)p.units[4].id);
    write_text(path, line);
    pl_journal_state st;
    assert_int_equal(pl_journal_scan(&run, &p, &st), IPR_OK);
    assert_int_equal(st.n_done, 2);
    assert_true(st.seg[0] >= 0 && st.seg[1] >= 0);
    assert_int_equal(st.seg[2], -1);
    assert_int_equal(st.n_bad, 1);
    assert_int_equal(st.fails[3], 1);
    assert_int_equal(st.seg[4], -1);
    int moved = 0;
    assert_int_equal(pl_quarantine(&run, &st, &moved), IPR_OK);
    assert_int_equal(moved, 2); /* b.h5 (no unit credited) and the .tmp file */
    snprintf(path, sizeof path, "%s/segments/s1/a.h5", run.dir);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/quarantine/s1/b.h5", run.dir);
    assert_int_equal(access(path, F_OK), 0);
    pl_journal_state_free(&st);
    pl_plan_free(&p);
    pl_config_free(c);
    free(c);
}

/* issue 17: the config's ranges are the sampler's (one source of truth), and a directory is no config */
static void test_limits_and_readers(void **state) {
    (void)state;
    int n = 0;
    const pl_key *k = pl_config_schema(&n);
    int seen = 0;
    for (int i = 0; i < n; ++i) {
        if (!strcmp(k[i].key, "ipr.iterations")) seen++, assert_true(k[i].hi == IPR_SAMPLER_MAX_ITERATIONS);
        if (!strcmp(k[i].key, "sampler.max_steps")) seen++, assert_true(k[i].hi == IPR_SAMPLER_MAX_PASSES);
        if (!strcmp(k[i].key, "sampler.steps_per_region")) seen++, assert_true(k[i].hi == IPR_SAMPLER_MAX_PASSES);
        if (!strcmp(k[i].key, "ipr.steps_per_region")) seen++, assert_true(k[i].hi == IPR_SAMPLER_MAX_PASSES);
        if (!strcmp(k[i].key, "device.batch")) seen++, assert_true(k[i].hi == IPR_DENOISER_MAX_BATCH);
    }
    assert_int_equal(seen, 5);
    expect_error(k_yaml, "ipr.iterations=4096", "--set ipr.iterations: key 'ipr.iterations': 4096 is outside [0, 4095]");
    pl_config *c = calloc(1, sizeof *c);
    char *sets[1] = {"ipr.iterations=4095"};
    assert_int_equal(load(k_yaml, sets, 1, c), IPR_OK);
    assert_int_equal(ipr_sampler_config_validate(&c->sampler), IPR_OK);
    pl_config_free(c);
    free(c);
    /* a directory: a clear error, not an allocation of 2^63 bytes */
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(pl_read_file(g_dir, &text, &len), IPR_ERR);
    assert_non_null(strstr(ipr_error_message(), "is a directory, not a file"));
    assert_null(text);
    char sha[65];
    assert_int_equal(ipr_sha256_file(g_dir, sha), IPR_ERR);
    assert_non_null(strstr(ipr_error_message(), "is a directory"));
    assert_true(ipr_h5_open_read(g_dir) < 0);
    assert_non_null(strstr(ipr_error_message(), "is a directory"));
    /* a directory path longer than the buffer: refused, and none of its prefix created (a truncated copy made
     * directories nobody named) */
    size_t dl = strlen(g_dir);
    char *longp = malloc(PL_PATH_MAX + 64);
    memcpy(longp, g_dir, dl);
    memcpy(longp + dl, "/deep/", 6);
    size_t at = dl + 6;
    for (; at < PL_PATH_MAX + 32; ++at) longp[at] = at % 100 == 0 ? '/' : 'd';
    longp[at] = '\0';
    assert_int_equal(pl_mkdirs(longp, 0755), IPR_ERR);
    assert_non_null(strstr(ipr_error_message(), "is longer than"));
    char deep[PL_PATH_MAX];
    snprintf(deep, sizeof deep, "%s/deep", g_dir);
    assert_int_equal(access(deep, F_OK), -1);
    free(longp);
}

/* issue 19: every sampler setting's run key is in the schema, and a scalar key of the setting's kind has its lower
 * bound (and, for enums and booleans, its default): the schema takes them from the settings table */
static void test_sampler_settings_keys(void **state) {
    (void)state;
    int n = 0;
    const pl_key *k = pl_config_schema(&n);
    for (int i = 0; i < IPR_SAMPLER_SETTINGS; ++i) {
        const ipr_sampler_setting *s = &ipr_sampler_settings[i];
        const pl_key *row = NULL;
        for (int j = 0; j < n; ++j)
            if (!strcmp(k[j].key, s->yaml_key)) row = &k[j];
        if (!row) fail_msg("sampler setting %s: run key '%s' is not in the schema", s->field, s->yaml_key);
        if (row->list) continue; /* grid axes */
        if ((s->type == IPR_SETTING_INT && row->type == PL_T_INT) ||
            (s->type == IPR_SETTING_DOUBLE && row->type == PL_T_FLOAT))
            assert_true(row->lo == s->lo && row->lo_open == s->lo_open);
        if ((s->type == IPR_SETTING_ENUM && row->type == PL_T_ENUM) ||
            (s->type == IPR_SETTING_BOOL && row->type == PL_T_BOOL))
            assert_string_equal(row->def, s->def);
    }
}

/* A crash leaves at most a torn last line that starts a record; anything else in a journal is damage, counted. */
static void test_journal_damage(void **state) {
    (void)state;
    pl_config *c = calloc(1, sizeof *c);
    assert_int_equal(load(k_yaml, NULL, 0, c), IPR_OK);
    pl_plan p;
    assert_int_equal(pl_plan_build(c, &p), IPR_OK);
    pl_run run;
    memset(&run, 0, sizeof run);
    snprintf(run.dir, sizeof run.dir, "%s/damaged", g_dir);
    char path[PL_PATH_MAX + 64], line[1024];
    snprintf(path, sizeof path, "%s/journal", run.dir);
    assert_int_equal(pl_mkdirs(path, 0755), IPR_OK);
    snprintf(line, sizeof line, "{\"ev\":\"fail\",\"unit\":\"%016llx\",\"attempt\":1,\"reason\":\"x\"}\n",
             (unsigned long long)p.units[0].id);
    /* 1: a clean journal with a torn last record; 2: garbage lines and a binary tail */
    snprintf(path, sizeof path, "%s/journal/s1-r00000.jsonl", run.dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(line, fp);
    fputs("{\"ev\":\"commit\",\"segment\":\"segm", fp);
    fclose(fp);
    pl_journal_state st;
    assert_int_equal(pl_journal_scan(&run, &p, &st), IPR_OK);
    assert_int_equal(st.n_corrupt, 0);
    assert_int_equal(st.fails[0], 1);
    pl_journal_state_free(&st);
    snprintf(path, sizeof path, "%s/journal/s2-r00001.jsonl", run.dir);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(line, fp);
    fputs("not json at all\n{\"ev\":\"teleport\"}\n{\"ev\":\"commit\",\"segment\":\"x.h5\"}\n", fp);
    const unsigned char junk[] = {0x00, 0x9f, 0x13, '\n', 0xff, 0x01, 0x7f};
    fwrite(junk, 1, sizeof junk, fp);
    fclose(fp);
    assert_int_equal(pl_journal_scan(&run, &p, &st), IPR_OK);
    /* three bad lines, the NUL line and the binary tail */
    assert_int_equal(st.n_corrupt, 5);
    assert_non_null(strstr(st.first_corrupt, "journal/s2-r00001.jsonl:2"));
    assert_int_equal(st.fails[0], 2);
    pl_journal_state_free(&st);
    pl_plan_free(&p);
    pl_config_free(c);
    free(c);
}

static void test_json_reader(void **state) {
    (void)state;
    const char *j = "{\"a\": {\"b\": [1, {\"c\": 2}]}, \"s\": \"x\\\"y\", \"n\": -3.5, \"i\": 42}";
    char s[16];
    double d;
    int64_t i;
    assert_int_equal(pl_json_get_str(j, "s", s, sizeof s), IPR_OK);
    assert_string_equal(s, "x\"y");
    assert_int_equal(pl_json_get_double(j, "n", &d), IPR_OK);
    assert_true(d == -3.5);
    assert_int_equal(pl_json_get_i64(j, "i", &i), IPR_OK);
    assert_int_equal(i, 42);
    assert_null(pl_json_find(j, "c")); /* top level only */
    char *flat = NULL;
    assert_int_equal(pl_json_flatten(j, &flat), IPR_OK);
    assert_non_null(strstr(flat, "a.b = [1, {\"c\": 2}]\n"));
    free(flat);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_number_format), cmocka_unit_test(test_config_canonical),
        cmocka_unit_test(test_config_errors), cmocka_unit_test(test_plan), cmocka_unit_test(test_plan_resolved),
        cmocka_unit_test(test_journal_scan),  cmocka_unit_test(test_json_reader),
        cmocka_unit_test(test_limits_and_readers), cmocka_unit_test(test_sampler_settings_keys),
        cmocka_unit_test(test_journal_damage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
