/* test_sampler.c: the sampler and IPR runner against the reference IPR sampler's golden fixture
 * (srm_sampler_tiny.h5: block arithmetic, schedules, orders, samples, one IPR iteration, transitions), then
 * determinism, batch independence, edge cases, the degenerate 256-region schedules and the settings checks. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipr/bench.h"
#include "ipr/classifier.h"
#include "ipr/common.h"
#include "ipr/h5io.h"
#include "ipr/rng.h"
#include "ipr/sampler.h"
#include "ipr/unet.h"
#include "sampler/sampler_internal.h"
#include "test_util.h"

/* ---- tolerances: one table, each number with where it comes from ---- */
typedef enum {
    TOL_SAMPLE,     /* max |a - b| of a generated sample against the fixture */
    TOL_STEP,       /* max |a - b| of z at every pass against the fixture's z_in */
    TOL_TRANSITION, /* max |a - b| of one transition's z_next against the fixture */
    TOL_COUNT
} tol_id;

static const double TOL[TOL_COUNT] = {
    /* fixtures/README.md: a float32 implementation should land below 1e-5 max abs on `sample` (the
     * reference's own float32 run is within 2.9e-6 of it) */
    [TOL_SAMPLE] = 1e-5,
    [TOL_STEP] = 1e-5,
    /* README: below 1e-5 on z_next; here one step of float32 storage of float64 arithmetic, a few ulps */
    [TOL_TRANSITION] = 1e-5,
};

static char g_unet[4096], g_fixture[4096], g_tmpdir[4096], g_digit[4096], g_poly[4096];

static int setup(void **state) {
    (void)state;
    ipr_h5_quiet();
    snprintf(g_unet, sizeof g_unet, "%s/srm_unet_tiny.h5", IPR_FIXTURES_DIR);
    snprintf(g_fixture, sizeof g_fixture, "%s/srm_sampler_tiny.h5", IPR_FIXTURES_DIR);
    snprintf(g_digit, sizeof g_digit, "%s/tests/fixtures/classifier_digit_tiny.h5", IPR_SOURCE_DIR);
    snprintf(g_poly, sizeof g_poly, "%s/tests/fixtures/classifier_polygons_tiny.h5", IPR_SOURCE_DIR);
    if (ipr_test_tmpdir(g_tmpdir, sizeof g_tmpdir, "test_sampler") != 0) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    return ipr_test_rmtree(g_tmpdir);
}

/* ---- helpers ---- */

static void *read_ds(hid_t f, const char *name, hid_t type, hsize_t dims[8]) {
    int r = 0;
    void *data = NULL;
    if (ipr_h5_read_alloc(f, name, type, 0, &r, dims, &data) != IPR_OK) {
        ipr_error_print("test_sampler");
        fail_msg("cannot read %s", name);
    }
    return data;
}

static int64_t read_attr(hid_t f, const char *group, const char *name) {
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    assert_true(g >= 0);
    int64_t v = 0;
    assert_int_equal(ipr_h5_read_attr_i64(g, name, &v), IPR_OK);
    H5Gclose(g);
    return v;
}

static double max_abs_fd(const float *a, const double *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const double e = fabs((double)a[i] - b[i]);
        if (!(e <= m)) m = e; /* NaN wins */
    }
    return m;
}

/* A random-weight network of any geometry (tiny widths, bottleneck attention with 32-channel heads). */
static void make_ckpt(const char *path, int C, int H, int W, int patch, int levels, uint64_t seed) {
    ipr_unet_config cfg;
    ipr_unet_config_init(&cfg);
    cfg.n_levels = levels;
    for (int l = 0; l < levels; ++l) cfg.hid_dims[l] = 32;
    cfg.num_head_channels = 32;
    cfg.d_in = C, cfg.d_out = 2 * C + 1, cfg.patch_size = patch;
    cfg.image_size[0] = H, cfg.image_size[1] = W;
    ipr_unet *net = ipr_unet_new(&cfg, 1, H, W, 0);
    if (!net) ipr_error_print("test_sampler");
    assert_non_null(net);
    ipr_unet_init_random(net, seed);
    assert_int_equal(ipr_unet_save(net, path), IPR_OK);
    ipr_unet_free(net);
}

static ipr_denoiser *open_den(const char *path, int max_batch) {
    ipr_denoiser_config dc;
    ipr_denoiser_config_init(&dc);
    dc.max_batch = max_batch;
    ipr_denoiser *d = ipr_denoiser_open(path, &dc);
    if (!d) ipr_error_print("test_sampler");
    assert_non_null(d);
    return d;
}

/* ---- hooks: injection and recording ---- */

#define MAX_REC 4096
typedef struct {
    int R, npix;
    /* injected (NULL = the sampler's own draws) */
    const double *z_init;      /* (npix) */
    const double *reset_noise; /* (npix) IPR noise of every iteration */
    const int64_t *subset;     /* IPR subset of every iteration */
    int n_subset;
    const double *masked;      /* clue values */
    const uint8_t *clue;       /* (R) */
    int zero_step_noise;       /* the fixture's deterministic path: step draws are 0 */
    /* recorded */
    int n_choice;
    int choice_region[MAX_REC], choice_pass[MAX_REC], choice_iter[MAX_REC];
    float choice_sigma_ok[MAX_REC]; /* 1 when the chosen region had the lowest sigma among the waiting */
    int n_pass;
    int pass_iter[MAX_REC], pass_idx[MAX_REC];
    float *pass_t;             /* (MAX_REC, R) */
    float *pass_z;             /* (MAX_REC, npix) or NULL */
    float *gen_z[8];           /* (npix) per iteration */
    int gen_passes[8];
    uint8_t waiting[MAX_REC];  /* scratch: which regions still wait (for the lowest-sigma check) */
} rec_ctx;

static int hk_noise(void *ctx, uint32_t purpose, uint64_t instance, uint32_t step, float *out, size_t n) {
    rec_ctx *c = ctx;
    (void)instance;
    const double *src = NULL;
    if (purpose == IPR_RNG_INIT_NOISE) src = c->z_init;
    if (purpose == IPR_RNG_IPR_NOISE) src = c->reset_noise;
    if (purpose == IPR_RNG_STEP_NOISE && c->zero_step_noise) {
        memset(out, 0, n * sizeof *out);
        return IPR_OK;
    }
    if (src) {
        for (size_t i = 0; i < n; ++i) out[i] = (float)src[i];
        return IPR_OK;
    }
    ipr_rng_fill_normal(1, purpose, instance, step, out, n);
    return IPR_OK;
}

static int hk_subset(void *ctx, uint64_t instance, int iteration, const uint16_t *refinable, int n, int m,
                     uint16_t *chosen) {
    rec_ctx *c = ctx;
    (void)instance, (void)iteration, (void)refinable, (void)n;
    if (m != c->n_subset) return IPR_ERR;
    for (int i = 0; i < m; ++i) chosen[i] = (uint16_t)c->subset[i];
    return IPR_OK;
}

static int hk_instance(void *ctx, uint64_t instance, float *clean, uint8_t *given) {
    rec_ctx *c = ctx;
    (void)instance;
    for (int i = 0; i < c->npix; ++i) clean[i] = c->masked ? (float)c->masked[i] : 0.0f;
    for (int r = 0; r < c->R; ++r) given[r] = c->clue ? c->clue[r] : 0;
    return IPR_OK;
}

static void hk_pass(void *ctx, uint64_t instance, int iteration, int pass, const float *z, const float *t, int R) {
    rec_ctx *c = ctx;
    (void)instance;
    if (c->n_pass >= MAX_REC) return;
    const int k = c->n_pass++;
    c->pass_iter[k] = iteration, c->pass_idx[k] = pass;
    memcpy(c->pass_t + (size_t)k * R, t, sizeof(float) * (size_t)R);
    if (c->pass_z) memcpy(c->pass_z + (size_t)k * c->npix, z, sizeof(float) * (size_t)c->npix);
    if (pass == 0)
        for (int r = 0; r < R; ++r) c->waiting[r] = t[r] == 1.0f;
}

static void hk_choice(void *ctx, uint64_t instance, int iteration, int pass, int region, const float *sigma, int R) {
    rec_ctx *c = ctx;
    (void)instance;
    if (c->n_choice >= MAX_REC) return;
    const int k = c->n_choice++;
    c->choice_region[k] = region, c->choice_pass[k] = pass, c->choice_iter[k] = iteration;
    int ok = c->waiting[region];
    for (int r = 0; r < R; ++r)
        if (c->waiting[r] && sigma[r] < sigma[region]) ok = 0;
    c->choice_sigma_ok[k] = (float)ok;
    c->waiting[region] = 0;
}

