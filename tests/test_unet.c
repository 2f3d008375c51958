/* test_unet.c: the CPU U-Net against the golden fixture of the reference SRM network (every stage, the
 * output, the time embedding), the checkpoint loader's errors, batch independence, odd sizes and the
 * per-pixel fallback of the time-embedding table, and the spec 1.6 output post-processing. */
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

#include "ipr/common.h"
#include "ipr/h5io.h"
#include "ipr/rng.h"
#include "ipr/unet.h"
#include "engine/ops_cpu.h"
#include "test_util.h"

/* ---- tolerances: one table, each number with where it comes from ---- */
typedef enum {
    TOL_STAGE,    /* relative L2 of every tensor under /stages */
    TOL_OUTPUT,   /* relative L2 of /output/y */
    TOL_TEMB,     /* relative L2 of each /time_embedding/emb row */
    TOL_SAME,     /* max |a - b| / max |b| where the maths is identical (batching, fallback) */
    TOL_SPLIT,    /* max |a - b| / max |b| of u, v, sigma_theta against /transition */
    TOL_OP,       /* max |a - b| / max |b| of a CPU op against a naive double loop */
    TOL_COUNT
} tol_id;

static const double TOL[TOL_COUNT] = {
    /* fixtures/README.md: a float32 implementation lands at or below ~1e-5 relative L2 against the
     * float64 reference and anything above 1e-4 is a bug; measured here: stages <= 1.5e-6, output 9.7e-7 */
    [TOL_STAGE] = 1e-4,
    [TOL_OUTPUT] = 1e-4,
    /* float32 MLP (K = 256, 512) against float64: measured <= 2.7e-6; same bug threshold */
    [TOL_TEMB] = 1e-4,
    /* brief: sample i of a batch equals the sample alone bitwise or within 1e-6 (GEMM row blocking may
     * differ with the number of distinct levels); the same bound for the per-pixel fallback */
    [TOL_SAME] = 1e-6,
    /* u and v are copies and an affine map of float32 values; sigma is exp of a float64 mean, rounded
     * once to float32: a few float32 ulps */
    [TOL_SPLIT] = 1e-6,
    /* float32 sums of <= 45 products against double: a few ulps of the largest term; measured <= 3e-7 */
    [TOL_OP] = 1e-5,
};

static char g_fixture[4096];
static char g_sampler_fixture[4096];
static char g_tmpdir[4096];

static int setup(void **state) {
    (void)state;
    ipr_h5_quiet();
    snprintf(g_fixture, sizeof g_fixture, "%s/srm_unet_tiny.h5", IPR_FIXTURES_DIR);
    snprintf(g_sampler_fixture, sizeof g_sampler_fixture, "%s/srm_sampler_tiny.h5", IPR_FIXTURES_DIR);
    if (ipr_test_tmpdir(g_tmpdir, sizeof g_tmpdir, "test_unet") != 0) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    return ipr_test_rmtree(g_tmpdir);
}

/* ---- helpers ---- */


/* max |a - b| / max |b| */
static double rel_max(const float *a, const float *b, size_t n) {
    double e = 0.0, s = 0.0;
    for (size_t i = 0; i < n; ++i) {
        const double d = fabs((double)a[i] - b[i]);
        if (d > e || d != d) e = d;
        if (fabs(b[i]) > s) s = fabs(b[i]);
    }
    return e / (s > 0 ? s : 1.0);
}

static void expect_error(int rc, const char *what, const char *needle) {
    const char *msg = ipr_error_message();
    printf("  %-34s -> %s\n", what, msg);
    assert_int_equal(rc, IPR_ERR);
    if (!strstr(msg, needle)) fail_msg("%s: error '%s' does not mention '%s'", what, msg, needle);
}

/* ---- single ops against naive double loops and known PyTorch values (style habit 1) ---- */

static void fill_uniform(float *v, size_t n, uint64_t seed, double lo, double hi) {
    ipr_rng r;
    ipr_rng_init(&r, seed, IPR_RNG_INIT_NOISE, 7, 0);
    for (size_t i = 0; i < n; ++i) v[i] = (float)(lo + (hi - lo) * ipr_rng_uniform(&r));
}

