/* test_dit.c: the CPU region-token DiT against the golden fixtures of train/srm_dit.py (every stage, the output),
 * bitwise batch independence and exact distinct-level modulation, the checkpoint loader's errors, save -> load,
 * weight storage types (float16, bfloat16), config validation and the cost model. */
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
#include <sys/stat.h>
#include <unistd.h>

#include "engine/dit_internal.h"
#include "ipr/common.h"
#include "ipr/dit.h"
#include "ipr/h5io.h"
#include "ipr/rng.h"
#include "engine/ops_cpu.h"
#include "test_util.h"

/* ---- tolerances: one table, each number with where it comes from ---- */
typedef enum {
    TOL_STAGE,  /* relative L2 of every /stages tensor of a fixture */
    TOL_OUTPUT, /* relative L2 of /output/y */
    TOL_COUNT
} tol_id;

static const double TOL[TOL_COUNT] = {
    /* the brief and fixtures/README.md: a float32 engine against the float64 reference lands at or below 1e-5
     * relative L2 (the fixture stores the float64 run rounded to float32: 6e-8). Measured on this engine: t_emb
     * <= 2.6e-6 (float32 dot products of 256 sinusoid terms that largely cancel; PyTorch float32 gets 3.4e-6 on
     * dit_sudoku_s1_x), every other stage and the outputs <= 2.2e-7 (the x parameterization's division by
     * max(t, t_min) is done in double). */
    [TOL_STAGE] = 1e-5,
    [TOL_OUTPUT] = 1e-5,
};
/* Everything else is bitwise: batch independence (per-image GEMMs of fixed shape, row-deterministic modulation
 * linears), distinct-level vs per-region modulation, save -> load, bfloat16-valued weights through bfloat16
 * storage. */

static char g_tmpdir[4096];

static int setup(void **state) {
    (void)state;
    ipr_h5_quiet();
    if (ipr_test_tmpdir(g_tmpdir, sizeof g_tmpdir, "test_dit") != 0) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    return ipr_test_rmtree(g_tmpdir);
}

/* ---- helpers ---- */

static void fixture_path(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/tests/fixtures/%s.h5", IPR_SOURCE_DIR, name);
}


static void expect_error(int rc, const char *what, const char *needle) {
    const char *msg = ipr_error_message();
    printf("  %-30s -> %s\n", what, msg);
    assert_int_equal(rc, IPR_ERR);
    if (!strstr(msg, needle)) fail_msg("%s: error '%s' does not mention '%s'", what, msg, needle);
}

static void copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb");
    assert_non_null(in);
    fseek(in, 0, SEEK_END);
    const long size = ftell(in);
    fseek(in, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size);
    assert_int_equal(fread(buf, 1, (size_t)size, in), (size_t)size);
    fclose(in);
    FILE *out = fopen(dst, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(buf, 1, (size_t)size, out), (size_t)size);
    assert_int_equal(fclose(out), 0);
    free(buf);
}

static void fill_normal(float *v, size_t n, uint64_t seed, uint64_t instance) {
    ipr_rng r;
    ipr_rng_init(&r, seed, IPR_RNG_INIT_NOISE, instance, 0);
    for (size_t i = 0; i < n; ++i) v[i] = (float)ipr_rng_normal(&r);
}

/* B noise maps constant on the p x p regions, levels from a small set plus a few unique draws */
static void region_maps(float *t, int B, int H, int W, int p, uint64_t seed) {
    static const float levels[] = {0.0f, 1.0f, 0.5f, 0.25f, 0.0005f, 0.001f, 0.03f, 0.9f};
    ipr_rng r;
    ipr_rng_init(&r, seed, IPR_RNG_INIT_NOISE, 99, 0);
    const int gh = H / p, gw = W / p;
    float *reg = malloc(sizeof(float) * gh * gw);
    for (int b = 0; b < B; ++b) {
        for (int i = 0; i < gh * gw; ++i)
            reg[i] = ipr_rng_below(&r, 4) ? levels[ipr_rng_below(&r, 8)] : (float)ipr_rng_uniform(&r);
        for (int y = 0; y < H; ++y)
            for (int x = 0; x < W; ++x) t[((size_t)b * H + y) * W + x] = reg[(y / p) * gw + x / p];
    }
    free(reg);
}

/* ---- golden fixtures (train/srm_dit.py fixtures) ---- */

typedef struct {
    hid_t f;
    int visited;
    double worst;
    char worst_name[64];
    char log[768]; /* "name error" of every stage compared */
} stage_check;

static void check_stage(const char *name, const float *data, int B, int N, int D, void *ctx) {
    stage_check *sc = ctx;
    char path[128];
    snprintf(path, sizeof path, "/stages/%s", name);
    if (!ipr_h5_exists(sc->f, path)) return; /* the large token-space copies are left out of the files */
    hsize_t dims[8];
    double *ref = ipr_test_read_tensor(sc->f, path, H5T_NATIVE_DOUBLE, 3, dims);
    if ((int)dims[0] != B || (int)dims[1] != N || (int)dims[2] != D)
        fail_msg("stage %s: engine (%d, %d, %d), fixture (%llu, %llu, %llu)", name, B, N, D,
                 (unsigned long long)dims[0], (unsigned long long)dims[1], (unsigned long long)dims[2]);
    const double e = ipr_test_rel_l2(data, ref, (size_t)B * N * D);
    free(ref);
    if (!(e <= TOL[TOL_STAGE])) fail_msg("stage %s: relative L2 %.3e > %.1e", name, e, TOL[TOL_STAGE]);
    const size_t at = strlen(sc->log);
    snprintf(sc->log + at, sizeof sc->log - at, "%s%s %.1e", at ? ", " : "", name, e);
    if (e > sc->worst || sc->visited == 0) {
        sc->worst = e;
        snprintf(sc->worst_name, sizeof sc->worst_name, "%s", name);
    }
    sc->visited++;
}

