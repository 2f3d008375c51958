/* cmd_bench.c: `ipr bench`: denoiser forward passes per second for the paper's U-Net configurations and the
 * region-token DiT configurations (random weights, per-region noise maps) on the CPU and the GPU in each precision,
 * the GPU with CUDA graphs, without, or both (then with the ratio). Prints a table and JSON. `--save-checkpoint`
 * writes one of those random-weight nets as a checkpoint instead (for end-to-end timing studies with `ipr run`). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ipr/clock.h"
#include "ipr/common.h"
#include "ipr/rng.h"
#include "ipr/dit_cuda.h"
#include "ipr/unet.h"
#include "ipr/unet_cuda.h"

typedef struct {
    const char *name;
    int levels, hid[6], att[6], d_in, d_out, size, patch;
} bench_cfg;

/* spec 1.2 and fixtures/srm_unet_manifest.json */
static const bench_cfg k_cfgs[] = {
    {"ep_4", 4, {64, 128, 128, 256}, {0, 0, 1, 1}, 3, 7, 32, 4},
    {"cp_ffhq_8", 5, {128, 128, 256, 256, 512}, {0, 0, 0, 1, 1}, 3, 7, 128, 8},
    {"ms1000_28", 6, {128, 128, 256, 256, 512, 512}, {0, 0, 0, 0, 1, 1}, 1, 3, 252, 28},
    {"tiny", 4, {32, 32, 64, 64}, {0, 0, 1, 1}, 1, 3, 28, 7},
};
#define NUM_CFGS (int)(sizeof k_cfgs / sizeof k_cfgs[0])

/* the region-token DiT (spec dit.md): DiT-S widths (d 384, depth 12, 6 heads) on each benchmark's regions, one
 * token per region, x-prediction */
typedef struct {
    const char *name;
    int d_in, size, patch, s, d, depth, heads;
} bench_dit_cfg;

static const bench_dit_cfg k_dits[] = {
    {"dit_ms", 1, 252, 28, 1, 384, 12, 6}, /* Sudoku: 81 tokens of 784 */
    {"dit_ep", 3, 32, 4, 1, 384, 12, 6},   /* Even Pixels: 64 tokens of 48 */
    {"dit_cp", 3, 128, 8, 1, 384, 12, 6},  /* Counting Polygons: 256 tokens of 192 */
    {"dit_tiny", 1, 28, 7, 1, 32, 2, 2},
};
#define NUM_DITS (int)(sizeof k_dits / sizeof k_dits[0])
#define CFG_NAMES "ep_4, cp_ffhq_8, ms1000_28, tiny, dit_ms, dit_ep, dit_cp, dit_tiny"

/* the seed of every bench net's random weights: --save-checkpoint writes the very net the timing rows measure */
#define BENCH_WEIGHT_SEED 1

static void unet_config_of(const bench_cfg *bc, ipr_unet_config *cfg) {
    ipr_unet_config_init(cfg);
    cfg->n_levels = bc->levels;
    for (int l = 0; l < bc->levels; ++l) cfg->hid_dims[l] = bc->hid[l], cfg->attention[l] = bc->att[l];
    cfg->d_in = bc->d_in, cfg->d_out = bc->d_out, cfg->patch_size = bc->patch;
    cfg->image_size[0] = cfg->image_size[1] = bc->size;
}

