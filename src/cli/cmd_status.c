/* cmd_status.c: `ipr status RUN_DIR`: progress of a run from its journals (what is committed) and its
 * status.json (rate, ETA, per-rank heartbeats); safe while the run is going. */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "ipr/common.h"
#include "ipr/hash.h"
#include "pipeline/json.h"
#include "pipeline/plan.h"
#include "pipeline/rundir.h"

static void usage(FILE *to) {
    fprintf(to, "usage: ipr status RUN_DIR [--json]\n\n"
                "Units done, failed and to go (from the journals: what is committed), the rate, ETA and per-rank\n"
                "heartbeats (from status.json, rewritten by rank 0 every run.progress_interval). A rank silent for\n"
                "more than 3 intervals while it holds work is reported as a suspected hang. Damaged files (a journal\n"
                "line that is no record, a committed segment missing or altered, a results.h5 that is not the one\n"
                "DONE names, an unreadable status.json, run.json or plan.h5) are reported as problems. --json prints\n"
                "status.json as it is.\n"
                "exit codes: 0 ok, 1 usage error or not a run directory, 4 a file of the run is damaged\n");
}

static void ago(double s, char *out, size_t cap) {
    if (s < 120)
        snprintf(out, cap, "%.0f s ago", s);
    else if (s < 7200)
        snprintf(out, cap, "%.0f min ago", s / 60);
    else
        snprintf(out, cap, "%.1f h ago", s / 3600);
}

static int g_problems;