static void test_ops_conv_norm(void **state) {
    (void)state;
    enum { CI = 5, CO = 4, H = 9, W = 7 };
    float x[CI * H * W], w3[CO * CI * 9], w1[CO * CI], b[CO], y[CO * H * W], col[CI * 9 * H * W];
    double ref[CO * H * W];
    float yf[CO * H * W];
    fill_uniform(x, sizeof x / 4, 1, -1, 1);
    fill_uniform(w3, sizeof w3 / 4, 2, -1, 1);
    fill_uniform(w1, sizeof w1 / 4, 3, -1, 1);
    fill_uniform(b, CO, 4, -1, 1);
    for (int stride = 1; stride <= 2; ++stride) {
        const int ho = (H - 1) / stride + 1, wo = (W - 1) / stride + 1;
        for (int o = 0; o < CO; ++o)
            for (int oy = 0; oy < ho; ++oy)
                for (int ox = 0; ox < wo; ++ox) {
                    double s = b[o];
                    for (int c = 0; c < CI; ++c)
                        for (int ky = 0; ky < 3; ++ky)
                            for (int kx = 0; kx < 3; ++kx) {
                                const int iy = oy * stride - 1 + ky, ix = ox * stride - 1 + kx;
                                if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                                    s += (double)w3[((o * CI + c) * 3 + ky) * 3 + kx] * x[(c * H + iy) * W + ix];
                            }
                    ref[(o * ho + oy) * wo + ox] = s;
                }
        /* whole image in one band, then one output row per band */
        const size_t budgets[2] = {sizeof col / 4, 1};
        for (int k = 0; k < 2; ++k) {
            ipr_cpu_conv2d(y, x, w3, b, CI, H, W, CO, 3, stride, 1, ho, wo, col, budgets[k], 0);
            for (int i = 0; i < CO * ho * wo; ++i) yf[i] = (float)ref[i];
            const double e = rel_max(y, yf, (size_t)CO * ho * wo);
            printf("  conv3x3 stride %d band budget %zu: %.1e\n", stride, budgets[k], e);
            assert_true(e <= TOL[TOL_OP]);
        }
    }
    /* 1x1 accumulating (the ResBlock shortcut) */
    for (int i = 0; i < CO * H * W; ++i) y[i] = 0.5f;
    ipr_cpu_conv2d(y, x, w1, b, CI, H, W, CO, 1, 1, 0, H, W, NULL, 0, 1);
    for (int o = 0; o < CO; ++o)
        for (int p = 0; p < H * W; ++p) {
            double s = 0.5 + b[o];
            for (int c = 0; c < CI; ++c) s += (double)w1[o * CI + c] * x[c * H * W + p];
            yf[o * H * W + p] = (float)s;
        }
    assert_true(rel_max(y, yf, (size_t)CO * H * W) <= TOL[TOL_OP]);

    /* GroupNorm(32, 64) over 10 pixels, far from zero mean: (x - mean) * rstd * gamma + beta, then SiLU */
    enum { C = 64, HW = 10 };
    float gx[C * HW], g[C], be[C], gy[C * HW], gr[C * HW];
    fill_uniform(gx, C * HW, 5, 999, 1001);
    fill_uniform(g, C, 6, 0.5, 1.5);
    fill_uniform(be, C, 7, -0.5, 0.5);
    for (int silu = 0; silu <= 1; ++silu) {
        ipr_cpu_group_norm(gy, gx, g, be, C, HW, 32, 1e-5f, silu);
        for (int grp = 0; grp < 32; ++grp) {
            double m = 0, v = 0;
            for (int i = 0; i < 2 * HW; ++i) m += gx[grp * 2 * HW + i];
            m /= 2 * HW;
            for (int i = 0; i < 2 * HW; ++i) v += (gx[grp * 2 * HW + i] - m) * (gx[grp * 2 * HW + i] - m);
            v /= 2 * HW;
            for (int i = 0; i < 2 * HW; ++i) {
                const int c = grp * 2 + i / HW;
                double o = (gx[grp * 2 * HW + i] - m) / sqrt(v + 1e-5) * g[c] + be[c];
                if (silu) o = o / (1 + exp(-o));
                gr[grp * 2 * HW + i] = (float)o;
            }
        }
        const double e = rel_max(gy, gr, C * HW);
        printf("  group_norm (mean 1000, silu %d): %.1e\n", silu, e);
        assert_true(e <= TOL[TOL_OP]);
    }
}

