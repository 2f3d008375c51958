/* test_unet_cuda.c: the CUDA U-Net against the CPU U-Net and the golden fixture (label "gpu": runs on
 * the GPU machine, `ctest -L gpu`; exits 77, skipped, where no device is visible). Fresh random weights and
 * inputs per config; odd sizes; B = 1 and B > 1; float32, TF32 and BF16 with their measured error printed;
 * CUDA graphs on and off bitwise equal, through captures, replays and evictions of the graph cache. */
#include <math.h>
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
#include "ipr/rng.h"
#include "ipr/unet.h"
#include "ipr/unet_cuda.h"
#include "test_util.h"

/* Tolerances (relative L2 against the CPU float32 engine). float32: different summation order and
 * float (not double) statistics: expect ~1e-6, 1e-4 is a bug (fixtures/README.md). TF32: 10-bit
 * mantissa operands, METHOD.md puts such GEMMs near 3e-4 per product; a deep net compounds it.
 * BF16: 8-bit mantissa operands, 1e-3..1e-2 per product. */
static const double k_tol[3] = {1e-4, 2e-2, 6e-2};


/* per-region noise map: clean, pure noise or a random level per region, as a sampler mid-run */
static void make_inputs(float *x, float *t, int B, int d_in, int H, int W, int patch, uint64_t seed) {
    ipr_rng r;
    ipr_rng_init(&r, seed, IPR_RNG_INIT_NOISE, 0, 0);
    for (size_t i = 0; i < (size_t)B * d_in * H * W; ++i) x[i] = (float)ipr_rng_normal(&r);
    int gh = (H + patch - 1) / patch, gw = (W + patch - 1) / patch;
    for (int b = 0; b < B; ++b)
        for (int gy = 0; gy < gh; ++gy)
            for (int gx = 0; gx < gw; ++gx) {
                double u = ipr_rng_uniform(&r);
                float lv = u < 0.33 ? 0.0f : u < 0.66 ? 1.0f : (float)ipr_rng_uniform(&r);
                for (int y = gy * patch; y < (gy + 1) * patch && y < H; ++y)
                    for (int xx = gx * patch; xx < (gx + 1) * patch && xx < W; ++xx)
                        t[((size_t)b * H + y) * W + xx] = lv;
            }
}

typedef struct {
    const char *name;
    int levels, hid[6], att[6], d_in, d_out, H, W, patch, B;
} cfg_case;