static void run_fixture(const char *name, int64_t params) {
    char path[4096];
    fixture_path(path, sizeof path, name);
    hid_t f = ipr_h5_open_read(path);
    if (f < 0) ipr_error_print("test_dit");
    assert_true(f >= 0);
    hsize_t xd[8], td[8], yd[8];
    float *x = ipr_test_read_tensor(f, "/input/x", H5T_NATIVE_FLOAT, 4, xd);
    float *t = ipr_test_read_tensor(f, "/input/t", H5T_NATIVE_FLOAT, 4, td);
    double *yref = ipr_test_read_tensor(f, "/output/y", H5T_NATIVE_DOUBLE, 4, yd);
    const int B = (int)xd[0];
    ipr_dit *net = ipr_dit_load(path, B);
    if (!net) ipr_error_print("test_dit");
    assert_non_null(net);
    const ipr_dit_config *cfg = ipr_dit_get_config(net);
    assert_int_equal(cfg->d_out, (int)yd[1]);
    assert_int_equal(ipr_dit_param_count(net), params); /* train/srm_dit.py param_count */

    stage_check sc = {f, 0, 0.0, "", ""};
    ipr_dit_set_stage_hook(net, check_stage, &sc);
    const size_t ny = (size_t)yd[0] * yd[1] * yd[2] * yd[3];
    float *y = malloc(sizeof(float) * ny), *y2 = malloc(sizeof(float) * ny);
    assert_int_equal(ipr_dit_forward(net, x, t, B, y), IPR_OK);
    ipr_dit_set_stage_hook(net, NULL, NULL);
    hid_t g = H5Gopen2(f, "/stages", H5P_DEFAULT);
    H5G_info_t gi;
    assert_true(H5Gget_info(g, &gi) >= 0);
    H5Gclose(g);
    assert_int_equal(sc.visited, (int)gi.nlinks); /* every stored stage was produced and compared */
    const double e = ipr_test_rel_l2(y, yref, ny);
    const int levels = net->n_levels;

    /* distinct-level modulation is exact: one row per region gives the same bits */
    net->per_region = 1;
    assert_int_equal(ipr_dit_forward(net, x, t, B, y2), IPR_OK);
    net->per_region = 0;
    assert_memory_equal(y, y2, sizeof(float) * ny);

    size_t wb = 0, ab = 0;
    ipr_dit_arena_bytes(net, &wb, &ab);
    printf("  %-22s B=%d N=%d f=%d: %d stages, worst %.2e (%s); output rel L2 %.2e; %d distinct levels of %d "
           "regions; arenas %.2f + %.2f MiB\n",
           name, B, net->N, net->f, sc.visited, sc.worst, sc.worst_name, e, levels, B * net->R, wb / 1048576.0,
           ab / 1048576.0);
    printf("    stages: %s\n", sc.log);
    assert_true(e <= TOL[TOL_OUTPUT]);
    free(y);
    free(y2);
    free(x);
    free(t);
    free(yref);
    ipr_dit_free(net);
    H5Fclose(f);
}

static void test_fixtures(void **state) {
    (void)state;
    run_fixture("dit_sudoku_s1_x", 126113);
    run_fixture("dit_sudoku_s2_u", 49577);
    run_fixture("dit_even_pixels_s1_x", 109337);
    run_fixture("dit_even_pixels_s2_x", 19633);
    run_fixture("dit_polygons_s1_u", 113281);
    run_fixture("dit_even_pixels_s1_x_wiener", 79937); /* input_scale wiener (ours) */
}

/* ---- batch independence with random weights ---- */

static void small_config(ipr_dit_config *cfg, int s, ipr_dit_param param) {
    ipr_dit_config_init(cfg);
    cfg->d_in = 3;
    cfg->d_out = 7;
    cfg->image_size[0] = 20;
    cfg->image_size[1] = 12;
    cfg->patch_size = 4;
    cfg->tokens_per_side = s;
    cfg->d_hid = 36; /* with N = 15 (s = 1), an image's (N, d) rows start off the 64-byte grid */
    cfg->depth = 2;
    cfg->num_heads = 3;
    cfg->mlp_ratio = 4;
    cfg->parameterization = param;
    cfg->t_min = 0.07;
}