static void test_ops_attention_resize(void **state) {
    (void)state;
    enum { HEADS = 2, CH = 8, T = 37 };
    float qkv[HEADS * 3 * CH * T], out[HEADS * CH * T], outb[HEADS * CH * T], scores[T * T], ref[HEADS * CH * T];
    fill_uniform(qkv, sizeof qkv / 4, 11, -2, 2);
    for (int h = 0; h < HEADS; ++h) {
        const float *q = qkv + h * 3 * CH * T, *k = q + CH * T, *v = k + CH * T;
        for (int i = 0; i < T; ++i) {
            double wgt[T], mx = -INFINITY, sum = 0;
            for (int j = 0; j < T; ++j) {
                double s = 0;
                for (int c = 0; c < CH; ++c) s += (double)q[c * T + i] * k[c * T + j];
                wgt[j] = s / sqrt((double)CH);
                if (wgt[j] > mx) mx = wgt[j];
            }
            for (int j = 0; j < T; ++j) sum += wgt[j] = exp(wgt[j] - mx);
            for (int c = 0; c < CH; ++c) {
                double o = 0;
                for (int j = 0; j < T; ++j) o += wgt[j] / sum * v[c * T + j];
                ref[(h * CH + c) * T + i] = (float)o;
            }
        }
    }
    ipr_cpu_attention(out, qkv, HEADS, CH, T, scores, T);
    ipr_cpu_attention(outb, qkv, HEADS, CH, T, scores, 5); /* query rows in blocks of 5 */
    printf("  attention: %.1e, row-blocked %.1e\n", rel_max(out, ref, sizeof ref / 4), rel_max(outb, ref, sizeof ref / 4));
    assert_true(rel_max(out, ref, sizeof ref / 4) <= TOL[TOL_OP]);
    assert_true(rel_max(outb, ref, sizeof ref / 4) <= TOL[TOL_OP]);

    /* bilinear, align_corners=False: values torch.nn.functional.interpolate gives */
    const float a[2] = {0.0f, 1.0f};
    double r[4];
    ipr_cpu_resize_bilinear(r, a, 1, 2, 1, 4);
    assert_true(r[0] == 0.0 && r[1] == 0.25 && r[2] == 0.75 && r[3] == 1.0);
    ipr_cpu_resize_bilinear(r, a, 1, 2, 1, 3); /* 2 -> 3: src -1/6 (clamped), 0.5, 7/6 (last) */
    assert_true(r[0] == 0.0 && r[1] == 0.5 && r[2] == 1.0);
    const float c4[4] = {1.0f, 2.0f, 4.0f, 8.0f};
    ipr_cpu_resize_bilinear(r, c4, 4, 1, 2, 1); /* 4 -> 2: means of pairs */
    assert_true(r[0] == 1.5 && r[1] == 6.0);
    ipr_cpu_resize_bilinear(r, c4, 2, 2, 2, 2); /* same size: identity */
    assert_true(r[0] == 1.0 && r[1] == 2.0 && r[2] == 4.0 && r[3] == 8.0);

    /* nearest (ATen nearest_idx): 4 -> 7 takes 0 0 1 1 2 2 3 */
    float n7[7];
    ipr_cpu_upsample_nearest(n7, c4, 1, 1, 4, 1, 7);
    const float e7[7] = {1, 1, 2, 2, 4, 4, 8};
    assert_memory_equal(n7, e7, sizeof e7);

    /* sinusoid: t = 0 (and anything below 0.001) is cos 1, sin 0; t = 0.5 is 499 f_i */
    float freqs[128], emb[2 * 256];
    const double tv[2] = {0.0005, 0.5};
    ipr_cpu_sinusoid_freqs(freqs, 128);
    assert_true(freqs[0] == 1.0f);
    ipr_cpu_sinusoid(emb, tv, 2, 256, freqs);
    for (int i = 0; i < 128; ++i) {
        assert_true(emb[i] == 1.0f && emb[128 + i] == 0.0f);
        assert_true(emb[256 + i] == (float)cos(499.0 * freqs[i]));
        assert_true(fabs(freqs[i] - exp(-log(10000.0) * i / 128.0)) <= 1e-7);
    }
}

/* ---- the golden fixture ---- */

typedef struct {
    hid_t f;
    int visited;          /* stages found in the fixture */
    double worst;         /* largest relative L2 */
    char worst_name[128];
} stage_check;

static void check_stage(const char *name, const float *data, int B, int C, int H, int W, void *ctx) {
    stage_check *sc = ctx;
    char path[256];
    snprintf(path, sizeof path, "/stages/%s", name);
    if (!ipr_h5_exists(sc->f, path)) return; /* conv_in and the output head are not stored */
    hsize_t dims[8];
    double *ref = ipr_test_read_tensor(sc->f, path, H5T_NATIVE_DOUBLE, 4, dims);
    if (dims[0] != (hsize_t)B || dims[1] != (hsize_t)C || dims[2] != (hsize_t)H || dims[3] != (hsize_t)W)
        fail_msg("stage %s: shape (%d, %d, %d, %d), fixture (%llu, %llu, %llu, %llu)", name, B, C, H, W,
                 (unsigned long long)dims[0], (unsigned long long)dims[1], (unsigned long long)dims[2],
                 (unsigned long long)dims[3]);
    const double e = ipr_test_rel_l2(data, ref, (size_t)B * C * H * W);
    free(ref);
    printf("  %-32s (%d, %3d, %2d, %2d) rel L2 %.2e\n", name, B, C, H, W, e);
    if (e > sc->worst) {
        sc->worst = e;
        snprintf(sc->worst_name, sizeof sc->worst_name, "%s", name);
    }
    if (!(e <= TOL[TOL_STAGE])) fail_msg("stage %s: relative L2 %.3e > %.1e", name, e, TOL[TOL_STAGE]);
    sc->visited++;
}