static void hk_gen(void *ctx, uint64_t instance, int iteration, int passes, const float *z) {
    rec_ctx *c = ctx;
    (void)instance;
    if (iteration < 8) {
        if (!c->gen_z[iteration]) c->gen_z[iteration] = malloc(sizeof(float) * (size_t)c->npix);
        memcpy(c->gen_z[iteration], z, sizeof(float) * (size_t)c->npix);
        c->gen_passes[iteration] = passes;
    }
}

static rec_ctx *rec_new(int R, int npix, int keep_z) {
    rec_ctx *c = calloc(1, sizeof *c);
    c->R = R, c->npix = npix;
    c->pass_t = calloc((size_t)MAX_REC * R, sizeof(float));
    if (keep_z) c->pass_z = calloc((size_t)MAX_REC * npix, sizeof(float));
    return c;
}

static void rec_free(rec_ctx *c) {
    free(c->pass_t), free(c->pass_z);
    for (int i = 0; i < 8; ++i) free(c->gen_z[i]);
    free(c);
}

static ipr_sampler_hooks hooks_of(rec_ctx *c, int inject) {
    ipr_sampler_hooks h;
    memset(&h, 0, sizeof h);
    h.ctx = c;
    if (inject) {
        h.noise = hk_noise;
        h.subset = c->subset ? hk_subset : NULL;
        h.instance = hk_instance;
    } else if (c->clue) {
        h.instance = hk_instance;
    }
    h.on_pass = hk_pass;
    h.on_choice = hk_choice;
    h.on_generation = hk_gen;
    return h;
}

/* ================================ block arithmetic ================================ */

static void check_group_plan(hid_t f, const char *group, int B, int p, double o) {
    char name[256];
    hsize_t d[8];
    snprintf(name, sizeof name, "%s/block_starts", group);
    float *bs = read_ds(f, name, H5T_NATIVE_FLOAT, d);
    snprintf(name, sizeof name, "%s/prototype", group);
    hsize_t dp[8];
    float *proto = read_ds(f, name, H5T_NATIVE_FLOAT, dp);
    ipr_block_plan plan;
    int starts[256];
    assert_int_equal(ipr_block_plan_make(B, p, o, 0, 0, &plan, starts), IPR_OK);
    assert_int_equal(plan.max_steps, (int)read_attr(f, group, "max_steps"));
    assert_int_equal(plan.L, (int)read_attr(f, group, "block_length"));
    assert_int_equal((int)d[0], B + 1); /* the reference's trailing -1 */
    for (int k = 0; k < B; ++k) assert_int_equal(starts[k], (int)bs[k]);
    assert_int_equal((int)dp[0], plan.L);
    for (int j = 0; j < plan.L; ++j) {
        const float lv = ipr_block_level(&plan, 0, j);
        assert_memory_equal(&lv, &proto[j], sizeof(float)); /* bitwise */
    }
    free(bs), free(proto);
}

static void test_block_arithmetic(void **state) {
    (void)state;
    hid_t f = ipr_h5_open_read(g_fixture);
    assert_true(f >= 0);
    check_group_plan(f, "adaptive_p3_o0", 10, 3, 0.0);
    check_group_plan(f, "adaptive_p10_o08", 10, 10, 0.8);
    check_group_plan(f, "ipr_iteration", 5, 10, 0.8);
    H5Fclose(f);

    /* spec 9a: B = 10, p = 10, o = 0.8 gives L_ideal = 9.999999 (not 10); B = 17 a ramp of 11 */
    ipr_block_plan plan;
    int starts[256];
    assert_int_equal(ipr_block_plan_make(10, 10, 0.8, 0, 0, &plan, starts), IPR_OK);
    assert_true(plan.L_ideal < 10.0f && plan.L_ideal > 9.9999f);
    assert_int_equal(ipr_block_plan_make(17, 10, 0.8, 0, 0, &plan, starts), IPR_OK);
    assert_int_equal(plan.L, 11);
    /* p = 3, o = 0, B = 7: L_ideal = 21 * (1 / 7) = 3.0000002 in float32, so ramps of 4 at a spacing of 3; the
     * last region (start 18) would still be at 1/4 after pass 20, and the last row is 0 as in the reference
     * (it zeroes schedules[-1]) */
    assert_int_equal(ipr_block_plan_make(7, 3, 0.0, 0, 0, &plan, starts), IPR_OK);
    assert_int_equal(plan.max_steps, 21);
    assert_int_equal(plan.L, 4);
    assert_int_equal(starts[6], 18);
    assert_true(ipr_block_level(&plan, 18, 20) == 0.5f);
    assert_true(ipr_block_level(&plan, 18, 21) == 0.0f);
    assert_true(ipr_block_level(&plan, 15, 18) == 0.25f); /* overlaps the next block by one step */
    /* spec 9a: for o = 0.8, p = 10, 27 of B = 1..81 differ from exact arithmetic. Exact, with 1 - o = 1/5:
     * max_steps = ceil(p (B + 4) / 5), L_ideal = 5 max_steps / (B + 4), start_k = floor(k max_steps / (B + 4)) */
    int differ = 0;
    for (int B = 1; B <= 81; ++B) {
        assert_int_equal(ipr_block_plan_make(B, 10, 0.8, 0, 0, &plan, starts), IPR_OK);
        const int ms = (10 * (B + 4) + 4) / 5;
        const int L = (5 * ms + (B + 4) - 1) / (B + 4);
        int same = plan.max_steps == ms && plan.L == L;
        for (int k = 0; k < B; ++k) same &= starts[k] == (k * ms) / (B + 4);
        differ += !same;
    }
    printf("  o = 0.8, p = 10: %d of B = 1..81 differ from exact arithmetic (spec 9a: 27)\n", differ);
    assert_int_equal(differ, 27);

    /* spec 2.6 degenerate case: 256 regions, p = 1 (or 3), o = 0.9 repeat start steps; starts stay sorted
     * and within the passes, and every region gets one */
    for (int p = 1; p <= 3; p += 2) {
        assert_int_equal(ipr_block_plan_make(256, p, 0.9, 0, 0, &plan, starts), IPR_OK);
        int repeats = 0;
        for (int k = 1; k < 256; ++k) {
            assert_true(starts[k] >= starts[k - 1]);
            repeats += starts[k] == starts[k - 1];
        }
        assert_true(starts[255] < plan.max_steps);
        printf("  256 regions, p = %d, o = 0.9: %d passes, %d repeated starts\n", p, plan.max_steps, repeats);
        assert_true(repeats > 0);
    }
    /* parallel: linspace(1, 0, n + 1) */
    assert_int_equal(ipr_block_plan_parallel(4, 1, 0.0, 1000, &plan, starts), IPR_OK);
    assert_true(ipr_block_level(&plan, 0, 0) == 1.0f);
    assert_true(fabsf(ipr_block_level(&plan, 0, 500) - 0.5f) < 1e-6f);
    assert_true(ipr_block_level(&plan, 0, 1000) == 0.0f);
    assert_true(fabsf(ipr_block_level(&plan, 0, 999) - 0.001f) < 1e-6f);
}

/* ================================ the transition ================================ */

