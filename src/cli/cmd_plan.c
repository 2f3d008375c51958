/* cmd_plan.c: `ipr plan` (the work a config describes: units, network passes, estimated time; a dry run
 * that initialises neither MPI nor CUDA) and `ipr show-config` (the resolved canonical config and its hash). */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ipr/common.h"
#include "pipeline/config.h"
#include "pipeline/plan.h"

typedef struct {
    const char *config;
    char *sets[PL_MAX_SETS];
    int n_sets;
    int64_t limit;
    int ranks;
    int shard, nshards;
    int json, sources;
} plan_opts;

static void usage(FILE *to, const char *cmd) {
    if (strcmp(cmd, "plan") == 0)
        fprintf(to,
                "usage: ipr plan CONFIG.yaml [--set KEY=VALUE]... [--limit N] [--ranks N] [--shard I/N]\n\n"
                "Print the work the config describes without running it (no MPI, no CUDA): the grid, the work units,\n"
                "network passes (one image through the net = 1 pass) and the estimated time on N ranks at\n"
                "estimate.passes_per_s (default: the reference H200 rate for CUDA runs). With --shard .../N, the\n"
                "static shard map; with --shard I/N, only shard I's units.\n");
    else
        fprintf(to,
                "usage: ipr show-config CONFIG.yaml [--set KEY=VALUE]... [--limit N] [--sources]\n\n"
                "Print the resolved config as canonical JSON (sorted keys, the bytes whose SHA-256 names the run),\n"
                "then the hash; --sources prints where every key's value came from instead.\n");
}

static int parse(int argc, char **argv, plan_opts *o, int *exit_now) {
    static const struct option longopts[] = {{"set", required_argument, 0, 's'},  {"limit", required_argument, 0, 'l'},
                                             {"ranks", required_argument, 0, 'r'}, {"shard", required_argument, 0, 'S'},
                                             {"sources", no_argument, 0, 'u'},     {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->ranks = 1;
    *exit_now = 0;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            IPR_CHECK(o->n_sets < PL_MAX_SETS, "too many --set options");
            o->sets[o->n_sets++] = optarg;
            break;
        case 'l': {
            uint64_t v;
            IPR_TRY(ipr_parse_u64(optarg, 1000000000, "--limit", &v));
            IPR_CHECK(v >= 1, "--limit must be at least 1");
            o->limit = (int64_t)v;
            break;
        }
        case 'r': {
            uint64_t v;
            IPR_TRY(ipr_parse_u64(optarg, 1000000, "--ranks", &v));
            IPR_CHECK(v >= 1, "--ranks must be at least 1");
            o->ranks = (int)v;
            break;
        }
        case 'S': IPR_TRY(pl_parse_shard(optarg, &o->shard, &o->nshards)); break;
        case 'u': o->sources = 1; break;
        case 'h': usage(stdout, argv[0]); *exit_now = 1; return IPR_OK;
        case ':': IPR_FAIL("option %s needs a value", argv[optind - 1]);
        default: IPR_FAIL("unknown option %s", argv[optind - 1]);
        }
    }
    IPR_CHECK(optind == argc - 1, "expected one CONFIG.yaml");
    o->config = argv[optind];
    return IPR_OK;
fail:
    return IPR_ERR;
}

static void thousands(double v, char *out, size_t cap) {
    char raw[64];
    snprintf(raw, sizeof raw, "%.0f", v);
    size_t n = strlen(raw), j = 0;
    for (size_t i = 0; i < n && j + 2 < cap; ++i) {
        if (i > 0 && raw[i - 1] != '-' && (n - i) % 3 == 0) out[j++] = ',';
        out[j++] = raw[i];
    }
    out[j] = '\0';
}

static void duration(double s, char *out, size_t cap) {
    if (s < 120)
        snprintf(out, cap, "%.0f s", s);
    else if (s < 7200)
        snprintf(out, cap, "%.1f min", s / 60);
    else
        snprintf(out, cap, "%.1f h", s / 3600);
}