static void test_fixture_stages_and_output(void **state) {
    (void)state;
    hid_t f = ipr_h5_open_read(g_fixture);
    assert_true(f >= 0);
    hsize_t xd[8], td[8], yd[8];
    float *x = ipr_test_read_tensor(f, "/input/x", H5T_NATIVE_FLOAT, 4, xd);
    float *t = ipr_test_read_tensor(f, "/input/t", H5T_NATIVE_FLOAT, 4, td);
    double *yref = ipr_test_read_tensor(f, "/output/y", H5T_NATIVE_DOUBLE, 4, yd);
    const int B = (int)xd[0];
    ipr_unet *net = ipr_unet_load(g_fixture, B, 0, 0);
    if (!net) ipr_error_print("test_unet");
    assert_non_null(net);
    const ipr_unet_config *cfg = ipr_unet_get_config(net);
    assert_int_equal(cfg->d_out, (int)yd[1]);
    /* the manifest's "tiny" entry: 422 state_dict names, 2,665,219 distinct parameters */
    assert_int_equal(ipr_unet_tensor_count(net), 422);
    assert_int_equal(ipr_unet_param_count(net), 2665219);
    size_t wb = 0, ab = 0;
    ipr_unet_arena_bytes(net, &wb, &ab);
    printf("  arenas: weights %.2f MiB, activations %.2f MiB (max_batch %d)\n", wb / 1048576.0, ab / 1048576.0, B);

    stage_check sc = {f, 0, 0.0, ""};
    ipr_unet_set_stage_hook(net, check_stage, &sc);
    const size_t ny = (size_t)yd[0] * yd[1] * yd[2] * yd[3];
    float *y = malloc(sizeof(float) * ny);
    assert_int_equal(ipr_unet_forward(net, x, t, B, y), IPR_OK);
    /* every stage the fixture stores was produced and compared */
    hid_t g = H5Gopen2(f, "/stages", H5P_DEFAULT);
    H5G_info_t gi;
    assert_true(H5Gget_info(g, &gi) >= 0);
    H5Gclose(g);
    assert_int_equal(sc.visited, (int)gi.nlinks);
    const double e = ipr_test_rel_l2(y, yref, ny);
    printf("  stages: %d compared, worst %.2e (%s); output y rel L2 %.2e\n", sc.visited, sc.worst, sc.worst_name, e);
    assert_true(e <= TOL[TOL_OUTPUT]);
    ipr_unet_temb_stats ts;
    ipr_unet_temb_stats_get(net, &ts);
    printf("  time embedding: %d distinct levels over all resolutions (table %d)\n", ts.n_distinct, ts.capacity);
    assert_int_equal(ts.fallback, 0);

    /* the per-pixel fallback (a table of 16 levels) computes the same numbers */
    ipr_unet_config c2 = *cfg;
    ipr_unet *small = ipr_unet_new(&c2, B, (int)xd[2], (int)xd[3], 16);
    assert_non_null(small);
    assert_int_equal(ipr_unet_load_weights(small, g_fixture), IPR_OK);
    float *y2 = malloc(sizeof(float) * ny);
    assert_int_equal(ipr_unet_forward(small, x, t, B, y2), IPR_OK);
    ipr_unet_temb_stats_get(small, &ts);
    assert_int_equal(ts.fallback, 1);
    const double ef = rel_max(y2, y, ny);
    printf("  per-pixel fallback vs table: max rel diff %.2e (%s)\n", ef, memcmp(y, y2, sizeof(float) * ny) ? "not bitwise" : "bitwise");
    assert_true(ef <= TOL[TOL_SAME]);
    assert_memory_equal(y, y2, sizeof(float) * ny);

    free(y2);
    ipr_unet_free(small);
    free(y);
    free(x);
    free(t);
    free(yref);
    ipr_unet_free(net);
    H5Fclose(f);
}

static void test_fixture_time_embedding(void **state) {
    (void)state;
    hid_t f = ipr_h5_open_read(g_fixture);
    assert_true(f >= 0);
    hsize_t td[8], ed[8];
    double *tv = ipr_test_read_tensor(f, "/time_embedding/t", H5T_NATIVE_DOUBLE, 1, td);
    double *eref = ipr_test_read_tensor(f, "/time_embedding/emb", H5T_NATIVE_DOUBLE, 2, ed);
    ipr_unet *net = ipr_unet_load(g_fixture, 1, 0, 0);
    assert_non_null(net);
    const int n = (int)td[0], T = (int)ed[1];
    assert_int_equal(T, ipr_unet_get_config(net)->t_emb_dim);
    float *emb = malloc(sizeof(float) * n * T);
    assert_int_equal(ipr_unet_time_embedding(net, tv, n, emb), IPR_OK);
    for (int i = 0; i < n; ++i) {
        const double e = ipr_test_rel_l2(emb + (size_t)i * T, eref + (size_t)i * T, (size_t)T);
        printf("  t = %-7g rel L2 %.2e\n", tv[i], e);
        assert_true(e <= TOL[TOL_TEMB]);
    }
    /* spec 1.4: max(1000 t - 1, 0) makes t = 0, 0.0005 and 0.001 one embedding */
    assert_memory_equal(emb, emb + T, sizeof(float) * T);
    assert_memory_equal(emb, emb + 2 * T, sizeof(float) * T);
    free(emb);
    free(tv);
    free(eref);
    ipr_unet_free(net);
    H5Fclose(f);
}

/* ---- loader errors on modified copies of the fixture ---- */

static void copy_file(const char *src, const char *dst, double fraction) {
    FILE *in = fopen(src, "rb");
    assert_non_null(in);
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    fseek(in, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size);
    assert_int_equal(fread(buf, 1, (size_t)size, in), (size_t)size);
    fclose(in);
    FILE *out = fopen(dst, "wb");
    assert_non_null(out);
    const size_t keep = (size_t)(size * fraction);
    assert_int_equal(fwrite(buf, 1, keep, out), keep);
    assert_int_equal(fclose(out), 0);
    free(buf);
}

static hid_t open_copy(const char *name, char *path, size_t cap) {
    snprintf(path, cap, "%s/%s", g_tmpdir, name);
    copy_file(g_fixture, path, 1.0);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    return f;
}

static void put_tensor(hid_t f, const char *name, int rank, const hsize_t *dims, const float *data) {
    assert_int_equal(ipr_h5_write(f, name, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, rank, dims, data), IPR_OK);
}

