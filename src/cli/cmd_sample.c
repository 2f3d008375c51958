/* cmd_sample.c: `ipr sample`: SRM generation + IPR refinement of N benchmark instances on the CPU or one GPU,
 * with every per-iteration score written to an HDF5 file (atomically: tmp + fsync + rename). */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ipr/bench.h"
#include "ipr/clock.h"
#include "ipr/common.h"
#include "ipr/h5io.h"
#include "ipr/hash.h"
#include "ipr/instances.h"
#include "ipr/mnist.h"
#include "ipr/sampler.h"
#include "sampler/settings.h"

/* The sampler settings of one --help section, from their table (src/sampler/settings.c): the option and its
 * argument in 27 columns, the help, then the range and the default where the row asks for them. */
static void usage_settings(FILE *to, ipr_setting_group group) {
    ipr_sampler_config def;
    ipr_sampler_config_init(&def);
    for (int i = 0; i < IPR_SAMPLER_SETTINGS; ++i) {
        const ipr_sampler_setting *s = &ipr_sampler_settings[i];
        if (s->group != group) continue;
        char opt[64], value[64];
        snprintf(opt, sizeof opt, "--%s%s%s", s->option, s->metavar ? " " : "", s->metavar ? s->metavar : "");
        fprintf(to, "  %-27s", opt);
        for (const char *p = s->help; *p; ++p) {
            fputc(*p, to);
            if (*p == '\n') fprintf(to, "%29s", "");
        }
        const char *sep = *s->help ? " " : "";
        if (s->help_range) {
            fprintf(to, "%sin %s%g, %g%s", sep, s->lo_open ? "(" : "[", s->lo, s->hi, s->hi_open ? ")" : "]");
            sep = " ";
        }
        if (s->help_default) {
            ipr_sampler_setting_format(&def, s, value, sizeof value);
            fprintf(to, "%s(default %s%s)", sep, value, s->default_note ? s->default_note : "");
        }
        fputc('\n', to);
    }
}

static void usage(FILE *to) {
    fprintf(to,
            "usage: ipr sample --checkpoint CKPT.h5 --benchmark NAME --count N --seed S --output FILE.h5 [options]\n\n"
            "Generate N instances of a benchmark with the SRM sampler, refine each with K iterations of IPR, and\n"
            "write every iteration's score (validity, error, network passes, changed regions) to FILE.h5.\n"
            "Instance i is (data seed, split, start + i); all sampler noise is keyed by (seed, instance), so a\n"
            "result never depends on --batch. Defaults are the reference's MNIST Sudoku hard settings.\n\n"
            "required:\n"
            "  --checkpoint CKPT.h5       SRM U-Net checkpoint (its image size and channels must fit the benchmark)\n"
            "  --benchmark NAME           sudoku | even_pixels | counting_polygons\n"
            "  --count N                  instances (>= 1)\n"
            "  --seed S                   run seed (noise, subsets, orders, swaps)\n"
            "  --output FILE.h5           refused if it exists, unless --force\n"
            "instances:\n"
            "  --data-seed D              instance generator seed, as `ipr datagen --seed` (default: --seed)\n"
            "  --start I                  first instance index (default 0)\n"
            "  --split train|test         (default test)\n"
            "  --difficulty D             sudoku clues: easy | medium | hard | any (default hard)\n"
            "  --mnist-dir DIR            MNIST IDX files for sudoku (default $IPR_MNIST_DIR or datasets/mnist)\n"
            "  --instances-file FILE      instances from a file instead of the generator: Sudoku puzzles (text or\n"
            "                             CSV) or an `ipr datagen` file; --start/--count select rows (instance i =\n"
            "                             row i); not with --data-seed, --split or --difficulty\n"
            "  --instances-format F       auto (default) | text | csv | datagen\n"
            "  --correction               sudoku correction mode: solved grid with swaps, all cells refinable,\n"
            "                             no base generation (spec 3.2)\n"
            "  --correction-swaps N       swaps in correction mode (default 5)\n"
            "  --scorer FILE.h5           digit classifier (sudoku) or polygons classifier; without it sudoku and\n"
            "                             counting_polygons are not scored (valid 0, error NaN)\n");
    fprintf(to, "base generation (spec 2.6, 3.1):\n");
    usage_settings(to, IPR_SETTING_BASE);
    fprintf(to, "IPR (spec 3.2):\n");
    usage_settings(to, IPR_SETTING_IPR);
    fprintf(to, "device and output:\n"
                "  --device cpu|cuda          (default cpu)\n"
                "  --gpu N                    CUDA device index (default 0)\n"
                "  --precision fp32|tf32|bf16 GEMM precision on cuda (default fp32)\n"
                "  --batch B                  chains per forward pass (default 8)\n"
                "  --threads N                OpenBLAS threads on the CPU (default: OpenBLAS's own)\n");
    usage_settings(to, IPR_SETTING_DEVICE);
    usage_settings(to, IPR_SETTING_OUTPUT);
    fprintf(to,
            "  --force                    overwrite FILE.h5\n"
            "  --quiet                    no progress, settings or summary lines: only FILE.h5 (and errors)\n"
            "  -h, --help                 this text\n\n"
            "Layout: /instance (N) uint64; /valid (N, K+1) uint8; /error (N, K+1) float32; /nfe (N, K+1) uint32;\n"
            "/changed (N, K+1) uint16; /iterations_run (N) int32; /nfe_saved (N) uint32; /solution_match (N) uint8\n"
            "(0 unknown, 1 the valid final grid is the known solution, 2 another valid grid, 3 invalid); [/images (N, C, H, W)\n"
            "float32 in [-1, 1]]; /timing (wall-clock, differs between runs). Column k = after IPR iteration k\n"
            "(0 = the base sample). Root attributes hold every setting (see README, 'Sampling').\n");
}