static void test_transition_fixture(void **state) {
    (void)state;
    hid_t f = ipr_h5_open_read(g_fixture);
    assert_true(f >= 0);
    hsize_t d[8];
    double *z = read_ds(f, "transition/z", H5T_NATIVE_DOUBLE, d);
    double *y = read_ds(f, "transition/net_out", H5T_NATIVE_DOUBLE, d);
    double *tr = read_ds(f, "transition/t_region", H5T_NATIVE_DOUBLE, d);
    double *tn = read_ds(f, "transition/t_next_region", H5T_NATIVE_DOUBLE, d);
    double *noise = read_ds(f, "transition/noise", H5T_NATIVE_DOUBLE, d);
    double *zn = read_ds(f, "transition/z_next", H5T_NATIVE_DOUBLE, d);
    hid_t g = H5Gopen2(f, "transition", H5P_DEFAULT);
    hid_t a = H5Aopen(g, "alpha", H5P_DEFAULT);
    double alpha = 0;
    H5Aread(a, H5T_NATIVE_DOUBLE, &alpha);
    H5Aclose(a), H5Gclose(g), H5Fclose(f);
    const int npix = 28 * 28;
    float zf[784], yf[3 * 784], nf[784], t[16], t2[16];
    double worst = 0.0;
    for (int b = 0; b < 2; ++b) {
        for (int i = 0; i < npix; ++i) zf[i] = (float)z[b * npix + i], nf[i] = (float)noise[b * npix + i];
        for (int i = 0; i < 3 * npix; ++i) yf[i] = (float)y[b * 3 * npix + i];
        for (int r = 0; r < 16; ++r) t[r] = (float)tr[b * 16 + r], t2[r] = (float)tn[b * 16 + r];
        float z0[784];
        memcpy(z0, zf, sizeof z0);
        ipr_transition(zf, yf, nf, t, t2, 1, 28, 28, 7, alpha, 1.0);
        const double e = max_abs_fd(zf, zn + b * npix, npix);
        if (e > worst) worst = e;
        /* (t, t*) = (0, 0) regions are bit-identical */
        for (int r = 0; r < 16; ++r) {
            if (t[r] != 0.0f || t2[r] != 0.0f) continue;
            for (int yy = (r / 4) * 7; yy < (r / 4) * 7 + 7; ++yy)
                assert_memory_equal(zf + yy * 28 + (r % 4) * 7, z0 + yy * 28 + (r % 4) * 7, 7 * sizeof(float));
        }
    }
    printf("  transition z_next: max abs %.2e\n", worst);
    assert_true(worst <= TOL[TOL_TRANSITION]);
    free(z), free(y), free(tr), free(tn), free(noise), free(zn);
}

/* ================================ generations against the fixture ================================ */

typedef struct {
    double *z_init, *masked, *reset_noise;
    uint8_t clue[16];
    int64_t subset[16];
    int n_subset;
} fixture_inputs;

static void fixture_load_inputs(hid_t f, fixture_inputs *in) {
    hsize_t d[8];
    memset(in, 0, sizeof *in);
    in->z_init = read_ds(f, "inputs/z_init", H5T_NATIVE_DOUBLE, d);
    in->masked = read_ds(f, "inputs/masked", H5T_NATIVE_DOUBLE, d);
    in->reset_noise = read_ds(f, "ipr_iteration/reset_noise", H5T_NATIVE_DOUBLE, d);
    int64_t *clues = read_ds(f, "inputs/clue_regions", H5T_NATIVE_INT64, d);
    for (hsize_t i = 0; i < d[0]; ++i) in->clue[clues[i]] = 1;
    free(clues);
    int64_t *sub = read_ds(f, "ipr_iteration/subset", H5T_NATIVE_INT64, d);
    in->n_subset = (int)d[0];
    memcpy(in->subset, sub, sizeof(int64_t) * d[0]);
    free(sub);
}

static void fixture_free_inputs(fixture_inputs *in) { free(in->z_init), free(in->masked), free(in->reset_noise); }

/* Compare the passes of iteration `iter` recorded in c with a fixture group: t per pass (exact), z per pass,
 * the order and its steps, the sample. */
static void check_generation(hid_t f, const char *group, const rec_ctx *c, int iter) {
    char name[256];
    hsize_t d[8], dt[8];
    snprintf(name, sizeof name, "%s/t_in", group);
    float *t_in = read_ds(f, name, H5T_NATIVE_FLOAT, dt);
    snprintf(name, sizeof name, "%s/z_in", group);
    double *z_in = read_ds(f, name, H5T_NATIVE_DOUBLE, d);
    const int passes = (int)dt[0];
    assert_int_equal(passes, (int)read_attr(f, group, "num_network_passes"));
    assert_int_equal(c->gen_passes[iter], passes);
    int seen = 0;
    double zworst = 0.0;
    for (int k = 0; k < c->n_pass; ++k) {
        if (c->pass_iter[k] != iter) continue;
        const int p = c->pass_idx[k];
        assert_int_equal(p, seen);
        for (int r = 0; r < 16; ++r) {
            if (c->pass_t[(size_t)k * 16 + r] != t_in[p * 16 + r])
                fail_msg("%s pass %d region %d: t = %.9g, fixture %.9g", group, p, r, c->pass_t[(size_t)k * 16 + r],
                         t_in[p * 16 + r]);
        }
        const double e = max_abs_fd(c->pass_z + (size_t)k * 784, z_in + (size_t)p * 784, 784);
        if (e > zworst) zworst = e;
        ++seen;
    }
    assert_int_equal(seen, passes);
    snprintf(name, sizeof name, "%s/order", group);
    int64_t *order = read_ds(f, name, H5T_NATIVE_INT64, d);
    const int n_order = (int)d[0];
    snprintf(name, sizeof name, "%s/order_step", group);
    int64_t *ostep = read_ds(f, name, H5T_NATIVE_INT64, d);
    int j = 0;
    for (int k = 0; k < c->n_choice; ++k) {
        if (c->choice_iter[k] != iter) continue;
        assert_true(j < n_order);
        if (c->choice_region[k] != (int)order[j] || c->choice_pass[k] != (int)ostep[j])
            fail_msg("%s choice %d: region %d at pass %d, fixture region %d at pass %d", group, j, c->choice_region[k],
                     c->choice_pass[k], (int)order[j], (int)ostep[j]);
        ++j;
    }
    assert_int_equal(j, n_order);
    snprintf(name, sizeof name, "%s/sample", group);
    double *sample = read_ds(f, name, H5T_NATIVE_DOUBLE, d);
    const double e = max_abs_fd(c->gen_z[iter], sample, 784);
    printf("  %-18s order ok (%d regions), %d passes, max abs: sample %.2e, z per pass %.2e\n", group, n_order,
           passes, e, zworst);
    assert_true(e <= TOL[TOL_SAMPLE]);
    assert_true(zworst <= TOL[TOL_STEP]);
    free(t_in), free(z_in), free(order), free(ostep), free(sample);
}

static void run_fixture(const fixture_inputs *in, const ipr_sampler_config *cfg, rec_ctx *c) {
    c->z_init = in->z_init;
    c->masked = in->masked;
    c->reset_noise = in->reset_noise;
    c->clue = in->clue;
    c->subset = in->subset;
    c->n_subset = in->n_subset;
    c->zero_step_noise = 1;
    ipr_denoiser *den = open_den(g_unet, 1);
    ipr_task *task = ipr_task_new_custom(1, 28, 28, 7);
    assert_non_null(task);
    ipr_runner *run = ipr_runner_new(den, task, cfg);
    if (!run) ipr_error_print("test_sampler");
    assert_non_null(run);
    ipr_sampler_hooks h = hooks_of(c, 1);
    ipr_runner_set_hooks(run, &h);
    ipr_chain_result res;
    assert_int_equal(ipr_chain_result_alloc(&res, cfg->ipr_iterations, 784), IPR_OK);
    uint64_t inst = 0;
    if (ipr_runner_run(run, 7, &inst, 1, &res, NULL, NULL) != IPR_OK) {
        ipr_error_print("test_sampler");
        fail();
    }
    /* the result's image is the last generation's */
    assert_memory_equal(res.image, c->gen_z[cfg->ipr_iterations], 784 * sizeof(float));
    assert_int_equal((int)res.changed[0], 10);
    ipr_chain_result_free(&res);
    ipr_runner_free(run);
    ipr_task_free(task);
    ipr_denoiser_free(den);
}

static void fixture_config(ipr_sampler_config *cfg, int p, double o) {
    ipr_sampler_config_init(cfg);
    cfg->order = IPR_ORDER_ADAPTIVE;
    cfg->steps_per_region = p;
    cfg->overlap = o;
    cfg->alpha = 0.0; /* stochasticity 0, temperature 1 (fixture attributes) */
    cfg->temperature = 1.0;
    cfg->keep_images = 1;
}

static void test_fixture_base(void **state) {
    (void)state;
    hid_t f = ipr_h5_open_read(g_fixture);
    assert_true(f >= 0);
    fixture_inputs in;
    fixture_load_inputs(f, &in);
    const struct {
        const char *group;
        int p;
        double o;
    } runs[] = {{"adaptive_p3_o0", 3, 0.0}, {"adaptive_p10_o08", 10, 0.8}};
    for (int i = 0; i < 2; ++i) {
        ipr_sampler_config cfg;
        fixture_config(&cfg, runs[i].p, runs[i].o);
        rec_ctx *c = rec_new(16, 784, 1);
        run_fixture(&in, &cfg, c);
        check_generation(f, runs[i].group, c, 0);
        rec_free(c);
    }
    fixture_free_inputs(&in);
    H5Fclose(f);
}