/* load a checkpoint the way a CLI does, expecting a failure that names `needle` */
static void expect_load_error(const char *path, const char *what, const char *needle) {
    ipr_unet_config cfg;
    ipr_error_clear();
    int rc = ipr_unet_config_read(path, &cfg);
    if (rc == IPR_OK) {
        ipr_unet *net = ipr_unet_new(&cfg, 1, cfg.image_size[0], cfg.image_size[1], 0);
        assert_non_null(net);
        rc = ipr_unet_load_weights(net, path);
        ipr_unet_free(net);
    }
    expect_error(rc, what, needle);
    assert_null(ipr_unet_load(path, 1, 0, 0));
}

static void test_loader_errors(void **state) {
    (void)state;
    char path[4200];
    hid_t f;
    const hsize_t d4[1] = {4};
    const float four[4] = {1, 2, 3, 4};

    f = open_copy("missing.h5", path, sizeof path);
    assert_true(H5Ldelete(f, "/weights/model.encoder.blocks.7.0.shortcut.weight", H5P_DEFAULT) >= 0);
    H5Fclose(f);
    expect_load_error(path, "missing tensor", "missing tensor 'model.encoder.blocks.7.0.shortcut.weight' (expected shape [64, 32, 1, 1])");

    f = open_copy("extra.h5", path, sizeof path);
    put_tensor(f, "/weights/model.encoder.blocks.7.0.extra.weight", 1, d4, four);
    H5Fclose(f);
    expect_load_error(path, "extra tensor", "unexpected tensor 'model.encoder.blocks.7.0.extra.weight' (shape [4])");

    f = open_copy("shape.h5", path, sizeof path);
    {
        const hsize_t d[4] = {3, 32, 1, 1};
        float w[96] = {0};
        assert_true(H5Ldelete(f, "/weights/model.decoder.out.2.weight", H5P_DEFAULT) >= 0);
        put_tensor(f, "/weights/model.decoder.out.2.weight", 4, d, w);
    }
    H5Fclose(f);
    expect_load_error(path, "wrong shape", "tensor 'model.decoder.out.2.weight': expected shape [3, 32, 3, 3], found [3, 32, 1, 1]");

    f = open_copy("alias.h5", path, sizeof path);
    {
        /* one name of the shared MLP is a copy with other values instead of a hard link */
        const char *name = "/weights/model.encoder.blocks.1.0.norm_with_embedding.t_emb.mlp.0.bias";
        hsize_t d[8];
        float *b = ipr_test_read_tensor(f, name, H5T_NATIVE_FLOAT, 1, d);
        assert_true(H5Ldelete(f, name, H5P_DEFAULT) >= 0);
        b[3] += 1.0f;
        put_tensor(f, name, 1, d, b);
        free(b);
    }
    H5Fclose(f);
    expect_load_error(path, "diverging alias", "'model.encoder.blocks.1.0.norm_with_embedding.t_emb.mlp.0.bias' should be the shared time-embedding MLP");

    f = open_copy("alias_copy.h5", path, sizeof path);
    {
        /* an identical copy instead of a hard link is accepted */
        const char *name = "/weights/model.decoder.blocks.3.0.norm_with_embedding.t_emb.mlp.2.weight";
        hsize_t d[8];
        float *w = ipr_test_read_tensor(f, name, H5T_NATIVE_FLOAT, 2, d);
        assert_true(H5Ldelete(f, name, H5P_DEFAULT) >= 0);
        put_tensor(f, name, 2, d, w);
        free(w);
    }
    H5Fclose(f);
    ipr_unet *ok = ipr_unet_load(path, 1, 0, 0);
    if (!ok) ipr_error_print("test_unet");
    assert_non_null(ok);
    ipr_unet_free(ok);

    f = open_copy("format.h5", path, sizeof path);
    assert_true(H5Adelete(f, "format") >= 0);
    assert_int_equal(ipr_h5_attr_str(f, "format", "srm-unet-checkpoint-draft"), IPR_OK);
    H5Fclose(f);
    expect_load_error(path, "wrong format", "attribute 'format' is \"srm-unet-checkpoint-draft\", expected \"srm-unet-checkpoint\"");

    f = open_copy("version.h5", path, sizeof path);
    assert_true(H5Adelete(f, "format_version") >= 0);
    assert_int_equal(ipr_h5_attr_i64(f, "format_version", 2), IPR_OK);
    H5Fclose(f);
    expect_load_error(path, "format_version 2", "attribute 'format_version' is 2");

    f = open_copy("no_demb.h5", path, sizeof path);
    assert_true(H5Adelete(f, "d_emb") >= 0);
    H5Fclose(f);
    expect_load_error(path, "missing attribute", "attribute 'd_emb' missing");

    f = open_copy("gn.h5", path, sizeof path);
    {
        const int64_t hid[4] = {32, 32, 48, 64};
        assert_true(H5Adelete(f, "hid_dims") >= 0);
        assert_int_equal(ipr_h5_attr_i64_array(f, "hid_dims", hid, 4), IPR_OK);
    }
    H5Fclose(f);
    expect_load_error(path, "hid_dims not /32", "hid_dims[2] = 48 is not a positive multiple of the 32 GroupNorm groups");

    f = open_copy("arch.h5", path, sizeof path);
    {
        /* a consistent config whose tensors are not in the file: the shape checks name the tensors */
        const int64_t hid[4] = {32, 32, 64, 128};
        assert_true(H5Adelete(f, "hid_dims") >= 0);
        assert_int_equal(ipr_h5_attr_i64_array(f, "hid_dims", hid, 4), IPR_OK);
    }
    H5Fclose(f);
    expect_load_error(path, "hid_dims vs weights", "expected shape [128, 64, 3, 3], found [64, 64, 3, 3]");

    f = open_copy("huge.h5", path, sizeof path);
    {
        /* widths the file could never fill are refused before the weight arena is allocated */
        const int64_t hid[4] = {2048, 2048, 2048, 2048};
        assert_true(H5Adelete(f, "hid_dims") >= 0);
        assert_int_equal(ipr_h5_attr_i64_array(f, "hid_dims", hid, 4), IPR_OK);
    }
    H5Fclose(f);
    ipr_error_clear();
    assert_null(ipr_unet_load(path, 1, 0, 0));
    expect_error(IPR_ERR, "hid_dims beyond the file", "parameters; the file's /weights holds");

    snprintf(path, sizeof path, "%s/truncated.h5", g_tmpdir);
    copy_file(g_fixture, path, 0.5);
    expect_load_error(path, "truncated file", "truncated.h5");

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
    ipr_unet_config cfg;
    assert_int_equal(ipr_unet_config_read(g_fixture, &cfg), IPR_OK);
    cfg.num_blocks[1] = 1;
    ipr_unet *other = ipr_unet_new(&cfg, 1, 28, 28, 0);
    assert_non_null(other);
    expect_error(ipr_unet_load_weights(other, g_fixture), "other architecture", "differs from the planned network");
    ipr_unet_free(other);
}

