/* cmd_run.c: `ipr run CONFIG.yaml`: rank 0 reads and checks the config and opens the run directory, every
 * rank binds a device and works, rank 0 coordinates and merges. The same command resumes an interrupted run. */
#define _POSIX_C_SOURCE 200809L
#include <archive.h>
#include <getopt.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include <zlib.h>

#include "cli.h"
#include "ipr/common.h"
#include "pipeline/check.h"
#include "pipeline/config.h"
#include "pipeline/coord.h"
#include "pipeline/json.h"
#include "pipeline/runlock.h"

#ifndef IPR_GIT_DIRTY
#define IPR_GIT_DIRTY 0
#endif

static void usage(FILE *to) {
    fprintf(to,
            "usage: ipr run CONFIG.yaml [--output RUN_DIR] [--set KEY=VALUE]... [options]\n\n"
            "Evaluate IPR over the config's grid (models x selections x fractions x seeds x instance blocks),\n"
            "under mpirun or alone. Results: RUN_DIR/results.h5 and RUN_DIR/summary/. Running the same command\n"
            "again after a crash or an interruption completes only the missing work units.\n\n"
            "  -o, --output DIR     run directory (default runs/<name>-<config_sha256[:8]>)\n"
            "  -s, --set KEY=VAL    override a config key (YAML flow syntax: --set ipr.fractions=[0.1,0.5])\n"
            "      --force-new      DIR holds a run of another config: move it aside and start afresh\n"
            "      --limit N        at most N instances: a smoke test, marked as limited in every output\n"
            "      --shard I/N      run only shard I of N (static LPT split, for job arrays); `ipr merge` joins\n"
            "      --progress MODE  auto (one updating line on a terminal, a line per interval otherwise),\n"
            "                       line, or none\n"
            "      --log-level L    debug | info | warn | error (default info)\n"
            "      --help-config    the config keys (Markdown table)\n"
            "  -h, --help           this text\n\n"
            "exit codes: 0 all units ok, 1 usage/config error (nothing run), 2 finished with failed units,\n"
            "            3 interrupted (SIGTERM/SIGUSR1/SIGINT drain; run again to resume), 4 verification failed,\n"
            "            5 a write to the run directory failed (disk full, I/O error; run again to resume)\n");
}

typedef struct {
    const char *config, *output;
    char *sets[PL_MAX_SETS];
    int n_sets;
    int force_new;
    int64_t limit;
    int shard, nshards;
    pl_progress_mode progress;
    ipr_log_level log_level;
} run_opts;

