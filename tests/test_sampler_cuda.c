/* test_sampler_cuda.c: the sampler with its chains on the GPU (sampler.gpu_sampler, src/sampler/device_sampler.c)
 * against the host sampler (label "gpu": runs on the GPU machine, `ctest -L gpu`):
 * - the kernels' normal draws against src/rng.c, value by value;
 * - whole chains (base generation and IPR, adaptive order, clue paste) through both paths on the same CUDA FP32
 *   denoiser: the same passes, and images equal up to the rounding of CUDA's log / sin / cos, for a random U-Net
 *   (the per-pixel noise map is built on the GPU), an Even Pixels DiT fixture (levels per region) and a Sudoku DiT
 *   fixture with clues;
 * - the GPU path independent of the batch size up to rounding (batch 1 against 4, chains through reused slots);
 * - the generations a pass ends, downloaded and scored at once on the host threads: a Sudoku DiT fixture with the
 *   digit classifier on 1 host thread against 3, the same scores bitwise.
 * The measured differences are printed on one line each for the record. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cuda_runtime.h>

#include "ipr/common.h"
#include "ipr/h5io.h"
#include "ipr/unet_cuda.h"
#include "ipr/rng.h"
#include "ipr/sampler.h"
#include "ipr/unet.h"
#include "sampler/device_sampler_kernels.h"
#include "sampler/sampler_internal.h"
#include "test_util.h"

/* Image agreement between the two paths and across batch sizes. The paths run the same float32 network on
 * inputs that differ only where a transcendental rounded differently (a last bit of a double, so usually not
 * at all after the float conversion); through a few dozen passes that stays far below 1e-3. */
#define TOL_IMAGE 1e-3

static void fail_with_error(const char *what) {
    ipr_error_print(what);
    fail();
}

/* ---- the draws ---- */