static void run_batch_case(int s, ipr_dit_param param) {
    enum { B = 7 };
    ipr_dit_config cfg;
    small_config(&cfg, s, param);
    ipr_dit *net = ipr_dit_new(&cfg, B), *one = ipr_dit_new(&cfg, 1);
    if (!net || !one) ipr_error_print("test_dit");
    assert_non_null(net);
    assert_non_null(one);
    ipr_dit_init_random(net, 42);
    ipr_dit_init_random(one, 42);
    const int H = cfg.image_size[0], W = cfg.image_size[1];
    const size_t HW = (size_t)H * W, nx = (size_t)cfg.d_in * HW, ny = (size_t)cfg.d_out * HW;
    float *x = malloc(sizeof(float) * B * nx), *t = malloc(sizeof(float) * B * HW);
    float *y = malloc(sizeof(float) * B * ny), *y1 = malloc(sizeof(float) * ny), *yr = malloc(sizeof(float) * B * ny);
    fill_normal(x, B * nx, 3, (uint64_t)s);
    region_maps(t, B, H, W, cfg.patch_size, 17 + (uint64_t)s);
    assert_int_equal(ipr_dit_forward(net, x, t, B, y), IPR_OK);
    const int batch_levels = net->n_levels;
    {
        /* the distinct levels are the distinct values of the regions' top-left pixels */
        const int R = net->R, p = cfg.patch_size, gw = W / p;
        int naive = 0;
        for (int i = 0; i < B * R; ++i) {
            const float v = t[(size_t)(i / R) * HW + (size_t)((i % R) / gw * p) * W + (size_t)(i % R % gw * p)];
            int seen = 0;
            for (int k = 0; k < i && !seen; ++k)
                seen = t[(size_t)(k / R) * HW + (size_t)((k % R) / gw * p) * W + (size_t)(k % R % gw * p)] == v;
            naive += !seen;
        }
        assert_int_equal(batch_levels, naive);
    }
    double amax = 0.0;
    for (size_t i = 0; i < B * ny; ++i) {
        assert_true(isfinite(y[i]));
        if (fabs(y[i]) > amax) amax = fabs(y[i]);
    }
    assert_true(amax > 0.0);
    int bitwise = 0;
    for (int b = 0; b < B; ++b) {
        /* alone in the same net (planned for 7), and alone in a net planned for 1 */
        assert_int_equal(ipr_dit_forward(net, x + b * nx, t + b * HW, 1, y1), IPR_OK);
        int same = memcmp(y1, y + b * ny, sizeof(float) * ny) == 0;
        assert_int_equal(ipr_dit_forward(one, x + b * nx, t + b * HW, 1, y1), IPR_OK);
        same &= memcmp(y1, y + b * ny, sizeof(float) * ny) == 0;
        bitwise += same;
    }
    /* per-token modulation (one row per region) gives the same bits as one row per distinct level */
    net->per_region = 1;
    assert_int_equal(ipr_dit_forward(net, x, t, B, yr), IPR_OK);
    net->per_region = 0;
    printf("  s=%d %s: batch of %d vs alone: %d/%d bitwise; %d distinct levels of %d regions; per-region %s\n", s,
           ipr_dit_param_name(param), B, bitwise, B, batch_levels, B * net->R,
           memcmp(y, yr, sizeof(float) * B * ny) ? "differs" : "bitwise");
    assert_int_equal(bitwise, B);
    assert_memory_equal(y, yr, sizeof(float) * B * ny);
    free(x);
    free(t);
    free(y);
    free(y1);
    free(yr);
    ipr_dit_free(net);
    ipr_dit_free(one);
}

/* The CPU forward does not depend on its thread count (ipr_cpu_sgemm: fixed column blocks, single-threaded OpenBLAS
 * calls): with OpenBLAS's own threading the Sudoku fixture's output moved by 9.5e-6 between 1 and 2 threads, and a
 * run's results with the number of ranks sharing a node. */
static void test_threads(void **state) {
    (void)state;
    char path[4096];
    fixture_path(path, sizeof path, "dit_sudoku_s1_x");
    hsize_t xd[8], td[8];
    float *x, *t;
    ipr_test_read_fixture(path, &x, xd, &t, td, NULL, NULL);
    const int B = (int)xd[0];
    ipr_dit *net = ipr_dit_load(path, B);
    assert_non_null(net);
    const size_t ny = (size_t)B * 3 * xd[2] * xd[3];
    float *y1 = malloc(ny * sizeof(float)), *y4 = malloc(ny * sizeof(float));
    const int before = ipr_cpu_threads();
    ipr_cpu_set_threads(1);
    assert_int_equal(ipr_dit_forward(net, x, t, B, y1), IPR_OK);
    ipr_cpu_set_threads(4);
    assert_int_equal(ipr_dit_forward(net, x, t, B, y4), IPR_OK);
    ipr_cpu_set_threads(before);
    printf("  1 and 4 threads: %s\n", memcmp(y1, y4, ny * sizeof(float)) ? "DIFFER" : "bitwise equal");
    assert_memory_equal(y1, y4, ny * sizeof(float));
    free(x), free(t), free(y1), free(y4);
    ipr_dit_free(net);
}

static void test_batch_independence(void **state) {
    (void)state;
    run_batch_case(1, IPR_DIT_PARAM_U);
    run_batch_case(1, IPR_DIT_PARAM_X);
    run_batch_case(2, IPR_DIT_PARAM_U);
    run_batch_case(2, IPR_DIT_PARAM_X);
}

/* ---- save -> load ---- */