static void test_fixture_ipr_iteration(void **state) {
    (void)state;
    hid_t f = ipr_h5_open_read(g_fixture);
    assert_true(f >= 0);
    fixture_inputs in;
    fixture_load_inputs(f, &in);
    ipr_sampler_config cfg;
    fixture_config(&cfg, 3, 0.0);
    cfg.ipr_iterations = 1;
    cfg.ipr_ratio = 0.5;
    cfg.ipr_steps_per_region = 10;
    cfg.ipr_overlap = 0.8;
    rec_ctx *c = rec_new(16, 784, 1);
    run_fixture(&in, &cfg, c);
    hsize_t d[8];
    double *x0 = read_ds(f, "ipr_iteration/x0", H5T_NATIVE_DOUBLE, d);
    double *z_reset = read_ds(f, "ipr_iteration/z_reset", H5T_NATIVE_DOUBLE, d);
    const double e0 = max_abs_fd(c->gen_z[0], x0, 784);
    assert_true(e0 <= TOL[TOL_SAMPLE]);
    /* where the iteration starts: x0 with the subset replaced by the fresh noise, clues pasted back */
    int first = -1;
    for (int k = 0; k < c->n_pass && first < 0; ++k)
        if (c->pass_iter[k] == 1) first = k;
    assert_true(first >= 0);
    const double er = max_abs_fd(c->pass_z + (size_t)first * 784, z_reset, 784);
    printf("  ipr_iteration: x0 %.2e, z_reset %.2e\n", e0, er);
    assert_true(er <= TOL[TOL_SAMPLE]);
    check_generation(f, "ipr_iteration", c, 1);
    free(x0), free(z_reset);
    rec_free(c);
    fixture_free_inputs(&in);
    H5Fclose(f);
}

/* ================================ determinism and batching ================================ */

static void test_rng_range(void **state) {
    (void)state;
    float a[37], b[37];
    for (uint64_t first = 0; first < 9; ++first) {
        ipr_rng_fill_normal_range(5, IPR_RNG_STEP_NOISE, 3, (1u << IPR_STEP_BITS) | 7u, first, a, 37);
        for (int i = 0; i < 37; ++i) b[i] = ipr_rng_normal_at(5, IPR_RNG_STEP_NOISE, 3, (1u << IPR_STEP_BITS) | 7u, first + (uint64_t)i);
        assert_memory_equal(a, b, sizeof a);
    }
}

typedef struct {
    int n;
    ipr_chain_result *res;
    /* from the runner's stats */
    uint64_t pool_scored;
    int host_threads;
} run_out;

/* n chains of instances 100.. (not in order) through max_batch slots; a NULL c: no hooks. */
static run_out run_chains(const char *ckpt, ipr_task *task, const ipr_sampler_config *cfg, int max_batch, int n,
                          uint64_t seed, rec_ctx *c) {
    int C, H, W, P, R;
    ipr_task_shape(task, &C, &H, &W, &P, &R);
    ipr_denoiser *den = open_den(ckpt, max_batch);
    ipr_runner *run = ipr_runner_new(den, task, cfg);
    if (!run) ipr_error_print("test_sampler");
    assert_non_null(run);
    if (c) {
        ipr_sampler_hooks h = hooks_of(c, 0);
        ipr_runner_set_hooks(run, &h);
    }
    run_out o = {n, calloc((size_t)n, sizeof(ipr_chain_result)), 0, 0};
    uint64_t *inst = malloc(sizeof(uint64_t) * (size_t)n);
    for (int i = 0; i < n; ++i) {
        inst[i] = 100 + (uint64_t)(i * 37 % n); /* not in order */
        assert_int_equal(ipr_chain_result_alloc(&o.res[i], cfg->ipr_iterations, (size_t)C * H * W), IPR_OK);
    }
    if (ipr_runner_run(run, seed, inst, n, o.res, NULL, NULL) != IPR_OK) {
        ipr_error_print("test_sampler");
        fail();
    }
    free(inst);
    ipr_runner_stats st;
    ipr_runner_get_stats(run, &st);
    o.pool_scored = st.pool_scored;
    o.host_threads = st.host_threads;
    ipr_runner_free(run);
    ipr_denoiser_free(den);
    return o;
}

static void free_out(run_out *o) {
    for (int i = 0; i < o->n; ++i) ipr_chain_result_free(&o->res[i]);
    free(o->res);
}

static void assert_same_results(const run_out *a, const run_out *b, size_t img) {
    assert_int_equal(a->n, b->n);
    for (int i = 0; i < a->n; ++i) {
        const ipr_chain_result *x = &a->res[i], *y = &b->res[i];
        const int K1 = x->iterations + 1;
        assert_int_equal(x->instance, y->instance);
        assert_int_equal(x->iterations_run, y->iterations_run);
        assert_memory_equal(x->valid, y->valid, (size_t)K1);
        assert_memory_equal(x->error, y->error, sizeof(float) * (size_t)K1);
        assert_memory_equal(x->nfe, y->nfe, sizeof(uint32_t) * (size_t)K1);
        assert_memory_equal(x->changed, y->changed, sizeof(uint16_t) * (size_t)K1);
        assert_memory_equal(x->image, y->image, sizeof(float) * img);
    }
}

static void test_determinism_and_batching(void **state) {
    (void)state;
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/ep_like.h5", g_tmpdir);
    make_ckpt(ckpt, 3, 16, 16, 4, 2, 31); /* 16 regions of 4 x 4, RGB */
    ipr_task *task = ipr_task_new_custom(3, 16, 16, 4);
    assert_non_null(task);
    const ipr_order orders[] = {IPR_ORDER_ADAPTIVE, IPR_ORDER_RANDOM, IPR_ORDER_GRAPH, IPR_ORDER_PARALLEL};
    for (int oi = 0; oi < 4; ++oi) {
        ipr_sampler_config cfg;
        ipr_sampler_config_init(&cfg);
        cfg.order = orders[oi];
        cfg.steps_per_region = 2;
        cfg.overlap = 0.5;
        cfg.ipr_iterations = 3;
        cfg.ipr_steps_per_region = 2;
        cfg.ipr_ratio = 0.25;
        cfg.keep_images = 1;
        /* adaptive (the default) in full: 9 chains through 7 slots (slots are reused), twice, batch 1, and
         * another seed; the other orders: 5 chains through 3 slots against batch 1 */
        const int full = cfg.order == IPR_ORDER_ADAPTIVE, n = full ? 9 : 5;
        run_out a = run_chains(ckpt, task, &cfg, full ? 7 : 3, n, 42, NULL);
        run_out c = run_chains(ckpt, task, &cfg, 1, n, 42, NULL);
        assert_same_results(&a, &c, 768); /* batch 7 (3) vs batch 1 */
        if (full) {
            ipr_sampler_config cfg4 = cfg;
            cfg4.host_threads = 4; /* the per-chain host work on 4 threads */
            run_out b = run_chains(ckpt, task, &cfg4, 7, n, 42, NULL);
            run_out e = run_chains(ckpt, task, &cfg, 4, n, 43, NULL);
            assert_same_results(&a, &b, 768); /* same run twice, on 4 host threads */
            /* another seed gives other images */
            assert_true(memcmp(a.res[0].image, e.res[0].image, 768 * sizeof(float)) != 0);
            free_out(&b), free_out(&e);
        }
        /* nfe: the base generation's passes, then one IPR generation of 4 regions per iteration */
        const int base = ipr_sampler_generation_passes(&cfg, 16, 0), it = ipr_sampler_generation_passes(&cfg, 4, 1);
        for (int k = 0; k <= 3; ++k) assert_int_equal((int)a.res[0].nfe[k], base + k * it);
        assert_int_equal(a.res[0].changed[0], 16);
        for (int k = 1; k <= 3; ++k) assert_true(a.res[0].changed[k] <= 4);
        printf("  order %-8s: batch %d == batch 1%s, nfe %u..%u\n", ipr_order_name(cfg.order), full ? 7 : 3,
               full ? ", two runs identical" : "", a.res[0].nfe[0], a.res[0].nfe[3]);
        free_out(&a), free_out(&c);
    }
    ipr_task_free(task);
}