static void problem(const char *fmt, ...) IPR_PRINTF(1, 2);
static void problem(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("problem: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    g_problems++;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* A status.json as coord.c writes it, for this run: else "" and `why` says what is wrong. */
typedef struct {
    char state[32], session[128];
    double updated, rate, eta, interval;
    int draining;
} status_info;

static int status_parse(const char *json, const pl_run *run, status_info *si, char *why, size_t cap) {
    static const char *states[] = {"running", "draining", "interrupted", "merging", "done", "failed"};
    char fmt[32] = "", run_id[64] = "";
    memset(si, 0, sizeof *si);
    si->eta = -1;
    if (pl_json_get_str(json, "format", fmt, sizeof fmt) != IPR_OK || strcmp(fmt, "ipr-status") != 0) {
        snprintf(why, cap, "no \"format\": \"ipr-status\"");
        return IPR_ERR;
    }
    if (pl_json_get_str(json, "run_id", run_id, sizeof run_id) != IPR_OK || strcmp(run_id, run->run_id) != 0) {
        snprintf(why, cap, "its run_id '%s' is not this run's %s", run_id, run->run_id);
        return IPR_ERR;
    }
    int known = 0;
    if (pl_json_get_str(json, "state", si->state, sizeof si->state) == IPR_OK)
        for (size_t i = 0; i < sizeof states / sizeof states[0]; ++i) known |= strcmp(si->state, states[i]) == 0;
    if (!known) {
        snprintf(why, cap, "state '%s' is not a state of a run", si->state);
        return IPR_ERR;
    }
    const double t = pl_now();
    if (pl_json_get_str(json, "session", si->session, sizeof si->session) != IPR_OK ||
        pl_json_get_double(json, "updated_epoch", &si->updated) != IPR_OK || !isfinite(si->updated) ||
        si->updated < (double)run->created_epoch - 86400.0 || si->updated > t + 86400.0) {
        snprintf(why, cap, "no session, or its updated_epoch is not a time of this run");
        return IPR_ERR;
    }
    if (pl_json_get_double(json, "chains_per_s", &si->rate) != IPR_OK || !isfinite(si->rate) || si->rate < 0 ||
        pl_json_get_double(json, "progress_interval", &si->interval) != IPR_OK || !isfinite(si->interval) ||
        si->interval <= 0) {
        snprintf(why, cap, "chains_per_s or progress_interval is missing or out of range");
        return IPR_ERR;
    }
    if (pl_json_get_double(json, "eta_s", &si->eta) != IPR_OK) si->eta = -1; /* null while unknown */
    const char *d = pl_json_find(json, "draining");
    si->draining = d && strncmp(d, "true", 4) == 0;
    ipr_error_clear();
    return IPR_OK;
}

int ipr_cmd_status(int argc, char **argv) {
    static const struct option longopts[] = {{"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int json = 0, c, code = IPR_EXIT_USAGE;
    pl_run run;
    pl_plan plan;
    pl_journal_state st;
    int have_plan = 0, have_st = 0;
    char *status = NULL, *runjson = NULL;
    char path[PL_PATH_MAX + 64];
    g_problems = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'j') json = 1;
        else if (c == 'h') { usage(stdout); return IPR_EXIT_OK; }
        else { ipr_error_set(__FILE__, __LINE__, "unknown option %s", argv[optind - 1]); return ipr_cli_usage_error("status"); }
    }
    if (optind != argc - 1) {
        ipr_error_set(__FILE__, __LINE__, "expected one RUN_DIR");
        return ipr_cli_usage_error("status");
    }
    /* a damaged file of a run exits 4 (as verify); a directory that is no run at all exits 1 */
    snprintf(path, sizeof path, "%s/run.json", argv[optind]);
    if (pl_run_load(argv[optind], &run, &runjson) != IPR_OK) {
        if (file_exists(path)) code = IPR_EXIT_VERIFY;
        goto fail;
    }
    pl_run_path(&run, "status.json", path, sizeof path);
    status_info si;
    char why[256] = "";
    int status_ok = 0;
    if (file_exists(path)) {
        if (pl_read_file(path, &status, NULL) != IPR_OK) {
            snprintf(why, sizeof why, "%s", ipr_error_message());
            ipr_error_clear();
        } else {
            status_ok = status_parse(status, &run, &si, why, sizeof why) == IPR_OK;
        }
    }
    if (json) {
        IPR_CHECK(file_exists(path), "%s has no status.json yet", run.dir);
        if (!status_ok) {
            code = IPR_EXIT_VERIFY;
            IPR_FAIL("%s is damaged: %s (the next `ipr run` session rewrites it)", path, why);
        }
        fputs(status, stdout);
        free(status);
        free(runjson);
        return IPR_EXIT_OK;
    }
    pl_run_path(&run, "plan.h5", path, sizeof path);
    if (pl_plan_load(path, &plan) != IPR_OK) {
        if (file_exists(path)) {
            code = IPR_EXIT_VERIFY;
            ipr_error_context("%s is damaged", path);
        }
        goto fail;
    }
    have_plan = 1;
    IPR_TRY(pl_journal_scan(&run, &plan, &st));
    have_st = 1;
    char name[128] = "";
    pl_json_get_str(runjson, "name", name, sizeof name);
    ipr_error_clear();
    int failed = 0;
    for (int u = 0; u < plan.n_units; ++u) failed += st.seg[u] < 0 && st.fails[u] > 0;
    const int to_go = plan.n_units - st.n_done - failed;
    printf("run %s (%s, %s) in %s%s\n", run.run_id, name, ipr_bench_name(plan.grid.bench), run.dir,
           plan.grid.limited ? "  LIMITED (--limit)" : "");
    printf("units: %d of %d committed, %d with failures and not committed, %d to go\n", st.n_done, plan.n_units, failed,
           to_go);
    if (st.n_bad)
        problem("%d commit record(s) name a segment that is missing or altered (first: %s): their units count as not "
                "done, and the same `ipr run` command runs them again",
                st.n_bad, st.first_bad);
    if (st.n_corrupt)
        problem("%d journal line(s) are no records (first at %s): the journal is damaged", st.n_corrupt,
                st.first_corrupt);
    if (st.n_foreign) problem("%d journal record(s) name units that are not in plan.h5", st.n_foreign);
    pl_run_path(&run, "status.json", path, sizeof path);
    if (status && status_ok) {
        double age = pl_now() - si.updated;
        char a[64];
        ago(age, a, sizeof a);
        /* "draining" is the state of runs before `draining` became a flag of "interrupted" */
        const int draining = si.draining || !strcmp(si.state, "draining");
        const int live = !strcmp(si.state, "running") || !strcmp(si.state, "merging") || draining;
        printf("state: %s%s (session %s, status.json updated %s)\n", si.state,
               draining && strcmp(si.state, "draining") ? ", draining (running batches finish and commit)" : "",
               si.session, a);
        if (!strcmp(si.state, "done") && to_go > 0)
            problem("status.json says done, but %d unit(s) are not committed (see above)", to_go);
        if (live && age > 3 * si.interval + 5)
            printf("warning: no update for more than 3 progress intervals: the run may have died (run the same command "
                   "to resume)\n");
        if (live) {
            printf("rate: %.3f chains/s", si.rate);
            if (si.eta >= 0) printf(", ETA %.0f s", si.eta);
            printf("\n");
        }
        const char *r = pl_json_find(status, "ranks");
        if (r && *r == '[' && live) {
            ++r;
            for (;;) {
                while (*r == ' ' || *r == ',' || *r == '\n') ++r;
                if (*r != '{') break;
                const char *end = pl_json_skip_value(r);
                if (!end) break;
                char obj[2048];
                snprintf(obj, sizeof obj, "%.*s", (int)(end - r), r);
                int64_t rank = 0, done = 0;
                double seen = 0;
                char host[128] = "", dev[128] = "";
                pl_json_get_i64(obj, "rank", &rank);
                pl_json_get_i64(obj, "units_done", &done);
                pl_json_get_double(obj, "last_heartbeat_epoch", &seen);
                pl_json_get_str(obj, "host", host, sizeof host);
                pl_json_get_str(obj, "device", dev, sizeof dev);
                const char *hang = pl_json_find(obj, "suspect_hang");
                ipr_error_clear();
                ago(pl_now() - seen, a, sizeof a);
                printf("  rank %lld on %s (%s): %lld units, heard from %s%s\n", (long long)rank, host, dev,
                       (long long)done, a, hang && strncmp(hang, "true", 4) == 0 ? "  SUSPECTED HANG" : "");
                r = end;
            }
        }
    } else if (file_exists(path)) {
        printf("state: unknown\n");
        problem("%s is damaged: %s (the next `ipr run` session rewrites it)", path, why);
    } else {
        printf("state: no status.json yet\n");
    }
    char done[PL_PATH_MAX + 64], *done_text = NULL;
    pl_run_path(&run, "DONE", done, sizeof done);
    pl_run_path(&run, "results.h5", path, sizeof path);
    if (file_exists(done)) {
        /* DONE holds the SHA-256 of the results.h5 it completed: a truncated or altered file is not complete */
        char sha[IPR_SHA256_HEX] = "";
        if (pl_read_file(done, &done_text, NULL) != IPR_OK) {
            printf("results: unknown\n");
            problem("%s cannot be read: %s", done, ipr_error_message());
        } else if (!file_exists(path)) {
            printf("results: missing\n");
            problem("%s is missing although DONE says the run was merged (`ipr merge %s` writes it again)", path,
                    run.dir);
        } else if (ipr_sha256_file(path, sha) != IPR_OK || strlen(done_text) < 64 || strncmp(done_text, sha, 64) != 0) {
            printf("results: damaged\n");
            problem("%s is damaged: its SHA-256 %.12s... is not the %.12s... that DONE recorded (`ipr merge %s` writes "
                    "it again from the segments)",
                    path, sha[0] ? sha : "?", done_text, run.dir);
        } else {
            /* "complete" only beside no problem: the merged file may predate damage to the segments */
            printf("results: %s (%s)\n", path,
                   g_problems ? "its SHA-256 matches DONE: merged before the damage above" : "complete");
        }
        ipr_error_clear();
        free(done_text);
    } else {
        printf("results: not merged yet\n");
    }
    pl_journal_state_free(&st);
    pl_plan_free(&plan);
    free(status);
    free(runjson);
    if (g_problems) {
        fprintf(stderr, "ipr status: %s: %d problem(s) (`ipr verify %s` checks every file)\n", run.dir, g_problems,
                run.dir);
        return IPR_EXIT_VERIFY;
    }
    return IPR_EXIT_OK;
fail:
    if (have_st) pl_journal_state_free(&st);
    if (have_plan) pl_plan_free(&plan);
    free(status);
    free(runjson);
    ipr_cli_fail("status");
    return code;
}