/* ---- batch independence on the fixture network ---- */

static void test_batch_independence(void **state) {
    (void)state;
    hsize_t xd[8], td[8];
    float *x3, *t3;
    ipr_test_read_fixture(g_fixture, &x3, xd, &t3, td, NULL, NULL);
    enum { B = 7 };
    const int H = (int)xd[2], W = (int)xd[3];
    ipr_unet *net = ipr_unet_load(g_fixture, B, H, W);
    assert_non_null(net);
    const ipr_unet_config *cfg = ipr_unet_get_config(net);
    const size_t HW = (size_t)H * W, nx = (size_t)cfg->d_in * HW, ny = (size_t)cfg->d_out * HW;
    float *x = malloc(sizeof(float) * B * nx), *t = malloc(sizeof(float) * B * HW);
    float *y = malloc(sizeof(float) * B * ny), *y1 = malloc(sizeof(float) * ny);
    /* samples 0..2 from the fixture, 3..6 variants of them: other images and other noise maps */
    for (int b = 0; b < B; ++b) {
        const int s = b % 3;
        for (size_t i = 0; i < nx; ++i) x[b * nx + i] = b < 3 ? x3[s * nx + i] : -0.5f * x3[s * nx + i] + 0.1f * (float)b;
        for (size_t i = 0; i < HW; ++i) t[b * HW + i] = b < 3 ? t3[s * HW + i] : (b % 2 ? 1.0f - t3[s * HW + i] : 0.37f * t3[s * HW + i]);
    }
    assert_int_equal(ipr_unet_forward(net, x, t, B, y), IPR_OK);
    int bitwise = 0;
    double worst = 0.0;
    for (int b = 0; b < B; ++b) {
        assert_int_equal(ipr_unet_forward(net, x + b * nx, t + b * HW, 1, y1), IPR_OK);
        bitwise += memcmp(y1, y + b * ny, sizeof(float) * ny) == 0;
        const double e = rel_max(y + b * ny, y1, ny);
        if (e > worst) worst = e;
        assert_true(e <= TOL[TOL_SAME]);
    }
    printf("  batch of %d vs one at a time: %d/%d bitwise, worst max rel diff %.2e\n", B, bitwise, B, worst);
    /* style habit 10: a sample's result does not depend on its batch (fixed-shape GEMMs, unet_temb.c) */
    assert_int_equal(bitwise, B);
    /* a batch above max_batch is refused */
    expect_error(ipr_unet_forward(net, x, t, B + 1, y), "batch > max_batch", "outside 1..7");
    free(x);
    free(t);
    free(y);
    free(y1);
    free(x3);
    free(t3);
    ipr_unet_free(net);
}

/* ---- other configurations with random weights: odd sizes, per-level num_blocks, one level ---- */

typedef struct {
    int lh[IPR_UNET_MAX_LEVELS], lw[IPR_UNET_MAX_LEVELS], L;
    int stages, bad;
} size_check;

static void check_sizes(const char *name, const float *data, int B, int C, int H, int W, void *ctx) {
    (void)data;
    (void)B;
    (void)C;
    size_check *sc = ctx;
    int ok = 0;
    for (int l = 0; l < sc->L; ++l) ok |= H == sc->lh[l] && W == sc->lw[l];
    if (!ok) {
        printf("  stage %s has size %d x %d, not a level size\n", name, H, W);
        sc->bad++;
    }
    sc->stages++;
}