static void test_normal_draws(void **state) {
    (void)state;
    const ipr_dsamp_geom g = {3, 32, 32, 4, 64};
    const size_t n = 3 * 32 * 32;
    float *z = NULL, *clean = NULL;
    uint8_t *given = NULL;
    assert_int_equal(cudaMalloc((void **)&z, n * sizeof(float)), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&clean, n * sizeof(float)), cudaSuccess);
    assert_int_equal(cudaMalloc((void **)&given, 64), cudaSuccess);
    assert_int_equal(cudaMemset(given, 0, 64), cudaSuccess);
    float *gpu = malloc(n * sizeof(float)), *cpu = malloc(n * sizeof(float));
    const uint64_t seeds[3] = {0, 42, 0x123456789abcdefull}, instances[3] = {0, 7, (1ull << 40) + 3};
    size_t equal = 0, total = 0;
    double worst = 0.0;
    for (int s = 0; s < 3; ++s) {
        if (ipr_cu_dsamp_init(z, clean, given, &g, seeds[s], instances[s], 1, NULL) != IPR_OK) fail_with_error("init");
        assert_int_equal(cudaMemcpy(gpu, z, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
        ipr_rng_fill_normal(seeds[s], IPR_RNG_INIT_NOISE, instances[s], 0, cpu, n);
        for (size_t i = 0; i < n; ++i) {
            const double d = fabs((double)gpu[i] - (double)cpu[i]);
            equal += gpu[i] == cpu[i];
            if (!(d <= worst)) worst = d;
        }
        total += n;
    }
    printf("  normal draws: %zu of %zu bit-identical, worst |diff| %.3g\n", equal, total, worst);
    assert_true(worst <= 1e-6);
    assert_true(equal * 100 >= total * 99);
    free(gpu), free(cpu);
    cudaFree(z), cudaFree(clean), cudaFree(given);
}

/* ---- whole chains ---- */

typedef struct {
    int n;
    ipr_chain_result *res;
} chains;

/* n chains under the ratio and selection of `set` (NULL: the defaults); with n_variants > 1,
 * ipr_runner_run_variants over variants (results variant-major) instead */
static chains run_v(const char *ckpt, ipr_task *task, int max_batch, int gpu_sampler, int n, uint64_t seed,
                    const ipr_variant *set, const ipr_variant *variants, int n_variants) {
    int C, H, W, P, R;
    ipr_task_shape(task, &C, &H, &W, &P, &R);
    ipr_denoiser_config dc;
    ipr_denoiser_config_init(&dc);
    dc.device = IPR_DEVICE_CUDA;
    dc.max_batch = max_batch;
    ipr_denoiser *den = ipr_denoiser_open(ckpt, &dc);
    if (!den) fail_with_error("denoiser");
    ipr_sampler_config cfg;
    ipr_sampler_config_init(&cfg);
    cfg.steps_per_region = 2;
    cfg.ipr_iterations = 3;
    cfg.ipr_steps_per_region = 3;
    cfg.keep_images = 1;
    cfg.gpu_sampler = gpu_sampler;
    if (set) cfg.ipr_ratio = set->ipr_ratio, cfg.selection = set->selection;
    ipr_runner *r = ipr_runner_new(den, task, &cfg);
    if (!r) fail_with_error("runner");
    const int V = n_variants > 1 ? n_variants : 1;
    chains o = {n * V, calloc((size_t)(n * V), sizeof(ipr_chain_result))};
    uint64_t inst[16];
    for (int i = 0; i < n; ++i) inst[i] = 5 + (uint64_t)(i * 7 % n);
    for (int q = 0; q < n * V; ++q)
        assert_int_equal(ipr_chain_result_alloc(&o.res[q], cfg.ipr_iterations, (size_t)C * H * W), IPR_OK);
    if (V > 1) {
        if (ipr_runner_run_variants(r, seed, inst, n, variants, V, o.res, NULL, NULL) != IPR_OK) fail_with_error("run");
    } else if (ipr_runner_run(r, seed, inst, n, o.res, NULL, NULL) != IPR_OK) {
        fail_with_error("run");
    }
    ipr_runner_stats st;
    ipr_runner_get_stats(r, &st);
    assert_true(gpu_sampler ? st.device_bytes > 0 : st.device_bytes == 0);
    ipr_runner_free(r);
    ipr_denoiser_free(den);
    return o;
}

static chains run(const char *ckpt, ipr_task *task, int max_batch, int gpu_sampler, int n, uint64_t seed) {
    return run_v(ckpt, task, max_batch, gpu_sampler, n, seed, NULL, NULL, 1);
}

static void chains_free(chains *o) {
    for (int i = 0; i < o->n; ++i) ipr_chain_result_free(&o->res[i]);
    free(o->res);
}

/* the same passes, the same scores, images within TOL_IMAGE; returns the largest image difference */
static double compare(const chains *a, const chains *b, size_t img) {
    assert_int_equal(a->n, b->n);
    double worst = 0.0;
    for (int i = 0; i < a->n; ++i) {
        const ipr_chain_result *x = &a->res[i], *y = &b->res[i];
        const size_t K1 = (size_t)x->iterations + 1;
        assert_int_equal(x->instance, y->instance);
        assert_memory_equal(x->nfe, y->nfe, K1 * sizeof(uint32_t));
        for (size_t j = 0; j < img; ++j) {
            const double d = fabs((double)x->image[j] - (double)y->image[j]);
            if (!(d <= worst)) worst = d;
        }
    }
    assert_true(worst <= TOL_IMAGE);
    return worst;
}

static void check_paths(const char *label, const char *ckpt, ipr_task *task) {
    int C, H, W, P, R;
    ipr_task_shape(task, &C, &H, &W, &P, &R);
    const size_t img = (size_t)C * H * W;
    chains host = run(ckpt, task, 4, 0, 6, 11);
    chains gpu = run(ckpt, task, 4, 1, 6, 11);
    chains gpu1 = run(ckpt, task, 1, 1, 6, 11);
    const double d_paths = compare(&host, &gpu, img), d_batch = compare(&gpu, &gpu1, img);
    printf("  %-22s host vs GPU sampler max |diff| %.3g, GPU batch 4 vs 1 %.3g, nfe %u..%u\n", label, d_paths,
           d_batch, gpu.res[0].nfe[0], gpu.res[0].nfe[3]);
    chains_free(&host), chains_free(&gpu), chains_free(&gpu1);
    /* the base sample shared across variants on the GPU sampler (parked on the host, uploaded per variant) against
     * separate GPU runs of each variant: the same passes, images within TOL_IMAGE */
    const ipr_variant vars[] = {{0.25, IPR_SELECT_UNIFORM}, {1.0, IPR_SELECT_UNCERTAINTY}};
    chains shared = run_v(ckpt, task, 4, 1, 6, 11, NULL, vars, 2);
    double d_shared = 0.0;
    for (int v = 0; v < 2; ++v) {
        chains alone = run_v(ckpt, task, 4, 1, 6, 11, &vars[v], NULL, 1);
        chains part = {6, shared.res + (size_t)v * 6};
        const double d = compare(&part, &alone, img);
        if (d > d_shared) d_shared = d;
        chains_free(&alone);
    }
    printf("  %-22s shared base vs separate GPU runs max |diff| %.3g\n", label, d_shared);
    chains_free(&shared);
}

static void test_unet_chains(void **state) {
    (void)state;
    char dir[4096], path[4200];
    assert_int_equal(ipr_test_tmpdir(dir, sizeof dir, "ipr_sampler_cuda"), 0);
    snprintf(path, sizeof path, "%s/unet.h5", dir);
    ipr_unet_config cfg;
    ipr_unet_config_init(&cfg);
    cfg.n_levels = 2;
    cfg.hid_dims[0] = cfg.hid_dims[1] = 32;
    cfg.num_head_channels = 32;
    cfg.d_in = 3, cfg.d_out = 7, cfg.patch_size = 4;
    cfg.image_size[0] = cfg.image_size[1] = 16;
    ipr_unet *net = ipr_unet_new(&cfg, 1, 16, 16, 0);
    if (!net) fail_with_error("unet");
    ipr_unet_init_random(net, 31);
    assert_int_equal(ipr_unet_save(net, path), IPR_OK);
    ipr_unet_free(net);
    ipr_task *task = ipr_task_new_custom(3, 16, 16, 4);
    assert_non_null(task);
    check_paths("U-Net 16x16x3, 16 reg", path, task);
    ipr_task_free(task);
    ipr_test_rmtree(dir);
}

static void test_dit_even_pixels_chains(void **state) {
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/dit_even_pixels_s1_x.h5", IPR_SOURCE_DIR);
    ipr_task_config tc;
    ipr_task_config_init(&tc);
    tc.bench = IPR_BENCH_EVEN_PIXELS;
    ipr_task *task = ipr_task_new(&tc);
    if (!task) fail_with_error("task");
    check_paths("DiT Even Pixels", path, task);
    ipr_task_free(task);
}

static void test_dit_sudoku_chains(void **state) {
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/dit_sudoku_s1_x.h5", IPR_SOURCE_DIR);
    ipr_task_config tc;
    ipr_task_config_init(&tc);
    tc.bench = IPR_BENCH_SUDOKU; /* hard puzzles: clue cells pasted after every pass */
    ipr_task *task = ipr_task_new(&tc);
    if (!task) fail_with_error("task");
    check_paths("DiT Sudoku (clues)", path, task);
    ipr_task_free(task);
}

/* n Sudoku chains on the GPU sampler with the digit classifier on host_threads threads; *pool_scored from the stats */
static chains run_scored(const char *ckpt, ipr_task *task, int host_threads, int n, uint64_t *pool_scored) {
    ipr_denoiser_config dc;
    ipr_denoiser_config_init(&dc);
    dc.device = IPR_DEVICE_CUDA;
    dc.max_batch = 4;
    ipr_denoiser *den = ipr_denoiser_open(ckpt, &dc);
    if (!den) fail_with_error("denoiser");
    ipr_sampler_config cfg;
    ipr_sampler_config_init(&cfg);
    cfg.steps_per_region = 1;
    cfg.ipr_iterations = 3;
    cfg.ipr_ratio = 0.05;
    cfg.ipr_steps_per_region = 1;
    cfg.keep_images = 1;
    cfg.gpu_sampler = 1;
    cfg.host_threads = host_threads;
    ipr_runner *r = ipr_runner_new(den, task, &cfg);
    if (!r) fail_with_error("runner");
    chains o = {n, calloc((size_t)n, sizeof(ipr_chain_result))};
    uint64_t inst[16];
    for (int i = 0; i < n; ++i) inst[i] = 5 + (uint64_t)(i * 7 % n);
    for (int i = 0; i < n; ++i)
        assert_int_equal(ipr_chain_result_alloc(&o.res[i], cfg.ipr_iterations, 252 * 252), IPR_OK);
    if (ipr_runner_run(r, 11, inst, n, o.res, NULL, NULL) != IPR_OK) fail_with_error("run");
    ipr_runner_stats st;
    ipr_runner_get_stats(r, &st);
    assert_int_equal(st.host_threads, host_threads);
    *pool_scored = st.pool_scored;
    ipr_runner_free(r);
    ipr_denoiser_free(den);
    return o;
}

static void test_dit_sudoku_scored(void **state) {
    (void)state;
    char path[4096], scorer[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/dit_sudoku_s1_x.h5", IPR_SOURCE_DIR);
    snprintf(scorer, sizeof scorer, "%s/tests/fixtures/classifier_digit_tiny.h5", IPR_SOURCE_DIR);
    ipr_task_config tc;
    ipr_task_config_init(&tc);
    tc.bench = IPR_BENCH_SUDOKU;
    tc.scorer_path = scorer;
    ipr_task *task = ipr_task_new(&tc);
    if (!task) fail_with_error("task");
    const int n = 6;
    uint64_t scored1 = 0, scored3 = 0;
    chains one = run_scored(path, task, 1, n, &scored1);
    chains three = run_scored(path, task, 3, n, &scored3);
    const double d = compare(&one, &three, 252 * 252);
    /* every generation ends after a pass (hard puzzles leave cells to generate) and was scored after it */
    assert_int_equal((int)scored1, n * 4);
    assert_int_equal((int)scored3, n * 4);
    for (int i = 0; i < n; ++i) {
        const ipr_chain_result *x = &one.res[i], *y = &three.res[i];
        assert_int_equal(x->iterations_run, y->iterations_run);
        assert_memory_equal(x->valid, y->valid, 4);
        assert_memory_equal(x->error, y->error, 4 * sizeof(float));
        assert_memory_equal(x->changed, y->changed, 4 * sizeof(uint16_t));
        for (int k = 0; k < 4; ++k) assert_true(x->error[k] >= 0.0f);
    }
    printf("  %-22s GPU sampler scored on 1 vs 3 host threads: scores identical, %d generations scored after their "
           "pass, images max |diff| %.3g\n", "DiT Sudoku (scorer)", (int)scored3, d);
    chains_free(&one), chains_free(&three);
    ipr_task_free(task);
}

int main(void) {
    ipr_h5_quiet();
    int count = 0;
    if (!ipr_cuda_available(&count) || count < 1) {
        printf("test_sampler_cuda: no CUDA device visible; skipped\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normal_draws),
        cmocka_unit_test(test_unet_chains),
        cmocka_unit_test(test_dit_even_pixels_chains),
        cmocka_unit_test(test_dit_sudoku_chains),
        cmocka_unit_test(test_dit_sudoku_scored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