static void run_case(const cfg_case *c) {
    ipr_unet_config cfg;
    ipr_unet_config_init(&cfg);
    cfg.n_levels = c->levels;
    for (int l = 0; l < c->levels; ++l) cfg.hid_dims[l] = c->hid[l], cfg.attention[l] = c->att[l];
    cfg.d_in = c->d_in, cfg.d_out = c->d_out, cfg.patch_size = c->patch;
    cfg.image_size[0] = c->H, cfg.image_size[1] = c->W;
    ipr_unet *net = ipr_unet_new(&cfg, c->B, c->H, c->W, 0);
    if (!net) ipr_error_print("test");
    assert_non_null(net);
    ipr_unet_init_random(net, 1234 + (uint64_t)c->H);
    size_t nx = (size_t)c->B * c->d_in * c->H * c->W, nt = (size_t)c->B * c->H * c->W;
    size_t ny = (size_t)c->B * c->d_out * c->H * c->W;
    float *x = malloc(nx * 4), *t = malloc(nt * 4), *ycpu = malloc(ny * 4), *ygpu = malloc(ny * 4);
    float *y1 = malloc(ny * 4);
    make_inputs(x, t, c->B, c->d_in, c->H, c->W, c->patch, 99 + (uint64_t)c->W);
    assert_int_equal(ipr_unet_forward(net, x, t, c->B, ycpu), IPR_OK);
    for (int p = IPR_PREC_FP32; p <= IPR_PREC_BF16; ++p) {
        ipr_unet_cuda *g = ipr_unet_cuda_new(net, 0, (ipr_precision)p);
        if (!g) ipr_error_print("test");
        assert_non_null(g);
        ipr_unet_cuda_set_graphs(g, 1); /* whatever $IPR_UNET_GRAPHS says */
        for (size_t i = 0; i < ny; ++i) ygpu[i] = NAN; /* poison: every element must be written */
        assert_int_equal(ipr_unet_cuda_forward(g, x, t, c->B, ygpu), IPR_OK);
        double e = ipr_test_rel_l2_f(ygpu, ycpu, ny);
        printf("  %-10s %3dx%-3d B=%d %-4s rel L2 vs CPU %.3e (tol %.0e), distinct levels %d\n", c->name, c->H, c->W,
               c->B, ipr_precision_name((ipr_precision)p), e, k_tol[p], ipr_unet_cuda_last_distinct(g));
        assert_true(e < k_tol[p]);
        /* graphs (the default) against direct launches: the same kernels on the same buffers, bitwise */
        assert_int_equal(ipr_unet_cuda_graphs(g), 1);
        ipr_unet_cuda_set_graphs(g, 0);
        for (size_t i = 0; i < ny; ++i) y1[i] = NAN;
        assert_int_equal(ipr_unet_cuda_forward(g, x, t, c->B, y1), IPR_OK);
        ipr_unet_cuda_set_graphs(g, 1);
        printf("  %-10s graphs on and off: %s\n", c->name, memcmp(y1, ygpu, ny * 4) ? "DIFFER" : "bitwise equal");
        assert_memory_equal(y1, ygpu, ny * 4);
        /* batch independence: the last sample alone */
        if (c->B > 1) {
            size_t per = ny / (size_t)c->B;
            assert_int_equal(ipr_unet_cuda_forward(g, x + nx / c->B * (c->B - 1), t + nt / c->B * (c->B - 1), 1, y1),
                             IPR_OK);
            double eb = ipr_test_rel_l2_f(y1, ygpu + per * (c->B - 1), per);
            printf("  %-10s batch independence: rel L2 %.3e\n", c->name, eb);
            assert_true(eb < (p == IPR_PREC_FP32 ? 1e-5 : k_tol[p]));
        }
        ipr_unet_cuda_free(g);
    }
    free(x), free(t), free(ycpu), free(ygpu), free(y1);
    ipr_unet_free(net);
}