static void test_save_roundtrip(void **state) {
    (void)state;
    char path[4200];
    /* a random net: identical weights, config and outputs after the round trip */
    for (int s = 1; s <= 2; ++s) {
        ipr_dit_config cfg;
        small_config(&cfg, s, s == 1 ? IPR_DIT_PARAM_X : IPR_DIT_PARAM_U);
        ipr_dit *net = ipr_dit_new(&cfg, 2);
        assert_non_null(net);
        ipr_dit_init_random(net, 9);
        snprintf(path, sizeof path, "%s/roundtrip_s%d.h5", g_tmpdir, s);
        assert_int_equal(ipr_dit_save(net, path), IPR_OK);
        ipr_dit *back = ipr_dit_load(path, 2);
        if (!back) ipr_error_print("test_dit");
        assert_non_null(back);
        assert_true(ipr_dit_config_same_arch(ipr_dit_get_config(back), &cfg));
        assert_int_equal(back->wt.floats, net->wt.floats);
        for (int k = 0; k < net->wt.n; ++k)
            assert_memory_equal(net->wt.t[k].data, back->wt.t[k].data, sizeof(float) * net->wt.t[k].numel);
        const int H = cfg.image_size[0], W = cfg.image_size[1];
        const size_t HW = (size_t)H * W, nx = (size_t)cfg.d_in * HW, ny = (size_t)cfg.d_out * HW;
        float *x = malloc(sizeof(float) * 2 * nx), *t = malloc(sizeof(float) * 2 * HW);
        float *y = malloc(sizeof(float) * 2 * ny), *y2 = malloc(sizeof(float) * 2 * ny);
        fill_normal(x, 2 * nx, 4, 0);
        region_maps(t, 2, H, W, cfg.patch_size, 5);
        assert_int_equal(ipr_dit_forward(net, x, t, 2, y), IPR_OK);
        assert_int_equal(ipr_dit_forward(back, x, t, 2, y2), IPR_OK);
        assert_memory_equal(y, y2, sizeof(float) * 2 * ny);
        /* no temporary file is left beside the checkpoint */
        char tmp[4300];
        snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
        assert_int_equal(access(tmp, F_OK), -1);
        /* the root attributes train/srm_dit.py read_config needs, t_min only with "x" */
        hid_t f = ipr_h5_open_read(path);
        assert_true(f >= 0);
        assert_int_equal(H5Aexists(f, "t_min") > 0, cfg.parameterization == IPR_DIT_PARAM_X);
        char str[64];
        assert_int_equal(ipr_h5_read_attr_str(f, "weight_storage", str, sizeof str), IPR_OK);
        assert_string_equal(str, "float32");
        H5Fclose(f);
        free(x);
        free(t);
        free(y);
        free(y2);
        ipr_dit_free(back);
        ipr_dit_free(net);
    }
    /* fixtures (float16 storage) saved as float32 and reloaded: the same numbers, the same config (input_scale
     * included) */
    static const char *const saved[] = {"dit_even_pixels_s2_x", "dit_even_pixels_s1_x_wiener"};
    for (size_t i = 0; i < sizeof saved / sizeof saved[0]; ++i) {
        char fx[4096];
        fixture_path(fx, sizeof fx, saved[i]);
        ipr_dit *a = ipr_dit_load(fx, 1);
        assert_non_null(a);
        snprintf(path, sizeof path, "%s/fixture_f32_%zu.h5", g_tmpdir, i);
        assert_int_equal(ipr_dit_save(a, path), IPR_OK);
        ipr_dit *b = ipr_dit_load(path, 1);
        assert_non_null(b);
        assert_memory_equal(a->wt.arena, b->wt.arena, sizeof(float) * a->wt.floats);
        assert_int_equal(ipr_dit_config_same_arch(ipr_dit_get_config(a), ipr_dit_get_config(b)), 1);
        assert_int_equal((int)ipr_dit_get_config(b)->input_scale,
                         i == 1 ? (int)IPR_DIT_INPUT_WIENER : (int)IPR_DIT_INPUT_NONE);
        ipr_dit_free(a);
        ipr_dit_free(b);
    }
}

/* The input scale is part of the network: the wiener fixture's output is far from the same weights run without
 * it (so its fixture check cannot pass by ignoring the attribute), c(t) is 1 at t = 0 and 0 at t = 1, and a net
 * planned with the other scale refuses the file. */
static void test_input_scale(void **state) {
    (void)state;
    assert_true(ipr_dit_input_factor(IPR_DIT_INPUT_WIENER, 0.0) == 1.0);
    assert_true(ipr_dit_input_factor(IPR_DIT_INPUT_WIENER, 1.0) == 0.0);
    assert_true(ipr_dit_input_factor(IPR_DIT_INPUT_WIENER, 0.5) == 1.0);
    assert_true(fabs(ipr_dit_input_factor(IPR_DIT_INPUT_WIENER, 0.9) - 0.1 / 0.82) < 1e-15);
    assert_true(ipr_dit_input_factor(IPR_DIT_INPUT_NONE, 0.9) == 1.0);

    char path[4096];
    fixture_path(path, sizeof path, "dit_even_pixels_s1_x_wiener");
    hsize_t xd[8], td[8], yd[8];
    float *x, *t;
    double *yref;
    ipr_test_read_fixture(path, &x, xd, &t, td, &yref, yd);
    const int B = (int)xd[0];
    const size_t ny = (size_t)yd[0] * yd[1] * yd[2] * yd[3];
    ipr_dit_config cfg;
    assert_int_equal(ipr_dit_config_read(path, &cfg), IPR_OK);
    assert_int_equal((int)cfg.input_scale, (int)IPR_DIT_INPUT_WIENER);

    /* planned without the scale: the file is refused, naming the difference */
    cfg.input_scale = IPR_DIT_INPUT_NONE;
    ipr_dit *plain = ipr_dit_new(&cfg, B);
    assert_non_null(plain);
    ipr_error_clear();
    assert_int_equal(ipr_dit_load_weights(plain, path), IPR_ERR);
    expect_error(IPR_ERR, "input_scale differs", "input_scale \"wiener\" in the file, \"none\" planned");

    /* the same weights without the scale (copied across) compute something else */
    ipr_dit *net = ipr_dit_load(path, B);
    assert_non_null(net);
    assert_int_equal(net->wt.floats, plain->wt.floats);
    memcpy(plain->wt.arena, net->wt.arena, sizeof(float) * net->wt.floats);
    float *y = malloc(sizeof(float) * ny), *y0 = malloc(sizeof(float) * ny);
    assert_int_equal(ipr_dit_forward(net, x, t, B, y), IPR_OK);
    assert_int_equal(ipr_dit_forward(plain, x, t, B, y0), IPR_OK);
    const double e = ipr_test_rel_l2(y, yref, ny), e0 = ipr_test_rel_l2(y0, yref, ny);
    printf("  input_scale wiener: output rel L2 %.2e; the same weights without it %.2e\n", e, e0);
    assert_true(e <= TOL[TOL_OUTPUT]);
    assert_true(e0 > 1e-2);
    free(y);
    free(y0);
    free(x);
    free(t);
    free(yref);
    ipr_dit_free(net);
    ipr_dit_free(plain);
}