/* The orders themselves: random = the Philox shuffle, graph = most known peers first, adaptive = lowest sigma. */
static void test_orders(void **state) {
    (void)state;
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/grid.h5", g_tmpdir);
    make_ckpt(ckpt, 1, 16, 16, 4, 2, 5);
    ipr_task *task = ipr_task_new_custom(1, 16, 16, 4);
    uint8_t clue[16] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    for (int oi = 0; oi < 3; ++oi) {
        ipr_sampler_config cfg;
        ipr_sampler_config_init(&cfg);
        cfg.order = oi == 0 ? IPR_ORDER_RANDOM : oi == 1 ? IPR_ORDER_GRAPH : IPR_ORDER_ADAPTIVE;
        cfg.steps_per_region = 1;
        rec_ctx *c = rec_new(16, 256, 0);
        c->clue = clue;
        run_out o = run_chains(ckpt, task, &cfg, 1, 1, 9, c);
        assert_int_equal(c->n_choice, 14);
        uint16_t want[16];
        uint8_t unknown[16];
        for (int r = 0; r < 16; ++r) unknown[r] = !clue[r];
        if (oi == 0) {
            assert_int_equal(ipr_order_random(9, o.res[0].instance, 0, unknown, 16, want), 14);
        } else if (oi == 1) {
            assert_int_equal(ipr_order_graph(9, o.res[0].instance, 0, unknown, 4, 4, want), 14);
            /* the first pick has the most known peers (same row, column or 2 x 2 box) */
            /* (clues 0 and 15: cells 3 and 12 see both, every other cell at most one) */
            assert_true(want[0] == 3 || want[0] == 12);
        }
        for (int k = 0; k < 14; ++k) {
            if (oi < 2) assert_int_equal(c->choice_region[k], want[k]);
            else assert_true(c->choice_sigma_ok[k] == 1.0f); /* the lowest sigma among the waiting */
            assert_int_equal(c->choice_pass[k], k);
        }
        free_out(&o);
        rec_free(c);
    }
    /* a grid that is not a Sudoku is refused */
    uint16_t ord[64];
    uint8_t unk[64];
    memset(unk, 1, sizeof unk);
    assert_int_equal(ipr_order_graph(1, 0, 0, unk, 2, 32, ord), -1);
    ipr_task_free(task);
}

/* ================================ edge cases ================================ */

static void test_edge_cases(void **state) {
    (void)state;
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/edge.h5", g_tmpdir);
    make_ckpt(ckpt, 1, 16, 16, 4, 2, 8);
    ipr_task *task = ipr_task_new_custom(1, 16, 16, 4);
    ipr_sampler_config cfg;
    ipr_sampler_config_init(&cfg);
    cfg.steps_per_region = 1;
    cfg.ipr_steps_per_region = 2;
    cfg.ipr_iterations = 2;
    cfg.keep_images = 1;

    /* ratio so small that one region is chosen */
    cfg.ipr_ratio = 0.01;
    rec_ctx *c = rec_new(16, 256, 0);
    run_out o = run_chains(ckpt, task, &cfg, 1, 1, 3, c);
    int per_iter[3] = {0, 0, 0};
    for (int k = 0; k < c->n_choice; ++k) per_iter[c->choice_iter[k]]++;
    assert_int_equal(per_iter[0], 16);
    assert_int_equal(per_iter[1], 1);
    assert_int_equal(per_iter[2], 1);
    assert_int_equal((int)(o.res[0].nfe[1] - o.res[0].nfe[0]), ipr_sampler_generation_passes(&cfg, 1, 1));
    free_out(&o);
    rec_free(c);

    /* ratio 1.0: every region regenerated */
    cfg.ipr_ratio = 1.0;
    c = rec_new(16, 256, 0);
    o = run_chains(ckpt, task, &cfg, 2, 2, 3, c);
    memset(per_iter, 0, sizeof per_iter);
    for (int k = 0; k < c->n_choice; ++k)
        if (c->choice_iter[k] > 0) per_iter[c->choice_iter[k]]++;
    assert_int_equal(per_iter[1], 2 * 16);
    assert_int_equal(per_iter[2], 2 * 16);
    free_out(&o);
    rec_free(c);

    /* 0 refinable regions: every region given; nothing runs, the image is the clue image */
    uint8_t all[16];
    memset(all, 1, sizeof all);
    c = rec_new(16, 256, 0);
    c->clue = all;
    o = run_chains(ckpt, task, &cfg, 1, 1, 3, c);
    for (int k = 0; k <= 2; ++k) {
        assert_int_equal(o.res[0].nfe[k], 0);
        assert_int_equal(o.res[0].changed[k], 0);
    }
    assert_int_equal(o.res[0].iterations_run, 2);
    assert_int_equal(c->n_pass, 0);
    for (int i = 0; i < 256; ++i) assert_true(o.res[0].image[i] == 0.0f);
    free_out(&o);
    rec_free(c);

    /* K = 0: the base generation alone */
    cfg.ipr_iterations = 0;
    o = run_chains(ckpt, task, &cfg, 3, 4, 3, NULL);
    for (int i = 0; i < 4; ++i) {
        assert_int_equal(o.res[i].iterations, 0);
        assert_int_equal(o.res[i].iterations_run, 0);
        assert_int_equal((int)o.res[i].nfe[0], ipr_sampler_generation_passes(&cfg, 16, 0));
    }
    free_out(&o);
    ipr_task_free(task);
}

/* 256 regions (32 x 32 image of 2 x 2 regions) at overlap 0 and 0.9: every region is scheduled exactly once,
 * ends clean, and where starts repeat the several lowest-sigma waiting regions start together. */
static void test_256_regions(void **state) {
    (void)state;
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/r256.h5", g_tmpdir);
    make_ckpt(ckpt, 1, 32, 32, 2, 2, 12);
    ipr_task *task = ipr_task_new_custom(1, 32, 32, 2);
    const double overlaps[] = {0.0, 0.9};
    for (int oi = 0; oi < 2; ++oi) {
        ipr_sampler_config cfg;
        ipr_sampler_config_init(&cfg);
        cfg.steps_per_region = 1;
        cfg.overlap = overlaps[oi];
        cfg.ipr_iterations = 1;
        /* overlap 0: 256 one-step blocks (no repeats) and a short IPR; overlap 0.9: repeated starts in both */
        cfg.ipr_ratio = oi ? 1.0 : 0.05;
        cfg.ipr_steps_per_region = oi ? 2 : 1;
        cfg.ipr_overlap = overlaps[oi];
        cfg.keep_images = 1;
        rec_ctx *c = rec_new(256, 1024, 0);
        run_out o = run_chains(ckpt, task, &cfg, 1, 1, 4, c);
        for (int it = 0; it <= 1; ++it) {
            int count[256] = {0}, n = 0, repeats = 0, prev = -1;
            for (int k = 0; k < c->n_choice; ++k) {
                if (c->choice_iter[k] != it) continue;
                count[c->choice_region[k]]++;
                assert_true(c->choice_sigma_ok[k] == 1.0f);
                repeats += c->choice_pass[k] == prev;
                prev = c->choice_pass[k];
                ++n;
            }
            const int B = it == 0 ? 256 : ipr_subset_size(256, cfg.ipr_ratio);
            assert_int_equal(n, B);
            for (int r = 0; r < 256; ++r) assert_true(B == 256 ? count[r] == 1 : count[r] <= 1);
            const int passes = ipr_sampler_generation_passes(&cfg, B, it);
            assert_int_equal(c->gen_passes[it], passes);
            printf("  256 regions, overlap %.1f, %s: %d passes, %d regions started with another\n", overlaps[oi],
                   it ? "IPR" : "base", passes, repeats);
            if (oi == 1) assert_true(repeats > 0);
            else assert_int_equal(repeats, 0);
        }
        /* within a generation every region's level only falls */
        for (int k = 1; k < c->n_pass; ++k) {
            if (c->pass_iter[k] != c->pass_iter[k - 1]) continue;
            for (int r = 0; r < 256; ++r) assert_true(c->pass_t[(size_t)k * 256 + r] <= c->pass_t[(size_t)(k - 1) * 256 + r]);
        }
        for (int i = 0; i < 1024; ++i) assert_true(isfinite(o.res[0].image[i]));
        free_out(&o);
        rec_free(c);
    }
    ipr_task_free(task);
}

/* Early stop: with the same noise for every generation, no temperature and ratio 1, an iteration redraws
 * exactly the previous image, so the chain stops at once and reports the passes it saved. */
static int same_noise(void *ctx, uint32_t purpose, uint64_t instance, uint32_t step, float *out, size_t n) {
    (void)ctx, (void)instance, (void)step;
    if (purpose == IPR_RNG_STEP_NOISE) memset(out, 0, n * sizeof *out);
    else ipr_rng_fill_normal(77, IPR_RNG_INIT_NOISE, 0, 0, out, n);
    return IPR_OK;
}

