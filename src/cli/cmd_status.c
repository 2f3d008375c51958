/* cmd_status.c: `ipr status RUN_DIR`: progress of a run from its journals (what is committed) and its
 * status.json (rate, ETA, per-rank heartbeats); safe while the run is going. */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "ipr/common.h"
#include "pipeline/json.h"
#include "pipeline/plan.h"
#include "pipeline/rundir.h"

static void usage(FILE *to) {
    fprintf(to, "usage: ipr status RUN_DIR [--json]\n\n"
                "Units done, failed and to go (from the journals: what is committed), the rate, ETA and per-rank\n"
                "heartbeats (from status.json, rewritten by rank 0 every run.progress_interval). A rank silent for\n"
                "more than 3 intervals while it holds work is reported as a suspected hang. --json prints\n"
                "status.json as it is.\n");
}

static void ago(double s, char *out, size_t cap) {
    if (s < 120)
        snprintf(out, cap, "%.0f s ago", s);
    else if (s < 7200)
        snprintf(out, cap, "%.0f min ago", s / 60);
    else
        snprintf(out, cap, "%.1f h ago", s / 3600);
}

int ipr_cmd_status(int argc, char **argv) {
    static const struct option longopts[] = {{"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int json = 0, c;
    pl_run run;
    pl_plan plan;
    pl_journal_state st;
    int have_plan = 0, have_st = 0;
    char *status = NULL, *runjson = NULL;
    char path[PL_PATH_MAX + 64];
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c == 'j') json = 1;
        else if (c == 'h') { usage(stdout); return IPR_EXIT_OK; }
        else { usage(stderr); ipr_error_set(__FILE__, __LINE__, "unknown option %s", argv[optind - 1]); return ipr_cli_fail("status"); }
    }
    if (optind != argc - 1) {
        usage(stderr);
        ipr_error_set(__FILE__, __LINE__, "expected one RUN_DIR");
        return ipr_cli_fail("status");
    }
    IPR_TRY(pl_run_load(argv[optind], &run, &runjson));
    pl_run_path(&run, "status.json", path, sizeof path);
    if (pl_read_file(path, &status, NULL) != IPR_OK) {
        status = NULL;
        ipr_error_clear();
    }
    if (json) {
        IPR_CHECK(status != NULL, "%s has no status.json yet", run.dir);
        fputs(status, stdout);
        free(status);
        free(runjson);
        return IPR_EXIT_OK;
    }
    pl_run_path(&run, "plan.h5", path, sizeof path);
    IPR_TRY(pl_plan_load(path, &plan));
    have_plan = 1;
    IPR_TRY(pl_journal_scan(&run, &plan, &st));
    have_st = 1;
    char name[128] = "";
    pl_json_get_str(runjson, "name", name, sizeof name);
    ipr_error_clear();
    int failed = 0;
    for (int u = 0; u < plan.n_units; ++u) failed += st.seg[u] < 0 && st.fails[u] > 0;
    printf("run %s (%s, %s) in %s%s\n", run.run_id, name, ipr_bench_name(plan.grid.bench), run.dir,
           plan.grid.limited ? "  LIMITED (--limit)" : "");
    printf("units: %d of %d committed, %d with failures and not committed, %d to go\n", st.n_done, plan.n_units, failed,
           plan.n_units - st.n_done - failed);
    if (st.n_bad) printf("warning: %d commit record(s) name a missing or altered segment\n", st.n_bad);
    if (status) {
        char state[32] = "?", session[128] = "";
        double upd = 0, rate = 0, eta = -1, interval = 60;
        pl_json_get_str(status, "state", state, sizeof state);
        pl_json_get_str(status, "session", session, sizeof session);
        pl_json_get_double(status, "updated_epoch", &upd);
        pl_json_get_double(status, "chains_per_s", &rate);
        pl_json_get_double(status, "progress_interval", &interval);
        if (pl_json_get_double(status, "eta_s", &eta) != IPR_OK) eta = -1;
        ipr_error_clear();
        double age = pl_now() - upd;
        char a[64];
        ago(age, a, sizeof a);
        printf("state: %s (session %s, status.json updated %s)\n", state, session, a);
        int live = !strcmp(state, "running") || !strcmp(state, "draining") || !strcmp(state, "merging");
        if (live && age > 3 * interval + 5)
            printf("warning: no update for more than 3 progress intervals: the run may have died (run the same command "
                   "to resume)\n");
        if (live) {
            printf("rate: %.3f chains/s", rate);
            if (eta >= 0) printf(", ETA %.0f s", eta);
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
    } else {
        printf("state: no status.json yet\n");
    }
    struct stat sb;
    pl_run_path(&run, "DONE", path, sizeof path);
    if (stat(path, &sb) == 0)
        printf("results: %s/results.h5 (complete)\n", run.dir);
    else
        printf("results: not merged yet\n");
    pl_journal_state_free(&st);
    pl_plan_free(&plan);
    free(status);
    free(runjson);
    return IPR_EXIT_OK;
fail:
    if (have_st) pl_journal_state_free(&st);
    if (have_plan) pl_plan_free(&plan);
    free(status);
    free(runjson);
    return ipr_cli_fail("status");
}