static int parse(int argc, char **argv, run_opts *o, int *exit_now) {
    static const struct option longopts[] = {
        {"output", required_argument, 0, 'o'},   {"set", required_argument, 0, 's'},
        {"force-new", no_argument, 0, 'F'},      {"limit", required_argument, 0, 'l'},
        {"shard", required_argument, 0, 'S'},    {"progress", required_argument, 0, 'p'},
        {"log-level", required_argument, 0, 'L'}, {"help-config", no_argument, 0, 'C'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->log_level = IPR_LOG_INFO;
    *exit_now = 0;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":o:s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': o->output = optarg; break;
        case 's':
            IPR_CHECK(o->n_sets < PL_MAX_SETS, "too many --set options");
            o->sets[o->n_sets++] = optarg;
            break;
        case 'F': o->force_new = 1; break;
        case 'l': {
            uint64_t v;
            IPR_TRY(ipr_parse_u64(optarg, 1000000000, "--limit", &v));
            IPR_CHECK(v >= 1, "--limit must be at least 1");
            o->limit = (int64_t)v;
            break;
        }
        case 'S': IPR_TRY(pl_parse_shard(optarg, &o->shard, &o->nshards)); break;
        case 'p':
            if (!strcmp(optarg, "auto")) o->progress = PL_PROGRESS_AUTO;
            else if (!strcmp(optarg, "line")) o->progress = PL_PROGRESS_LINE;
            else if (!strcmp(optarg, "none")) o->progress = PL_PROGRESS_NONE;
            else IPR_FAIL("--progress: '%s' is not auto, line or none", optarg);
            break;
        case 'L':
            if (!strcmp(optarg, "debug")) o->log_level = IPR_LOG_DEBUG;
            else if (!strcmp(optarg, "info")) o->log_level = IPR_LOG_INFO;
            else if (!strcmp(optarg, "warn")) o->log_level = IPR_LOG_WARN;
            else if (!strcmp(optarg, "error")) o->log_level = IPR_LOG_ERROR;
            else IPR_FAIL("--log-level: '%s' is not debug, info, warn or error", optarg);
            break;
        case 'C': {
            char *md = NULL;
            IPR_TRY(pl_config_schema_markdown(&md));
            fputs(md, stdout);
            free(md);
            *exit_now = 1;
            return IPR_OK;
        }
        case 'h': usage(stdout); *exit_now = 1; return IPR_OK;
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

/* Broadcast a byte string from rank 0 (NUL-terminated on arrival). */
static int bcast_bytes(char **data, size_t *len, int rank) {
    int64_t n = rank == 0 ? (int64_t)*len : 0;
    IPR_MPI(MPI_Bcast(&n, 1, MPI_INT64_T, 0, MPI_COMM_WORLD));
    if (rank != 0) {
        IPR_TRY_PTR(*data = ipr_malloc((size_t)n + 1, "broadcast buffer"));
        *len = (size_t)n;
    }
    if (n > 0) IPR_MPI(MPI_Bcast(*data, (int)n, MPI_CHAR, 0, MPI_COMM_WORLD));
    (*data)[n] = '\0';
    return IPR_OK;
fail:
    return IPR_ERR;
}

static int write_build_provenance(const pl_run *run) {
    unsigned maj, min, rel;
    char v[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int len = 0;
    pl_buf b;
    pl_buf_init(&b);
    if (H5get_libversion(&maj, &min, &rel) < 0) maj = min = rel = 0;
    if (MPI_Get_library_version(v, &len) != MPI_SUCCESS) snprintf(v, sizeof v, "unknown");
    char *nl = strchr(v, '\n');
    if (nl) *nl = '\0';
    pl_buf_printf(&b, "{\n  \"producer\": \"ipr %s\",\n  \"git_sha\": \"%s\",\n  \"git_dirty\": %s,\n", IPR_VERSION,
                  IPR_GIT_SHA, IPR_GIT_DIRTY ? "true" : "false");
#ifdef __VERSION__
    pl_buf_add(&b, "  \"compiler\": ");
    pl_buf_json_str(&b, __VERSION__);
    pl_buf_add(&b, ",\n");
#endif
#ifdef IPR_HAVE_CUDA
    pl_buf_add(&b, "  \"cuda_backend\": true,\n");
#else
    pl_buf_add(&b, "  \"cuda_backend\": false,\n");
#endif
    pl_buf_printf(&b, "  \"hdf5\": \"%u.%u.%u\",\n  \"mpi\": ", maj, min, rel);
    pl_buf_json_str(&b, v);
    pl_buf_add(&b, ",\n  \"libarchive\": ");
    pl_buf_json_str(&b, archive_version_string());
    pl_buf_printf(&b, ",\n  \"libyaml\": \"%s\",\n  \"zlib\": \"%s\"\n}\n", yaml_get_version_string(), zlibVersion());
    int rc = IPR_ERR;
    if (pl_buf_ok(&b) == IPR_OK) {
        char path[PL_PATH_MAX + 64];
        pl_run_path(run, "provenance/build.json", path, sizeof path);
        rc = pl_write_file_atomic(path, b.data, b.len);
    }
    pl_buf_free(&b);
    return rc;
}

static int finish(int code, int mpi) {
    if (mpi && MPI_Finalize() != MPI_SUCCESS) fprintf(stderr, "ipr run: warning: MPI_Finalize failed\n");
    return code;
}

/* MPI_Init unless a caller did, errors returned (not fatal), this process's rank and the world size. */
static int mpi_start(int *argc, char ***argv, int *rank, int *size) {
    int initialized = 0;
    IPR_MPI(MPI_Initialized(&initialized));
    if (!initialized) IPR_MPI(MPI_Init(argc, argv));
    IPR_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    IPR_MPI(MPI_Comm_rank(MPI_COMM_WORLD, rank));
    IPR_MPI(MPI_Comm_size(MPI_COMM_WORLD, size));
    return IPR_OK;
fail:
    return IPR_ERR;
}

/* 1 when `ok` holds on every rank (root = -1) or on rank `root`; an MPI failure counts as "not ok". */
static int agree(int ok, int root) {
    int all = 0;
    if (root >= 0) {
        all = ok;
        IPR_MPI(MPI_Bcast(&all, 1, MPI_INT, root, MPI_COMM_WORLD));
    } else {
        IPR_MPI(MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    }
    return all;
fail:
    ipr_error_print("ipr run");
    return 0;
}

int ipr_cmd_run(int argc, char **argv) {
    run_opts o;
    int exit_now = 0;
    if (parse(argc, argv, &o, &exit_now) != IPR_OK) return ipr_cli_usage_error("run");
    if (exit_now) return IPR_EXIT_OK;
    ipr_log_set_level(o.log_level);
    /* before anything slow (MPI start-up, config and checkpoint reads, device binding): a drain signal that arrives
     * early is recorded, and the coordinator then hands out no work and exits 3, instead of the signal's default
     * action killing the rank (mpirun forwards SIGUSR1 as soon as the ranks exist) */
    pl_signals_install();

    int rank = 0, size = 1;
    if (mpi_start(&argc, &argv, &rank, &size) != IPR_OK) return ipr_cli_fail("run");
    ipr_set_rank(rank);

    pl_config *cfg = NULL;
    pl_plan plan;
    pl_run run;
    pl_exec *x = NULL;
    pl_run_lock lock = {-1, -1};
    char *yaml = NULL;
    size_t yaml_len = 0;
    int ok = 1, have_plan = 0, code = IPR_EXIT_USAGE;
    memset(&plan, 0, sizeof plan);
    memset(&run, 0, sizeof run);
    cfg = calloc(1, sizeof *cfg);
    if (!cfg) return finish(IPR_EXIT_USAGE, 1);

    /* rank 0 reads and checks everything before any rank touches a device (exit 1 = nothing ran) */
    if (rank == 0) {
        if (pl_read_file(o.config, &yaml, &yaml_len) != IPR_OK) {
            ipr_error_context("reading the config");
            ok = 0;
        } else if (pl_config_load(o.config, yaml, yaml_len, o.sets, o.n_sets, o.limit, cfg) != IPR_OK ||
                   pl_config_check_files(cfg) != IPR_OK || pl_plan_build(cfg, &plan) != IPR_OK) {
            ok = 0;
        } else {
            have_plan = 1;
            char dir[PL_PATH_MAX];
            if (o.output)
                snprintf(dir, sizeof dir, "%s", o.output);
            else
                snprintf(dir, sizeof dir, "runs/%s-%.8s", cfg->name, cfg->sha256);
            const pl_run_texts texts = {yaml,      yaml_len, o.sets, o.n_sets, cfg->resolved_json, cfg->operational_json,
                                        cfg->sources_json};
            char tag[64] = "", probe_path[PL_PATH_MAX + 16];
            if (o.nshards > 0) snprintf(tag, sizeof tag, "shard%dof%d", o.shard, o.nshards);
            /* one run per directory, or one per shard (runlock.h), rank 0 only: an existing run directory is locked
             * before anything in it is read or moved aside (--force-new), a new one as soon as it exists (or when
             * --force-new made another); a lost creation race finds the winner's lock */
            snprintf(probe_path, sizeof probe_path, "%s/run.json", dir);
            FILE *existing = fopen(probe_path, "rb");
            if (existing) fclose(existing);
            if (existing && pl_run_lock_take(dir, o.shard, o.nshards, &lock) != IPR_OK) {
                ok = 0;
            } else if (pl_run_open(dir, &plan, &texts, o.force_new, tag[0] ? tag : NULL, &run) != IPR_OK) {
                ok = 0;
            } else if ((lock.fd < 0 || !run.resumed) && pl_run_lock_take(run.dir, o.shard, o.nshards, &lock) != IPR_OK) {
                ok = 0;
            } else {
                char path[PL_PATH_MAX + 32];
                FILE *probe;
                pl_run_path(&run, "plan.h5", path, sizeof path);
                if ((probe = fopen(path, "rb")) != NULL)
                    fclose(probe);
                else if (pl_plan_save(&plan, path) != IPR_OK)
                    ok = 0;
                if (ok && write_build_provenance(&run) != IPR_OK) ok = 0;
            }
        }
        if (!ok) ipr_cli_fail("run");
    }
    ok = agree(ok, 0);
    if (!ok) goto out;

    /* the others parse the same bytes (rank 0 already validated them) and take rank 0's run identity and checkpoint
     * hashes (run.model_sha256 is its plan's) */
    if (bcast_bytes(&yaml, &yaml_len, rank) != IPR_OK) goto crash;
    if (MPI_Bcast(&run, (int)sizeof run, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS) goto crash;
    if (rank != 0) {
        if (pl_config_load(o.config, yaml, yaml_len, o.sets, o.n_sets, o.limit, cfg) != IPR_OK ||
            pl_plan_build_hashed(cfg, (const char(*)[65])run.model_sha256, &plan) != IPR_OK)
            ok = 0;
        else
            have_plan = 1;
    }
    if (ok && pl_log_open(&run, rank) != IPR_OK) ok = 0;
    if (!ok) ipr_cli_fail("run");
    if (!agree(ok, -1)) goto crash;
    if (rank == 0) {
        printf("ipr run: %s%s (%d units, config %.12s, %d rank%s)\n", run.dir, run.resumed ? " (resuming)" : "",
               plan.n_units, plan.grid.config_sha256, size, size == 1 ? "" : "s");
        if (plan.grid.limited) printf("ipr run: LIMITED RUN (--limit %lld): for testing only\n", (long long)o.limit);
        fflush(stdout);
    }
    pl_logf(IPR_LOG_INFO, "ipr %s (git %s), run %s, session %s, rank %d of %d", IPR_VERSION, IPR_GIT_SHA, run.run_id,
            run.session, rank, size);

    pl_binding bind;
    if (pl_bind_device(plan.resolved, MPI_COMM_WORLD, &bind) != IPR_OK) {
        ipr_cli_fail("run");
        goto crash;
    }
    pl_logf(IPR_LOG_INFO, "device: %s (local rank %d of %d on %s, %d CPU threads)", bind.device_name, bind.local_rank,
            bind.local_size, bind.hostname, bind.cpu_threads);
    x = pl_exec_new(&plan, &bind);
    ok = x != NULL;
    if (!ok) ipr_cli_fail("run");
    if (!agree(ok, -1)) goto crash;

    pl_coord_opts co = {&plan, &run, o.shard, o.nshards, o.progress};
    pl_coord_result res;
    if (pl_coord_run(&co, x, &bind, &res) != IPR_OK) {
        ipr_cli_fail("run");
        pl_logf(IPR_LOG_ERROR, "%s", ipr_error_message());
        MPI_Abort(MPI_COMM_WORLD, 70);
        return 70;
    }
    code = res.exit_code;
    if (rank == 0) {
        if (res.merged && res.summary_md[0]) {
            char *md = NULL;
            if (pl_read_file(res.summary_md, &md, NULL) == IPR_OK) {
                printf("\n%s\n", md);
                free(md);
            }
        }
        static const char *what[] = {"all units ok", "", "finished with failed units", "interrupted: run the same command to resume",
                                     "", "writing to the run directory failed (disk full? I/O error?): fix it and run the same command to resume"};
        printf("ipr run: %s: %d units done (%d this session), %d failed, %d missing: exit %d (%s)\n", run.dir,
               res.done_before + res.done_now, res.done_now, res.failed, res.missing, code,
               code >= 0 && code <= 5 ? what[code] : "?");
        if (res.merged) printf("ipr run: results: %s/results.h5\n", run.dir);
        fflush(stdout);
    }
    pl_logf(IPR_LOG_INFO, "exit %d", code);
    /* rank 0 has said everything before any rank exits non-zero (mpirun then tears the job down) */
    if (MPI_Barrier(MPI_COMM_WORLD) != MPI_SUCCESS) pl_logf(IPR_LOG_WARN, "the final MPI_Barrier failed");
    goto out;
crash:
    code = IPR_EXIT_USAGE;
out:
    pl_run_lock_release(&lock);
    pl_exec_free(x);
    if (have_plan) pl_plan_free(&plan);
    pl_config_free(cfg);
    free(cfg);
    free(yaml);
    pl_log_close();
    return finish(code, 1);
}