static void count_progress(int done, int total, void *ctx) {
    int *last = ctx;
    assert_true(done >= last[0] && done <= total); /* never backwards, never past the total */
    last[0] = done;
    last[1] = total;
}

/* ipr_runner_run_variants: one base sample per instance shared by every (fraction, selection) variant gives the
 * results of separate runs bitwise (issue 16 item 4), over several waves (5 instances through 2 slots), with
 * early stopping and the uncertainty selection (which reads the base's pooled sigmas). */
static void test_shared_base(void **state) {
    (void)state;
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/ep_shared.h5", g_tmpdir);
    make_ckpt(ckpt, 3, 16, 16, 4, 2, 31);
    ipr_task *task = ipr_task_new_custom(3, 16, 16, 4);
    assert_non_null(task);
    const ipr_variant vars[] = {{0.25, IPR_SELECT_UNIFORM}, {0.5, IPR_SELECT_UNCERTAINTY}, {1.0, IPR_SELECT_MIX},
                                {0.25, IPR_SELECT_UNCERTAINTY}};
    const int V = (int)(sizeof vars / sizeof vars[0]), n = 5;
    for (int early = 0; early <= 1; ++early)
        for (int K = 0; K <= 3; K += 3) {
            ipr_sampler_config cfg;
            ipr_sampler_config_init(&cfg);
            cfg.steps_per_region = 2;
            cfg.overlap = 0.5;
            cfg.ipr_iterations = K;
            cfg.ipr_steps_per_region = 2;
            cfg.keep_images = 1;
            cfg.early_stop = early;
            ipr_denoiser *den = open_den(ckpt, 2);
            ipr_runner *run = ipr_runner_new(den, task, &cfg);
            assert_non_null(run);
            run_out shared = {V * n, calloc((size_t)(V * n), sizeof(ipr_chain_result)), 0, 0};
            uint64_t inst[5];
            for (int i = 0; i < n; ++i) inst[i] = 100 + (uint64_t)(i * 37 % n);
            for (int q = 0; q < V * n; ++q)
                assert_int_equal(ipr_chain_result_alloc(&shared.res[q], K, 768), IPR_OK);
            int seen[2] = {0, 0};
            if (ipr_runner_run_variants(run, 42, inst, n, vars, V, shared.res, count_progress, seen) != IPR_OK) {
                ipr_error_print("test_sampler");
                fail();
            }
            assert_int_equal(seen[0], V * n);
            assert_int_equal(seen[1], V * n);
            ipr_runner_stats st;
            ipr_runner_get_stats(run, &st);
            /* the base generations: once per instance when shared (K > 0), once per chain otherwise */
            assert_int_equal((int)st.generations[0], K > 0 ? n : V * n);
            ipr_runner_free(run);
            ipr_denoiser_free(den);
            for (int v = 0; v < V; ++v) {
                ipr_sampler_config c1 = cfg;
                c1.ipr_ratio = vars[v].ipr_ratio;
                c1.selection = vars[v].selection;
                run_out alone = run_chains(ckpt, task, &c1, 3, n, 42, NULL);
                run_out part = {n, shared.res + (size_t)v * n, 0, 0};
                assert_same_results(&part, &alone, 768);
                for (int i = 0; i < n; ++i) {
                    assert_int_equal(part.res[i].nfe_saved, alone.res[i].nfe_saved);
                    assert_int_equal(part.res[i].solution_match, alone.res[i].solution_match);
                }
                free_out(&alone);
            }
            printf("  shared base: K %d, early_stop %d: %d variants x %d instances == separate runs bitwise\n", K,
                   early, V, n);
            free_out(&shared);
        }
    /* bad variants are refused by name */
    {
        ipr_sampler_config cfg;
        ipr_sampler_config_init(&cfg);
        cfg.ipr_iterations = 1;
        ipr_denoiser *den = open_den(ckpt, 2);
        ipr_runner *run = ipr_runner_new(den, task, &cfg);
        ipr_chain_result res;
        assert_int_equal(ipr_chain_result_alloc(&res, 1, 768), IPR_OK);
        const uint64_t one = 1;
        const ipr_variant bad[] = {{0.0, IPR_SELECT_UNIFORM}};
        ipr_error_clear();
        assert_int_equal(ipr_runner_run_variants(run, 1, &one, 1, bad, 1, &res, NULL, NULL), IPR_ERR);
        assert_non_null(strstr(ipr_error_message(), "variant 0: ipr_ratio 0 outside (0, 1]"));
        ipr_chain_result_free(&res);
        ipr_runner_free(run);
        ipr_denoiser_free(den);
    }
    ipr_task_free(task);
}

static void test_early_stop(void **state) {
    (void)state;
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/stop.h5", g_tmpdir);
    make_ckpt(ckpt, 1, 16, 16, 4, 2, 21);
    ipr_task *task = ipr_task_new_custom(1, 16, 16, 4);
    ipr_sampler_config cfg;
    ipr_sampler_config_init(&cfg);
    cfg.steps_per_region = 2;
    cfg.ipr_steps_per_region = 2;
    cfg.overlap = cfg.ipr_overlap = 0.5;
    cfg.temperature = 0.0;
    cfg.ipr_ratio = 1.0;
    cfg.ipr_iterations = 5;
    cfg.keep_images = 1;
    for (int es = 0; es <= 1; ++es) {
        cfg.early_stop = es;
        ipr_denoiser *den = open_den(ckpt, 1);
        ipr_runner *run = ipr_runner_new(den, task, &cfg);
        ipr_sampler_hooks h;
        memset(&h, 0, sizeof h);
        h.noise = same_noise;
        ipr_runner_set_hooks(run, &h);
        ipr_chain_result res;
        assert_int_equal(ipr_chain_result_alloc(&res, 5, 256), IPR_OK);
        uint64_t inst = 1;
        assert_int_equal(ipr_runner_run(run, 1, &inst, 1, &res, NULL, NULL), IPR_OK);
        const int it = ipr_sampler_generation_passes(&cfg, 16, 1);
        if (es) {
            assert_int_equal(res.iterations_run, 1);
            assert_int_equal(res.changed[1], 0);
            assert_int_equal((int)res.nfe_saved, 4 * it);
            for (int k = 2; k <= 5; ++k) assert_int_equal(res.nfe[k], res.nfe[1]);
        } else {
            assert_int_equal(res.iterations_run, 5);
            assert_int_equal((int)res.nfe_saved, 0);
            assert_int_equal((int)res.nfe[5], (int)res.nfe[0] + 5 * it);
            for (int k = 1; k <= 5; ++k) assert_int_equal(res.changed[k], 0);
        }
        ipr_chain_result_free(&res);
        ipr_runner_free(run);
        ipr_denoiser_free(den);
    }
    ipr_task_free(task);
}

/* ================================ selection rules ================================ */

static void test_selection(void **state) {
    (void)state;
    uint16_t ref[10], chosen[10], again[10];
    float sigma[16];
    for (int i = 0; i < 10; ++i) ref[i] = (uint16_t)(i + 3);
    for (int r = 0; r < 16; ++r) sigma[r] = (float)((r * 7) % 16);
    /* uniform: m distinct refinable regions, the same for the same key, others for another iteration */
    ipr_subset_choose(1, 2, 3, ref, 10, 4, IPR_SELECT_UNIFORM, 0.5, sigma, chosen);
    ipr_subset_choose(1, 2, 3, ref, 10, 4, IPR_SELECT_UNIFORM, 0.5, sigma, again);
    assert_memory_equal(chosen, again, 4 * sizeof(uint16_t));
    for (int i = 0; i < 4; ++i) assert_true(chosen[i] >= 3 && chosen[i] < 13 && (i == 0 || chosen[i] > chosen[i - 1]));
    int differs = 0;
    for (uint32_t it = 4; it < 12; ++it) {
        ipr_subset_choose(1, 2, it, ref, 10, 4, IPR_SELECT_UNIFORM, 0.5, sigma, again);
        differs |= memcmp(chosen, again, 4 * sizeof(uint16_t)) != 0;
    }
    assert_true(differs);
    /* uncertainty: the m highest sigma (regions 3..12 have sigma 5, 12, 3, 10, 1, 8, 15, 6, 13, 4) */
    ipr_subset_choose(1, 2, 3, ref, 10, 3, IPR_SELECT_UNCERTAINTY, 0.5, sigma, chosen);
    assert_int_equal(chosen[0], 4), assert_int_equal(chosen[1], 9), assert_int_equal(chosen[2], 11);
    /* mix 0.5 of 4: the 2 highest, then 2 uniform among the rest */
    ipr_subset_choose(1, 2, 3, ref, 10, 4, IPR_SELECT_MIX, 0.5, sigma, chosen);
    int has9 = 0, has11 = 0;
    for (int i = 0; i < 4; ++i) has9 |= chosen[i] == 9, has11 |= chosen[i] == 11;
    assert_true(has9 && has11);
    /* no sigma yet: uniform */
    float nans[16];
    for (int r = 0; r < 16; ++r) nans[r] = NAN;
    ipr_subset_choose(1, 2, 3, ref, 10, 4, IPR_SELECT_UNCERTAINTY, 0.5, nans, again);
    ipr_subset_choose(1, 2, 3, ref, 10, 4, IPR_SELECT_UNIFORM, 0.5, nans, chosen);
    assert_memory_equal(chosen, again, 4 * sizeof(uint16_t));
    /* subset sizes: max(1, floor(n ratio)) */
    assert_int_equal(ipr_subset_size(81, 0.25), 20);
    assert_int_equal(ipr_subset_size(10, 0.5), 5);
    assert_int_equal(ipr_subset_size(10, 0.01), 1);
    assert_int_equal(ipr_subset_size(64, 1.0), 64);
    assert_int_equal(ipr_subset_size(0, 0.5), 0);
}