int ipr_cmd_plan(int argc, char **argv) {
    plan_opts o;
    int exit_now = 0;
    pl_config *cfg = NULL;
    pl_plan plan;
    int have_plan = 0;
    int *shard_of = NULL;
    if (parse(argc, argv, &o, &exit_now) != IPR_OK) return ipr_cli_usage_error(argv[0]);
    if (exit_now) return IPR_EXIT_OK;
    IPR_TRY_PTR(cfg = ipr_calloc(1, sizeof *cfg, "config"));
    IPR_TRY(pl_config_load(o.config, NULL, 0, o.sets, o.n_sets, o.limit, cfg));
    if (strcmp(argv[0], "show-config") == 0) {
        fputs(o.sources ? cfg->sources_json : cfg->resolved_json, stdout);
        if (!o.sources) printf("config_sha256 %s\n", cfg->sha256);
        pl_config_free(cfg);
        free(cfg);
        return IPR_EXIT_OK;
    }
    IPR_TRY(pl_config_check_files(cfg));
    IPR_TRY(pl_plan_build(cfg, &plan));
    have_plan = 1;
    char a[64], b[64];
    const int K = cfg->sampler.ipr_iterations;
    printf("config %s (config_sha256 %s)%s\n", cfg->file, cfg->sha256, cfg->limited ? "  LIMITED (--limit)" : "");
    if (cfg->has_instances_file)
        printf("benchmark %s, instances: rows %llu..%llu of %s (%s, %llu rows, sha256 %.12s...%s), %s\n",
               ipr_bench_name(cfg->bench), (unsigned long long)cfg->instance_start,
               (unsigned long long)(cfg->instance_start + (uint64_t)cfg->instance_count - 1), cfg->instances_file,
               ipr_instances_format_name(cfg->instances_format), (unsigned long long)cfg->instances_rows,
               cfg->instances_sha256, cfg->bench == IPR_BENCH_SUDOKU ? "" : "; unconditional: the rows only key the chains",
               cfg->mode == PL_MODE_CORRECTION ? "correction mode" : "generation");
    else
        printf("benchmark %s, split %s%s%s, instances %llu..%llu, %s\n", ipr_bench_name(cfg->bench), ipr_split_name(cfg->split),
               cfg->bench == IPR_BENCH_SUDOKU ? ", difficulty " : "",
               cfg->bench == IPR_BENCH_SUDOKU ? ipr_sudoku_difficulty_name(cfg->difficulty) : "",
               (unsigned long long)cfg->instance_start,
               (unsigned long long)(cfg->instance_start + (uint64_t)cfg->instance_count - 1),
               cfg->mode == PL_MODE_CORRECTION ? "correction mode" : "generation");
    if (cfg->has_instances_file && cfg->bench == IPR_BENCH_SUDOKU)
        printf("puzzles: %.1f clues on average, %llu of %llu with a solution\n", cfg->instances_mean_given,
               (unsigned long long)cfg->instances_solved, (unsigned long long)cfg->instance_count);
    printf("grid: %d model(s) x %d selection(s) x %d fraction(s) x %d seed(s) x %lld block(s) of <= %d instances"
           " = %d work units, %lld chains of K = %d iterations\n",
           cfg->n_models, cfg->n_selections, cfg->n_fractions, cfg->n_seeds,
           (long long)((cfg->instance_count + cfg->per_unit - 1) / cfg->per_unit), cfg->per_unit, plan.n_units,
           (long long)cfg->instance_count * cfg->n_models * cfg->n_selections * cfg->n_fractions * cfg->n_seeds, K);
    for (int m = 0; m < cfg->n_models; ++m) {
        printf("model %s: %d regions (about %.1f to generate); passes per chain: base %.0f", cfg->model_name[m],
               plan.regions[m], plan.refinable[m], plan.base_nfe[m]);
        for (int f = 0; f < cfg->n_fractions; ++f)
            printf("%s f=%g: %.0f/iteration (%.0f at K)", f ? "," : ";", cfg->fractions[f], plan.iter_nfe[m][f],
                   plan.base_nfe[m] + K * plan.iter_nfe[m][f]);
        printf("\n");
    }
    thousands(plan.nfe_total, a, sizeof a);
    printf("network passes (images through the net): %s\n", a);
    const int shared = pl_plan_shared_variants(cfg);
    if (shared > 1) {
        double saved = 0.0;
        for (int m = 0; m < cfg->n_models; ++m)
            saved += plan.base_nfe[m] * (shared - 1) * (double)cfg->instance_count * cfg->n_seeds;
        thousands(saved, a, sizeof a);
        printf("base samples: one per (model, seed, instance), shared by the %d selections x fractions (%s passes "
               "fewer than generating each)\n",
               shared, a);
    }
    int dit = 0;
    for (int m = 0; m < cfg->n_models; ++m) dit |= plan.backbone[m] == IPR_BACKBONE_DIT;
    double rate = cfg->has_passes_per_s ? cfg->passes_per_s : pl_reference_rate(cfg);
    if (!cfg->has_passes_per_s && dit && rate > 0) {
        /* the reference rates are the full-size U-Net's, 100x slower than a region-token DiT's network; a DiT
         * run's end-to-end rate depends on the sampler's host work as much as on the network */
        printf("estimated time: unknown for a region-token DiT (the reference rates are the U-Net's): set "
               "estimate.passes_per_s (`ipr bench --configs dit_ms` measures the network alone)\n");
    } else if (rate > 0) {
        duration(plan.nfe_total / (rate * o.ranks), b, sizeof b);
        printf("estimated time on %d rank(s) at %.0f passes/s each (%s): %s\n", o.ranks, rate,
               cfg->has_passes_per_s ? "estimate.passes_per_s"
               : cfg->precision == IPR_PREC_FP32
                   ? "reference H200 FP32 rate of the full-size model, reference-throughput.md"
                   : "reference H200 BF16 rate of the full-size model, reference-throughput.md",
               b);
    } else {
        printf("estimated time: unknown for the CPU (set estimate.passes_per_s; `ipr bench` measures it)\n");
    }
    printf("batches: up to %d unit(s) per request (device.batch %d, instances.per_unit %d)\n", pl_plan_chunk_units(cfg),
           cfg->batch, cfg->per_unit);
    if (o.nshards > 0) {
        IPR_TRY_PTR(shard_of = ipr_calloc((size_t)plan.n_units, sizeof(int), "shard map"));
        pl_plan_shards(&plan, o.nshards, shard_of);
        printf("shards (static LPT split of %d):\n", o.nshards);
        for (int s = 0; s < o.nshards; ++s) {
            int n = 0;
            double nfe = 0;
            for (int u = 0; u < plan.n_units; ++u)
                if (shard_of[u] == s) {
                    n++;
                    nfe += plan.units[u].nfe;
                }
            thousands(nfe, a, sizeof a);
            printf("  shard %d/%d: %d units, %s passes%s\n", s, o.nshards, n, a, s == o.shard ? "  <- --shard" : "");
        }
    }
    printf("most expensive units first (hand-out order):\n");
    for (int j = 0; j < plan.n_units && j < 5; ++j) {
        const pl_unit *u = &plan.units[plan.handout[j]];
        thousands(u->nfe, a, sizeof a);
        printf("  %016llx model %s, %s, fraction %g, seed %llu, instances %llu..%llu: %s passes\n",
               (unsigned long long)u->id, cfg->model_name[u->model], ipr_selection_name(cfg->selections[u->selection]),
               cfg->fractions[u->fraction], (unsigned long long)u->seed, (unsigned long long)u->first,
               (unsigned long long)(u->first + u->count - 1), a);
    }
    free(shard_of);
    pl_plan_free(&plan);
    pl_config_free(cfg);
    free(cfg);
    return IPR_EXIT_OK;
fail:
    free(shard_of);
    if (have_plan) pl_plan_free(&plan);
    if (cfg) pl_config_free(cfg);
    free(cfg);
    return ipr_cli_fail(argv[0]);
}