static void dit_config_of(const bench_dit_cfg *bc, ipr_dit_config *cfg) {
    ipr_dit_config_init(cfg);
    cfg->d_in = bc->d_in, cfg->d_out = 2 * bc->d_in + 1, cfg->patch_size = bc->patch, cfg->tokens_per_side = bc->s;
    cfg->image_size[0] = cfg->image_size[1] = bc->size;
    cfg->d_hid = bc->d, cfg->depth = bc->depth, cfg->num_heads = bc->heads, cfg->mlp_ratio = 4;
    cfg->parameterization = IPR_DIT_PARAM_X, cfg->t_min = IPR_DIT_T_MIN_DEFAULT;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* per-region levels: a third clean, a third pure noise, a third in between (a sampler mid-run) */
static void make_inputs(float *x, float *t, int B, int d_in, int S, int patch) {
    ipr_rng r;
    ipr_rng_init(&r, 7, IPR_RNG_INIT_NOISE, 0, 0);
    for (size_t i = 0; i < (size_t)B * d_in * S * S; ++i) x[i] = (float)ipr_rng_normal(&r);
    int g = S / patch;
    for (int b = 0; b < B; ++b)
        for (int gy = 0; gy < g; ++gy)
            for (int gx = 0; gx < g; ++gx) {
                double u = ipr_rng_uniform(&r);
                float lv = u < 1.0 / 3 ? 0.0f : u < 2.0 / 3 ? 1.0f : (float)ipr_rng_uniform(&r);
                for (int y = gy * patch; y < (gy + 1) * patch; ++y)
                    for (int xx = gx * patch; xx < (gx + 1) * patch; ++xx) t[((size_t)b * S + y) * S + xx] = lv;
            }
}

/* a sampler's maps: each region clean (0), waiting (1) or on a ramp k / 10 (p = 10): at most 11 distinct levels */
static void make_sampler_levels(float *t, int B, int S, int patch) {
    ipr_rng r;
    ipr_rng_init(&r, 8, IPR_RNG_INIT_NOISE, 1, 0);
    const int g = S / patch;
    for (int b = 0; b < B; ++b)
        for (int gy = 0; gy < g; ++gy)
            for (int gx = 0; gx < g; ++gx) {
                const double u = ipr_rng_uniform(&r);
                const float lv = u < 1.0 / 3 ? 0.0f : u < 2.0 / 3 ? 1.0f : (float)(1 + ipr_rng_below(&r, 9)) / 10.0f;
                for (int y = gy * patch; y < (gy + 1) * patch; ++y)
                    for (int xx = gx * patch; xx < (gx + 1) * patch; ++xx) t[((size_t)b * S + y) * S + xx] = lv;
            }
}

typedef int (*run_fn)(void *ctx, int B);
typedef struct {
    ipr_unet *net;
    ipr_unet_cuda *gpu;
    const float *x, *t;
    float *y;
    float *dx, *dt, *dy;
    ipr_dit *dnet;
    ipr_dit_cuda *dgpu;
} run_ctx;

/* one forward of whichever net the context holds (GPU nets with resident inputs, then waited for) */
static int run_net(void *p, int B) {
    run_ctx *c = p;
    if (c->dgpu)
        return ipr_dit_cuda_forward_device(c->dgpu, c->dx, c->t, B, c->dy) == IPR_OK ? ipr_dit_cuda_synchronize(c->dgpu)
                                                                                    : IPR_ERR;
    if (c->gpu)
        return ipr_unet_cuda_forward_device(c->gpu, c->dx, c->dt, B, c->dy) == IPR_OK ? ipr_unet_cuda_synchronize(c->gpu)
                                                                                      : IPR_ERR;
    return c->dnet ? ipr_dit_forward(c->dnet, c->x, c->t, B, c->y) : ipr_unet_forward(c->net, c->x, c->t, B, c->y);
}

/* median seconds per call: 2 warm-ups, then until min_time has passed (at least 3 calls) */
static int time_median(run_fn fn, void *ctx, int B, double min_time, double *median, int *reps) {
    double samples[1000];
    for (int i = 0; i < 2; ++i)
        if (fn(ctx, B) != IPR_OK) return IPR_ERR;
    int n = 0;
    double start = ipr_clock_monotonic_s();
    while (n < 1000 && (n < 3 || ipr_clock_monotonic_s() - start < min_time)) {
        double t0 = ipr_clock_monotonic_s();
        if (fn(ctx, B) != IPR_OK) return IPR_ERR;
        samples[n++] = ipr_clock_monotonic_s() - t0;
    }
    qsort(samples, (size_t)n, sizeof(double), cmp_double);
    *median = samples[n / 2];
    *reps = n;
    return IPR_OK;
}

/* One backend's rows: time every batch (the CPU only up to cpu_max), print a table row and a JSON record each.
 * gflop: FLOPs a pass the TFLOP/s column counts; json_extra: more members of every record (", \"k\": v"). */
typedef struct {
    const int *batches;
    int nb;
    uint64_t cpu_max;
    double min_time, peak;
    FILE *js;
    int first; /* no JSON record written yet */
} bench_out;

/* secs (o->nb, optional) gets each batch's median seconds. */
static int bench_rows(bench_out *o, run_fn fn, void *ctx, const char *config, const char *backend, int is_cpu,
                      double gflop, const char *json_extra, double *secs) {
    for (int bi = 0; bi < o->nb; ++bi) {
        const int B = o->batches[bi];
        if (is_cpu && (uint64_t)B > o->cpu_max) continue;
        double sec;
        int reps;
        IPR_TRY(time_median(fn, ctx, B, o->min_time, &sec, &reps));
        if (secs) secs[bi] = sec;
        const double tf = gflop * B / sec / 1e3;
        printf("%-10s %5d %-26s %12.1f %10.3f %9.2f %9.2f %8.1f\n", config, B, backend, B / sec, 1e3 * sec, gflop, tf,
               o->peak > 0 ? 100.0 * tf / o->peak : 0.0);
        fflush(stdout);
        if (o->js)
            fprintf(o->js,
                    "%s {\"config\": \"%s\", \"batch\": %d, \"backend\": \"%s\", \"passes_per_s\": %.3f, "
                    "\"seconds\": %.6g, \"reps\": %d, \"gflop_per_pass\": %.4f%s}",
                    o->first ? "" : ",\n", config, B, backend, B / sec, sec, reps, gflop, json_extra);
        o->first = 0;
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* CUDA graph settings to time: on (1), off (0), or both (on first) */
typedef enum { GRAPHS_ON = 0, GRAPHS_OFF = 1, GRAPHS_BOTH = 2 } graphs_mode;

static int graphs_from_name(const char *s, graphs_mode *out) {
    static const char *const names[] = {"on", "off", "both"};
    for (int i = 0; i < 3; ++i)
        if (strcmp(s, names[i]) == 0) {
            *out = (graphs_mode)i;
            return IPR_OK;
        }
    ipr_error_set(__FILE__, __LINE__, "bad --graphs '%s' (expected on, off or both)", s);
    return IPR_ERR;
}

/* One GPU backend of a net: its rows with graphs on and/or off (set_graphs flips the net's setting), the ratio
 * on / off per batch when both. */
static int bench_gpu_rows(bench_out *o, graphs_mode gm, void (*set_graphs)(void *net, int on), void *gnet,
                          run_ctx *ctx, const char *config, const char *backend, double gflop, const char *json_extra) {
    double secs[2][16];
    for (int on = 1; on >= 0; --on) {
        if ((on && gm == GRAPHS_OFF) || (!on && gm == GRAPHS_ON)) continue;
        set_graphs(gnet, on);
        char name[32], extra[160];
        snprintf(name, sizeof name, "%s%s", backend, on ? "" : "-nograph");
        snprintf(extra, sizeof extra, "%s, \"graphs\": %s", json_extra, on ? "true" : "false");
        IPR_TRY(bench_rows(o, run_net, ctx, config, name, 0, gflop, extra, secs[on]));
    }
    if (gm == GRAPHS_BOTH) {
        printf("%-10s %-26s graphs on / off, passes/s:", config, backend);
        for (int bi = 0; bi < o->nb; ++bi) printf(" B=%d %.2fx", o->batches[bi], secs[0][bi] / secs[1][bi]);
        printf("\n");
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* --profile: where a U-Net forward's time goes on this backend, per batch (ipr_unet_cuda_set_profile: 3 forwards
 * without graphs, a CUDA event after every stage), as ms per pass by stage, largest first; JSON records of backend
 * "BACKEND+profile" with the ms per pass of each stage. */
static int profile_rows(bench_out *o, ipr_unet_cuda *gpu, run_ctx *ctx, const char *config, const char *backend) {
    for (int bi = 0; bi < o->nb; ++bi) {
        const int B = o->batches[bi];
        IPR_TRY(ipr_unet_cuda_set_profile(gpu, 1));
        for (int r = 0; r < 3; ++r) IPR_TRY(run_net(ctx, B));
        ipr_unet_profile pr;
        ipr_unet_cuda_profile(gpu, &pr);
        IPR_TRY(ipr_unet_cuda_set_profile(gpu, 0));
        IPR_CHECK(pr.images > 0, "profile of %s B=%d: no forward was profiled", config, B);
        double per[IPR_UNET_PROF_NSTAGES], tot = 0.0;
        int order[IPR_UNET_PROF_NSTAGES];
        for (int i = 0; i < IPR_UNET_PROF_NSTAGES; ++i) per[i] = pr.ms[i] / (double)pr.images, tot += per[i], order[i] = i;
        for (int i = 1; i < IPR_UNET_PROF_NSTAGES; ++i) /* largest first */
            for (int j = i; j > 0 && per[order[j]] > per[order[j - 1]]; --j) {
                const int tmp = order[j];
                order[j] = order[j - 1], order[j - 1] = tmp;
            }
        printf("profile %-10s B=%-3d %-20s %.3f ms/pass in stages:", config, B, backend, tot);
        for (int i = 0; i < IPR_UNET_PROF_NSTAGES; ++i)
            if (per[order[i]] > 0.0)
                printf(" %s %.3f (%.0f%%)", ipr_unet_prof_stage_name((ipr_unet_prof_stage)order[i]), per[order[i]],
                       tot > 0 ? 100.0 * per[order[i]] / tot : 0.0);
        printf("\n");
        fflush(stdout);
        if (o->js) {
            fprintf(o->js, "%s {\"config\": \"%s\", \"batch\": %d, \"backend\": \"%s+profile\", \"forwards\": %ld, "
                           "\"ms_per_pass\": %.6g, \"stages_ms_per_pass\": {",
                    o->first ? "" : ",\n", config, B, backend, pr.forwards, tot);
            for (int i = 0; i < IPR_UNET_PROF_NSTAGES; ++i)
                fprintf(o->js, "%s\"%s\": %.6g", i ? ", " : "", ipr_unet_prof_stage_name((ipr_unet_prof_stage)i), per[i]);
            fprintf(o->js, "}}");
            o->first = 0;
        }
    }
    return IPR_OK;
fail:
    return IPR_ERR;
}

static void unet_set_graphs(void *g, int on) { ipr_unet_cuda_set_graphs(g, on); }
static void dit_set_graphs(void *g, int on) { ipr_dit_cuda_set_graphs(g, on); }

/* --save-checkpoint CONFIG=PATH: the random-weight net whose rows CONFIG times (same architecture, same seed) through
 * the engine's saver, which writes PATH.tmp.PID, fsyncs and renames it (never a half-written PATH). Refused before
 * anything is built: an unknown CONFIG, an existing PATH (unless force), a directory PATH, a missing or read-only
 * directory (H5Fcreate's own report of those is a page of HDF5 stack). */
static int save_checkpoint(const char *spec, int force) {
    ipr_unet *net = NULL;
    ipr_dit *dnet = NULL;
    const char *eq = strchr(spec, '=');
    IPR_CHECK(eq && eq > spec && eq[1], "--save-checkpoint wants CONFIG=PATH.h5, got '%s'", spec);
    const size_t len = (size_t)(eq - spec);
    const char *path = eq + 1;
    const bench_cfg *uc = NULL;
    const bench_dit_cfg *dc = NULL;
    for (int i = 0; i < NUM_CFGS; ++i)
        if (strlen(k_cfgs[i].name) == len && !strncmp(k_cfgs[i].name, spec, len)) uc = &k_cfgs[i];
    for (int i = 0; i < NUM_DITS; ++i)
        if (strlen(k_dits[i].name) == len && !strncmp(k_dits[i].name, spec, len)) dc = &k_dits[i];
    IPR_CHECK(uc || dc, "unknown config '%.*s' in --save-checkpoint (" CFG_NAMES ")", (int)len, spec);
    struct stat st;
    if (stat(path, &st) == 0) {
        IPR_CHECK(!S_ISDIR(st.st_mode), "%s is a directory, not a checkpoint file", path);
        IPR_CHECK(force, "%s exists (use --force to overwrite)", path);
    }
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    IPR_CHECK(strlen(path) < sizeof dir, "path too long: %s", path);
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    IPR_CHECK(stat(dir, &st) == 0, "cannot write %s: no directory %s", path, dir);
    IPR_CHECK(S_ISDIR(st.st_mode), "cannot write %s: %s is not a directory", path, dir);
    IPR_CHECK(access(dir, W_OK) == 0, "cannot write %s: directory %s is not writable (%s)", path, dir, strerror(errno));
    long long params;
    const char *backbone;
    if (uc) {
        ipr_unet_config cfg;
        unet_config_of(uc, &cfg);
        IPR_TRY_PTR(net = ipr_unet_new(&cfg, 1, uc->size, uc->size, 0)); /* the weights do not depend on the batch */
        ipr_unet_init_random(net, BENCH_WEIGHT_SEED);
        IPR_TRY(ipr_unet_save(net, path));
        params = (long long)ipr_unet_param_count(net);
        backbone = "SRM U-Net";
    } else {
        ipr_dit_config cfg;
        dit_config_of(dc, &cfg);
        IPR_TRY_PTR(dnet = ipr_dit_new(&cfg, 1));
        ipr_dit_init_random(dnet, BENCH_WEIGHT_SEED);
        IPR_TRY(ipr_dit_save(dnet, path));
        params = (long long)ipr_dit_param_count(dnet);
        backbone = "region-token DiT";
    }
    printf("wrote %s: %.*s, %s, %lld parameters, RANDOM weights (seed %d; for timing only, not a trained model)\n",
           path, (int)len, spec, backbone, params, BENCH_WEIGHT_SEED);
    ipr_unet_free(net);
    ipr_dit_free(dnet);
    return IPR_OK;
fail:
    ipr_unet_free(net);
    ipr_dit_free(dnet);
    return IPR_ERR;
}

static void usage(FILE *to) {
    fprintf(to,
            "usage: ipr bench [options]\n\n"
            "Forward passes per second of the SRM U-Net and of the region-token DiT (random weights,\n"
            "per-region noise maps; the DiT's as a sampler makes them: clean, waiting or on a ramp).\n"
            "  --configs LIST     ep_4,cp_ffhq_8,ms1000_28 (default), tiny, and the DiTs dit_ms,dit_ep,\n"
            "                     dit_cp (d 384, depth 12, 6 heads; 81, 64, 256 tokens), dit_tiny\n"
            "  --batches LIST     batch sizes (default 1,16,64)\n"
            "  --backends LIST    cpu,cuda-fp32,cuda-tf32,cuda-bf16,cuda-bf16-implicit,cuda-bf16-cudnn (default:\n"
            "                     all available); U-Net cuda-bf16 is im2col + cuBLAS whatever IPR_UNET_CONV says,\n"
            "                     cuda-bf16-implicit the implicit-GEMM 3x3 convolutions, cuda-bf16-cudnn cuDNN's\n"
            "                     (builds with cuDNN only; the DiTs have neither row)\n"
            "  --cpu-max-batch N  largest batch timed on the CPU (default 1)\n"
            "  --graphs MODE      GPU forwards with CUDA graphs (on, the default), without (off: backends\n"
            "                     named cuda-PREC-nograph), or both, then the ratio on / off per batch\n"
            "  --min-time S       seconds of timed calls per measurement (default 1)\n"
            "  --output FILE      also write the results as JSON\n"
            "  --profile          after each GPU U-Net backend's rows, where a pass's time goes by stage (level\n"
            "                     embedding, GroupNorm, layout copies, 3x3 and 1x1 convolutions, epilogues,\n"
            "                     attention, resizes): CUDA events between stages of 3 forwards without graphs\n"
            "  --save-checkpoint CONFIG=PATH.h5\n"
            "                     write CONFIG's random-weight net (the one its rows time: same architecture,\n"
            "                     same seed) as a checkpoint that `ipr run`, `ipr sample` and `ipr forward`\n"
            "                     load, then exit without timing (the other options are not used); PATH is\n"
            "                     refused if it exists, unless --force\n"
            "  --force            with --save-checkpoint: overwrite PATH\n"
            "  -h, --help         this text\n");
}

static int in_list(const char *list, const char *item) {
    size_t n = strlen(item);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, item, n) == 0) return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

int ipr_cmd_bench(int argc, char **argv) {
    static const struct option longopts[] = {
        {"configs", required_argument, 0, 'c'}, {"batches", required_argument, 0, 'b'},
        {"backends", required_argument, 0, 'k'}, {"cpu-max-batch", required_argument, 0, 'm'},
        {"min-time", required_argument, 0, 't'}, {"output", required_argument, 0, 'o'},
        {"graphs", required_argument, 0, 'g'},   {"save-checkpoint", required_argument, 0, 's'},
        {"force", no_argument, 0, 'f'},          {"help", no_argument, 0, 'h'},
        {"profile", no_argument, 0, 'p'},
        {0, 0, 0, 0}};
    const char *configs = "ep_4,cp_ffhq_8,ms1000_28", *batches_s = "1,16,64", *backends = NULL, *output = NULL;
    const char *save = NULL;
    int force = 0, profile = 0;
    uint64_t cpu_max = 1;
    double min_time = 1.0;
    graphs_mode gm = GRAPHS_ON;
    FILE *js = NULL;
    ipr_unet *net = NULL;
    ipr_unet_cuda *gpu = NULL;
    ipr_dit *dnet = NULL;
    ipr_dit_cuda *dgpu = NULL;
    float *x = NULL, *t = NULL, *y = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': configs = optarg; break;
        case 'b': batches_s = optarg; break;
        case 'k': backends = optarg; break;
        case 'm': IPR_TRY(ipr_parse_u64(optarg, 4096, "--cpu-max-batch", &cpu_max)); break;
        case 't': IPR_TRY(ipr_parse_double(optarg, "--min-time", &min_time)); break;
        case 'o': output = optarg; break;
        case 'g': IPR_TRY(graphs_from_name(optarg, &gm)); break;
        case 's': save = optarg; break;
        case 'f': force = 1; break;
        case 'p': profile = 1; break;
        case 'h': usage(stdout); return IPR_EXIT_OK;
        case ':': IPR_FAIL("option %s needs a value", argv[optind - 1]);
        default: IPR_FAIL("unknown option %s (see `ipr bench --help`)", argv[optind - 1]);
        }
    }
    IPR_CHECK(optind == argc, "unexpected argument '%s'", optind < argc ? argv[optind] : "");
    IPR_CHECK(!force || save, "--force only applies to --save-checkpoint");
    if (save) {
        IPR_TRY(save_checkpoint(save, force));
        return IPR_EXIT_OK;
    }
    for (const char *p = configs; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int ok = 0;
        for (int i = 0; i < NUM_CFGS; ++i) ok |= strlen(k_cfgs[i].name) == len && !strncmp(k_cfgs[i].name, p, len);
        for (int i = 0; i < NUM_DITS; ++i) ok |= strlen(k_dits[i].name) == len && !strncmp(k_dits[i].name, p, len);
        IPR_CHECK(ok, "unknown config '%.*s' in --configs (" CFG_NAMES ")", (int)len, p);
        p = e ? e + 1 : NULL;
    }
    int batches[16], nb = 0, bmax = 1;
    for (const char *p = batches_s; p && *p && nb < 16;) {
        char *e;
        long v = strtol(p, &e, 10);
        IPR_CHECK(e != p && v >= 1 && v <= 4096 && (*e == ',' || *e == '\0'), "bad --batches '%s'", batches_s);
        batches[nb++] = (int)v;
        if (v > bmax) bmax = (int)v;
        p = *e ? e + 1 : NULL;
    }
    int ndev = 0;
    int have_cuda = ipr_cuda_available(&ndev);
    if (!backends)
        backends = !have_cuda                  ? "cpu"
                   : ipr_unet_conv_have_cudnn() ? "cpu,cuda-fp32,cuda-tf32,cuda-bf16,cuda-bf16-implicit,cuda-bf16-cudnn"
                                                : "cpu,cuda-fp32,cuda-tf32,cuda-bf16,cuda-bf16-implicit";
    IPR_CHECK(have_cuda || !strstr(backends, "cuda"), "--backends asks for cuda, but no CUDA device is available");
    IPR_CHECK(!in_list(backends, "cuda-bf16-cudnn") || ipr_unet_conv_have_cudnn(),
              "--backends asks for cuda-bf16-cudnn, but this ipr was built without cuDNN");
    double peak = 0.0;
    if (have_cuda) {
        IPR_TRY(ipr_cuda_gemm_peak_tflops(0, 8192, &peak));
        printf("measured dense BF16 GEMM rate (cuBLAS, 8192^3, random data): %.0f TFLOP/s\n", peak);
    }
    if (output) IPR_IO((js = fopen(output, "w")) != NULL, output);
    if (js) fprintf(js, "{\"bf16_gemm_tflops\": %.1f, \"results\": [\n", peak);
    bench_out bo = {batches, nb, cpu_max, min_time, peak, js, 1};
    printf("%-10s %5s %-26s %12s %10s %9s %9s %8s\n", "config", "batch", "backend", "passes/s", "ms/pass", "GFLOP/pass",
           "TFLOP/s", "%bf16pk");
    /* the U-Net's rows; the DiT's are the first four */
    static const char *const k_back[] = {"cpu", "cuda-fp32", "cuda-tf32", "cuda-bf16", "cuda-bf16-implicit",
                                         "cuda-bf16-cudnn"};
    static const ipr_precision k_back_prec[] = {IPR_PREC_FP32, IPR_PREC_FP32, IPR_PREC_TF32, IPR_PREC_BF16,
                                                IPR_PREC_BF16, IPR_PREC_BF16};
    static const ipr_unet_conv k_back_conv[] = {IPR_UNET_CONV_IM2COL, IPR_UNET_CONV_IM2COL, IPR_UNET_CONV_IM2COL,
                                                IPR_UNET_CONV_IM2COL, IPR_UNET_CONV_IMPLICIT, IPR_UNET_CONV_CUDNN};
    for (int ci = 0; ci < NUM_CFGS; ++ci) {
        const bench_cfg *bc = &k_cfgs[ci];
        if (!in_list(configs, bc->name)) continue;
        ipr_unet_config cfg;
        unet_config_of(bc, &cfg);
        IPR_TRY_PTR(net = ipr_unet_new(&cfg, bmax, bc->size, bc->size, 0));
        ipr_unet_init_random(net, BENCH_WEIGHT_SEED);
        double fl, emb;
        ipr_unet_flops(net, &fl, &emb);
        size_t px = (size_t)bc->size * bc->size;
        IPR_TRY_PTR(x = ipr_malloc((size_t)bmax * bc->d_in * px * sizeof(float), "bench x"));
        IPR_TRY_PTR(t = ipr_malloc((size_t)bmax * px * sizeof(float), "bench t"));
        IPR_TRY_PTR(y = ipr_malloc((size_t)bmax * bc->d_out * px * sizeof(float), "bench y"));
        make_inputs(x, t, bmax, bc->d_in, bc->size, bc->patch);
        printf("%s: %lld parameters, %.1f GFLOP/pass in convolutions and attention (+%.1f GFLOP the reference "
               "spends on the per-pixel embedding)\n",
               bc->name, (long long)ipr_unet_param_count(net), fl / 1e9, emb / 1e9);
        for (int k = 0; k < 6; ++k) {
            if (!in_list(backends, k_back[k])) continue;
            run_ctx ctx = {net, NULL, x, t, y, NULL, NULL, NULL, NULL, NULL};
            char extra[96];
            snprintf(extra, sizeof extra, ", \"reference_embedding_gflop\": %.3f", emb / 1e9);
            if (k == 0) {
                IPR_TRY(bench_rows(&bo, run_net, &ctx, bc->name, k_back[k], 1, fl / 1e9, extra, NULL));
                continue;
            }
            IPR_TRY_PTR(gpu = ipr_unet_cuda_new(net, 0, k_back_prec[k]));
            if (k_back_prec[k] == IPR_PREC_BF16) /* cuda-bf16 pins im2col whatever $IPR_UNET_CONV says */
                IPR_TRY(ipr_unet_cuda_set_conv(gpu, k_back_conv[k]));
            ctx.gpu = gpu;
            ipr_unet_cuda_buffers(gpu, &ctx.dx, &ctx.dt, &ctx.dy);
            IPR_TRY(ipr_unet_cuda_upload(gpu, ctx.dx, x, (size_t)bmax * bc->d_in * px));
            IPR_TRY(ipr_unet_cuda_upload(gpu, ctx.dt, t, (size_t)bmax * px));
            IPR_TRY(bench_gpu_rows(&bo, gm, unet_set_graphs, gpu, &ctx, bc->name, k_back[k], fl / 1e9, extra));
            if (profile) IPR_TRY(profile_rows(&bo, gpu, &ctx, bc->name, k_back[k]));
            ipr_unet_cuda_free(gpu);
            gpu = NULL;
        }
        free(x), free(t), free(y);
        x = t = y = NULL;
        ipr_unet_free(net);
        net = NULL;
    }
    for (int ci = 0; ci < NUM_DITS; ++ci) {
        const bench_dit_cfg *bc = &k_dits[ci];
        if (!in_list(configs, bc->name)) continue;
        ipr_dit_config cfg;
        dit_config_of(bc, &cfg);
        IPR_TRY_PTR(dnet = ipr_dit_new(&cfg, bmax));
        ipr_dit_init_random(dnet, BENCH_WEIGHT_SEED);
        int tokens = 0;
        ipr_dit_geometry(&cfg, NULL, NULL, &tokens, NULL);
        double fl_ref, fl_done;
        ipr_dit_flops(&cfg, 11, &fl_ref, &fl_done);
        size_t px = (size_t)bc->size * bc->size;
        IPR_TRY_PTR(x = ipr_malloc((size_t)bmax * bc->d_in * px * sizeof(float), "bench x"));
        IPR_TRY_PTR(t = ipr_malloc((size_t)bmax * px * sizeof(float), "bench t"));
        IPR_TRY_PTR(y = ipr_malloc((size_t)bmax * (2 * bc->d_in + 1) * px * sizeof(float), "bench y"));
        make_inputs(x, t, bmax, bc->d_in, bc->size, bc->patch);
        make_sampler_levels(t, bmax, bc->size, bc->patch);
        printf("%s: %lld parameters, %d tokens, %.2f GFLOP/pass as the reference formulation computes it, %.2f with "
               "the modulation once per distinct level (what the engine computes; <= 11 levels a batch)\n",
               bc->name, (long long)ipr_dit_param_count(dnet), tokens, fl_ref / 1e9, fl_done / 1e9);
        for (int k = 0; k < 4; ++k) {
            if (!in_list(backends, k_back[k])) continue;
            run_ctx ctx = {NULL, NULL, x, t, y, NULL, NULL, NULL, dnet, NULL};
            char extra[96];
            snprintf(extra, sizeof extra, ", \"reference_gflop_per_pass\": %.4f, \"tokens\": %d", fl_ref / 1e9, tokens);
            if (k == 0) {
                IPR_TRY(bench_rows(&bo, run_net, &ctx, bc->name, k_back[k], 1, fl_done / 1e9, extra, NULL));
                continue;
            }
            IPR_TRY_PTR(dgpu = ipr_dit_cuda_new(dnet, 0, (ipr_precision)(k - 1)));
            ctx.dgpu = dgpu;
            ipr_dit_cuda_buffers(dgpu, &ctx.dx, &ctx.dy);
            IPR_TRY(ipr_dit_cuda_upload(dgpu, ctx.dx, x, (size_t)bmax * bc->d_in * px));
            IPR_TRY(bench_gpu_rows(&bo, gm, dit_set_graphs, dgpu, &ctx, bc->name, k_back[k], fl_done / 1e9, extra));
            ipr_dit_cuda_free(dgpu);
            dgpu = NULL;
        }
        free(x), free(t), free(y);
        x = t = y = NULL;
        ipr_dit_free(dnet);
        dnet = NULL;
    }
    if (js) {
        fprintf(js, "\n]}\n");
        IPR_TRY(ipr_fclose(&js, output));
    }
    return IPR_EXIT_OK;
fail:
    if (js) fclose(js);
    ipr_dit_cuda_free(dgpu);
    ipr_dit_free(dnet);
    ipr_unet_cuda_free(gpu);
    ipr_unet_free(net);
    free(x), free(t), free(y);
    return ipr_cli_fail("bench");
}