/* ---- weight storage: float16 (the fixtures), bfloat16 as an HDF5 float type, bfloat16 as raw uint16 ---- */

/* The HDF5 float type of bfloat16: 1 sign, 8 exponent (bias 127), 7 mantissa bits in 2 bytes, little endian. */
static hid_t bfloat16_type(void) {
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    assert_true(t >= 0);
    assert_true(H5Tset_fields(t, 15, 7, 8, 0, 7) >= 0);
    assert_true(H5Tset_offset(t, 0) >= 0);
    assert_true(H5Tset_precision(t, 16) >= 0);
    assert_true(H5Tset_size(t, 2) >= 0);
    assert_true(H5Tset_ebias(t, 127) >= 0);
    return t;
}

static void test_storage_types(void **state) {
    (void)state;
    ipr_dit_config cfg;
    small_config(&cfg, 2, IPR_DIT_PARAM_X);
    ipr_dit *net = ipr_dit_new(&cfg, 1);
    assert_non_null(net);
    ipr_dit_init_random(net, 11);
    /* bfloat16-valued weights (low 16 bits cleared), so the bfloat16 file must hold them exactly */
    for (int k = 0; k < net->wt.n; ++k)
        for (size_t i = 0; i < net->wt.t[k].numel; ++i) {
            uint32_t u;
            memcpy(&u, &net->wt.t[k].data[i], 4);
            u &= 0xFFFF0000u;
            memcpy(&net->wt.t[k].data[i], &u, 4);
        }
    char path[4200], path16[4200];
    snprintf(path, sizeof path, "%s/bf16.h5", g_tmpdir);
    assert_int_equal(ipr_dit_save(net, path), IPR_OK);
    snprintf(path16, sizeof path16, "%s/u16.h5", g_tmpdir);
    copy_file(path, path16);
    hid_t bf = bfloat16_type();
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), f16 = H5Fopen(path16, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0 && f16 >= 0);
    for (int k = 0; k < net->wt.n; ++k) {
        const ipr_weights_tensor *w = &net->wt.t[k];
        char name[160];
        hsize_t dims[4];
        for (int i = 0; i < w->rank; ++i) dims[i] = (hsize_t)w->shape[i];
        snprintf(name, sizeof name, "/weights/%s", w->name);
        assert_true(H5Ldelete(f, name, H5P_DEFAULT) >= 0);
        assert_int_equal(ipr_h5_write(f, name, H5T_NATIVE_FLOAT, bf, w->rank, dims, w->data), IPR_OK);
        if (k == 3) { /* one tensor as the raw uint16 words of its bfloat16 values */
            uint16_t *raw = malloc(sizeof(uint16_t) * w->numel);
            for (size_t i = 0; i < w->numel; ++i) {
                uint32_t u;
                memcpy(&u, &w->data[i], 4);
                raw[i] = (uint16_t)(u >> 16);
            }
            assert_true(H5Ldelete(f16, name, H5P_DEFAULT) >= 0);
            assert_int_equal(ipr_h5_write(f16, name, H5T_NATIVE_UINT16, H5T_STD_U16LE, w->rank, dims, raw), IPR_OK);
            free(raw);
        }
    }
    /* the file really holds 2-byte floats */
    hid_t ds = H5Dopen2(f, "/weights/blocks.0.mlp.fc1.weight", H5P_DEFAULT);
    hid_t dt = H5Dget_type(ds);
    assert_int_equal(H5Tget_class(dt), H5T_FLOAT);
    assert_int_equal((int)H5Tget_size(dt), 2);
    H5Tclose(dt);
    H5Dclose(ds);
    H5Tclose(bf);
    H5Fclose(f);
    H5Fclose(f16);

    ipr_dit *back = ipr_dit_load(path, 1);
    if (!back) ipr_error_print("test_dit");
    assert_non_null(back);
    assert_memory_equal(net->wt.arena, back->wt.arena, sizeof(float) * net->wt.floats);
    printf("  bfloat16 storage (HDF5 float type, 8-bit exponent): %d tensors loaded bitwise\n", back->wt.n);
    ipr_dit_free(back);

    ipr_error_clear();
    expect_error(ipr_dit_load(path16, 1) ? IPR_OK : IPR_ERR, "bfloat16 as uint16",
                 "is not floating point (stored as an integer type");
    ipr_dit_free(net);
}

/* ---- loader and forward errors ---- */

static hid_t open_copy(const char *fixture, const char *name, char *path, size_t cap) {
    char src[4096];
    fixture_path(src, sizeof src, fixture);
    snprintf(path, cap, "%s/%s", g_tmpdir, name);
    copy_file(src, path);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    return f;
}

/* load a checkpoint the way a CLI does, expecting a failure that names `needle` */
static void expect_load_error(const char *path, const char *what, const char *needle) {
    ipr_dit_config cfg;
    ipr_error_clear();
    int rc = ipr_dit_config_read(path, &cfg);
    if (rc == IPR_OK) {
        ipr_dit *net = ipr_dit_new(&cfg, 1);
        assert_non_null(net);
        rc = ipr_dit_load_weights(net, path);
        ipr_dit_free(net);
    }
    expect_error(rc, what, needle);
    assert_null(ipr_dit_load(path, 1));
}

static void set_attr_str(hid_t f, const char *name, const char *v) {
    if (H5Aexists(f, name) > 0) assert_true(H5Adelete(f, name) >= 0);
    assert_int_equal(ipr_h5_attr_str(f, name, v), IPR_OK);
}