typedef struct {
    const char *ckpt, *output, *scorer, *mnist_dir, *instances_file;
    ipr_task_config task;
    ipr_sampler_config sampler;
    ipr_denoiser_config den;
    uint64_t count, seed, data_seed, start;
    int have_bench, have_count, have_seed, have_data_seed, force, quiet;
} sample_opts;

/* Set one sampler field and check it at once, so an error names the option it came from. */
static int set_field(sample_opts *o, const char *opt, const char *key, const char *value) {
    if (ipr_sampler_config_set(&o->sampler, key, value) != IPR_OK ||
        ipr_sampler_config_validate(&o->sampler) != IPR_OK) {
        ipr_error_context("%s", opt);
        return IPR_ERR;
    }
    return IPR_OK;
}

static int parse(int argc, char **argv, sample_opts *o) {
    /* the sampler's settings are options O_SETTING + their row in ipr_sampler_settings */
    enum {
        O_CKPT = 256, O_BENCH, O_COUNT, O_SEED, O_OUT, O_DSEED, O_START, O_SPLIT, O_DIFF, O_MNIST, O_CORR, O_SWAPS,
        O_SCORER, O_DEV, O_GPU, O_PREC, O_BATCH, O_THREADS, O_FORCE, O_QUIET, O_IFILE, O_IFMT, O_SETTING = 512
    };
    static const struct option k_opts[] = {
        {"checkpoint", required_argument, 0, O_CKPT}, {"benchmark", required_argument, 0, O_BENCH},
        {"count", required_argument, 0, O_COUNT}, {"seed", required_argument, 0, O_SEED},
        {"output", required_argument, 0, O_OUT}, {"data-seed", required_argument, 0, O_DSEED},
        {"start", required_argument, 0, O_START}, {"split", required_argument, 0, O_SPLIT},
        {"difficulty", required_argument, 0, O_DIFF}, {"mnist-dir", required_argument, 0, O_MNIST},
        {"correction", no_argument, 0, O_CORR}, {"correction-swaps", required_argument, 0, O_SWAPS},
        {"scorer", required_argument, 0, O_SCORER}, {"device", required_argument, 0, O_DEV},
        {"gpu", required_argument, 0, O_GPU}, {"precision", required_argument, 0, O_PREC},
        {"batch", required_argument, 0, O_BATCH}, {"threads", required_argument, 0, O_THREADS},
        {"instances-file", required_argument, 0, O_IFILE}, {"instances-format", required_argument, 0, O_IFMT},
        {"force", no_argument, 0, O_FORCE}, {"quiet", no_argument, 0, O_QUIET}, {"help", no_argument, 0, 'h'}};
    enum { N_OPTS = sizeof k_opts / sizeof k_opts[0] };
    struct option longopts[N_OPTS + IPR_SAMPLER_SETTINGS + 1];
    for (int i = 0; i < N_OPTS; ++i) longopts[i] = k_opts[i];
    for (int i = 0; i < IPR_SAMPLER_SETTINGS; ++i) {
        const ipr_sampler_setting *st = &ipr_sampler_settings[i];
        longopts[N_OPTS + i] =
            (struct option){st->option, st->metavar ? required_argument : no_argument, 0, O_SETTING + i};
    }
    longopts[N_OPTS + IPR_SAMPLER_SETTINGS] = (struct option){0, 0, 0, 0};
    memset(o, 0, sizeof *o);
    ipr_task_config_init(&o->task);
    ipr_sampler_config_init(&o->sampler);
    ipr_denoiser_config_init(&o->den);
    o->den.max_batch = 8;
    int diff_set = 0, split_set = 0, format_set = 0;
    uint64_t v;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case O_CKPT: o->ckpt = optarg; break;
        case O_BENCH: IPR_TRY(ipr_bench_from_name(optarg, &o->task.bench)); o->have_bench = 1; break;
        case O_COUNT: IPR_TRY(ipr_parse_u64(optarg, 1u << 30, "--count", &o->count)); o->have_count = 1; break;
        case O_SEED: IPR_TRY(ipr_parse_u64(optarg, INT64_MAX, "--seed", &o->seed)); o->have_seed = 1; break;
        case O_OUT: o->output = optarg; break;
        case O_DSEED:
            IPR_TRY(ipr_parse_u64(optarg, INT64_MAX, "--data-seed", &o->data_seed));
            o->have_data_seed = 1;
            break;
        case O_START: IPR_TRY(ipr_parse_u64(optarg, 1ull << 47, "--start", &o->start)); break;
        case O_SPLIT: IPR_TRY(ipr_split_from_name(optarg, &o->task.split)); split_set = 1; break;
        case O_DIFF: IPR_TRY(ipr_sudoku_difficulty_from_name(optarg, &o->task.difficulty)); diff_set = 1; break;
        case O_MNIST: o->mnist_dir = optarg; break;
        case O_IFILE: o->instances_file = optarg; break;
        case O_IFMT: {
            ipr_instances_format fmt;
            IPR_TRY(ipr_instances_format_from_name(optarg, &fmt));
            o->task.instances_format = (int)fmt;
            format_set = 1;
            break;
        }
        case O_CORR: o->task.correction = 1; break;
        case O_SWAPS:
            IPR_TRY(ipr_parse_u64(optarg, 1000, "--correction-swaps", &v));
            o->task.correction_swaps = (int)v;
            break;
        case O_SCORER: o->scorer = optarg; break;
        case O_DEV:
            if (strcmp(optarg, "cpu") == 0) o->den.device = IPR_DEVICE_CPU;
            else if (strcmp(optarg, "cuda") == 0) o->den.device = IPR_DEVICE_CUDA;
            else IPR_FAIL("--device: unknown device '%s' (expected cpu or cuda)", optarg);
            break;
        case O_GPU: IPR_TRY(ipr_parse_u64(optarg, 63, "--gpu", &v)); o->den.gpu = (int)v; break;
        case O_PREC: IPR_TRY(ipr_precision_from_name(optarg, &o->den.precision)); break;
        case O_BATCH:
            IPR_TRY(ipr_parse_u64(optarg, 4096, "--batch", &v));
            IPR_CHECK(v >= 1, "--batch must be at least 1");
            o->den.max_batch = (int)v;
            break;
        case O_THREADS:
            IPR_TRY(ipr_parse_u64(optarg, 1024, "--threads", &v));
            o->den.cpu_threads = (int)v;
            break;
        case O_FORCE: o->force = 1; break;
        case O_QUIET: o->quiet = 1; break;
        case 'h': usage(stdout); exit(IPR_EXIT_OK);
        case ':': IPR_FAIL("option %s needs a value", argv[optind - 1]);
        default:
            if (c >= O_SETTING && c < O_SETTING + IPR_SAMPLER_SETTINGS) {
                const ipr_sampler_setting *st = &ipr_sampler_settings[c - O_SETTING];
                char opt[64];
                snprintf(opt, sizeof opt, "--%s", st->option);
                IPR_TRY(set_field(o, opt, st->field, st->metavar ? optarg : "1")); /* a flag sets 1 */
                break;
            }
            IPR_FAIL("unknown option %s (see `ipr sample --help`)", argv[optind - 1]);
        }
    }
    IPR_CHECK(optind == argc, "unexpected argument '%s'", optind < argc ? argv[optind] : "");
    IPR_CHECK(o->ckpt, "--checkpoint is required");
    IPR_CHECK(o->have_bench, "--benchmark is required (sudoku, even_pixels or counting_polygons)");
    IPR_CHECK(o->have_count, "--count is required");
    IPR_CHECK(o->count >= 1, "--count must be at least 1 (got 0)");
    IPR_CHECK(o->have_seed, "--seed is required");
    IPR_CHECK(o->output && *o->output, "--output is required");
    IPR_CHECK(o->start + o->count <= (1ull << 48), "instance indices must stay below 2^48");
    IPR_CHECK(!diff_set || o->task.bench == IPR_BENCH_SUDOKU, "--difficulty applies to sudoku only");
    IPR_CHECK(!o->task.correction || o->task.bench == IPR_BENCH_SUDOKU, "--correction applies to sudoku only");
    IPR_CHECK(!o->scorer || o->task.bench != IPR_BENCH_EVEN_PIXELS,
              "--scorer: even_pixels is scored by its rule and takes no classifier");
    IPR_CHECK(o->sampler.order != IPR_ORDER_GRAPH || o->task.bench == IPR_BENCH_SUDOKU,
              "--order graph is the Sudoku dependency-graph order; it applies to sudoku only");
    IPR_CHECK(o->den.device == IPR_DEVICE_CUDA || o->den.precision == IPR_PREC_FP32,
              "--precision %s needs --device cuda (the CPU path is float32)", ipr_precision_name(o->den.precision));
    IPR_CHECK(o->instances_file || !format_set, "--instances-format describes --instances-file, which is not given");
    IPR_CHECK(!o->instances_file || !(o->have_data_seed || diff_set || split_set),
              "--data-seed, --split and --difficulty belong to the generator; --instances-file replaces it");
    if (o->instances_file) { /* rows [start, start + count) of the file; checked whole when the task opens it */
        o->task.instances_file = o->instances_file;
        o->task.instances_start = o->start;
        o->task.instances_count = o->count;
    }
    if (!o->have_data_seed) o->data_seed = o->seed;
    o->task.data_seed = o->data_seed;
    o->task.scorer_path = o->scorer;
    o->task.mnist_dir = o->mnist_dir;
    IPR_TRY(ipr_sampler_config_validate(&o->sampler));
    struct stat st;
    IPR_CHECK(o->force || stat(o->output, &st) != 0, "%s exists (use --force to overwrite)", o->output);
    return IPR_OK;