static void test_against_cpu(void **state) {
    (void)state;
    static const cfg_case cases[] = {
        {"tinyodd", 4, {32, 32, 64, 64}, {0, 0, 1, 1}, 1, 3, 27, 25, 7, 3},
        {"tiny1", 4, {32, 32, 64, 64}, {0, 0, 1, 1}, 1, 3, 28, 28, 7, 1},
        {"ep_small", 4, {32, 64, 64, 128}, {0, 0, 1, 1}, 3, 7, 32, 32, 4, 5},
        {"cp_small", 5, {32, 32, 64, 64, 128}, {0, 0, 0, 1, 1}, 3, 7, 128, 128, 8, 2},
        {"ms_small", 6, {32, 32, 32, 32, 64, 64}, {0, 0, 0, 0, 1, 1}, 1, 3, 252, 252, 28, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) run_case(&cases[i]);
}

/* The graph cache: a tiny net (max batch 6) through 30 keys, B = 1..6 times 5 noise maps whose distinct levels at
 * full resolution (1, 100, 200, 400, 700) fall in 5 different buckets (64 .. 1024), so every (B, map) is a new
 * graph. Each forward with graphs on must equal the same forward without them bitwise, first as a capture, then
 * as a replay; past IPR_UNET_CUDA_GRAPH_CAP the least recently used graph goes, which the capture counter shows. */
enum { GK_MAXB = 6, GK_MAPS = 5, GK_KEYS = GK_MAXB * GK_MAPS };

/* t (B, 1, H, W) with exactly K distinct levels (j + 1) / (K + 1), pixel i of image b taking j = (37 i + 11 b) mod K
 * (37 is prime to every K used, so each level appears in the first K pixels) */
static void levels_map(float *t, int B, int HW, int K) {
    for (int b = 0; b < B; ++b)
        for (int i = 0; i < HW; ++i) t[(size_t)b * HW + i] = (float)((37 * i + 11 * b) % K + 1) / (float)(K + 1);
}

typedef struct {
    ipr_unet_cuda *g;
    const float *x;
    float *t, *y_on, *y_off;
    int HW, d_out;
} graph_rig;

/* key k = (B = k / GK_MAPS + 1, map k % GK_MAPS): graphs off, then on; bitwise equal; returns new captures */
static long run_key(graph_rig *r, int k) {
    static const int K[GK_MAPS] = {1, 100, 200, 400, 700};
    const int B = k / GK_MAPS + 1;
    const size_t ny = (size_t)B * r->d_out * r->HW;
    levels_map(r->t, B, r->HW, K[k % GK_MAPS]);
    ipr_unet_cuda_set_graphs(r->g, 0);
    for (size_t i = 0; i < ny; ++i) r->y_off[i] = NAN, r->y_on[i] = NAN;
    assert_int_equal(ipr_unet_cuda_forward(r->g, r->x, r->t, B, r->y_off), IPR_OK);
    const long before = ipr_unet_cuda_graph_captures(r->g);
    ipr_unet_cuda_set_graphs(r->g, 1);
    assert_int_equal(ipr_unet_cuda_forward(r->g, r->x, r->t, B, r->y_on), IPR_OK);
    for (size_t i = 0; i < ny; ++i) assert_true(isfinite(r->y_off[i]));
    if (memcmp(r->y_on, r->y_off, ny * 4) != 0) {
        printf("  graphs: key %d (B = %d, %d levels) differs with graphs on and off\n", k, B, K[k % GK_MAPS]);
        fail();
    }
    return ipr_unet_cuda_graph_captures(r->g) - before;
}

static void test_graphs(void **state) {
    (void)state;
    ipr_unet_config cfg;
    ipr_unet_config_init(&cfg);
    static const int hid[4] = {32, 32, 64, 64}, att[4] = {0, 0, 1, 1};
    cfg.n_levels = 4;
    for (int l = 0; l < 4; ++l) cfg.hid_dims[l] = hid[l], cfg.attention[l] = att[l];
    cfg.d_in = 1, cfg.d_out = 3, cfg.patch_size = 7;
    cfg.image_size[0] = cfg.image_size[1] = 28;
    ipr_unet *net = ipr_unet_new(&cfg, GK_MAXB, 28, 28, 0);
    if (!net) ipr_error_print("test");
    assert_non_null(net);
    ipr_unet_init_random(net, 4321);
    const int HW = 28 * 28;
    float *x = malloc((size_t)GK_MAXB * HW * 4), *t = malloc((size_t)GK_MAXB * HW * 4);
    float *y_on = malloc((size_t)GK_MAXB * 3 * HW * 4), *y_off = malloc((size_t)GK_MAXB * 3 * HW * 4);
    ipr_rng rng;
    ipr_rng_init(&rng, 5, IPR_RNG_INIT_NOISE, 0, 0);
    for (int i = 0; i < GK_MAXB * HW; ++i) x[i] = (float)ipr_rng_normal(&rng);
    assert_true(GK_KEYS > IPR_UNET_CUDA_GRAPH_CAP);
    for (int p = IPR_PREC_FP32; p <= IPR_PREC_BF16; ++p) {
        ipr_unet_cuda *g = ipr_unet_cuda_new(net, 0, (ipr_precision)p);
        if (!g) ipr_error_print("test");
        assert_non_null(g);
        graph_rig r = {g, x, t, y_on, y_off, HW, 3};
        /* every key once: a capture each; the cache fills, then holds its cap */
        for (int k = 0; k < GK_KEYS; ++k) {
            assert_int_equal(run_key(&r, k), 1);
            const int held = k + 1 < IPR_UNET_CUDA_GRAPH_CAP ? k + 1 : IPR_UNET_CUDA_GRAPH_CAP;
            assert_int_equal(ipr_unet_cuda_graphs(g), held);
        }
        /* held: the last CAP keys; the most recent replays, the first was evicted */
        const int first_held = GK_KEYS - IPR_UNET_CUDA_GRAPH_CAP;
        assert_int_equal(run_key(&r, GK_KEYS - 1), 0);
        assert_int_equal(run_key(&r, first_held + 1), 0); /* touched: no longer the least recently used */
        assert_int_equal(run_key(&r, 0), 1);              /* recaptured; evicts first_held, the LRU */
        assert_int_equal(run_key(&r, first_held + 1), 0);
        assert_int_equal(run_key(&r, 0), 0);
        assert_int_equal(run_key(&r, first_held), 1);     /* it was the one evicted */
        assert_int_equal(ipr_unet_cuda_graphs(g), IPR_UNET_CUDA_GRAPH_CAP);
        printf("  graphs %-4s: %d keys, %ld captures, %d held, graphs on = off bitwise on every call\n",
               ipr_precision_name((ipr_precision)p), GK_KEYS, ipr_unet_cuda_graph_captures(g), ipr_unet_cuda_graphs(g));
        assert_int_equal(ipr_unet_cuda_graph_captures(g), GK_KEYS + 2);
        ipr_unet_cuda_free(g);
    }
    free(x), free(t), free(y_on), free(y_off);
    ipr_unet_free(net);
}

static void test_fixture(void **state) {
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/srm_unet_tiny.h5", IPR_FIXTURES_DIR);
    if (access(path, R_OK) != 0) {
        /* a GPU machine may not receive the 14 MB reference fixture (the tree it gets is capped); the CPU suite's
         * test_unet checks the same file wherever the fixtures are */
        printf("  fixture %s not found: the CUDA engine's fixture check SKIPPED\n", path);
        skip();
    }
    ipr_unet *net = ipr_unet_load(path, 3, 0, 0);
    if (!net) ipr_error_print("test");
    assert_non_null(net);
    hid_t f = ipr_h5_open_read(path);
    assert_true(f >= 0);
    int rank;
    hsize_t dx[8], dt[8], dy[8];
    float *x, *t;
    double *ref;
    assert_int_equal(ipr_h5_read_alloc(f, "input/x", H5T_NATIVE_FLOAT, 4, &rank, dx, (void **)&x), IPR_OK);
    assert_int_equal(ipr_h5_read_alloc(f, "input/t", H5T_NATIVE_FLOAT, 4, &rank, dt, (void **)&t), IPR_OK);
    assert_int_equal(ipr_h5_read_alloc(f, "output/y", H5T_NATIVE_DOUBLE, 4, &rank, dy, (void **)&ref), IPR_OK);
    H5Fclose(f);
    size_t ny = (size_t)(dy[0] * dy[1] * dy[2] * dy[3]);
    float *y = malloc(ny * 4), *reff = malloc(ny * 4);
    for (size_t i = 0; i < ny; ++i) reff[i] = (float)ref[i];
    for (int p = IPR_PREC_FP32; p <= IPR_PREC_BF16; ++p) {
        ipr_unet_cuda *g = ipr_unet_cuda_new(net, 0, (ipr_precision)p);
        assert_non_null(g);
        assert_int_equal(ipr_unet_cuda_forward(g, x, t, (int)dx[0], y), IPR_OK);
        double e = ipr_test_rel_l2_f(y, reff, ny);
        printf("  fixture %-4s rel L2 vs reference (float64) %.3e on %s\n", ipr_precision_name((ipr_precision)p), e,
               ipr_unet_cuda_device_name(g));
        assert_true(e < k_tol[p]);
        ipr_unet_cuda_free(g);
    }
    free(x), free(t), free(ref), free(y), free(reff);
    ipr_unet_free(net);
}

int main(void) {
    int count = 0;
    if (!ipr_cuda_available(&count) || count < 1) {
        printf("test_unet_cuda: no CUDA device visible; skipped\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture),
        cmocka_unit_test(test_against_cpu),
        cmocka_unit_test(test_graphs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