/* ================================ settings ================================ */

static void expect_bad(const char *key, const char *value, const char *pattern) {
    ipr_sampler_config cfg;
    ipr_sampler_config_init(&cfg);
    int rc = ipr_sampler_config_set(&cfg, key, value);
    if (rc == IPR_OK) rc = ipr_sampler_config_validate(&cfg);
    if (rc == IPR_OK) fail_msg("%s = %s was accepted", key, value);
    if (!strstr(ipr_error_message(), pattern))
        fail_msg("%s = %s: message '%s' lacks '%s'", key, value, ipr_error_message(), pattern);
}

static void test_settings(void **state) {
    (void)state;
    ipr_sampler_config cfg;
    ipr_sampler_config_init(&cfg);
    assert_int_equal(ipr_sampler_config_validate(&cfg), IPR_OK);
    /* defaults: the reference's MNIST Sudoku hard settings (spec 3.3) */
    assert_int_equal(cfg.order, IPR_ORDER_ADAPTIVE);
    assert_int_equal(cfg.steps_per_region, 3);
    assert_true(cfg.overlap == 0.0 && cfg.alpha == 0.5 && cfg.temperature == 1.0 && cfg.ipr_ratio == 0.25);
    assert_true(cfg.ipr_steps_per_region == 10 && cfg.ipr_overlap == 0.8 && cfg.ipr_iterations == 0);
    assert_int_equal(ipr_sampler_config_set(&cfg, "order", "fixed"), IPR_OK);
    assert_int_equal(cfg.order, IPR_ORDER_PARALLEL);
    assert_int_equal(ipr_sampler_config_set(&cfg, "ipr_ratio", "0.5"), IPR_OK);
    assert_true(cfg.ipr_ratio == 0.5);
    assert_int_equal(ipr_sampler_config_set(&cfg, "selection", "mix"), IPR_OK);
    assert_int_equal(cfg.selection, IPR_SELECT_MIX);
    assert_int_equal(ipr_sampler_config_validate(&cfg), IPR_OK);
    expect_bad("ipr_ratio", "0", "ipr_ratio 0 outside (0, 1]");
    expect_bad("ipr_ratio", "1.5", "outside (0, 1]");
    expect_bad("ipr_ratio", "-0.1", "outside (0, 1]");
    expect_bad("steps_per_region", "-3", "steps_per_region -3 must be >= 1");
    expect_bad("ipr_steps_per_region", "0", "must be >= 1");
    expect_bad("ipr_iterations", "-1", "ipr_iterations -1 outside");
    expect_bad("max_steps", "-5", "max_steps -5");
    expect_bad("overlap", "1", "overlap 1 outside [0, 1)");
    expect_bad("ipr_overlap", "1.2", "ipr_overlap 1.2 outside [0, 1)");
    expect_bad("overlap", "-0.5", "outside [0, 1)");
    expect_bad("alpha", "2", "alpha");
    expect_bad("temperature", "-1", "temperature");
    expect_bad("selection_mix", "1.5", "selection_mix");
    expect_bad("order", "spiral", "unknown order 'spiral'");
    expect_bad("selection", "best", "unknown selection");
    expect_bad("steps_per_region", "three", "not an integer");
    expect_bad("overlap", "x", "not a number");
    expect_bad("colour", "red", "unknown sampler setting 'colour'");
    expect_bad("gpu_sampler", "2", "gpu_sampler 2 is not 0 or 1");
    /* the runner refuses what validate refuses */
    ipr_sampler_config_init(&cfg);
    cfg.ipr_ratio = 0.0;
    ipr_denoiser *den = open_den(g_unet, 1);
    ipr_task *task = ipr_task_new_custom(1, 28, 28, 7);
    assert_null(ipr_runner_new(den, task, &cfg));
    assert_non_null(strstr(ipr_error_message(), "ipr_ratio"));
    /* a checkpoint of another image size or region size is refused with both sizes named */
    ipr_sampler_config_init(&cfg);
    ipr_task *other = ipr_task_new_custom(1, 32, 32, 4);
    assert_null(ipr_runner_new(den, other, &cfg));
    assert_non_null(strstr(ipr_error_message(), "28 x 28"));
    ipr_task *other2 = ipr_task_new_custom(1, 28, 28, 14);
    assert_null(ipr_runner_new(den, other2, &cfg));
    assert_non_null(strstr(ipr_error_message(), "regions"));
    ipr_task *other3 = ipr_task_new_custom(3, 28, 28, 7);
    assert_null(ipr_runner_new(den, other3, &cfg));
    assert_non_null(strstr(ipr_error_message(), "channels"));
    ipr_task_free(other), ipr_task_free(other2), ipr_task_free(other3);
    /* the chains on the GPU need a denoiser there */
    ipr_sampler_config_init(&cfg);
    assert_int_equal(ipr_sampler_config_set(&cfg, "gpu_sampler", "1"), IPR_OK);
    assert_null(ipr_runner_new(den, task, &cfg));
    assert_non_null(strstr(ipr_error_message(), "gpu_sampler needs a denoiser on a CUDA device"));
    ipr_task_free(task);
    ipr_denoiser_free(den);
}

/* ================================ benchmark tasks ================================ */