static void set_attr_ints(hid_t f, const char *name, const int64_t *v, int n) {
    if (H5Aexists(f, name) > 0) assert_true(H5Adelete(f, name) >= 0);
    if (n == 1)
        assert_int_equal(ipr_h5_attr_i64(f, name, v[0]), IPR_OK);
    else
        assert_int_equal(ipr_h5_attr_i64_array(f, name, v, (hsize_t)n), IPR_OK);
}

/* a fixture copy with one root attribute changed (n = 0: removed) */
static void attr_case(const char *file, const char *attr, const int64_t *v, int n, const char *what,
                      const char *needle) {
    char path[4200];
    hid_t f = open_copy("dit_sudoku_s2_u", file, path, sizeof path);
    if (n == 0)
        assert_true(H5Adelete(f, attr) >= 0);
    else
        set_attr_ints(f, attr, v, n);
    H5Fclose(f);
    expect_load_error(path, what, needle);
}

static void test_loader_errors(void **state) {
    (void)state;
    char path[4200];
    hid_t f;
    const hsize_t d4[1] = {4};
    const float four[4] = {1, 2, 3, 4};
    /* dit_sudoku_s2_u: C 1, 252x252, p 28, s 2 (f = 196, 2f + 1 = 393), d 32, depth 1, 2 heads, "u" */

    f = open_copy("dit_sudoku_s2_u", "missing.h5", path, sizeof path);
    assert_true(H5Ldelete(f, "/weights/blocks.0.mlp.fc2.bias", H5P_DEFAULT) >= 0);
    H5Fclose(f);
    expect_load_error(path, "missing tensor", "missing tensor 'blocks.0.mlp.fc2.bias' (expected shape [32])");

    f = open_copy("dit_sudoku_s2_u", "extra.h5", path, sizeof path);
    assert_int_equal(ipr_h5_write(f, "/weights/blocks.1.attn.qkv.bias", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 1, d4, four),
                     IPR_OK);
    H5Fclose(f);
    expect_load_error(path, "extra tensor", "unexpected tensor 'blocks.1.attn.qkv.bias' (shape [4])");

    f = open_copy("dit_sudoku_s2_u", "shape.h5", path, sizeof path);
    {
        /* spatialreasoners' wider output layer (f + 2 F / s + 1 rows) is not ours */
        const hsize_t d[2] = {196 + 2 * 392 + 1, 32};
        float *w = calloc(d[0] * d[1], sizeof(float));
        assert_true(H5Ldelete(f, "/weights/out_layer.linear.weight", H5P_DEFAULT) >= 0);
        assert_int_equal(ipr_h5_write(f, "/weights/out_layer.linear.weight", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, d, w),
                         IPR_OK);
        free(w);
    }
    H5Fclose(f);
    expect_load_error(path, "mis-shaped tensor",
                      "tensor 'out_layer.linear.weight': expected shape [393, 32], found [981, 32]");

    f = open_copy("dit_sudoku_s2_u", "group.h5", path, sizeof path);
    assert_true(H5Ldelete(f, "/weights/patch_emb.proj.bias", H5P_DEFAULT) >= 0);
    {
        hid_t g = ipr_h5_group(f, "/weights/patch_emb.proj.bias");
        assert_true(g >= 0);
        H5Gclose(g);
    }
    H5Fclose(f);
    expect_load_error(path, "a group instead of a tensor", "'patch_emb.proj.bias' is not a dataset");

    f = open_copy("dit_sudoku_s2_u", "format.h5", path, sizeof path);
    set_attr_str(f, "format", "srm-dit-checkpoint-draft");
    H5Fclose(f);
    expect_load_error(path, "unknown format",
                      "attribute 'format' is \"srm-dit-checkpoint-draft\", expected \"srm-dit-checkpoint\"");

    f = open_copy("dit_sudoku_s2_u", "unet.h5", path, sizeof path);
    set_attr_str(f, "format", "srm-unet-checkpoint");
    H5Fclose(f);
    expect_load_error(path, "a U-Net checkpoint", "a U-Net checkpoint");

    f = open_copy("dit_sudoku_s2_u", "param.h5", path, sizeof path);
    set_attr_str(f, "parameterization", "eps");
    H5Fclose(f);
    expect_load_error(path, "bad parameterization", "attribute 'parameterization' is \"eps\", expected \"u\" or \"x\"");

    f = open_copy("dit_sudoku_s2_u", "scale.h5", path, sizeof path);
    set_attr_str(f, "input_scale", "edm");
    H5Fclose(f);
    expect_load_error(path, "bad input_scale", "attribute 'input_scale' is \"edm\", expected \"none\" or \"wiener\"");

    static const int64_t v2[1] = {2}, dout4[1] = {4}, heads3[1] = {3}, img[2] = {250, 252}, s3[1] = {3};
    attr_case("version.h5", "format_version", v2, 1, "wrong format_version", "attribute 'format_version' is 2");
    attr_case("no_depth.h5", "depth", NULL, 0, "missing attribute", "attribute 'depth' missing");
    attr_case("no_param.h5", "parameterization", NULL, 0, "missing parameterization",
              "attribute 'parameterization' missing");
    attr_case("dout.h5", "d_out", dout4, 1, "inconsistent d_out", "attribute 'd_out' = 4 is not 2 d_in + 1 = 3");
    attr_case("heads.h5", "num_heads", heads3, 1, "heads do not divide d_hid", "d_hid 32 is not a multiple of num_heads 3");
    attr_case("image.h5", "image_size", img, 2, "image not a multiple of patch",
              "image 250x252 is not a whole number of 28x28 regions");
    attr_case("split.h5", "tokens_per_side", s3, 1, "region does not split", "784 values does not split into 3x3 tokens");
    /* attributes that ask for more weights than the file holds are refused before the arena is allocated (the
     * fuzzer's edited attributes asked for a 670 GB arena); the fixture's file holds 49,577 values */
    static const int64_t depth1000[1] = {1000}, dhid50k[1] = {50000};
    {
        static const struct {
            const char *file, *attr;
            const int64_t *v;
            const char *what, *needle;
        } big[] = {{"deep.h5", "depth", depth1000, "depth beyond the file", "the architecture of the root attributes has "
                                                                            "18942665 parameters; the file's /weights "
                                                                            "holds 49577 values"},
                   {"wide.h5", "d_hid", dhid50k, "d_hid beyond the file", "the file's /weights holds 49577 values"}};
        for (size_t i = 0; i < sizeof big / sizeof big[0]; ++i) {
            f = open_copy("dit_sudoku_s2_u", big[i].file, path, sizeof path);
            set_attr_ints(f, big[i].attr, big[i].v, 1);
            H5Fclose(f);
            ipr_error_clear();
            assert_null(ipr_dit_load(path, 1));
            expect_error(IPR_ERR, big[i].what, big[i].needle);
        }
    }
    static const int64_t big_img[2] = {46 * 28, 46 * 28};
    attr_case("tokens.h5", "image_size", big_img, 2, "too many tokens",
              "8464 tokens per image, more than this engine's 8192");

    f = open_copy("dit_sudoku_s1_x", "tmin.h5", path, sizeof path);
    assert_true(H5Adelete(f, "t_min") >= 0);
    assert_int_equal(ipr_h5_attr_f64(f, "t_min", 0.0), IPR_OK);
    H5Fclose(f);
    expect_load_error(path, "t_min 0", "attribute 't_min' = 0 outside (0, 1]");

    /* t_min absent: 0.05 (train/srm_dit.py read_config) */
    f = open_copy("dit_even_pixels_s1_x", "no_tmin.h5", path, sizeof path); /* this fixture has t_min 0.1 */
    assert_true(H5Adelete(f, "t_min") >= 0);
    H5Fclose(f);
    {
        ipr_dit_config cfg;
        assert_int_equal(ipr_dit_config_read(path, &cfg), IPR_OK);
        assert_true(cfg.t_min == IPR_DIT_T_MIN_DEFAULT);
    }

    /* truncated files: truncate(2) a good file written by ipr_dit_save; then a file that is not HDF5, then none */
    {
        ipr_dit_config cfg;
        small_config(&cfg, 1, IPR_DIT_PARAM_X);
        ipr_dit *net = ipr_dit_new(&cfg, 1);
        assert_non_null(net);
        ipr_dit_init_random(net, 3);
        snprintf(path, sizeof path, "%s/truncated.h5", g_tmpdir);
        assert_int_equal(ipr_dit_save(net, path), IPR_OK);
        ipr_dit_free(net);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(truncate(path, st.st_size / 2), 0);
        expect_load_error(path, "truncated file (half)", "truncated");
        assert_int_equal(truncate(path, 1000), 0);
        expect_load_error(path, "truncated file (1000 bytes)", "truncated.h5");
    }
    snprintf(path, sizeof path, "%s/garbage.h5", g_tmpdir);
    {
        FILE *g = fopen(path, "wb");
        assert_non_null(g);
        for (int i = 0; i < 4096; ++i) fputc((i * 7919) & 0xff, g);
        assert_int_equal(fclose(g), 0);
    }
    expect_load_error(path, "not HDF5", "not a readable HDF5 file");
    snprintf(path, sizeof path, "%s/does_not_exist.h5", g_tmpdir);
    expect_load_error(path, "no such file", "does_not_exist.h5");

    /* a net planned for another architecture refuses the fixture */
    {
        char fx[4096];
        fixture_path(fx, sizeof fx, "dit_sudoku_s2_u");
        ipr_dit_config cfg;
        assert_int_equal(ipr_dit_config_read(fx, &cfg), IPR_OK);
        cfg.d_hid = 48;
        cfg.num_heads = 3;
        ipr_dit *other = ipr_dit_new(&cfg, 1);
        assert_non_null(other);
        expect_error(ipr_dit_load_weights(other, fx), "other architecture",
                     "differs from the planned network (d_hid 32 in the file, 48 planned)");
        ipr_dit_free(other);
    }
}