fail:
    return IPR_ERR;
}

typedef struct {
    double t0, last;
    int quiet;
} progress_ctx;

static void on_progress(int done, int total, void *vctx) {
    progress_ctx *p = vctx;
    const double t = ipr_clock_monotonic_s();
    if (p->quiet || (done < total && t - p->last < 5.0)) return;
    p->last = t;
    ipr_log(IPR_LOG_INFO, "sample: %d/%d chains done, %.2f chains/s", done, total, done / (t - p->t0));
}

static int write_attrs(hid_t f, const sample_opts *o, const char *ckpt_sha, const char *scorer_sha,
                       const char *device, const ipr_mnist_pool *pool, const ipr_task *task) {
    const ipr_sampler_config *s = &o->sampler;
    IPR_TRY(ipr_h5_attr_str(f, "format", "ipr-sample"));
    IPR_TRY(ipr_h5_attr_i64(f, "format_version", 1));
    IPR_TRY(ipr_h5_attr_str(f, "producer", "ipr " IPR_VERSION " (git " IPR_GIT_SHA ")"));
    IPR_TRY(ipr_h5_attr_str(f, "benchmark", ipr_bench_name(o->task.bench)));
    if (o->instances_file) { /* the instances, by content: instance i = row i of the file */
        IPR_TRY(ipr_h5_attr_str(f, "instances_file", o->instances_file));
        IPR_TRY(ipr_h5_attr_str(f, "instances_format", ipr_task_instances_format(task)));
        IPR_TRY(ipr_h5_attr_str(f, "instances_file_sha256", ipr_task_instances_sha256(task)));
    } else {
        IPR_TRY(ipr_h5_attr_str(f, "split", ipr_split_name(o->task.split)));
        if (o->task.bench == IPR_BENCH_SUDOKU)
            IPR_TRY(ipr_h5_attr_str(f, "difficulty", ipr_sudoku_difficulty_name(o->task.difficulty)));
    }
    if (pool) { /* which digit images the instances show, by content (mnist.h) */
        IPR_TRY(ipr_h5_attr_str(f, "mnist_pool", pool->name));
        IPR_TRY(ipr_h5_attr_str(f, "mnist_pool_sha256", pool->sha256));
    }
    IPR_TRY(ipr_h5_attr_i64(f, "correction", o->task.correction));
    IPR_TRY(ipr_h5_attr_i64(f, "correction_swaps", o->task.correction ? o->task.correction_swaps : 0));
    IPR_TRY(ipr_h5_attr_i64(f, "seed", (int64_t)o->seed));
    IPR_TRY(ipr_h5_attr_i64(f, "data_seed", (int64_t)o->data_seed));
    IPR_TRY(ipr_h5_attr_i64(f, "start", (int64_t)o->start));
    IPR_TRY(ipr_h5_attr_i64(f, "count", (int64_t)o->count));
    IPR_TRY(ipr_h5_attr_str(f, "checkpoint", o->ckpt));
    IPR_TRY(ipr_h5_attr_str(f, "checkpoint_sha256", ckpt_sha));
    IPR_TRY(ipr_h5_attr_str(f, "scorer", o->scorer ? o->scorer : (o->task.bench == IPR_BENCH_EVEN_PIXELS ? "rule" : "none")));
    IPR_TRY(ipr_h5_attr_str(f, "scorer_sha256", scorer_sha));
    IPR_TRY(ipr_h5_attr_str(f, "device", device));
    IPR_TRY(ipr_h5_attr_str(f, "precision", ipr_precision_name(o->den.precision)));
    IPR_TRY(ipr_h5_attr_i64(f, "batch", o->den.max_batch));
    IPR_TRY(ipr_h5_attr_str(f, "order", ipr_order_name(s->order)));
    IPR_TRY(ipr_h5_attr_i64(f, "steps_per_region", s->steps_per_region));
    IPR_TRY(ipr_h5_attr_f64(f, "overlap", s->overlap));
    IPR_TRY(ipr_h5_attr_i64(f, "max_steps", s->max_steps));
    IPR_TRY(ipr_h5_attr_f64(f, "alpha", s->alpha));
    IPR_TRY(ipr_h5_attr_f64(f, "temperature", s->temperature));
    IPR_TRY(ipr_h5_attr_i64(f, "skip_idle", s->skip_idle));
    IPR_TRY(ipr_h5_attr_i64(f, "ipr_iterations", s->ipr_iterations));
    IPR_TRY(ipr_h5_attr_f64(f, "ipr_ratio", s->ipr_ratio));
    IPR_TRY(ipr_h5_attr_i64(f, "ipr_steps_per_region", s->ipr_steps_per_region));
    IPR_TRY(ipr_h5_attr_f64(f, "ipr_overlap", s->ipr_overlap));
    IPR_TRY(ipr_h5_attr_str(f, "selection", ipr_selection_name(s->selection)));
    IPR_TRY(ipr_h5_attr_f64(f, "selection_mix", s->selection_mix));
    IPR_TRY(ipr_h5_attr_i64(f, "early_stop", s->early_stop));
    IPR_TRY(ipr_h5_attr_str(f, "rng",
                            "philox4x32-10; key = seed; counter = (block, step, instance, purpose): init noise, "
                            "step noise (iteration << 20 | pass), IPR subset/noise (iteration)"));
    return IPR_OK;
fail:
    return IPR_ERR;
}