/* noise map constant on p x p regions (partial regions at the borders), levels from a small set */
static void region_map(float *t, int B, int H, int W, int p, uint64_t seed) {
    static const float levels[] = {0.0f, 1.0f, 0.5f, 0.25f, 0.75f, 0.001f, 0.9f};
    ipr_rng r;
    ipr_rng_init(&r, seed, IPR_RNG_INIT_NOISE, 99, 0);
    const int gh = (H + p - 1) / p, gw = (W + p - 1) / p;
    float *reg = malloc(sizeof(float) * gh * gw);
    for (int b = 0; b < B; ++b) {
        for (int i = 0; i < gh * gw; ++i) reg[i] = levels[ipr_rng_below(&r, 7)];
        for (int y = 0; y < H; ++y)
            for (int x = 0; x < W; ++x) t[((size_t)b * H + y) * W + x] = reg[(y / p) * gw + x / p];
    }
    free(reg);
}

static void run_random_config(const ipr_unet_config *cfg, int B, int H, int W, const char *label) {
    ipr_unet *net = ipr_unet_new(cfg, B, H, W, 0);
    if (!net) ipr_error_print("test_unet");
    assert_non_null(net);
    ipr_unet_init_random(net, 1234);
    const size_t HW = (size_t)H * W, nx = (size_t)cfg->d_in * HW, ny = (size_t)cfg->d_out * HW;
    float *x = malloc(sizeof(float) * B * nx), *t = malloc(sizeof(float) * B * HW);
    float *y = malloc(sizeof(float) * B * ny), *y2 = malloc(sizeof(float) * B * ny);
    ipr_rng r;
    ipr_rng_init(&r, 5, IPR_RNG_INIT_NOISE, 1, 0);
    for (size_t i = 0; i < B * nx; ++i) x[i] = (float)ipr_rng_normal(&r);
    region_map(t, B, H, W, cfg->patch_size > 0 ? cfg->patch_size : 3, 77);

    size_check sc = {.L = cfg->n_levels};
    for (int l = 0; l < cfg->n_levels; ++l) {
        sc.lh[l] = l ? (sc.lh[l - 1] + 1) / 2 : H;
        sc.lw[l] = l ? (sc.lw[l - 1] + 1) / 2 : W;
    }
    ipr_unet_set_stage_hook(net, check_sizes, &sc);
    assert_int_equal(ipr_unet_forward(net, x, t, B, y), IPR_OK);
    ipr_unet_set_stage_hook(net, NULL, NULL);
    assert_int_equal(sc.bad, 0);
    double amax = 0.0;
    for (size_t i = 0; i < B * ny; ++i) {
        assert_true(isfinite(y[i]));
        if (fabs(y[i]) > amax) amax = fabs(y[i]);
    }
    assert_true(amax > 0.0);

    /* batch independence */
    double worst = 0.0;
    for (int b = 0; b < B; ++b) {
        assert_int_equal(ipr_unet_forward(net, x + b * nx, t + b * HW, 1, y2), IPR_OK);
        const double e = rel_max(y + b * ny, y2, ny);
        if (e > worst) worst = e;
    }
    if (!(worst <= TOL[TOL_SAME])) fail_msg("%s: batch vs single differs by %.3e", label, worst);

    /* save -> load gives the same network */
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.h5", g_tmpdir, label);
    assert_int_equal(ipr_unet_save(net, path), IPR_OK);
    ipr_unet *back = ipr_unet_load(path, B, H, W);
    if (!back) ipr_error_print("test_unet");
    assert_non_null(back);
    assert_int_equal(ipr_unet_forward(back, x, t, B, y2), IPR_OK);
    assert_memory_equal(y, y2, sizeof(float) * B * ny);
    ipr_unet_free(back);

    /* per-pixel fallback (a table of 1 level) */
    ipr_unet_temb_stats ts;
    assert_int_equal(ipr_unet_forward(net, x, t, B, y), IPR_OK);
    ipr_unet_temb_stats_get(net, &ts);
    assert_int_equal(ts.fallback, 0);
    assert_true(ts.n_distinct > 1);
    ipr_unet *small = ipr_unet_new(cfg, B, H, W, 1);
    assert_non_null(small);
    ipr_unet_init_random(small, 1234);
    assert_int_equal(ipr_unet_forward(small, x, t, B, y2), IPR_OK);
    ipr_unet_temb_stats_get(small, &ts);
    assert_int_equal(ts.fallback, 1);
    const double ef = rel_max(y2, y, B * ny);
    if (!(ef <= TOL[TOL_SAME])) fail_msg("%s: per-pixel fallback differs by %.3e", label, ef);
    assert_memory_equal(y, y2, sizeof(float) * B * ny);
    ipr_unet_free(small);

    size_t wb = 0, ab = 0;
    ipr_unet_arena_bytes(net, &wb, &ab);
    printf("  %-10s %dx%d B=%d: %lld params, batch worst %.1e, fallback %.1e, arenas %.2f + %.2f MiB, %d stages\n",
           label, H, W, B, (long long)ipr_unet_param_count(net), worst, ef, wb / 1048576.0, ab / 1048576.0,
           sc.stages);
    free(x);
    free(t);
    free(y);
    free(y2);
    ipr_unet_free(net);
}

