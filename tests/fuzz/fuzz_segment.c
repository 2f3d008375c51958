/* fuzz_segment.c: the HDF5 files of a run directory that `ipr verify`, `ipr merge`, `ipr status` and a resume
 * read, under structure-aware edits (fuzz_h5.h): a segment (first input byte even; written at start-up by
 * pl_segment_write from two units of the tiny run's plan, final images kept) read by pl_segment_read and then
 * joined row by row as merge does and checked as verify does; or plan.h5 (first byte odd; pl_plan_save of that
 * plan) read by pl_plan_load, then looked up and sharded. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_pipeline_run.h"
#include "ipr/h5io.h"
#include "pipeline/segment.h"

static pl_plan g_plan;
static fuzz_h5_seed g_seg, g_plan_seed;
static int read_and_use(const uint8_t *data, size_t size);

static void write_seed_segment(const char *dir, const pl_run *run, char *path, size_t cap) {
    const pl_grid *g = &g_plan.grid;
    const int K = g->iterations;
    pl_rows rows;
    pl_rows_init(&rows, g->C, g->H, g->W);
    pl_batch_info info = {0, 1, 4, 1.5, 1.0, 3.0, "host", "s", "cpu", run->run_id, g->config_sha256};
    static uint8_t valid[2][8];
    static float err[2][8], image[2][3 * 32 * 32];
    static uint32_t nfe[2][8];
    static uint16_t changed[2][8];
    for (int u = 0; u < 2; ++u) {
        const pl_unit *un = &g_plan.units[u];
        ipr_chain_result res[2];
        for (uint32_t i = 0; i < un->count && i < 2; ++i) {
            memset(&res[i], 0, sizeof res[i]);
            res[i].instance = un->first + i;
            res[i].iterations = res[i].iterations_run = K;
            for (int k = 0; k <= K; ++k) {
                valid[i][k] = (uint8_t)((k + (int)i) & 1);
                err[i][k] = 0.5f * (float)k;
                nfe[i][k] = (uint32_t)(10 * (k + 1));
                changed[i][k] = (uint16_t)k;
            }
            for (int p = 0; p < 3 * 32 * 32; ++p) image[i][p] = (float)((p * 37 + (int)i) % 200 - 100) / 100.0f;
            res[i].valid = valid[i], res[i].error = err[i], res[i].nfe = nfe[i], res[i].changed = changed[i];
            res[i].image = image[i];
        }
        if (pl_rows_add_unit(&rows, g, un, res, 1, &info, 4) != IPR_OK) {
            ipr_error_print("fuzz: seed segment rows");
            exit(1);
        }
    }
    char rel[PL_PATH_MAX], sha[65];
    if (pl_segment_write(run, &rows, &info, 0, rel, sizeof rel, sha) != IPR_OK) {
        ipr_error_print("fuzz: seed segment");
        exit(1);
    }
    snprintf(path, cap, "%s/%s", dir, rel);
    pl_rows_free(&rows);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_h5_init();
    const char *dir = fuzz_scratch_dir();
    pl_run run;
    fuzz_run_setup(dir, &g_plan, &run);
    char path[PL_PATH_MAX + 200];
    write_seed_segment(dir, &run, path, sizeof path);
    fuzz_h5_seed_load(&g_seg, path);
    snprintf(path, sizeof path, "%s/plan.h5", dir);
    if (pl_plan_save(&g_plan, path) != IPR_OK) {
        ipr_error_print("fuzz: seed plan");
        exit(1);
    }
    fuzz_h5_seed_load(&g_plan_seed, path);
    /* the harness's own check: both seeds, through the edit engine without edits, read back */
    for (int plan = 0; plan < 2; ++plan) {
        const uint8_t none = (uint8_t)plan;
        if (!read_and_use(&none, 1)) {
            ipr_error_print(plan ? "fuzz: the unedited plan.h5 does not load" : "fuzz: the unedited segment does not load");
            abort();
        }
    }
    return 0;
}

/* what merge (pl_merge) and verify (pl_verify_run_dir) do with a segment's rows */
static void use_segment(const pl_rows *r) {
    const pl_grid *g = &g_plan.grid;
    pl_rows out;
    pl_rows_init(&out, g->C, g->H, g->W);
    for (size_t ur = 0; ur < r->units.n; ++ur) {
        int u = pl_plan_find(&g_plan, pl_get_u64(&r->units, PL_U_UNIT_ID, ur));
        uint64_t chains = 0;
        for (size_t c = 0; c < r->chains.n; ++c) chains += pl_get_u64(&r->chains, PL_C_UNIT, c) == ur;
        if (u < 0 || chains != g_plan.units[u].count) continue;
        size_t before = out.chains.n;
        if (pl_rows_append_from(&out, r, ur, r->images) != IPR_OK) break;
        if (out.chains.n - before != g_plan.units[u].count) break;
    }
    (void)(r->results.n != r->chains.n * (size_t)(g->iterations + 1));
    pl_rows_free(&out);
}

/* Edit and read one input (byte 0: segment or plan.h5); 1 if the file read back. */
static int read_and_use(const uint8_t *data, size_t size) {
    if (size < 1) return 1;
    const int plan = data[0] & 1;
    int loaded = 0;
    fuzz_h5_mutate(plan ? &g_plan_seed : &g_seg, data + 1, size - 1);
    if (!plan) {
        const pl_grid *g = &g_plan.grid;
        pl_rows r;
        pl_rows_init(&r, g->C, g->H, g->W);
        if (pl_segment_read(FUZZ_H5_PATH, &r, 1) == IPR_OK) {
            loaded = 1;
            use_segment(&r);
        }
        pl_rows_free(&r);
        /* merge's read_seg_attrs: where the segment ran */
        hid_t f = ipr_h5_open_read(FUZZ_H5_PATH);
        if (f >= 0) {
            char s[128];
            (void)ipr_h5_read_attr_str(f, "session", s, sizeof s);
            (void)ipr_h5_read_attr_str(f, "hostname", s, sizeof s);
            (void)ipr_h5_read_attr_str(f, "device_name", s, sizeof s);
            H5Fclose(f);
        }
    } else {
        pl_plan p;
        if (pl_plan_load(FUZZ_H5_PATH, &p) == IPR_OK) {
            loaded = 1;
            for (int u = 0; u < g_plan.n_units; ++u) (void)pl_plan_find(&p, g_plan.units[u].id);
            int *shard_of = calloc((size_t)p.n_units + 1, sizeof(int));
            if (shard_of) pl_plan_shards(&p, 2, shard_of);
            free(shard_of);
            pl_plan_free(&p);
        }
    }
    if (getenv("IPR_FUZZ_DEBUG")) fprintf(stderr, "%s: %s\n", plan ? "plan" : "segment", loaded ? "ok" : ipr_error_message());
    ipr_error_clear();
    fuzz_h5_release();
    return loaded;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    (void)read_and_use(data, size);
    return 0;
}