static void test_forward_errors(void **state) {
    (void)state;
    ipr_dit_config cfg;
    small_config(&cfg, 2, IPR_DIT_PARAM_X);
    ipr_dit *net = ipr_dit_new(&cfg, 2);
    assert_non_null(net);
    ipr_dit_init_random(net, 1);
    const int H = cfg.image_size[0], W = cfg.image_size[1];
    const size_t HW = (size_t)H * W;
    float *x = calloc(3 * (size_t)cfg.d_in * HW, sizeof(float)), *t = malloc(sizeof(float) * 3 * HW);
    float *y = malloc(sizeof(float) * 3 * (size_t)cfg.d_out * HW);
    region_maps(t, 2, H, W, cfg.patch_size, 8);
    assert_int_equal(ipr_dit_forward(net, x, t, 2, y), IPR_OK);
    /* image 1, region (row 2, column 1) of the 5x3 grid = region 7: one pixel off */
    t[HW + (size_t)(2 * 4 + 1) * W + 1 * 4 + 2] += 0.25f;
    ipr_error_clear();
    expect_error(ipr_dit_forward(net, x, t, 2, y), "non-constant t map",
                 "the noise map t of image 1 is not constant on region 7 (row 2, column 1 of the 5x3 grid");
    expect_error(ipr_dit_forward(net, x, t, 3, y), "batch > max_batch", "batch 3 outside 1..2");
    expect_error(ipr_dit_forward(net, x, t, 0, y), "batch 0", "batch 0 outside 1..2");
    free(x);
    free(t);
    free(y);
    ipr_dit_free(net);
}