static void test_random_configs(void **state) {
    (void)state;
    ipr_unet_config cfg;

    /* odd sizes 27 x 25 -> 14 x 13 -> 7 x 7; per-level num_blocks, 2 heads of 32, odd d_emb */
    ipr_unet_config_init(&cfg);
    cfg.n_levels = 3;
    const int hid[3] = {32, 64, 64}, att[3] = {0, 1, 1}, nb[3] = {1, 2, 1};
    for (int l = 0; l < 3; ++l) {
        cfg.hid_dims[l] = hid[l];
        cfg.attention[l] = att[l];
        cfg.num_blocks[l] = nb[l];
    }
    cfg.d_in = 3;
    cfg.d_out = 7;
    cfg.num_head_channels = 32;
    cfg.t_emb_dim = 96;
    cfg.d_emb = 33;
    cfg.patch_size = 5;
    cfg.image_size[0] = 27;
    cfg.image_size[1] = 25;
    run_random_config(&cfg, 3, 27, 25, "odd27x25");
    /* the same net at other odd sizes, down to 1 pixel at the bottom level */
    run_random_config(&cfg, 2, 9, 5, "odd9x5");
    run_random_config(&cfg, 2, 3, 1, "odd3x1");

    /* one level: no down/upsampling, attention everywhere */
    ipr_unet_config_init(&cfg);
    cfg.n_levels = 1;
    cfg.hid_dims[0] = 64;
    cfg.attention[0] = 1;
    cfg.num_blocks[0] = 1;
    cfg.d_in = 1;
    cfg.d_out = 3;
    cfg.patch_size = 3;
    cfg.image_size[0] = 11;
    cfg.image_size[1] = 6;
    run_random_config(&cfg, 2, 11, 6, "one_level");
}

/* ---- spec 1.6 against the sampler fixture's /transition ---- */

static void test_split_output(void **state) {
    (void)state;
    hid_t f = ipr_h5_open_read(g_sampler_fixture);
    assert_true(f >= 0);
    hsize_t od[8], d[8];
    double *raw = ipr_test_read_tensor(f, "/transition/net_out", H5T_NATIVE_DOUBLE, 4, od);
    float *u_ref = ipr_test_read_tensor(f, "/transition/u", H5T_NATIVE_FLOAT, 4, d);
    float *v_ref = ipr_test_read_tensor(f, "/transition/v", H5T_NATIVE_FLOAT, 4, d);
    float *s_ref = ipr_test_read_tensor(f, "/transition/sigma_theta", H5T_NATIVE_FLOAT, 4, d);
    H5Fclose(f);
    ipr_unet_config cfg;
    assert_int_equal(ipr_unet_config_read(g_fixture, &cfg), IPR_OK); /* the tiny network: d_out 3, 7x7 regions */
    const int B = (int)od[0], H = (int)od[2], W = (int)od[3];
    const size_t n = (size_t)od[0] * od[1] * od[2] * od[3], HW = (size_t)H * W;
    float *y = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; ++i) y[i] = (float)raw[i];
    float *u = malloc(sizeof(float) * B * HW), *v = malloc(sizeof(float) * B * HW), *s = malloc(sizeof(float) * B * HW);
    const int gh = H / cfg.patch_size, gw = W / cfg.patch_size;
    float *sr = malloc(sizeof(float) * B * gh * gw);
    assert_int_equal(ipr_unet_split_output(&cfg, y, B, H, W, u, v, s, sr), IPR_OK);
    const double eu = rel_max(u, u_ref, B * HW), ev = rel_max(v, v_ref, B * HW), es = rel_max(s, s_ref, B * HW);
    printf("  u %.1e, v %.1e, sigma_theta %.1e (max rel diff)\n", eu, ev, es);
    assert_true(eu <= TOL[TOL_SPLIT] && ev <= TOL[TOL_SPLIT] && es <= TOL[TOL_SPLIT]);
    /* sigma is constant on each region and equals sigma_region there */
    for (int b = 0; b < B; ++b)
        for (int yy = 0; yy < H; ++yy)
            for (int xx = 0; xx < W; ++xx)
                assert_true(s[(size_t)b * HW + (size_t)yy * W + xx] ==
                            sr[((size_t)b * gh + yy / cfg.patch_size) * gw + xx / cfg.patch_size]);
    /* d_out must be 2 d + 1 */
    cfg.d_out = 2;
    expect_error(ipr_unet_split_output(&cfg, y, B, H, W, u, v, s, NULL), "even d_out", "d_out 2");
    free(raw);
    free(u_ref);
    free(v_ref);
    free(s_ref);
    free(y);
    free(u);
    free(v);
    free(s);
    free(sr);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops_conv_norm),
        cmocka_unit_test(test_ops_attention_resize),
        cmocka_unit_test(test_fixture_stages_and_output),
        cmocka_unit_test(test_fixture_time_embedding),
        cmocka_unit_test(test_loader_errors),
        cmocka_unit_test(test_batch_independence),
        cmocka_unit_test(test_random_configs),
        cmocka_unit_test(test_split_output),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