int ipr_cmd_sample(int argc, char **argv) {
    sample_opts o;
    ipr_denoiser *den = NULL;
    ipr_task *task = NULL;
    ipr_runner *run = NULL;
    ipr_chain_result *res = NULL;
    uint64_t *inst = NULL;
    void *rows = NULL;
    hid_t f = H5I_INVALID_HID, g = H5I_INVALID_HID;
    char tmp[4096] = "";
    int n = 0;

    IPR_TRY(parse(argc, argv, &o));
    n = (int)o.count;
    const int K = o.sampler.ipr_iterations;
    if (!o.scorer && o.task.bench != IPR_BENCH_EVEN_PIXELS)
        ipr_log(IPR_LOG_WARN, "sample: no --scorer given: %s results will have valid 0 and error NaN",
                ipr_bench_name(o.task.bench));

    IPR_TRY_PTR(task = ipr_task_new(&o.task));
    {
        /* check the architecture before loading (and uploading) the weights */
        ipr_model_info uc;
        IPR_TRY(ipr_model_info_read(o.ckpt, &uc));
        if (ipr_task_check_model(task, &uc) != IPR_OK) {
            ipr_error_context("%s with --benchmark %s", o.ckpt, ipr_bench_name(o.task.bench));
            goto fail;
        }
    }
    IPR_TRY_PTR(den = ipr_denoiser_open(o.ckpt, &o.den));
    if (!(run = ipr_runner_new(den, task, &o.sampler))) {
        ipr_error_context("%s with --benchmark %s", o.ckpt, ipr_bench_name(o.task.bench));
        goto fail;
    }
    int C, H, W, P, R;
    ipr_task_shape(task, &C, &H, &W, &P, &R);
    if (!o.quiet) {
        ipr_runner_stats st0;
        ipr_runner_get_stats(run, &st0);
        ipr_log(IPR_LOG_INFO, "sample: host arena %.1f MiB, %d host threads", st0.arena_bytes / 1048576.0,
                st0.host_threads);
    }
    const size_t img = (size_t)C * H * W;
    res = ipr_calloc((size_t)n, sizeof *res, "results");
    inst = ipr_malloc(sizeof(uint64_t) * (size_t)n, "instances");
    if (!res || !inst) goto fail;
    for (int i = 0; i < n; ++i) {
        inst[i] = o.start + (uint64_t)i;
        IPR_TRY(ipr_chain_result_alloc(&res[i], K, o.sampler.keep_images ? img : 0));
    }
    if (!o.quiet)
        ipr_log(IPR_LOG_INFO,
                "sample: %d %s chains on %s, batch %d: order %s, %d steps/region, overlap %g, alpha %g; K = %d, "
                "ratio %g, %d steps/region, overlap %g, selection %s",
                n, ipr_bench_name(o.task.bench), ipr_denoiser_device_name(den), o.den.max_batch,
                ipr_order_name(o.sampler.order), o.sampler.steps_per_region, o.sampler.overlap, o.sampler.alpha, K,
                o.sampler.ipr_ratio, o.sampler.ipr_steps_per_region, o.sampler.ipr_overlap,
                ipr_selection_name(o.sampler.selection));
    progress_ctx pc = {ipr_clock_monotonic_s(), ipr_clock_monotonic_s(), o.quiet};
    IPR_TRY(ipr_runner_run(run, o.seed, inst, n, res, on_progress, &pc));
    const double wall = ipr_clock_monotonic_s() - pc.t0;
    ipr_runner_stats st;
    ipr_runner_get_stats(run, &st);

    /* per-phase summary: instances/s and mean scores, the numbers users ask for first */
    if (!o.quiet) {
        printf("%-8s %12s %12s %11s %7s %11s\n", "phase", "generations", "instances/s", "passes/gen", "valid",
               "mean error");
        for (int k = 0; k <= K; ++k) {
            double valid = 0.0, err = 0.0;
            int nerr = 0;
            for (int i = 0; i < n; ++i) {
                valid += res[i].valid[k];
                if (isfinite(res[i].error[k])) err += res[i].error[k], ++nerr;
            }
            char label[32];
            snprintf(label, sizeof label, k == 0 ? "base" : "ipr %d", k);
            const double ips = st.seconds[k] > 0.0 ? (double)st.generations[k] / st.seconds[k] : 0.0;
            const double ppg = st.generations[k] ? (double)st.passes[k] / (double)st.generations[k] : 0.0;
            if (nerr)
                printf("%-8s %12llu %12.3f %11.1f %7.3f %11.3f\n", label, (unsigned long long)st.generations[k], ips,
                       ppg, valid / n, err / nerr);
            else
                printf("%-8s %12llu %12.3f %11.1f %7.3f %11s\n", label, (unsigned long long)st.generations[k], ips,
                       ppg, valid / n, "-");
        }
        printf("%d chains in %.2f s (%.3f chains/s); forward %.2f s, host %.2f s (scoring %.2f s), mean batch %.1f\n",
               n, wall, n / wall, st.forward_s, st.host_s, st.score_s,
               st.forwards ? (double)st.images / (double)st.forwards : 0.0);
    }

    /* the file: tmp + fsync + rename, so a failed run leaves nothing */
    char ckpt_sha[IPR_SHA256_HEX], scorer_sha[IPR_SHA256_HEX] = "";
    IPR_TRY(ipr_sha256_file(o.ckpt, ckpt_sha));
    if (o.scorer) IPR_TRY(ipr_sha256_file(o.scorer, scorer_sha));
    IPR_TRY(ipr_tmp_path(tmp, sizeof tmp, o.output));
    IPR_TRY_ID(f = ipr_h5_create(tmp));
    IPR_TRY(write_attrs(f, &o, ckpt_sha, scorer_sha, ipr_denoiser_device_name(den), ipr_task_mnist_pool(task), task));
    const hsize_t N = (hsize_t)n, K1 = (hsize_t)K + 1;
    const hsize_t d1[1] = {N}, d2[2] = {N, K1};
    IPR_TRY(ipr_h5_write(f, "instance", H5T_NATIVE_UINT64, H5T_STD_U64LE, 1, d1, inst));
    /* (N, K + 1) tables gathered row by row into one buffer */
    rows = ipr_malloc(((size_t)N + 1) * K1 * sizeof(double), "rows");
    if (!rows) goto fail;
#define TABLE(name, field, ctype, mem, file)                                                   \
    do {                                                                                       \
        ctype *t_ = rows;                                                                      \
        for (int i = 0; i < n; ++i) memcpy(t_ + (size_t)i * K1, res[i].field, sizeof(ctype) * K1); \
        IPR_TRY(ipr_h5_write(f, name, mem, file, 2, d2, t_));                                  \
    } while (0)
    TABLE("valid", valid, uint8_t, H5T_NATIVE_UINT8, H5T_STD_U8LE);
    TABLE("error", error, float, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE);
    TABLE("nfe", nfe, uint32_t, H5T_NATIVE_UINT32, H5T_STD_U32LE);
    TABLE("changed", changed, uint16_t, H5T_NATIVE_UINT16, H5T_STD_U16LE);
#undef TABLE
    {
        int32_t *it = rows;
        for (int i = 0; i < n; ++i) it[i] = res[i].iterations_run;
        IPR_TRY(ipr_h5_write(f, "iterations_run", H5T_NATIVE_INT32, H5T_STD_I32LE, 1, d1, it));
        uint32_t *sv = rows;
        for (int i = 0; i < n; ++i) sv[i] = res[i].nfe_saved;
        IPR_TRY(ipr_h5_write(f, "nfe_saved", H5T_NATIVE_UINT32, H5T_STD_U32LE, 1, d1, sv));
        uint8_t *sm = rows;
        for (int i = 0; i < n; ++i) sm[i] = res[i].solution_match;
        IPR_TRY(ipr_h5_write(f, "solution_match", H5T_NATIVE_UINT8, H5T_STD_U8LE, 1, d1, sm));
    }
    if (o.sampler.keep_images) {
        const hsize_t di[4] = {N, (hsize_t)C, (hsize_t)H, (hsize_t)W};
        hid_t ds;
        IPR_TRY_ID(ds = ipr_h5_create_rows(f, "images", H5T_IEEE_F32LE, 4, di));
        for (int i = 0; i < n; ++i)
            if (ipr_h5_write_rows(ds, H5T_NATIVE_FLOAT, (hsize_t)i, 1, res[i].image) != IPR_OK) {
                H5Dclose(ds);
                goto fail;
            }
        IPR_H5(H5Dclose(ds));
    }
    {
        /* wall-clock numbers: the only content that differs between two runs of the same arguments */
        IPR_TRY_ID(g = ipr_h5_group(f, "timing"));
        double *ips = rows;
        for (hsize_t k = 0; k < K1; ++k) ips[k] = st.seconds[k] > 0.0 ? (double)st.generations[k] / st.seconds[k] : 0.0;
        const hsize_t dk[1] = {K1};
        IPR_TRY(ipr_h5_write(g, "instances_per_s", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dk, ips));
        IPR_TRY(ipr_h5_write(g, "seconds", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, dk, st.seconds));
        IPR_TRY(ipr_h5_write(g, "generations", H5T_NATIVE_UINT64, H5T_STD_U64LE, 1, dk, st.generations));
        IPR_TRY(ipr_h5_write(g, "passes", H5T_NATIVE_UINT64, H5T_STD_U64LE, 1, dk, st.passes));
        IPR_TRY(ipr_h5_attr_f64(g, "wall_s", wall));
        IPR_TRY(ipr_h5_attr_f64(g, "forward_s", st.forward_s));
        IPR_TRY(ipr_h5_attr_f64(g, "host_s", st.host_s));
        IPR_TRY(ipr_h5_attr_f64(g, "score_s", st.score_s));
        IPR_TRY(ipr_h5_attr_f64(g, "mean_batch", st.forwards ? (double)st.images / (double)st.forwards : 0.0));
        IPR_H5(H5Gclose(g));
        g = H5I_INVALID_HID;
    }
    IPR_TRY(ipr_h5_fclose(&f));
    IPR_TRY(ipr_commit_tmp(tmp, o.output));
    if (!o.quiet) printf("wrote %d chains x %d iterations to %s\n", n, K, o.output);
    for (int i = 0; i < n; ++i) ipr_chain_result_free(&res[i]);
    free(res), free(inst), free(rows);
    ipr_runner_free(run);
    ipr_denoiser_free(den);
    ipr_task_free(task);
    return IPR_EXIT_OK;
fail:
    if (g >= 0) H5Gclose(g);
    if (f >= 0) H5Fclose(f);
    if (tmp[0]) unlink(tmp); /* nothing half-written is left behind */
    if (res)
        for (int i = 0; i < n; ++i) ipr_chain_result_free(&res[i]);
    free(res), free(inst), free(rows);
    ipr_runner_free(run);
    ipr_denoiser_free(den);
    ipr_task_free(task);
    return ipr_cli_fail("sample");
}