static void test_tasks(void **state) {
    (void)state;
    /* Even Pixels: the clean instance scores 0 by the rule; 64 regions of 4 x 4 */
    ipr_task_config tc;
    ipr_task_config_init(&tc);
    tc.bench = IPR_BENCH_EVEN_PIXELS;
    tc.data_seed = 5;
    ipr_task *t = ipr_task_new(&tc);
    assert_non_null(t);
    int C, H, W, P, R;
    ipr_task_shape(t, &C, &H, &W, &P, &R);
    assert_true(C == 3 && H == 32 && W == 32 && P == 4 && R == 64);
    float *img = malloc(sizeof(float) * 3 * 128 * 128);
    uint8_t given[256];
    assert_int_equal(ipr_task_instance(t, 1, 3, img, given), IPR_OK);
    uint8_t valid = 0;
    float err = -1;
    assert_int_equal(ipr_task_score(t, img, 1, &valid, &err), IPR_OK);
    assert_int_equal(valid, 1);
    assert_true(err == 0.0f);
    assert_true(ipr_task_has_scorer(t));
    ipr_task_free(t);

    /* Sudoku: clues from the instance; correction mode: the solved grid with 5 swaps, nothing given */
    tc.bench = IPR_BENCH_SUDOKU;
    tc.difficulty = IPR_SUDOKU_HARD;
    tc.scorer_path = g_digit;
    t = ipr_task_new(&tc);
    if (!t) ipr_error_print("test_sampler");
    assert_non_null(t);
    float *clean = malloc(sizeof(float) * 252 * 252), *cor = malloc(sizeof(float) * 252 * 252);
    assert_int_equal(ipr_task_instance(t, 1, 7, clean, given), IPR_OK);
    int ng = 0;
    for (int r = 0; r < 81; ++r) ng += given[r];
    assert_true(ng <= 26);
    assert_int_equal(ipr_task_score(t, clean, 1, &valid, &err), IPR_OK);
    assert_true(err >= 0.0f);
    ipr_task_free(t);
    tc.correction = 1;
    t = ipr_task_new(&tc);
    assert_non_null(t);
    assert_true(ipr_task_correction(t));
    assert_int_equal(ipr_task_instance(t, 11, 7, cor, given), IPR_OK);
    for (int r = 0; r < 81; ++r) assert_int_equal(given[r], 0);
    /* the same seed gives the same corruption; cells differ from the solved render only where swapped */
    float *cor2 = malloc(sizeof(float) * 252 * 252);
    assert_int_equal(ipr_task_instance(t, 11, 7, cor2, given), IPR_OK);
    assert_memory_equal(cor, cor2, sizeof(float) * 252 * 252);
    ipr_task_config tsolved = tc;
    tsolved.correction = 1;
    tsolved.correction_swaps = 0;
    ipr_task *ts = ipr_task_new(&tsolved);
    assert_int_equal(ipr_task_instance(ts, 11, 7, cor2, given), IPR_OK);
    int changed_cells = 0;
    for (int cell = 0; cell < 81; ++cell) {
        int diff = 0;
        for (int y = 0; y < 28 && !diff; ++y)
            diff = memcmp(cor + (size_t)((cell / 9) * 28 + y) * 252 + (cell % 9) * 28,
                          cor2 + (size_t)((cell / 9) * 28 + y) * 252 + (cell % 9) * 28, 28 * sizeof(float)) != 0;
        changed_cells += diff;
    }
    printf("  correction: %d cells differ from the solved grid after 5 swaps\n", changed_cells);
    assert_true(changed_cells >= 2 && changed_cells <= 10);
    ipr_task_free(ts);
    ipr_task_free(t);
    free(cor2);

    /* Counting Polygons: scored by the four-head classifier; error counts failing metrics */
    tc.bench = IPR_BENCH_COUNTING_POLYGONS;
    tc.correction = 0;
    tc.scorer_path = g_poly;
    t = ipr_task_new(&tc);
    if (!t) ipr_error_print("test_sampler");
    assert_non_null(t);
    ipr_task_shape(t, &C, &H, &W, &P, &R);
    assert_true(C == 3 && H == 128 && P == 8 && R == 256);
    assert_int_equal(ipr_task_instance(t, 1, 2, img, given), IPR_OK);
    assert_int_equal(ipr_task_score(t, img, 1, &valid, &err), IPR_OK);
    assert_true(err >= 0.0f && err <= 2.0f && (valid == (err == 0.0f)));
    ipr_task_free(t);
    /* without a scorer: NAN errors */
    tc.scorer_path = NULL;
    t = ipr_task_new(&tc);
    assert_false(ipr_task_has_scorer(t));
    assert_int_equal(ipr_task_score(t, img, 1, &valid, &err), IPR_OK);
    assert_true(isnan(err) && valid == 0);
    ipr_task_free(t);
    /* bad task settings */
    tc.bench = IPR_BENCH_EVEN_PIXELS;
    tc.correction = 1;
    assert_null(ipr_task_new(&tc));
    assert_non_null(strstr(ipr_error_message(), "sudoku only"));
    free(img), free(clean), free(cor);
}

/* Correction mode end to end on a Sudoku-sized random network: no base generation (entry 0 costs no pass
 * and scores the corrupted grid), then IPR over all 81 cells. */
static void test_correction_run(void **state) {
    (void)state;
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/sudoku.h5", g_tmpdir);
    make_ckpt(ckpt, 1, 252, 252, 28, 6, 3);
    ipr_task_config tc;
    ipr_task_config_init(&tc);
    tc.bench = IPR_BENCH_SUDOKU;
    tc.correction = 1;
    tc.scorer_path = g_digit;
    ipr_task *t = ipr_task_new(&tc);
    assert_non_null(t);
    ipr_sampler_config cfg;
    ipr_sampler_config_init(&cfg);
    cfg.ipr_iterations = 2;
    cfg.ipr_ratio = 0.02; /* one cell per iteration keeps this fast */
    cfg.ipr_steps_per_region = 1;
    cfg.keep_images = 1;
    rec_ctx *c = rec_new(81, 252 * 252, 0);
    run_out o = run_chains(ckpt, t, &cfg, 1, 1, 5, c);
    /* rec_ctx's instance hook is off (no clue set), so the task's corrupted grid was used */
    assert_int_equal(o.res[0].nfe[0], 0);
    assert_int_equal(o.res[0].changed[0], 0);
    assert_int_equal((int)o.res[0].nfe[1], 1);
    assert_int_equal((int)o.res[0].nfe[2], 2);
    assert_true(o.res[0].error[0] >= 0.0f);
    int base_passes = 0;
    for (int k = 0; k < c->n_pass; ++k) base_passes += c->pass_iter[k] == 0;
    assert_int_equal(base_passes, 0);
    free_out(&o);
    rec_free(c);
    ipr_task_free(t);
}

/* The generations a pass ends are scored together on the host threads (runner.c score_ended), each on the thread's
 * own clone of the scorer: a Sudoku run with the digit classifier on 1 thread and on 3, at batch 1, 3 and 5 (5 and
 * 3 put several ended generations in one pass, which 3 threads then score at once), gives the same results bitwise,
 * and every generation was scored that way. */
static void test_parallel_scoring(void **state) {
    (void)state;
    char ckpt[4200];
    snprintf(ckpt, sizeof ckpt, "%s/tests/fixtures/dit_sudoku_s1_x.h5", IPR_SOURCE_DIR);
    ipr_task_config tc;
    ipr_task_config_init(&tc);
    tc.bench = IPR_BENCH_SUDOKU;
    tc.difficulty = IPR_SUDOKU_HARD;
    tc.scorer_path = g_digit;
    ipr_task *t = ipr_task_new(&tc);
    if (!t) ipr_error_print("test_sampler");
    assert_non_null(t);
    const size_t img = 252 * 252;
    for (int early = 0; early <= 1; ++early) {
        ipr_sampler_config cfg;
        ipr_sampler_config_init(&cfg);
        cfg.steps_per_region = 1;
        cfg.ipr_iterations = 3;
        cfg.ipr_ratio = 0.05; /* 2 or 3 cells and one pass per iteration keep this fast */
        cfg.ipr_steps_per_region = 1;
        cfg.keep_images = 1;
        cfg.early_stop = early; /* chains that stop early free their slots at different passes */
        cfg.host_threads = 1;
        const int n = 7;
        run_out one = run_chains(ckpt, t, &cfg, 1, n, 42, NULL);
        assert_int_equal(one.host_threads, 1);
        int generations = 0; /* every one ends after a pass: hard puzzles leave cells to generate */
        for (int i = 0; i < n; ++i) generations += 1 + one.res[i].iterations_run;
        assert_int_equal((int)one.pool_scored, generations);
        if (early == 0) assert_int_equal(generations, n * (1 + cfg.ipr_iterations));
        const int batches[] = {5, 3};
        for (int bi = 0; bi < 2; ++bi) {
            ipr_sampler_config cfg3 = cfg;
            cfg3.host_threads = 3;
            run_out par = run_chains(ckpt, t, &cfg3, batches[bi], n, 42, NULL);
            assert_int_equal(par.host_threads, 3);
            assert_int_equal((int)par.pool_scored, generations);
            assert_same_results(&one, &par, img);
            for (int i = 0; i < n; ++i) {
                assert_int_equal(one.res[i].solution_match, par.res[i].solution_match);
                assert_int_equal(one.res[i].nfe_saved, par.res[i].nfe_saved);
                for (int k = 0; k <= cfg.ipr_iterations; ++k) assert_true(par.res[i].error[k] >= 0.0f);
            }
            printf("  parallel scoring, early_stop %d: 1 thread batch 1 == 3 threads batch %d bitwise, %d generations "
                   "scored on the pool\n", early, batches[bi], generations);
            free_out(&par);
        }
        free_out(&one);
    }
    ipr_task_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_arithmetic),
        cmocka_unit_test(test_transition_fixture),
        cmocka_unit_test(test_fixture_base),
        cmocka_unit_test(test_fixture_ipr_iteration),
        cmocka_unit_test(test_rng_range),
        cmocka_unit_test(test_determinism_and_batching),
        cmocka_unit_test(test_orders),
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_256_regions),
        cmocka_unit_test(test_early_stop),
        cmocka_unit_test(test_shared_base),
        cmocka_unit_test(test_selection),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_tasks),
        cmocka_unit_test(test_correction_run),
        cmocka_unit_test(test_parallel_scoring),
    };
    /* TEST_FILTER=pattern runs a subset (cmocka's wildcard match) */
    const char *filter = getenv("TEST_FILTER");
    if (filter && *filter) cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, setup, teardown);
}