/* ---- config validation, geometry, cost model ---- */

static void expect_invalid(const ipr_dit_config *cfg, const char *what, const char *needle) {
    ipr_error_clear();
    expect_error(ipr_dit_config_validate(cfg), what, needle);
    assert_null(ipr_dit_new(cfg, 1));
}

static void test_config(void **state) {
    (void)state;
    ipr_dit_config cfg, c;
    ipr_dit_config_init(&cfg);
    assert_int_equal(cfg.tokens_per_side, 1);
    assert_int_equal(cfg.mlp_ratio, 4);
    assert_int_equal(cfg.parameterization, IPR_DIT_PARAM_X);
    assert_true(cfg.t_min == 0.05);
    assert_string_equal(ipr_dit_param_name(IPR_DIT_PARAM_U), "u");
    assert_string_equal(ipr_dit_param_name(IPR_DIT_PARAM_X), "x");
    /* spec dit.md: Sudoku 81 tokens of 784 (s = 1) or 324 of 196 (s = 2); Even Pixels 64 of 48; Polygons 256 of 192 */
    struct {
        int C, H, p, s, gh, N, f;
    } geo[] = {{1, 252, 28, 1, 9, 81, 784}, {1, 252, 28, 2, 9, 324, 196}, {3, 32, 4, 1, 8, 64, 48},
               {3, 128, 8, 1, 16, 256, 192}, {3, 32, 4, 2, 8, 256, 12}};
    for (size_t i = 0; i < sizeof geo / sizeof geo[0]; ++i) {
        ipr_dit_config_init(&c);
        c.d_in = geo[i].C;
        c.d_out = 2 * geo[i].C + 1;
        c.image_size[0] = c.image_size[1] = geo[i].H;
        c.patch_size = geo[i].p;
        c.tokens_per_side = geo[i].s;
        c.d_hid = 32;
        c.depth = 1;
        c.num_heads = 2;
        assert_int_equal(ipr_dit_config_validate(&c), IPR_OK);
        int gh = 0, gw = 0, N = 0, f = 0;
        ipr_dit_geometry(&c, &gh, &gw, &N, &f);
        assert_int_equal(gh, geo[i].gh);
        assert_int_equal(gw, geo[i].gh);
        assert_int_equal(N, geo[i].N);
        assert_int_equal(f, geo[i].f);
    }
    ipr_dit_geometry(&c, NULL, NULL, NULL, NULL); /* any pointer may be NULL */

    small_config(&cfg, 1, IPR_DIT_PARAM_X);
    assert_int_equal(ipr_dit_config_validate(&cfg), IPR_OK);
    c = cfg;
    c.d_out = 6;
    expect_invalid(&c, "d_out", "d_out 6 is not 2 d_in + 1 = 7");
    c = cfg;
    c.image_size[1] = 18;
    expect_invalid(&c, "width not a multiple of patch", "image 20x18 is not a whole number of 4x4 regions");
    c = cfg;
    c.tokens_per_side = 3;
    expect_invalid(&c, "s = 3 on 48 values", "a region of 48 values does not split into 3x3 tokens");
    c = cfg;
    c.num_heads = 5;
    expect_invalid(&c, "heads", "d_hid 36 is not a multiple of num_heads 5");
    c = cfg;
    c.d_hid = 30;
    c.num_heads = 2;
    expect_invalid(&c, "d_hid not /4", "d_hid 30 is not a multiple of 4");
    c = cfg;
    c.t_min = 0.0;
    expect_invalid(&c, "t_min 0", "t_min 0 outside (0, 1]");
    c = cfg;
    c.t_min = NAN;
    expect_invalid(&c, "t_min NaN", "outside (0, 1]");
    c = cfg;
    c.parameterization = (ipr_dit_param)7;
    expect_invalid(&c, "parameterization 7", "parameterization 7 (u or x)");
    c = cfg;
    c.depth = 0;
    expect_invalid(&c, "depth 0", "depth 0 outside 1..1024");
    c = cfg;
    c.patch_size = 0;
    expect_invalid(&c, "patch 0", "patch_size 0");
    ipr_error_clear();
    assert_null(ipr_dit_new(&cfg, 0));
    expect_error(IPR_ERR, "max_batch 0", "max_batch 0");

    /* spec dit.md: Sudoku, 81 tokens, d 384, depth 12: about 5.5 GFLOP with the modulation at every token */
    ipr_dit_config_init(&c);
    c.d_in = 1;
    c.d_out = 3;
    c.image_size[0] = c.image_size[1] = 252;
    c.patch_size = 28;
    c.d_hid = 384;
    c.depth = 12;
    c.num_heads = 6;
    double pt = 0.0, di = 0.0, di81 = 0.0;
    ipr_dit_flops(&c, 2, &pt, &di);
    ipr_dit_flops(&c, 81, NULL, &di81);
    printf("  Sudoku DiT-S/28 flops: %.3f G per token-wise modulation, %.3f G with 2 distinct levels\n", pt / 1e9,
           di / 1e9);
    assert_true(pt > 5.4e9 && pt < 5.6e9);
    assert_true(di < pt && di > 3.6e9);
    assert_true(di81 == pt); /* s = 1: one level per token at most */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_input_scale),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_batch_independence),
        cmocka_unit_test(test_save_roundtrip),
        cmocka_unit_test(test_storage_types),
        cmocka_unit_test(test_loader_errors),
        cmocka_unit_test(test_forward_errors),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
